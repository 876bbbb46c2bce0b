//! Shared by the metrics tests: a realistic notice sequence and a strict reader of the
//! Prometheus text format (the grammar promtool's parser enforces, checked line by line).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use anklet_core::handler::{HostStatus, Notice};
use anklet_core::ids::{HostId, JobId};
use anklet_core::labels::ClaimFilter;
use anklet_core::metrics::{HostStats, Metrics, PluginIdentity, QueueDepth};
use anklet_core::queue::txn::{Op, Reply};
use anklet_core::queue::{JobRecord, Lease, NewJob, Place};
use anklet_core::receiver::ReceiverNotice;
use anklet_core::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// 2026-11-29T14:00:00Z.
pub const T0: u64 = 1_795_960_800_000;

pub fn at(secs: u64) -> Timestamp {
    Timestamp(T0 + secs * 1000)
}

/// A claim answer as the store gives it: queued at `queued`, claimed at `claimed`.
pub fn claim(host: &str, job: u64, template: &str, queued: u64, claimed: u64) -> (Op, Reply) {
    let new = NewJob {
        id: JobId(job),
        run_id: 9000 + job,
        owner: "acme".into(),
        repo: "app".into(),
        labels: vec![format!("anka-template:{template}")],
        payload: format!(
            r#"{{"workflow_job":{{"html_url":"https://github.com/acme/app/actions/runs/{}/job/{job}"}}}}"#,
            9000 + job
        ),
    };
    let mut record = JobRecord::new(new, at(queued));
    record.place = Place::Claimed {
        lease: Lease {
            host: HostId(host.into()),
            claimed_at: at(claimed),
            expires_at: at(claimed + 300),
        },
    };
    record.attempts = 1;
    record.last_claimed_at = Some(at(claimed));
    let op = Op::Claim(
        HostId(host.into()),
        ClaimFilter::default(),
        Duration::from_secs(300),
    );
    (op, Reply::Claimed(Some(record)))
}

/// One job's life on `host`: claim at `start`, VM ready 40 s later, registered 10 s later,
/// running 5 s later, cleanup after `run` seconds, then `end`.
pub fn job(m: &mut Metrics, host: &str, job: u64, template: &str, start: u64, run: u64, end: &str) {
    let (op, reply) = claim(host, job, template, start.saturating_sub(3), start);
    m.observe_store(at(start), &op, &reply);
    let id = JobId(job);
    let n = |m: &mut Metrics, s: u64, notice: Notice| m.record_handler_notice(host, at(s), &notice);
    n(m, start, Notice::Status(HostStatus::InProgress));
    n(
        m,
        start,
        Notice::JobClaimed {
            job: id,
            attempt: 1,
        },
    );
    for (phase, t) in [
        ("awaiting_template", start),
        ("cloning", start + 1),
        ("starting", start + 30),
        ("runner_config", start + 40),
        ("starting_runner", start + 41),
        ("registered", start + 50),
        ("running", start + 55),
        ("cleanup", start + 55 + run),
    ] {
        n(
            m,
            t,
            Notice::Phase {
                job: id,
                phase,
                at: at(t),
            },
        );
    }
    n(
        m,
        start + 60 + run,
        Notice::JobEnded {
            job: id,
            end: end.into(),
        },
    );
    n(m, start + 60 + run, Notice::Status(HostStatus::Idle));
}

