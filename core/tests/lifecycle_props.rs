//! Property test: random interleavings of inputs against one `HostHandler`, with invariants
//! checked after every step by watching only its effects (never its internals).
//!
//! The driver answers outstanding effects in random order with random outcomes, sends duplicate,
//! late and unknown results, random job status news, time jumps, stop and drain. Afterwards it
//! stops the handler and answers everything successfully until it has stopped, then checks that
//! every claimed job ended and every VM was deleted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::*;
use anklet_core::ids::{EffectId, HostId, JobId, TemplateId, VmName};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const GB: u64 = 1 << 30;
const MAX_VMS: usize = 2;

#[derive(Clone, Debug)]
enum Outcome {
    Ok(u8),
    Fail(u8),
    WrongType,
}

#[derive(Clone, Debug)]
enum Action {
    Answer { pick: usize, outcome: Outcome },
    Duplicate { pick: usize },
    Unknown { id: u64 },
    Status { job: u8, status: u8 },
    Advance { secs: u32 },
    QueueNotEmpty,
    Stop,
    Drain,
}

fn action() -> impl Strategy<Value = Action> {
    let outcome = prop_oneof![
        6 => any::<u8>().prop_map(Outcome::Ok),
        2 => any::<u8>().prop_map(Outcome::Fail),
        1 => Just(Outcome::WrongType),
    ];
    prop_oneof![
        20 => (any::<usize>(), outcome).prop_map(|(pick, outcome)| Action::Answer { pick, outcome }),
        2 => any::<usize>().prop_map(|pick| Action::Duplicate { pick }),
        1 => (0u64..500).prop_map(|id| Action::Unknown { id }),
        4 => (0u8..6, any::<u8>()).prop_map(|(job, status)| Action::Status { job, status }),
        6 => prop_oneof![1u32..30, 30u32..400, 400u32..8000].prop_map(|secs| Action::Advance { secs }),
        1 => Just(Action::QueueNotEmpty),
        1 => Just(Action::Stop),
        1 => Just(Action::Drain),
    ]
}

fn settings() -> HandlerSettings {
    HandlerSettings {
        max_vms: MAX_VMS,
        job_retry_attempts: 3,
        registration_timeout: Duration::from_secs(60),
        pull_timeout: Duration::from_secs(600),
        lease: Duration::from_secs(90),
        job_max_lifetime: Duration::from_secs(5_000),
        ..HandlerSettings::default()
    }
}

const LABELS: [&[&str]; 4] = [
    &["anka-template:t1", "anka-template-tag:v1"],
    &["anka-template:t2"],
    &["anka-template:t3", "anka-template-tag:x"],
    &["linux"],
];

fn templates() -> Vec<TemplateInfo> {
    ["t1", "t2", "old"]
        .iter()
        .enumerate()
        .map(|(i, t)| TemplateInfo {
            template: TemplateId((*t).into()),
            tag: Some("v1".into()),
            size_bytes: 30 * GB,
            last_used: Timestamp(i as u64),
        })
        .collect()
}

fn job_status(n: u8, runner: Option<String>) -> GithubJobStatus {
    match n % 4 {
        0 => GithubJobStatus::Queued,
        1 => GithubJobStatus::InProgress { runner },
        2 => GithubJobStatus::InProgress {
            runner: Some("someone-else".into()),
        },
        _ => GithubJobStatus::Completed {
            conclusion: Some(["success", "failure", "cancelled"][usize::from(n / 4) % 3].into()),
        },
    }
}

/// The world as the driver sees it, plus the invariant bookkeeping.
struct Driver {
    h: HostHandler,
    now: Timestamp,
    outstanding: Vec<(Effect, Timestamp)>,
    answered: Vec<(EffectId, EffectResult)>,
    /// VMs that may exist: cloned and not yet confirmed deleted.
    vms: BTreeSet<VmName>,
    vm_of_job: BTreeMap<JobId, VmName>,
    /// Jobs whose next requeue is a give-back of a duplicate claim, and those requeues' ids.
    give_back: BTreeSet<JobId>,
    give_back_ids: BTreeSet<EffectId>,
    /// The VM each live job cloned last.
    current_vm: BTreeMap<JobId, VmName>,
    /// Jobs with a live lifecycle, with the kinds of terminal store ops emitted for them.
    active: BTreeMap<JobId, BTreeSet<&'static str>>,
    /// Terminal store ops acknowledged for the active claim.
    acked: BTreeMap<JobId, u32>,
    ended: Vec<(JobId, String, u32)>,
    next_job_in_queue: u64,
}

