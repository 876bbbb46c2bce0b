//! A proptest-state-machine test of any store against the in-memory model (`MemoryQueue`):
//! the model generates operations from several hosts with time jumps; each is applied to the
//! model and to the store under test, every answer is checked against the queue's rules by the
//! conformance harness, and after every step the store's whole listing must equal the model's.
//! Shared by every store's tests (`#[path]`-included), so one test checks them all.
#![allow(dead_code)]

use anklet_core::queue::conformance::{Harness, Op};
use anklet_core::queue::{JobQueue, MemoryQueue, QueueSettings};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::marker::PhantomData;

// The including test crate declares `mod queue_strategies;` (core/tests/queue_strategies).
use crate::queue_strategies;

/// Settings for both sides: a small attempt limit so dead letters happen.
pub fn settings() -> QueueSettings {
    QueueSettings {
        max_attempts: 3,
        finished_capacity: 100,
        ..QueueSettings::default()
    }
}

/// Makes a fresh store under test for each case.
pub trait MakeStore {
    /// The store.
    type Q: JobQueue;
    /// A fresh, empty store with these settings.
    fn make(settings: QueueSettings) -> Self::Q;
}

/// The reference: the in-memory model inside the conformance harness.
pub struct Model;

impl ReferenceStateMachine for Model {
    type State = Harness<MemoryQueue>;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(Harness::new(MemoryQueue::new(settings()))).boxed()
    }

    fn transitions(_state: &Self::State) -> BoxedStrategy<Self::Transition> {
        queue_strategies::op().boxed()
    }

    fn apply(mut state: Self::State, transition: &Self::Transition) -> Self::State {
        if let Err(v) = state.step(transition) {
            panic!("the model broke its own rules at {transition:?}: {v}");
        }
        state
    }
}

/// A store under test, checked step by step against [`Model`].
pub struct Against<M>(PhantomData<M>);

impl<M: MakeStore> StateMachineTest for Against<M> {
    type SystemUnderTest = Harness<M::Q>;
    type Reference = Model;

    fn init_test(_model: &Harness<MemoryQueue>) -> Self::SystemUnderTest {
        Harness::new(M::make(settings()))
    }

    fn apply(
        mut store: Self::SystemUnderTest,
        model: &Harness<MemoryQueue>,
        transition: Op,
    ) -> Self::SystemUnderTest {
        if let Err(v) = store.step(&transition) {
            panic!("store broke a rule at {transition:?}: {v}");
        }
        let ours = store.q.list(store.now).map_err(|e| e.to_string());
        let theirs = model.q.list(model.now);
        assert_eq!(
            ours,
            Ok(theirs),
            "store and model disagree after {transition:?}"
        );
        store
    }
}
