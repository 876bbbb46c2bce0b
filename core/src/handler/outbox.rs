//! The queue of effects waiting to be polled and the table of results still awaited.
//!
//! Every effect that expects a result gets an id and a deadline here. A result is accepted once:
//! taking it out of the table is what makes late and duplicate answers harmless.

use super::effect::{Effect, ForgeCmd, Notice, StoreCmd, VmCmd};
use crate::ids::{EffectId, JobId};
use crate::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Who waits for a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Owner {
    /// The template inventory (at start and every sweep).
    Inventory,
    /// An orphan VM's deletion; failures are retried by the next sweep.
    Sweep,
    /// A claim handed back at once (the job already has a lifecycle here).
    GiveBack,
    /// The claim loop.
    Claim,
    /// The host's pull task.
    Pull,
    /// A job's lifecycle.
    Job(JobId),
}

/// Extra wait past an effect's own timeout before the machine declares it lost. Runtimes enforce
/// `timeout` themselves (killing the process group) and report `TimedOut`; the grace makes sure
/// their report, not a guess, normally decides, so a clone is known dead before its VM is deleted.
pub(crate) const EFFECT_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Awaited {
    pub(crate) owner: Owner,
    pub(crate) deadline: Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    next_id: u64,
    queue: VecDeque<Effect>,
    awaited: BTreeMap<EffectId, Awaited>,
}

impl Outbox {
    fn allocate(&mut self, owner: Owner, now: Timestamp, timeout: Duration) -> EffectId {
        self.next_id += 1;
        let id = EffectId(self.next_id);
        let deadline = now + timeout + EFFECT_GRACE;
        self.awaited.insert(id, Awaited { owner, deadline });
        id
    }

    pub(crate) fn store(
        &mut self,
        owner: Owner,
        now: Timestamp,
        timeout: Duration,
        cmd: StoreCmd,
    ) -> EffectId {
        let id = self.allocate(owner, now, timeout);
        self.queue.push_back(Effect::Store { id, timeout, cmd });
        id
    }

    pub(crate) fn vm(
        &mut self,
        owner: Owner,
        now: Timestamp,
        timeout: Duration,
        cmd: VmCmd,
    ) -> EffectId {
        let id = self.allocate(owner, now, timeout);
        self.queue.push_back(Effect::Vm { id, timeout, cmd });
        id
    }

    pub(crate) fn forge(
        &mut self,
        owner: Owner,
        now: Timestamp,
        timeout: Duration,
        cmd: ForgeCmd,
    ) -> EffectId {
        let id = self.allocate(owner, now, timeout);
        self.queue.push_back(Effect::Forge { id, timeout, cmd });
        id
    }

    pub(crate) fn notice(&mut self, notice: Notice) {
        self.queue.push_back(Effect::Notice(notice));
    }

    pub(crate) fn pop(&mut self) -> Option<Effect> {
        self.queue.pop_front()
    }

    /// Takes an awaited result's owner out of the table; `None` means late or duplicate.
    pub(crate) fn accept(&mut self, id: EffectId) -> Option<Owner> {
        self.awaited.remove(&id).map(|a| a.owner)
    }

    /// Takes out every awaited effect whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Timestamp) -> Vec<(EffectId, Owner)> {
        let due: Vec<EffectId> = self
            .awaited
            .iter()
            .filter(|(_, a)| a.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.awaited.remove(&id).map(|a| (id, a.owner)))
            .collect()
    }

    /// The earliest deadline of an awaited effect.
    pub(crate) fn next_deadline(&self) -> Option<(Timestamp, EffectId)> {
        self.awaited.iter().map(|(id, a)| (a.deadline, *id)).min()
    }

    /// How many results `owner` still awaits (orphan deletions hold VM slots until done).
    pub(crate) fn awaiting(&self, owner: Owner) -> usize {
        self.awaited.values().filter(|a| a.owner == owner).count()
    }
}