impl Driver {
    fn new() -> Self {
        let h = HostHandler::new(HostId("h".into()), settings(), Timestamp(1_000_000));
        let mut d = Self {
            h,
            now: Timestamp(1_000_000),
            outstanding: vec![],
            answered: vec![],
            vms: BTreeSet::new(),
            vm_of_job: BTreeMap::new(),
            current_vm: BTreeMap::new(),
            give_back: BTreeSet::new(),
            give_back_ids: BTreeSet::new(),
            active: BTreeMap::new(),
            acked: BTreeMap::new(),
            ended: vec![],
            next_job_in_queue: 0,
        };
        d.collect();
        d
    }

    fn collect(&mut self) {
        while let Some(e) = self.h.poll_effect() {
            self.observe(&e);
            if e.id().is_some() {
                self.outstanding.push((e, self.now));
            }
        }
        assert!(
            self.vms.len() <= MAX_VMS,
            "more VMs than slots: {:?}",
            self.vms
        );
    }

    fn observe(&mut self, e: &Effect) {
        match e {
            Effect::Notice(Notice::JobClaimed { job, .. }) => {
                assert!(!self.active.contains_key(job), "two lifecycles for {job}");
                self.active.insert(*job, BTreeSet::new());
                self.acked.insert(*job, 0);
            }
            Effect::Notice(Notice::OrphanVm { vm }) => {
                assert!(
                    !self.current_vm.values().any(|v| v == vm),
                    "the sweep deleted {vm}, which a live job holds"
                );
                assert!(
                    vm.0.starts_with("anklet-vm-h-"),
                    "the sweep touched a VM not ours: {vm}"
                );
            }
            Effect::Notice(Notice::JobEnded { job, end }) => {
                self.current_vm.remove(job);
                let kinds = self
                    .active
                    .remove(job)
                    .expect("ended a job that was not claimed");
                let acked = self.acked.remove(job).unwrap_or(0);
                assert!(
                    kinds.len() <= 1,
                    "{job} got conflicting terminal ops {kinds:?}"
                );
                if !end.starts_with("forfeited") {
                    assert!(
                        acked >= 1,
                        "{job} ended ({end}) without its store op acknowledged"
                    );
                }
                self.ended.push((*job, end.clone(), acked));
            }
            Effect::Vm {
                cmd: VmCmd::Clone { vm, .. },
                ..
            } => {
                if let Some(job) = vm.owner().map(|(_, j)| j) {
                    self.current_vm.insert(job, vm.clone());
                }
                assert!(!self.vms.contains(vm), "VM name reused while alive: {vm}");
                self.vms.insert(vm.clone());
            }
            Effect::Vm {
                cmd: VmCmd::PullTemplate { .. },
                ..
            } => {
                let now = self.now;
                let live = self.outstanding.iter().any(|(o, at)| {
                    matches!(o, Effect::Vm { cmd: VmCmd::PullTemplate { .. }, timeout, .. }
                        if *at + *timeout + Duration::from_secs(5) > now)
                });
                assert!(!live, "two pulls at once");
            }
            Effect::Notice(Notice::ClaimGivenBack { job }) => {
                self.give_back.insert(*job);
            }
            Effect::Store { id, cmd, .. } => {
                if let StoreCmd::Requeue { job, .. } = cmd
                    && self.give_back.remove(job)
                {
                    // The new claim's requeue, not the held lifecycle's end.
                    self.give_back_ids.insert(*id);
                    return;
                }
                let (job, kind) = match cmd {
                    StoreCmd::Complete { job, .. } => (job, "complete"),
                    StoreCmd::Requeue { job, .. } => (job, "requeue"),
                    StoreCmd::DeadLetter { job, .. } => (job, "dead_letter"),
                    _ => return,
                };
                let kinds = self
                    .active
                    .get_mut(job)
                    .expect("store op for a job not held");
                kinds.insert(kind);
                assert!(kinds.len() <= 1, "{job} both {kinds:?}");
            }
            _ => {}
        }
    }

