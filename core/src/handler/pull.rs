//! The host's one pull at a time: measure, evict if the disk buffer demands it, pull, retry.
//!
//! Pulls belong to the host, not to a job: a job cancelled mid-pull leaves the pull running (its
//! template is useful to the next job), and every job waiting for the same template and tag is
//! served by one pull.

use super::effect::{Notice, Reason, VmCmd};
use super::input::{EffectResult, Failure, FailureClass};
use super::job::Ctx;
use super::outbox::Owner;
use super::templates::SpacePlan;
use crate::ids::{EffectId, TemplateId};
use crate::labels::VmSpec;
use crate::time::Timestamp;
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Sizing(EffectId),
    Evicting {
        op: EffectId,
        template: TemplateId,
        rest: Vec<TemplateId>,
    },
    Pulling(EffectId),
    Backoff(Timestamp),
}

/// The pull in progress on this host.
#[derive(Clone, Debug)]
pub(crate) struct PullTask {
    pub(crate) spec: VmSpec,
    step: Step,
    tries: u32,
}

/// What a finished pull means for the jobs waiting on it.
pub(crate) type PullOutcome = Result<(), Reason>;

impl PullTask {
    pub(crate) fn start(spec: VmSpec, ctx: &mut Ctx<'_>) -> Self {
        let mut task = Self {
            spec,
            step: Step::Backoff(ctx.now),
            tries: 0,
        };
        task.size(ctx);
        task
    }

    fn size(&mut self, ctx: &mut Ctx<'_>) {
        self.tries += 1;
        let cmd = VmCmd::CheckDownloadSize {
            spec: self.spec.clone(),
        };
        self.step =
            Step::Sizing(
                ctx.out
                    .vm(Owner::Pull, ctx.now, ctx.settings.github_timeout, cmd),
            );
    }

    fn pull(&mut self, ctx: &mut Ctx<'_>) {
        let cmd = VmCmd::PullTemplate {
            spec: self.spec.clone(),
        };
        self.step = Step::Pulling(
            ctx.out
                .vm(Owner::Pull, ctx.now, ctx.settings.pull_timeout, cmd),
        );
    }

    fn evict(&mut self, ctx: &mut Ctx<'_>, mut rest: Vec<TemplateId>) {
        if rest.is_empty() {
            return self.pull(ctx);
        }
        let template = rest.remove(0);
        let cmd = VmCmd::DeleteTemplate {
            template: template.clone(),
        };
        let op = ctx
            .out
            .vm(Owner::Pull, ctx.now, ctx.settings.delete_timeout, cmd);
        self.step = Step::Evicting { op, template, rest };
    }

    /// Handles a result; returns the outcome once the task is over.
    pub(crate) fn on_result(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: EffectId,
        result: EffectResult,
        pinned: &BTreeSet<TemplateId>,
    ) -> Option<PullOutcome> {
        match (self.step.clone(), result) {
            (
                Step::Sizing(op),
                EffectResult::DownloadSize {
                    download_bytes,
                    disk,
                },
            ) if op == id => {
                ctx.cache.set_disk(disk);
                let pct = ctx.settings.template_disk_buffer_pct;
                match ctx
                    .cache
                    .plan_space(download_bytes, pct, &self.spec.template, pinned)
                {
                    SpacePlan::Fits => self.pull(ctx),
                    SpacePlan::Evict(list) => self.evict(ctx, list),
                    SpacePlan::Impossible { short_bytes } => {
                        ctx.out.notice(Notice::StepFailed {
                            job: None,
                            step: "disk_buffer",
                            detail: format!(
                                "template {} needs {short_bytes} more bytes than evictable templates free",
                                self.spec.template
                            ),
                        });
                        return Some(Err(Reason::DiskFullNothingEvictable));
                    }
                }
                None
            }
            (Step::Evicting { op, template, rest }, EffectResult::Done) if op == id => {
                ctx.cache.evicted(&template);
                // A job may have started cloning from the next candidate meanwhile: re-plan.
                if rest.iter().any(|t| pinned.contains(t)) {
                    self.size(ctx);
                } else {
                    self.evict(ctx, rest);
                }
                None
            }
            (Step::Pulling(op), EffectResult::Pulled { tag, size_bytes }) if op == id => {
                ctx.cache.pulled(&self.spec, tag, size_bytes, ctx.now);
                Some(Ok(()))
            }
            (Step::Sizing(op) | Step::Pulling(op) | Step::Evicting { op, .. }, other)
                if op == id =>
            {
                let failure = match other {
                    EffectResult::Failed(f) => f,
                    other => Failure::new(
                        FailureClass::Permanent,
                        format!("unexpected result {other:?}"),
                    ),
                };
                self.failed(ctx, failure)
            }
            _ => {
                ctx.out.notice(Notice::IgnoredResult { id });
                None
            }
        }
    }

    fn failed(&mut self, ctx: &mut Ctx<'_>, failure: Failure) -> Option<PullOutcome> {
        let step = match self.step {
            Step::Sizing(_) => "check_download_size",
            Step::Evicting { .. } => "evict_template",
            _ => "pull",
        };
        ctx.out.notice(Notice::StepFailed {
            job: None,
            step,
            detail: format!("{:?}: {}", failure.class, failure.message),
        });
        match failure.class {
            FailureClass::NotFound if step != "evict_template" => {
                return Some(Err(Reason::TemplateNotInRegistry));
            }
            FailureClass::DiskFull => return Some(Err(Reason::DiskFullNothingEvictable)),
            _ => {}
        }
        match ctx.settings.cleanup_retry.delay_before(self.tries + 1) {
            Some(d) if self.tries < ctx.settings.pull_attempts => {
                self.step = Step::Backoff(ctx.now + d);
                None
            }
            _ => Some(Err(Reason::PullFailed)),
        }
    }

    pub(crate) fn next_wakeup(&self) -> Option<Timestamp> {
        match self.step {
            Step::Backoff(t) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        if let Step::Backoff(t) = self.step
            && t <= ctx.now
        {
            self.size(ctx);
        }
    }
}
