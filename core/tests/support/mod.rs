//! A small scripted world for driving `HostHandler` in tests: a queue, a registry, a Mac and
//! GitHub, answering effects after fixed latencies, with per-test overrides. Each step is
//! written to a trace with time relative to the start, for insta snapshots.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::*;
use anklet_core::ids::{HostId, JobId, TemplateId};
use anklet_core::secret::Secret;
use anklet_core::time::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub const GB: u64 = 1 << 30;
pub const START: Timestamp = Timestamp(1_700_000_000_000);

/// Settings with long idle/lease/check intervals so traces show only what matters.
pub fn quiet_settings() -> HandlerSettings {
    HandlerSettings {
        idle_poll: Duration::from_secs(100_000),
        sweep_interval: Duration::from_secs(100_000),
        lease: Duration::from_secs(3_000),
        vm_health_interval: Duration::from_secs(3_000),
        job_poll_interval: Duration::from_secs(6_000),
        ..HandlerSettings::default()
    }
}

pub fn job(id: u64, attempt: u32, labels: &[&str]) -> ClaimedJob {
    ClaimedJob {
        job: JobRef {
            id: JobId(id),
            run_id: 9000 + id,
            owner: "acme".into(),
            repo: "app".into(),
        },
        labels: labels.iter().map(|s| s.to_string()).collect(),
        attempt,
    }
}

pub fn template(id: &str, tag: &str, gb: u64, last_used_s: u64) -> TemplateInfo {
    TemplateInfo {
        template: TemplateId(id.into()),
        tag: Some(tag.into()),
        size_bytes: gb * GB,
        last_used: Timestamp(START.0 - 1_000_000 + last_used_s * 1000),
    }
}

type Matcher = Box<dyn Fn(&Effect) -> bool>;

struct Rule {
    matches: Matcher,
    uses: u32,
    result: Option<EffectResult>,
}

pub struct World {
    pub h: HostHandler,
    pub now: Timestamp,
    pub queue: VecDeque<ClaimedJob>,
    pub templates: Vec<TemplateInfo>,
    pub disk: DiskSpace,
    /// VMs the host lists at inventory time (the sweep sees these).
    pub vms: Vec<anklet_core::ids::VmName>,
    pub download_bytes: u64,
    /// Seconds a job runs once its runner has it.
    pub job_secs: u64,
    /// Whether GitHub sends the in_progress webhook (false = lost).
    pub webhook_in_progress: bool,
    /// Whether the runner ever picks its job up.
    pub runner_takes_job: bool,
    pub github: BTreeMap<JobId, GithubJobStatus>,
    rules: Vec<Rule>,
    events: BTreeMap<(Timestamp, u64), Input>,
    seq: u64,
    pub trace: Vec<String>,
    pub stop_at_phase: Option<(&'static str, Input)>,
    /// The next runner that comes up takes this other job instead of its own (job stealing).
    pub steal_next: Option<JobId>,
}

impl World {
    pub fn new(settings: HandlerSettings) -> Self {
        let h = HostHandler::new(HostId("mac1".into()), settings, START);
        Self {
            h,
            now: START,
            queue: VecDeque::new(),
            templates: vec![],
            disk: DiskSpace {
                total_bytes: 500 * GB,
                available_bytes: 300 * GB,
            },
            vms: vec![],
            download_bytes: 40 * GB,
            job_secs: 300,
            webhook_in_progress: true,
            runner_takes_job: true,
            github: BTreeMap::new(),
            rules: vec![],
            events: BTreeMap::new(),
            seq: 0,
            trace: vec![],
            stop_at_phase: None,
            steal_next: None,
        }
    }

    /// Answers effects matching `m` with `result` (or leaves them hanging with `None`) `uses` times.
    pub fn rule(
        &mut self,
        uses: u32,
        m: impl Fn(&Effect) -> bool + 'static,
        result: Option<EffectResult>,
    ) {
        self.rules.push(Rule {
            matches: Box::new(m),
            uses,
            result,
        });
    }

    pub fn at(&mut self, secs: u64, input: Input) {
        let t = START + Duration::from_secs(secs);
        self.schedule(t, input);
    }

    fn schedule(&mut self, t: Timestamp, input: Input) {
        self.seq += 1;
        self.events.insert((t, self.seq), input);
    }

