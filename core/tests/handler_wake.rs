//! How a handler takes wake-ups (`Input::QueueNotEmpty`): [`HostHandler::wants_work`] tells a
//! runtime when to listen for them, and a wake-up that arrives while a claim is in flight is
//! not lost to that claim's empty answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use anklet_core::handler::*;
use anklet_core::ids::{EffectId, HostId};
use anklet_core::time::Timestamp;
use std::time::Duration;
use support::{GB, START, job, quiet_settings};

const IDLE: Duration = Duration::from_secs(30);

/// A handler whose inventory loaded, with its first claim in flight; returns the claim's id.
fn ready() -> (HostHandler, EffectId) {
    let settings = HandlerSettings {
        idle_poll: IDLE,
        ..quiet_settings()
    };
    let mut h = HostHandler::new(HostId("mac1".into()), settings, START);
    let inventory = effects(&mut h)
        .into_iter()
        .find(|(_, e)| {
            matches!(
                e,
                Effect::Vm {
                    cmd: VmCmd::Inventory,
                    ..
                }
            )
        })
        .expect("the first effect asks for the inventory")
        .0;
    let disk = DiskSpace {
        total_bytes: 500 * GB,
        available_bytes: 300 * GB,
    };
    h.handle_input(
        START,
        Input::Result {
            id: inventory,
            result: EffectResult::Inventory {
                templates: vec![],
                disk,
                vms: vec![],
            },
        },
    );
    let claim = claim_of(&mut h).expect("a loaded handler claims");
    (h, claim)
}

/// The effects the machine wants now, with their ids (notices have none).
fn effects(h: &mut HostHandler) -> Vec<(EffectId, Effect)> {
    std::iter::from_fn(|| h.poll_effect())
        .filter_map(|e| e.id().map(|id| (id, e)))
        .collect()
}

/// The id of the claim among the effects the machine wants now.
fn claim_of(h: &mut HostHandler) -> Option<EffectId> {
    effects(h)
        .into_iter()
        .find(|(_, e)| {
            matches!(
                e,
                Effect::Store {
                    cmd: StoreCmd::Claim { .. },
                    ..
                }
            )
        })
        .map(|(id, _)| id)
}

fn answer(h: &mut HostHandler, at: Timestamp, id: EffectId, result: EffectResult) {
    h.handle_input(at, Input::Result { id, result });
}

#[test]
fn an_empty_claim_waits_the_idle_poll_and_wants_work_until_woken() {
    let (mut h, claim) = ready();
    assert!(!h.wants_work(), "a claim in flight is not waiting");
    answer(&mut h, START, claim, EffectResult::Claimed(None));
    assert!(h.wants_work());
    assert_eq!(claim_of(&mut h), None, "nothing before the idle poll");
    assert_eq!(h.poll_timeout(), Some((START + IDLE, TimerKind::Claim)));
    h.handle_input(START + Duration::from_millis(5), Input::QueueNotEmpty);
    assert!(claim_of(&mut h).is_some(), "a wake-up claims at once");
    assert!(!h.wants_work());
}

#[test]
fn a_wake_up_during_a_claim_claims_again_after_an_empty_answer() {
    let (mut h, claim) = ready();
    // The job was stored after the claim read the queue: the claim finds nothing.
    h.handle_input(START, Input::QueueNotEmpty);
    answer(&mut h, START, claim, EffectResult::Claimed(None));
    let again = claim_of(&mut h).expect("the wake-up is not lost to the empty answer");
    assert!(!h.wants_work());
    // Only once: the next empty answer waits the idle poll.
    answer(&mut h, START, again, EffectResult::Claimed(None));
    assert_eq!(claim_of(&mut h), None);
    assert!(h.wants_work());
}

#[test]
fn a_failed_claim_waits_even_when_woken() {
    let (mut h, claim) = ready();
    h.handle_input(START, Input::QueueNotEmpty);
    let failure = Failure::new(FailureClass::Transient, "store down");
    answer(&mut h, START, claim, EffectResult::Failed(failure));
    assert_eq!(claim_of(&mut h), None, "a failing store is not hammered");
    assert!(h.wants_work());
}

#[test]
fn a_draining_host_does_not_want_work() {
    let (mut h, claim) = ready();
    answer(
        &mut h,
        START,
        claim,
        EffectResult::Claimed(Some(job(1, 1, &["self-hosted"]))),
    );
    // Two slots by default: it claims the next at once, not waiting.
    let next = claim_of(&mut h).expect("a free slot claims");
    answer(&mut h, START, next, EffectResult::Claimed(None));
    assert!(h.wants_work());
    h.handle_input(START, Input::Drain);
    assert!(!h.wants_work(), "a draining host takes no work");
}

#[test]
fn a_host_with_every_slot_taken_does_not_want_work() {
    let (mut h, claim) = ready();
    answer(
        &mut h,
        START,
        claim,
        EffectResult::Claimed(Some(job(1, 1, &["self-hosted"]))),
    );
    let next = claim_of(&mut h).expect("the second slot claims");
    answer(
        &mut h,
        START,
        next,
        EffectResult::Claimed(Some(job(2, 1, &["self-hosted"]))),
    );
    assert_eq!(claim_of(&mut h), None);
    assert!(!h.wants_work(), "no free slot: a wake-up could not be used");
}
