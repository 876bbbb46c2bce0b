//! The host's view of its local templates and the disk-buffer rule that decides evictions.
//!
//! Anklet keeps `template_disk_buffer` percent of the volume free and evicts least recently used
//! templates to make room for a pull. We keep the rule and fix its hole: a template that a live
//! VM was cloned from (or is being cloned from) is never a candidate.

use super::input::{DiskSpace, TemplateInfo};
use crate::ids::TemplateId;
use crate::labels::VmSpec;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// One local template as the handler last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedTemplate {
    /// Tag present locally.
    pub tag: Option<String>,
    /// Size on disk in bytes.
    pub size_bytes: u64,
    /// Last clone or pull, for LRU eviction.
    pub last_used: Timestamp,
}

/// Local templates and volume space.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateCache {
    entries: BTreeMap<TemplateId, CachedTemplate>,
    disk: Option<DiskSpace>,
}

/// What making room for a download takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpacePlan {
    /// The download fits and leaves the buffer free.
    Fits,
    /// It fits after deleting these templates, oldest use first.
    Evict(Vec<TemplateId>),
    /// It cannot fit even after evicting every template no VM uses.
    Impossible {
        /// Bytes missing after all candidates are counted.
        short_bytes: u64,
    },
}

impl TemplateCache {
    /// Replaces the view with a fresh inventory.
    pub fn load(&mut self, templates: &[TemplateInfo], disk: DiskSpace) {
        self.entries = templates
            .iter()
            .map(|t| {
                let entry = CachedTemplate {
                    tag: t.tag.clone(),
                    size_bytes: t.size_bytes,
                    last_used: t.last_used,
                };
                (t.template.clone(), entry)
            })
            .collect();
        self.disk = Some(disk);
    }

    /// Says whether the template is local with the wanted tag. An untagged spec never counts as
    /// present: like Anklet, "latest" is refreshed by a pull (which is quick when nothing changed).
    pub fn has(&self, spec: &VmSpec) -> bool {
        match (&spec.tag, self.entries.get(&spec.template)) {
            (Some(want), Some(entry)) => entry.tag.as_deref() == Some(want.as_str()),
            _ => false,
        }
    }

    /// Says whether any tag of the template is local (the fallback when a pull of "latest" fails).
    pub fn has_any_tag(&self, template: &TemplateId) -> bool {
        self.entries.contains_key(template)
    }

    /// Records a clone, for LRU order.
    pub fn touch(&mut self, template: &TemplateId, now: Timestamp) {
        if let Some(entry) = self.entries.get_mut(template) {
            entry.last_used = entry.last_used.max(now);
        }
    }

    /// Records a finished pull.
    pub fn pulled(&mut self, spec: &VmSpec, tag: Option<String>, size_bytes: u64, now: Timestamp) {
        let previous = self.entries.get(&spec.template).map_or(0, |e| e.size_bytes);
        self.entries.insert(
            spec.template.clone(),
            CachedTemplate {
                tag: tag.or_else(|| spec.tag.clone()),
                size_bytes,
                last_used: now,
            },
        );
        if let Some(disk) = &mut self.disk {
            disk.available_bytes = disk
                .available_bytes
                .saturating_add(previous)
                .saturating_sub(size_bytes);
        }
    }

    /// Records a deleted template and the space it gave back.
    pub fn evicted(&mut self, template: &TemplateId) {
        if let Some(entry) = self.entries.remove(template)
            && let Some(disk) = &mut self.disk
        {
            disk.available_bytes = disk
                .available_bytes
                .saturating_add(entry.size_bytes)
                .min(disk.total_bytes);
        }
    }

    /// Updates the volume space from a fresh measurement.
    pub fn set_disk(&mut self, disk: DiskSpace) {
        self.disk = Some(disk);
    }

    /// The last known volume space.
    pub fn disk(&self) -> Option<DiskSpace> {
        self.disk
    }

    /// Plans room for `download_bytes` while keeping the buffer free, evicting only templates
    /// that are neither `target` nor in `pinned`.
    pub fn plan_space(
        &self,
        download_bytes: u64,
        buffer_pct: f64,
        target: &TemplateId,
        pinned: &BTreeSet<TemplateId>,
    ) -> SpacePlan {
        let Some(disk) = self.disk else {
            return SpacePlan::Impossible {
                short_bytes: download_bytes,
            };
        };
        plan_space(
            disk,
            download_bytes,
            buffer_pct,
            self.candidates(target, pinned),
        )
    }