    fn log(&mut self, line: String) {
        let t = self.now.saturating_since(START);
        self.trace.push(format!("{:>9.3}s {line}", t.as_secs_f64()));
    }

    fn drain(&mut self) {
        while let Some(e) = self.h.poll_effect() {
            self.log(format!("-> {e}"));
            if let (Effect::Notice(Notice::Phase { phase, .. }), Some((want, _))) =
                (&e, &self.stop_at_phase)
                && phase == want
            {
                let (_, input) = self.stop_at_phase.take().unwrap();
                let now = self.now;
                self.schedule(now, input);
            }
            if let Some(id) = e.id() {
                self.respond(id, &e);
            }
        }
    }

    fn respond(&mut self, id: anklet_core::ids::EffectId, e: &Effect) {
        let now = self.now;
        if let Some(rule) = self.rules.iter_mut().find(|r| r.uses > 0 && (r.matches)(e)) {
            rule.uses -= 1;
            if let Some(result) = rule.result.clone() {
                self.schedule(now + Duration::from_secs(1), Input::Result { id, result });
            }
            return;
        }
        let (secs, result) = self.default_result(e);
        self.schedule(
            now + Duration::from_secs(secs),
            Input::Result { id, result },
        );
    }

    fn default_result(&mut self, e: &Effect) -> (u64, EffectResult) {
        match e {
            Effect::Store { cmd, .. } => match cmd {
                StoreCmd::Claim { .. } => (0, EffectResult::Claimed(self.queue.pop_front())),
                _ => (0, EffectResult::Stored),
            },
            Effect::Vm { cmd, .. } => match cmd {
                VmCmd::Inventory => (
                    1,
                    EffectResult::Inventory {
                        templates: self.templates.clone(),
                        disk: self.disk,
                        vms: self.vms.clone(),
                    },
                ),
                VmCmd::CheckDownloadSize { .. } => (
                    2,
                    EffectResult::DownloadSize {
                        download_bytes: self.download_bytes,
                        disk: self.disk,
                    },
                ),
                VmCmd::PullTemplate { spec } => {
                    let tag = spec.tag.clone().or(Some("latest-tag".into()));
                    self.templates.retain(|t| t.template != spec.template);
                    self.templates.push(TemplateInfo {
                        template: spec.template.clone(),
                        tag: tag.clone(),
                        size_bytes: self.download_bytes,
                        last_used: self.now,
                    });
                    let size_bytes = self.download_bytes;
                    (600, EffectResult::Pulled { tag, size_bytes })
                }
                VmCmd::DeleteTemplate { template } => {
                    self.templates.retain(|t| &t.template != template);
                    (5, EffectResult::Done)
                }
                VmCmd::Clone { vm, .. } => {
                    self.vms.push(vm.clone());
                    (5, EffectResult::Done)
                }
                VmCmd::Start { .. } => (20, EffectResult::Done),
                VmCmd::StartRunner { vm, job, .. } => {
                    if let Some(other) = self.steal_next.take() {
                        let run = self.now + Duration::from_secs(25);
                        let status = GithubJobStatus::InProgress {
                            runner: Some(vm.0.clone()),
                        };
                        self.schedule(run, Input::JobStatus { job: other, status });
                        let done = run + Duration::from_secs(self.job_secs);
                        let status = GithubJobStatus::Completed {
                            conclusion: Some("success".into()),
                        };
                        self.schedule(done, Input::JobStatus { job: other, status });
                    } else if self.runner_takes_job {
                        let run = self.now + Duration::from_secs(10 + 15);
                        let status = GithubJobStatus::InProgress {
                            runner: Some(vm.0.clone()),
                        };
                        self.github.insert(job.id, status.clone());
                        if self.webhook_in_progress {
                            self.schedule(
                                run,
                                Input::JobStatus {
                                    job: job.id,
                                    status,
                                },
                            );
                        }
                        let done = run + Duration::from_secs(self.job_secs);
                        let status = GithubJobStatus::Completed {
                            conclusion: Some("success".into()),
                        };
                        self.schedule(
                            done,
                            Input::JobStatus {
                                job: job.id,
                                status,
                            },
                        );
                    }
                    (10, EffectResult::Done)
                }
                VmCmd::InspectVm { .. } => (1, EffectResult::VmState(VmState::Running)),
                VmCmd::Delete { vm } => {
                    self.vms.retain(|v| v != vm);
                    (3, EffectResult::Done)
                }
            },
            Effect::Forge { cmd, .. } => match cmd {
                ForgeCmd::CreateRunnerConfig { mode, .. } => {
                    let secret = Secret::new("JITCONFIG-SECRET-abc123");
                    let creds = match mode {
                        RunnerRegistration::Jit => RunnerCredentials::Jit(secret),
                        RunnerRegistration::Token => RunnerCredentials::Token(secret),
                    };
                    (1, EffectResult::RunnerConfig(creds))
                }
                ForgeCmd::GetJob { job } => {
                    let status = self
                        .github
                        .get(&job.id)
                        .cloned()
                        .unwrap_or(GithubJobStatus::Queued);
                    (1, EffectResult::JobStatus(status))
                }
                ForgeCmd::RemoveRunner { .. } | ForgeCmd::CancelWorkflowRun { .. } => {
                    (1, EffectResult::Done)
                }
                ForgeCmd::ListRunners => (1, EffectResult::Runners(Vec::new())),
            },
            Effect::Notice(_) => (0, EffectResult::Done),
        }
    }