    fn ok_result(&mut self, e: &Effect, n: u8) -> EffectResult {
        match e {
            Effect::Store { cmd, .. } => match cmd {
                StoreCmd::Claim { .. } => {
                    if n.is_multiple_of(3) {
                        EffectResult::Claimed(None)
                    } else {
                        // Mostly fresh jobs, sometimes one we already hold (a store bug to survive).
                        let id = if n.is_multiple_of(7) {
                            u64::from(n % 6)
                        } else {
                            self.next_job_in_queue += 1;
                            100 + self.next_job_in_queue
                        };
                        EffectResult::Claimed(Some(ClaimedJob {
                            job: JobRef {
                                id: JobId(id),
                                run_id: id,
                                owner: "o".into(),
                                repo: "r".into(),
                            },
                            labels: LABELS[usize::from(n) % 4]
                                .iter()
                                .map(|s| s.to_string())
                                .collect(),
                            attempt: u32::from(n % 5) + 1,
                        }))
                    }
                }
                _ if n.is_multiple_of(9) => EffectResult::LeaseLost,
                _ => EffectResult::Stored,
            },
            Effect::Vm { cmd, .. } => match cmd {
                VmCmd::Inventory => EffectResult::Inventory {
                    // Every VM that may exist, plus one of another host and one not ours.
                    vms: self
                        .vms
                        .iter()
                        .cloned()
                        .chain([
                            VmName("anklet-vm-other-1-1".into()),
                            VmName("golden-image".into()),
                        ])
                        .collect(),
                    templates: templates(),
                    disk: DiskSpace {
                        total_bytes: 200 * GB,
                        available_bytes: u64::from(n % 8) * 20 * GB,
                    },
                },
                VmCmd::CheckDownloadSize { .. } => EffectResult::DownloadSize {
                    download_bytes: u64::from(n % 5) * 25 * GB,
                    disk: DiskSpace {
                        total_bytes: 200 * GB,
                        available_bytes: u64::from(n % 8) * 20 * GB,
                    },
                },
                VmCmd::PullTemplate { spec } => EffectResult::Pulled {
                    tag: spec.tag.clone(),
                    size_bytes: 30 * GB,
                },
                VmCmd::InspectVm { .. } => EffectResult::VmState(if n.is_multiple_of(5) {
                    VmState::Missing
                } else {
                    VmState::Running
                }),
                _ => EffectResult::Done,
            },
            Effect::Forge { cmd, .. } => match cmd {
                ForgeCmd::CreateRunnerConfig { .. } => {
                    EffectResult::RunnerConfig(RunnerCredentials::Jit(Secret::new("s")))
                }
                ForgeCmd::GetJob { job } => {
                    let runner = self.vm_of_job.get(&job.id).map(|v| v.0.clone());
                    EffectResult::JobStatus(job_status(n, runner))
                }
                _ => EffectResult::Done,
            },
            Effect::Notice(_) => EffectResult::Done,
        }
    }

    fn answer(&mut self, index: usize, outcome: Outcome) {
        let (e, _) = self.outstanding.remove(index);
        let result = match outcome {
            Outcome::Ok(n) => self.ok_result(&e, n),
            Outcome::Fail(n) => EffectResult::Failed(Failure::new(
                [
                    FailureClass::Transient,
                    FailureClass::Permanent,
                    FailureClass::NotFound,
                    FailureClass::DiskFull,
                    FailureClass::Unsupported,
                    FailureClass::TimedOut,
                    FailureClass::Busy,
                ][usize::from(n) % 7],
                "injected",
            )),
            Outcome::WrongType => EffectResult::VmState(VmState::Stopped),
        };
        self.deliver(&e, result);
    }

    fn deliver(&mut self, e: &Effect, result: EffectResult) {
        let id = e.id().unwrap();
        // Only effects still awaited are answered here (expired ones were dropped on advance),
        // so the machine acts on this result: track what the world now knows.
        {
            match (e, &result) {
                (
                    Effect::Vm {
                        cmd: VmCmd::Delete { vm },
                        ..
                    },
                    EffectResult::Done,
                ) => {
                    self.vms.remove(vm);
                }
                (
                    Effect::Vm {
                        cmd: VmCmd::Delete { vm },
                        ..
                    },
                    EffectResult::Failed(Failure {
                        class: FailureClass::NotFound,
                        ..
                    }),
                ) => {
                    self.vms.remove(vm);
                }
                (
                    Effect::Vm {
                        cmd: VmCmd::StartRunner { vm, job, .. },
                        ..
                    },
                    EffectResult::Done,
                ) => {
                    self.vm_of_job.insert(job.id, vm.clone());
                }
                (
                    Effect::Store {
                        id,
                        cmd:
                            StoreCmd::Complete { job, .. }
                            | StoreCmd::Requeue { job, .. }
                            | StoreCmd::DeadLetter { job, .. },
                        ..
                    },
                    EffectResult::Stored | EffectResult::LeaseLost,
                ) if !self.give_back_ids.contains(id) => {
                    *self.acked.entry(*job).or_default() += 1;
                }
                _ => {}
            }
        }
        self.answered.push((id, result.clone()));
        self.h.handle_input(self.now, Input::Result { id, result });
        self.collect();
    }

