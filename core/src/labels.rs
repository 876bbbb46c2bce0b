//! What a job asks for, read from its `runs-on` labels the way Anklet reads them.
//!
//! `anka-template:<uuid>` is required and `anka-template-tag:<tag>` optional; the first label
//! with each prefix wins. A host serves a job only if it can read a template from its labels
//! and, when the host lists templates, that template is among them.

use crate::ids::{JobId, TemplateId};
use serde::{Deserialize, Serialize};

/// Prefix of the label naming the template.
pub const TEMPLATE_LABEL: &str = "anka-template:";
/// Prefix of the label naming the template's tag.
pub const TAG_LABEL: &str = "anka-template-tag:";

/// The VM a job needs: a template and, optionally, one of its tags.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VmSpec {
    /// The template UUID to clone from.
    pub template: TemplateId,
    /// The tag to use; `None` means "latest", which Anklet always pulls to refresh.
    pub tag: Option<String>,
}

/// Why a job's labels cannot be served by this host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// No label starts with `anka-template:`.
    #[error("no `anka-template:<uuid>` label")]
    MissingTemplate,
    /// The template label has nothing after the colon.
    #[error("the `anka-template:` label names no template")]
    EmptyTemplate,
    /// The host only serves listed templates and this is not one of them.
    #[error("template {0} is not served by this host")]
    TemplateNotServed(String),
    /// The job belongs to another repository owner than the one this host serves.
    #[error("owner {0} is not served by this host")]
    OwnerNotServed(String),
}

impl VmSpec {
    /// Reads the template and tag from a job's labels.
    pub fn from_labels<S: AsRef<str>>(labels: &[S]) -> Result<Self, LabelError> {
        let find = |prefix: &str| {
            labels
                .iter()
                .find_map(|l| l.as_ref().strip_prefix(prefix).map(str::trim))
        };
        let template = find(TEMPLATE_LABEL).ok_or(LabelError::MissingTemplate)?;
        if template.is_empty() {
            return Err(LabelError::EmptyTemplate);
        }
        let tag = find(TAG_LABEL).filter(|t| !t.is_empty()).map(str::to_owned);
        Ok(Self {
            template: TemplateId(template.to_owned()),
            tag,
        })
    }
}

/// What a host can serve; sent with every claim so the store only hands over jobs that fit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFilter {
    /// Only jobs of this repository owner (Anklet's rule for shared queues), unless empty.
    pub owner: Option<String>,
    /// Only these templates, unless empty (then any template label is accepted).
    pub templates: Vec<TemplateId>,
    /// Jobs the claiming host still holds a lifecycle for (a job it requeued and is still
    /// cleaning up after): it cannot serve them again until that ends, and a claim that took
    /// one would only be given back, so the store skips them and another host may take them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<JobId>,
}

impl ClaimFilter {
    /// Decides whether a job with these labels and owner is one this host may claim.
    pub fn accepts<S: AsRef<str>>(&self, owner: &str, labels: &[S]) -> Result<VmSpec, LabelError> {
        let spec = VmSpec::from_labels(labels)?;
        self.check(owner, &spec)?;
        Ok(spec)
    }

    /// Decides for a spec already read from the labels (stores keep it on the record, so a
    /// claim scanning a long queue does not parse labels again).
    pub fn accepts_spec(&self, owner: &str, spec: Option<&VmSpec>) -> bool {
        spec.is_some_and(|spec| self.check(owner, spec).is_ok())
    }

    /// Decides whether the store may hand this job to the claimer at all (see
    /// [`ClaimFilter::held`]); stores check it with [`ClaimFilter::accepts_spec`].
    pub fn admits(&self, job: JobId) -> bool {
        !self.held.contains(&job)
    }

    fn check(&self, owner: &str, spec: &VmSpec) -> Result<(), LabelError> {
        if !self.templates.is_empty() && !self.templates.contains(&spec.template) {
            return Err(LabelError::TemplateNotServed(spec.template.0.clone()));
        }
        if let Some(want) = &self.owner
            && !want.eq_ignore_ascii_case(owner)
        {
            return Err(LabelError::OwnerNotServed(owner.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_template_and_tag_like_anklet() {
        let spec = VmSpec::from_labels(&[
            "self-hosted",
            "anka-template-tag:v1",
            "anka-template:84266873-da90",
        ]);
        assert_eq!(
            spec,
            Ok(VmSpec {
                template: TemplateId("84266873-da90".into()),
                tag: Some("v1".into())
            })
        );
    }

    #[test]
    fn tag_label_is_not_mistaken_for_template_label() {
        assert_eq!(
            VmSpec::from_labels(&["anka-template-tag:v1"]),
            Err(LabelError::MissingTemplate)
        );
        assert_eq!(
            VmSpec::from_labels(&["anka-template:"]),
            Err(LabelError::EmptyTemplate)
        );
    }

    #[test]
    fn filter_limits_templates_and_owner() {
        let f = ClaimFilter {
            owner: Some("acme".into()),
            templates: vec![TemplateId("t1".into())],
            held: vec![JobId(7)],
        };
        assert!(!f.admits(JobId(7)));
        assert!(f.admits(JobId(8)));
        assert!(f.accepts("acme", &["anka-template:t1"]).is_ok());
        assert!(f.accepts("ACME", &["anka-template:t1"]).is_ok());
        assert!(f.accepts("acme", &["anka-template:t2"]).is_err());
        assert!(f.accepts("other", &["anka-template:t1"]).is_err());
    }
}