/// A registry after a realistic morning: two hosts, a receiver, successes, a failure, a
/// requeue, a dead letter, a timeout, one job still running.
pub fn realistic() -> Metrics {
    let mut m = Metrics::new(at(0));
    let id = |name: &str, plugin: &str| PluginIdentity {
        name: name.into(),
        plugin: plugin.into(),
        owner: "acme".into(),
        repo: String::new(),
    };
    m.add_handler(id("mac-1", "github"), at(0));
    m.add_handler(id("mac-2", "github"), at(0));
    m.add_receiver(id("receiver", "github_receiver"), at(0));
    let r = |m: &mut Metrics, n: ReceiverNotice| m.record_receiver_notice("receiver", at(1), &n);
    for job in [1u64, 2, 3, 4, 5, 6] {
        r(
            &mut m,
            ReceiverNotice::Accepted {
                delivery: format!("d{job}"),
                job: JobId(job),
                outcome: "enqueued",
            },
        );
        r(&mut m, ReceiverNotice::Enqueued { job: JobId(job) });
    }
    r(
        &mut m,
        ReceiverNotice::Accepted {
            delivery: "d1b".into(),
            job: JobId(1),
            outcome: "already_known",
        },
    );
    r(
        &mut m,
        ReceiverNotice::Answered {
            delivery: "p".into(),
            detail: "ping".into(),
        },
    );
    r(
        &mut m,
        ReceiverNotice::Refused {
            delivery: String::new(),
            status: 401,
            detail: "bad signature".into(),
        },
    );
    r(
        &mut m,
        ReceiverNotice::StoreFailed {
            delivery: "d7".into(),
            detail: "redis down".into(),
        },
    );
    job(
        &mut m,
        "mac-1",
        1,
        "macos-15",
        10,
        300,
        "completed(finished(success))",
    );
    job(
        &mut m,
        "mac-2",
        2,
        "macos-15",
        12,
        7200,
        "completed(finished(failure))",
    );
    job(
        &mut m,
        "mac-1",
        3,
        "macos-14",
        400,
        0,
        "requeued(clone_failed)",
    );
    job(
        &mut m,
        "mac-1",
        4,
        "macos-14",
        500,
        0,
        "dead_lettered(template_not_in_registry)",
    );
    job(
        &mut m,
        "mac-1",
        5,
        "macos-15",
        600,
        86_000,
        "completed(timed_out)",
    );
    let (op, reply) = claim("mac-2", 6, "macos-15", 8000, 8010);
    m.observe_store(at(8010), &op, &reply);
    m.record_handler_notice(
        "mac-2",
        at(8010),
        &Notice::JobClaimed {
            job: JobId(6),
            attempt: 1,
        },
    );
    for (phase, t) in [("awaiting_template", 8010), ("runner_config", 8040)] {
        m.record_handler_notice(
            "mac-2",
            at(t),
            &Notice::Phase {
                job: JobId(6),
                phase,
                at: at(t),
            },
        );
    }
    m.record_handler_notice("mac-2", at(8010), &Notice::Status(HostStatus::InProgress));
    m.set_host_stats(HostStats {
        cpu_count: 8,
        cpu_usage_percentage: 25.0,
        memory_total_bytes: 17_179_869_184,
        memory_used_bytes: 8_589_934_592,
        memory_available_bytes: 8_589_934_592,
        disk_total_bytes: 1_000_000_000_000,
        disk_used_bytes: 400_000_000_000,
        disk_available_bytes: 600_000_000_000,
    });
    m.set_queue_depth(QueueDepth {
        queued: 3,
        claimed: 1,
        dead: 1,
    });
    m
}

/// A problem found in an exposition.
pub type Problem = String;

/// Samples of one family: full name, labels, value.
pub type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