    fn advance(&mut self, secs: u32) {
        self.now = self.now + Duration::from_secs(u64::from(secs));
        self.h.handle_timeout(self.now);
        // Everything due was done: a deadline still at or before now would make the runtime spin.
        if let Some((t, kind)) = self.h.poll_timeout() {
            assert!(
                t > self.now,
                "busy timer: {kind:?} due at {t} after handle_timeout({})",
                self.now
            );
        }
        // Effects whose deadline passed are dead to the machine: the driver forgets them too.
        let now = self.now;
        self.outstanding.retain(|(e, at)| {
            let timeout = match e {
                Effect::Store { timeout, .. }
                | Effect::Vm { timeout, .. }
                | Effect::Forge { timeout, .. } => *timeout,
                Effect::Notice(_) => Duration::ZERO,
            };
            *at + timeout + Duration::from_secs(5) > now
        });
        self.collect();
    }

    fn apply(&mut self, a: Action) {
        match a {
            Action::Answer { pick, outcome } => {
                if !self.outstanding.is_empty() {
                    let i = pick % self.outstanding.len();
                    self.answer(i, outcome);
                }
            }
            Action::Duplicate { pick } => {
                if !self.answered.is_empty() {
                    let (id, result) = self.answered[pick % self.answered.len()].clone();
                    self.h.handle_input(self.now, Input::Result { id, result });
                    self.collect();
                }
            }
            Action::Unknown { id } => {
                let id = EffectId(100_000 + id);
                self.h.handle_input(
                    self.now,
                    Input::Result {
                        id,
                        result: EffectResult::Done,
                    },
                );
                self.collect();
            }
            Action::Status { job, status } if status % 5 == 4 => {
                // GitHub gives one of our runners another job (id 900+), then maybe ends it.
                let runners: Vec<VmName> = self.vm_of_job.values().cloned().collect();
                if let Some(vm) = runners.get(usize::from(job) % runners.len().max(1)) {
                    let other = JobId(900 + u64::from(job));
                    let news = if status % 2 == 0 {
                        GithubJobStatus::InProgress {
                            runner: Some(vm.0.clone()),
                        }
                    } else {
                        GithubJobStatus::Completed {
                            conclusion: Some("success".into()),
                        }
                    };
                    self.h.handle_input(
                        self.now,
                        Input::JobStatus {
                            job: other,
                            status: news,
                        },
                    );
                    self.collect();
                }
            }
            Action::Status { job, status } => {
                let held: Vec<JobId> = self.active.keys().copied().collect();
                let job = held
                    .get(usize::from(job) % held.len().max(1))
                    .copied()
                    .unwrap_or(JobId(1));
                let runner = self.vm_of_job.get(&job).map(|v| v.0.clone());
                self.h.handle_input(
                    self.now,
                    Input::JobStatus {
                        job,
                        status: job_status(status, runner),
                    },
                );
                self.collect();
            }
            Action::Advance { secs } => self.advance(secs),
            Action::QueueNotEmpty => {
                self.h.handle_input(self.now, Input::QueueNotEmpty);
                self.collect();
            }
            Action::Stop => {
                self.h.handle_input(self.now, Input::Stop);
                self.collect();
            }
            Action::Drain => {
                self.h.handle_input(self.now, Input::Drain);
                self.collect();
            }
        }
    }

    /// Stops the handler and lets the world cooperate until it has.
    fn settle(&mut self) {
        self.h.handle_input(self.now, Input::Stop);
        self.collect();
        for _ in 0..20_000 {
            if self.h.is_stopped() {
                break;
            }
            if !self.outstanding.is_empty() {
                self.answer(0, Outcome::Ok(3));
                continue;
            }
            match self.h.poll_timeout() {
                Some((t, _)) => {
                    let secs = t.saturating_since(self.now).as_secs() + 1;
                    self.advance(u32::try_from(secs).unwrap_or(u32::MAX));
                }
                None => panic!("handler neither stopped nor waiting for anything"),
            }
        }
        assert!(self.h.is_stopped(), "handler did not stop");
        // Answer whatever is left (e.g. an abandoned pull); a stopped machine must ignore it.
        while !self.outstanding.is_empty() {
            self.answer(0, Outcome::Ok(3));
        }
        assert!(
            self.active.is_empty(),
            "jobs never ended: {:?}",
            self.active
        );
        assert!(self.vms.is_empty(), "VMs never deleted: {:?}", self.vms);
        assert_eq!(self.h.jobs().count(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_every_invariant(actions in proptest::collection::vec(action(), 1..150)) {
        let mut d = Driver::new();
        for a in actions {
            d.apply(a);
        }
        d.settle();
    }
}
