//! One command's steps: which request comes next, and what a successful answer means.
//!
//! Most commands are one request. A few take several: removing a runner finds it by name and
//! then deletes it; listings follow pages; a JIT config under a named runner group first looks
//! the group's id up. Retries, rate limits and auth live in the client, not here.

use super::CommandResult;
use crate::github::http::{HttpRequest, HttpResponse, Method};
use crate::github::link::NextPage;
use crate::github::rest::{
    self, ApiError, ApiScope,
    deliveries::{self, DeliverySummary},
    runners::{self, DEFAULT_RUNNER_GROUP_ID, JitRequest},
};
use crate::handler::{EffectResult, FailureClass, RunnerCredentials, RunnerInfo};
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// Pages followed at most in one listing (10,000 items), so a server that always answers
/// "next" cannot keep a command alive for ever.
pub(super) const MAX_PAGES: u32 = 100;

/// How a runner group is named in config or a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum GroupRef {
    /// A known id (unset, `Default`, or a number).
    Id(u64),
    /// A name to look up.
    Name(String),
}

impl GroupRef {
    pub(super) fn parse(group: Option<&str>) -> Self {
        match group.map(str::trim) {
            None | Some("") => GroupRef::Id(DEFAULT_RUNNER_GROUP_ID),
            Some(g) if g.eq_ignore_ascii_case("default") => GroupRef::Id(DEFAULT_RUNNER_GROUP_ID),
            Some(g) => match g.parse::<u64>() {
                Ok(id) => GroupRef::Id(id),
                Err(_) => GroupRef::Name(g.to_owned()),
            },
        }
    }
}

/// A command in progress.
#[derive(Clone, Debug)]
pub(super) enum Work {
    /// A JIT config: maybe resolve the group, then generate.
    Jit {
        runner: String,
        labels: Vec<String>,
        group: GroupRef,
        page: Option<NextPage>,
        pages: u32,
    },
    /// A registration token.
    RegistrationToken,
    /// A job's status.
    GetJob {
        owner: String,
        repo: String,
        job: u64,
    },
    /// Find a runner by name, then delete it.
    RemoveRunner {
        runner: String,
        found: Option<u64>,
        page: Option<NextPage>,
        pages: u32,
    },
    /// Cancel a workflow run.
    Cancel {
        owner: String,
        repo: String,
        run: u64,
    },
    /// Every runner of the scope.
    ListRunners {
        page: Option<NextPage>,
        pages: u32,
        acc: Vec<RunnerInfo>,
    },
    /// Deliveries since an instant.
    ListDeliveries {
        hook_id: u64,
        since: Timestamp,
        only_undelivered: bool,
        cursor: Option<NextPage>,
        pages: u32,
        acc: Vec<DeliverySummary>,
    },
    /// One delivery with its payload.
    GetDelivery { hook_id: u64, delivery_id: u64 },
    /// Ask GitHub to deliver again.
    Redeliver { hook_id: u64, delivery_id: u64 },
}

/// What a successful answer leads to.
pub(super) enum Flow {
    /// The command is answered.
    Done(CommandResult),
    /// Another request follows (a fresh step: its tries start over).
    Continue,
    /// The command fails for good.
    Fail(FailureClass, String),
}

fn forge(r: EffectResult) -> Flow {
    Flow::Done(CommandResult::Forge(r))
}

fn unsupported(what: &str) -> Flow {
    Flow::Fail(FailureClass::Unsupported, what.to_owned())
}

impl Work {
    /// Whether the command came from the handler (its answer is an [`EffectResult`]).
    pub(super) fn is_forge(&self) -> bool {
        !matches!(
            self,
            Work::ListDeliveries { .. } | Work::GetDelivery { .. } | Work::Redeliver { .. }
        )
    }