/// Reads `text` as the Prometheus text format strictly: returns the samples by family, or the
/// first problem. `lint` adds promtool's naming rules (counters end in `_total`, HELP present).
pub fn parse_exposition(text: &str, lint: bool) -> Result<BTreeMap<String, Samples>, Problem> {
    let mut families: BTreeMap<String, Samples> = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("text does not end with a newline".into());
    }
    for (no, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            let name = parts.next().ok_or_else(|| err("comment without a name"))?;
            if !valid_name(name) {
                return Err(err("bad metric name"));
            }
            match kw {
                "HELP" if !helps.insert(name.to_owned()) => {
                    return Err(err("second HELP"));
                }
                "TYPE" => {
                    let t = parts.next().ok_or_else(|| err("TYPE without a type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                        return Err(err("unknown type"));
                    }
                    if types.insert(name.to_owned(), t.to_owned()).is_some() {
                        return Err(err("second TYPE"));
                    }
                    if families.contains_key(name) {
                        return Err(err("TYPE after samples"));
                    }
                }
                _ => {}
            }
            if let Some(c) = current.replace(name.to_owned())
                && c != name
            {
                closed.insert(c);
            }
            if closed.contains(name) {
                return Err(err("family split"));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(|m| err(&m))?;
        let family = family_of(&name, &types);
        if let Some(c) = current.replace(family.clone())
            && c != family
        {
            closed.insert(c);
        }
        if closed.contains(&family) {
            return Err(err("family split"));
        }
        families
            .entry(family)
            .or_default()
            .push((name, labels, value));
    }
    for (family, samples) in &families {
        let t = types.get(family).map_or("untyped", String::as_str);
        if lint {
            if !helps.contains(family) {
                return Err(format!("{family}: no HELP"));
            }
            if (t == "counter") != family.ends_with("_total") {
                return Err(format!(
                    "{family}: counters, and only counters, end in _total"
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (name, labels, _) in samples {
            if !seen.insert(format!("{name}{labels:?}")) {
                return Err(format!("{family}: duplicate series {name}{labels:?}"));
            }
        }
        if t == "histogram" {
            check_histogram(family, samples)?;
        }
    }
    Ok(families)
}

fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|t| t == "histogram")
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}

fn check_histogram(family: &str, samples: &Samples) -> Result<(), Problem> {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for (name, labels, v) in samples {
        let mut key = labels.clone();
        let le = key.remove("le");
        let key = format!("{key:?}");
        if name.ends_with("_bucket") {
            let le = le.ok_or_else(|| format!("{family}: bucket without le"))?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().map_err(|_| format!("{family}: le {le}"))?
            };
            series.entry(key).or_default().push((le, *v));
        } else if name.ends_with("_count") {
            counts.insert(key, *v);
        }
    }
    for (key, buckets) in series {
        if !buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        {
            return Err(format!(
                "{family}{key}: buckets not ascending and cumulative"
            ));
        }
        let last = buckets.last().ok_or("no bucket")?;
        if last.0 != f64::INFINITY || counts.get(&key) != Some(&last.1) {
            return Err(format!(
                "{family}{key}: +Inf bucket missing or not equal to _count"
            ));
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    valid_name(name) && !name.contains(':')
}

fn parse_sample(line: &str) -> Result<(String, BTreeMap<String, String>, f64), Problem> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        loop {
            let start = match chars.peek() {
                Some((_, '}')) => {
                    let (i, _) = chars.next().ok_or("eof")?;
                    rest = &r[i + 1..];
                    break;
                }
                Some((i, _)) => *i,
                None => return Err("unterminated labels".into()),
            };
            let eq = r[start..].find('=').ok_or("label without =")? + start;
            let lname = &r[start..eq];
            if !valid_label_name(lname) {
                return Err(format!("bad label name {lname:?}"));
            }
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("bad escape".into()),
                    },
                    Some((_, '"')) => break,
                    Some((_, '\n')) | None => return Err("unterminated label value".into()),
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.insert(lname.to_owned(), value).is_some() {
                return Err("duplicate label".into());
            }
            match chars.peek() {
                Some((_, ',')) => {
                    chars.next();
                }
                Some((_, '}')) => {}
                _ => return Err("expected , or }".into()),
            }
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut parts = rest.split(' ');
    let value = parts.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|_| format!("value {v:?} is not a number"))?,
    };
    if let Some(ts) = parts.next() {
        ts.parse::<i64>().map_err(|_| "bad timestamp")?;
    }
    if parts.next().is_some() {
        return Err("trailing text".into());
    }
    Ok((name.to_owned(), labels, value))
}
