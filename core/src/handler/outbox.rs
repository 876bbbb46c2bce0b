//! The queue of effects waiting to be polled and the table of results still awaited.
//!
//! Every effect that expects a result gets an id and a deadline here. A result is accepted once:
//! taking it out of the table is what makes late and duplicate answers harmless.

use super::effect::{Effect, ForgeCmd, Notice, StoreCmd, VmCmd};
use crate::ids::{EffectId, JobId};
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::time::Duration;

/// Who waits for a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Owner {
    /// The template inventory (at start and every sweep).
    Inventory,
    /// An orphan VM's deletion; failures are retried by the next sweep.
    Sweep,
    /// The sweep's listing of the scope's runners.
    RunnerList,
    /// The sweep's removal of a runner of ours that no live job holds.
    RunnerSweep,
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
    /// Awaited effects in id order (ids only grow, so a push keeps the order). A handful at a
    /// time, inserted and removed for every effect: a vector, not a map that allocates a node
    /// whenever it goes from empty to one.
    awaited: Vec<(EffectId, Awaited)>,
}

impl Outbox {
    fn allocate(&mut self, owner: Owner, now: Timestamp, timeout: Duration) -> EffectId {
        self.next_id += 1;
        let id = EffectId(self.next_id);
        let deadline = now + timeout + EFFECT_GRACE;
        self.awaited.push((id, Awaited { owner, deadline }));
        id
    }

    /// Takes `id` out of the awaited table.
    fn take(&mut self, id: EffectId) -> Option<Owner> {
        let at = self.awaited.binary_search_by_key(&id, |(id, _)| *id).ok()?;
        Some(self.awaited.remove(at).1.owner)
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
        self.take(id)
    }

    /// Takes out every awaited effect whose deadline has passed, in id order.
    pub(crate) fn expire(&mut self, now: Timestamp) -> Vec<(EffectId, Owner)> {
        let mut due = Vec::new();
        self.awaited.retain(|(id, a)| {
            let keep = a.deadline > now;
            if !keep {
                due.push((*id, a.owner));
            }
            keep
        });
        due
    }

    /// The earliest deadline of an awaited effect.
    pub(crate) fn next_deadline(&self) -> Option<(Timestamp, EffectId)> {
        self.awaited.iter().map(|(id, a)| (a.deadline, *id)).min()
    }
}