    /// The next request, or the end of the command when none can be made.
    pub(super) fn request(
        &mut self,
        base: &str,
        scope: &ApiScope,
        groups: &BTreeMap<String, u64>,
    ) -> Result<HttpRequest, Flow> {
        match self {
            Work::Jit {
                runner,
                labels,
                group,
                page,
                ..
            } => {
                if labels.iter().all(|l| l.trim().is_empty()) {
                    // Without the job's labels GitHub would route some other job (or none)
                    // to the runner. `Unsupported` makes the handler fall back to a
                    // registration token, whose runner gets the labels from `StartRunner`.
                    return Err(unsupported(
                        "a JIT runner needs the job's runs-on labels (none were given)",
                    ));
                }
                if let GroupRef::Name(name) = group
                    && let Some(id) = groups.get(&name.to_ascii_lowercase())
                {
                    *group = GroupRef::Id(*id);
                }
                match group {
                    GroupRef::Id(id) => Ok(runners::generate_jitconfig(
                        base,
                        scope,
                        &JitRequest::new(runner.clone(), *id, labels),
                    )),
                    GroupRef::Name(_) if matches!(scope, ApiScope::Repository { .. }) => Err(
                        unsupported("named runner groups need an organisation or enterprise scope"),
                    ),
                    GroupRef::Name(_) => {
                        Ok(runners::list_runner_groups(base, scope, page.as_ref()))
                    }
                }
            }
            Work::RegistrationToken => Ok(runners::registration_token(base, scope)),
            Work::GetJob { owner, repo, job } => Ok(rest::jobs::get_job(base, owner, repo, *job)),
            Work::RemoveRunner {
                runner,
                found,
                page,
                ..
            } => Ok(match found {
                Some(id) => runners::delete_runner(base, scope, *id),
                None => runners::list_runners(base, scope, Some(runner), page.as_ref()),
            }),
            Work::Cancel { owner, repo, run } => {
                Ok(rest::jobs::cancel_workflow_run(base, owner, repo, *run))
            }
            Work::ListRunners { page, .. } => {
                Ok(runners::list_runners(base, scope, None, page.as_ref()))
            }
            Work::ListDeliveries {
                hook_id, cursor, ..
            } => deliveries::list_deliveries(base, scope, *hook_id, cursor.as_ref())
                .ok_or_else(|| unsupported("webhook deliveries need a repository or organisation")),
            Work::GetDelivery {
                hook_id,
                delivery_id,
            } => deliveries::get_delivery(base, scope, *hook_id, *delivery_id)
                .ok_or_else(|| unsupported("webhook deliveries need a repository or organisation")),
            Work::Redeliver {
                hook_id,
                delivery_id,
            } => deliveries::redeliver(base, scope, *hook_id, *delivery_id)
                .ok_or_else(|| unsupported("webhook deliveries need a repository or organisation")),
        }
    }

    /// Statuses that mean something particular for this step, decided before the generic
    /// policy: a runner already gone is removed; a busy runner is `Busy`; a runner listing
    /// that is not found is no proof of removal; a run that already finished needs no cancel.
    pub(super) fn special_status(&self, request: &HttpRequest, status: u16) -> Option<Flow> {
        match self {
            Work::RemoveRunner { found: Some(_), .. } if request.method == Method::Delete => {
                match status {
                    404 => Some(forge(EffectResult::Done)),
                    422 => Some(Flow::Fail(
                        FailureClass::Busy,
                        "the runner is running a job".to_owned(),
                    )),
                    _ => None,
                }
            }
            // The listing itself not found means the scope is gone or hidden from us (GitHub
            // answers 404 for no access): that says nothing about the runner, which may still
            // run a job, so it must not count as removed.
            Work::RemoveRunner { found: None, .. } if status == 404 => Some(Flow::Fail(
                FailureClass::Permanent,
                "the runners of the scope cannot be listed (missing, or no access)".to_owned(),
            )),
            Work::Cancel { .. } if status == 409 => Some(forge(EffectResult::Done)),
            _ => None,
        }
    }

