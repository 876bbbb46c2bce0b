//! A bounded memory of delivery GUIDs already stored, so a duplicate delivery is answered at
//! once without touching the store. The store is idempotent on job ids anyway; this only saves
//! a round trip, so forgetting the oldest GUIDs is harmless.

use std::collections::{HashSet, VecDeque};

/// The most recent `capacity` GUIDs, oldest forgotten first.
#[derive(Clone, Debug, Default)]
pub(crate) struct RecentDeliveries {
    capacity: usize,
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl RecentDeliveries {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    pub(crate) fn contains(&self, guid: &str) -> bool {
        self.set.contains(guid)
    }

    pub(crate) fn remember(&mut self, guid: &str) {
        if self.capacity == 0 || !self.set.insert(guid.to_owned()) {
            return;
        }
        self.order.push_back(guid.to_owned());
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let mut r = RecentDeliveries::new(2);
        r.remember("a");
        r.remember("b");
        r.remember("a");
        r.remember("c");
        assert!(!r.contains("a") && r.contains("b") && r.contains("c"));
        let mut none = RecentDeliveries::new(0);
        none.remember("a");
        assert!(!none.contains("a"));
    }
}
