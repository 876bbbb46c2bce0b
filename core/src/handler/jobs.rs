//! The lifecycles a host holds, by job id.

use super::job::JobLifecycle;
use crate::ids::JobId;

/// The lifecycles of the jobs a host holds, in job id order. A host holds only a few (one per
/// VM slot, plus those cleaning up) and every input walks them several times, so they live in
/// a sorted vector: no tree to descend and no node allocated whenever the host goes from idle
/// to busy.
#[derive(Debug, Default)]
pub(crate) struct JobMap(Vec<(JobId, JobLifecycle)>);

impl JobMap {
    fn find(&self, id: JobId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(k, _)| *k)
    }

    pub(crate) fn get_mut(&mut self, id: &JobId) -> Option<&mut JobLifecycle> {
        let at = self.find(*id).ok()?;
        Some(&mut self.0[at].1)
    }

    pub(crate) fn contains_key(&self, id: &JobId) -> bool {
        self.find(*id).is_ok()
    }

    /// Inserts or replaces the lifecycle of `id`.
    pub(crate) fn insert(&mut self, id: JobId, lc: JobLifecycle) {
        match self.find(id) {
            Ok(at) => self.0[at].1 = lc,
            Err(at) => self.0.insert(at, (id, lc)),
        }
    }

    pub(crate) fn remove(&mut self, id: &JobId) -> Option<JobLifecycle> {
        let at = self.find(*id).ok()?;
        Some(self.0.remove(at).1)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &JobId> {
        self.0.iter().map(|(id, _)| id)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &JobLifecycle> {
        self.0.iter().map(|(_, lc)| lc)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut JobLifecycle> {
        self.0.iter_mut().map(|(_, lc)| lc)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&JobId, &JobLifecycle)> {
        self.0.iter().map(|(id, lc)| (id, lc))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&JobId, &mut JobLifecycle)> {
        self.0.iter_mut().map(|(id, lc)| (&*id, lc))
    }
}