    /// Runs until the handler stops or `limit_secs` of simulated time pass.
    pub fn run(&mut self, limit_secs: u64) {
        let limit = START + Duration::from_secs(limit_secs);
        for _ in 0..100_000 {
            self.drain();
            if self.h.is_stopped() {
                return;
            }
            let event = self.events.keys().next().copied();
            let timer = self.h.poll_timeout();
            let next_event = event.map(|(t, _)| t);
            let next_timer = timer.map(|(t, _)| t);
            let t = match (next_event, next_timer) {
                (Some(e), Some(t)) => e.min(t),
                (Some(e), None) => e,
                (None, Some(t)) => t,
                (None, None) => return,
            };
            if t > limit {
                return;
            }
            self.now = self.now.max(t);
            if next_event == Some(t) {
                let key = event.unwrap();
                let input = self.events.remove(&key).unwrap();
                self.log(format!("<- {}", render_input(&input)));
                self.h.handle_input(self.now, input);
            } else {
                let (_, kind) = timer.unwrap();
                self.log(format!("   timer {kind:?}"));
                self.h.handle_timeout(self.now);
            }
        }
        panic!("world did not settle");
    }

    pub fn text(&self) -> String {
        self.trace.join("\n")
    }
}

pub fn render_input(i: &Input) -> String {
    match i {
        Input::Result { id, result } => format!("{id} {}", render_result(result)),
        Input::JobStatus { job, status } => format!("github says {job} {status:?}"),
        other => format!("{other:?}"),
    }
}

fn render_result(r: &EffectResult) -> String {
    match r {
        EffectResult::Claimed(Some(j)) => format!(
            "claimed {} labels={:?} attempt={}",
            j.job.id, j.labels, j.attempt
        ),
        EffectResult::Claimed(None) => "claimed nothing".into(),
        EffectResult::Inventory {
            templates,
            disk,
            vms,
        } => format!(
            "inventory {} templates, {} VMs, {}/{} GiB free",
            templates.len(),
            vms.len(),
            disk.available_bytes / GB,
            disk.total_bytes / GB
        ),
        EffectResult::DownloadSize {
            download_bytes,
            disk,
        } => format!(
            "download {} GiB, {}/{} GiB free",
            download_bytes / GB,
            disk.available_bytes / GB,
            disk.total_bytes / GB
        ),
        EffectResult::Pulled { tag, size_bytes } => {
            format!("pulled tag={tag:?} {} GiB", size_bytes / GB)
        }
        EffectResult::RunnerConfig(c) => format!("runner config {c}"),
        other => format!("{other:?}"),
    }
}

pub fn is_vm(f: fn(&VmCmd) -> bool) -> impl Fn(&Effect) -> bool {
    move |e| matches!(e, Effect::Vm { cmd, .. } if f(cmd))
}

pub fn is_forge(f: fn(&ForgeCmd) -> bool) -> impl Fn(&Effect) -> bool {
    move |e| matches!(e, Effect::Forge { cmd, .. } if f(cmd))
}

pub fn fail(class: FailureClass, msg: &str) -> Option<EffectResult> {
    Some(EffectResult::Failed(Failure::new(class, msg)))
}