    /// Reads a successful answer.
    pub(super) fn on_success(
        &mut self,
        response: &HttpResponse,
        groups: &mut BTreeMap<String, u64>,
    ) -> Result<Flow, ApiError> {
        match self {
            Work::Jit {
                group, page, pages, ..
            } => match group {
                GroupRef::Id(_) => {
                    let jit = runners::parse_jitconfig(response)?;
                    Ok(forge(EffectResult::RunnerConfig(RunnerCredentials::Jit(
                        jit.encoded_jit_config,
                    ))))
                }
                GroupRef::Name(name) => {
                    let (found, next) = runners::parse_runner_groups(response)?;
                    for g in &found {
                        groups.insert(g.name.to_ascii_lowercase(), g.id);
                    }
                    if let Some(g) = found.iter().find(|g| g.name.eq_ignore_ascii_case(name)) {
                        *group = GroupRef::Id(g.id);
                        return Ok(Flow::Continue);
                    }
                    *pages += 1;
                    match next {
                        Some(n) if *pages < MAX_PAGES => {
                            *page = Some(n);
                            Ok(Flow::Continue)
                        }
                        _ => Ok(Flow::Fail(
                            FailureClass::Permanent,
                            format!("runner group {name:?} not found"),
                        )),
                    }
                }
            },
            Work::RegistrationToken => {
                let t = runners::parse_runner_token(response)?;
                Ok(forge(EffectResult::RunnerConfig(RunnerCredentials::Token(
                    t.token,
                ))))
            }
            Work::GetJob { .. } => Ok(forge(EffectResult::JobStatus(rest::jobs::parse_job(
                response,
            )?))),
            Work::RemoveRunner {
                runner,
                found,
                page,
                pages,
            } => {
                if found.is_some() {
                    runners::parse_delete_runner(response)?;
                    return Ok(forge(EffectResult::Done));
                }
                let listed = runners::parse_runner_page(response)?;
                if let Some(r) = listed.runners.iter().find(|r| r.name == *runner) {
                    *found = Some(r.id);
                    return Ok(Flow::Continue);
                }
                *pages += 1;
                match listed.next {
                    Some(n) if *pages < MAX_PAGES => {
                        *page = Some(n);
                        Ok(Flow::Continue)
                    }
                    _ => Ok(forge(EffectResult::Done)),
                }
            }
            Work::Cancel { .. } => {
                rest::jobs::parse_cancel(response)?;
                Ok(forge(EffectResult::Done))
            }
            Work::ListRunners { page, pages, acc } => {
                let listed = runners::parse_runner_page(response)?;
                acc.extend(listed.runners);
                *pages += 1;
                match listed.next {
                    Some(n) if *pages < MAX_PAGES => {
                        *page = Some(n);
                        Ok(Flow::Continue)
                    }
                    _ => Ok(forge(EffectResult::Runners(std::mem::take(acc)))),
                }
            }
            Work::ListDeliveries {
                since,
                only_undelivered,
                cursor,
                pages,
                acc,
                ..
            } => {
                let listed = deliveries::parse_delivery_page(response)?;
                let reached_older = listed.deliveries.iter().any(|d| d.delivered_at < *since);
                let empty = listed.deliveries.is_empty();
                acc.extend(
                    listed
                        .deliveries
                        .into_iter()
                        .filter(|d| d.delivered_at >= *since),
                );
                *pages += 1;
                match listed.next {
                    Some(n) if !reached_older && !empty && *pages < MAX_PAGES => {
                        *cursor = Some(n);
                        Ok(Flow::Continue)
                    }
                    _ => {
                        let all = std::mem::take(acc);
                        let list = if *only_undelivered {
                            deliveries::undelivered(&all)
                        } else {
                            all
                        };
                        Ok(Flow::Done(CommandResult::Deliveries(list)))
                    }
                }
            }
            Work::GetDelivery { .. } => Ok(Flow::Done(CommandResult::Delivery(
                deliveries::parse_delivery(response)?,
            ))),
            Work::Redeliver { .. } => {
                deliveries::parse_redeliver(response)?;
                Ok(Flow::Done(CommandResult::Redelivered))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_groups_are_ids_or_names() {
        assert_eq!(GroupRef::parse(None), GroupRef::Id(1));
        assert_eq!(GroupRef::parse(Some(" ")), GroupRef::Id(1));
        assert_eq!(GroupRef::parse(Some("default")), GroupRef::Id(1));
        assert_eq!(GroupRef::parse(Some("12")), GroupRef::Id(12));
        assert_eq!(GroupRef::parse(Some("macs")), GroupRef::Name("macs".into()));
    }
}