    fn candidates<'a>(
        &'a self,
        target: &TemplateId,
        pinned: &BTreeSet<TemplateId>,
    ) -> Vec<(&'a TemplateId, &'a CachedTemplate)> {
        let mut list: Vec<_> = self
            .entries
            .iter()
            .filter(|(id, _)| *id != target && !pinned.contains(*id))
            .collect();
        list.sort_by(|a, b| a.1.last_used.cmp(&b.1.last_used).then(a.0.cmp(b.0)));
        list
    }
}

/// The disk-buffer rule: buffer = volume × pct / 100; usable = available − buffer; evict the
/// least recently used candidates until the download fits, or say it cannot.
fn plan_space(
    disk: DiskSpace,
    download_bytes: u64,
    buffer_pct: f64,
    candidates: Vec<(&TemplateId, &CachedTemplate)>,
) -> SpacePlan {
    let pct = buffer_pct.clamp(0.0, 100.0);
    // Bytes are far below 2^53 on any real volume, so the float round trip is exact enough.
    let buffer = (disk.total_bytes as f64 * pct / 100.0).ceil() as u64;
    let usable = disk.available_bytes.saturating_sub(buffer);
    if download_bytes <= usable {
        return SpacePlan::Fits;
    }
    let mut missing = download_bytes - usable;
    if download_bytes > disk.total_bytes.saturating_sub(buffer) {
        return SpacePlan::Impossible {
            short_bytes: missing,
        };
    }
    let mut evict = Vec::new();
    for (id, entry) in candidates {
        if missing == 0 {
            break;
        }
        evict.push(id.clone());
        missing = missing.saturating_sub(entry.size_bytes);
    }
    if missing == 0 {
        SpacePlan::Evict(evict)
    } else {
        SpacePlan::Impossible {
            short_bytes: missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    fn cache(entries: &[(&str, u64, u64)], total: u64, available: u64) -> TemplateCache {
        let mut c = TemplateCache::default();
        let list: Vec<_> = entries
            .iter()
            .map(|(id, size, used)| TemplateInfo {
                template: TemplateId((*id).into()),
                tag: Some("t".into()),
                size_bytes: size * GB,
                last_used: Timestamp(*used),
            })
            .collect();
        c.load(
            &list,
            DiskSpace {
                total_bytes: total * GB,
                available_bytes: available * GB,
            },
        );
        c
    }

    fn t(id: &str) -> TemplateId {
        TemplateId(id.into())
    }

    #[test]
    fn fits_when_buffer_stays_free() {
        let c = cache(&[], 100, 50);
        // 50 free - 10 buffer = 40 usable.
        assert_eq!(
            c.plan_space(40 * GB, 10.0, &t("x"), &BTreeSet::new()),
            SpacePlan::Fits
        );
        assert_ne!(
            c.plan_space(41 * GB, 10.0, &t("x"), &BTreeSet::new()),
            SpacePlan::Fits
        );
    }

    #[test]
    fn evicts_least_recently_used_first_and_only_as_many_as_needed() {
        let c = cache(
            &[("new", 20, 30), ("old", 20, 10), ("mid", 20, 20)],
            100,
            30,
        );
        // 30 free - 10 buffer = 20 usable: 35 needs one 20 GiB eviction, 45 needs two.
        assert_eq!(
            c.plan_space(35 * GB, 10.0, &t("x"), &BTreeSet::new()),
            SpacePlan::Evict(vec![t("old")])
        );
        assert_eq!(
            c.plan_space(45 * GB, 10.0, &t("x"), &BTreeSet::new()),
            SpacePlan::Evict(vec![t("old"), t("mid")])
        );
    }

    #[test]
    fn never_evicts_pinned_or_target_templates() {
        let c = cache(&[("old", 20, 10), ("x", 20, 5)], 100, 30);
        let pinned = BTreeSet::from([t("old")]);
        assert!(matches!(
            c.plan_space(35 * GB, 10.0, &t("x"), &pinned),
            SpacePlan::Impossible { .. }
        ));
    }

    #[test]
    fn a_download_larger_than_the_volume_is_impossible() {
        let c = cache(&[("a", 50, 1)], 100, 10);
        assert!(matches!(
            c.plan_space(95 * GB, 10.0, &t("x"), &BTreeSet::new()),
            SpacePlan::Impossible { .. }
        ));
    }
}
