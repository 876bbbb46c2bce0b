//! Capacity planning: replay one day of work (a recorded trace or a synthetic day) against
//! fleets of different sizes and find the smallest that keeps queue times within a target.
//!
//! Every run of a plan uses the same arrivals and the same seed, so only the host count
//! differs between runs and the whole plan is deterministic.

use crate::dice::Dice;
use crate::scenario::{Arrival, Faults, Scenario};
use crate::world::{Options, Report, World};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

const HOUR_MS: u64 = 3_600_000;

/// Why a plan cannot be made: bad input a person can fix, so each says where and what.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The trace file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A field of the trace is malformed.
    #[error("{path}:{line}:{column}: column `{name}`: expected {expected}, found {found:?}")]
    Field {
        /// The file.
        path: String,
        /// Line, from 1.
        line: usize,
        /// Character column where the field starts, from 1.
        column: usize,
        /// The header name of the field's column.
        name: String,
        /// What the field should hold.
        expected: String,
        /// What it holds.
        found: String,
    },
    /// The trace's shape is wrong (header, number of fields, quoting).
    #[error("{path}:{line}:{column}: {what}")]
    Shape {
        /// The file.
        path: String,
        /// Line, from 1.
        line: usize,
        /// Character column, from 1.
        column: usize,
        /// What is wrong and what was expected.
        what: String,
    },
    /// The trace has a header but no job.
    #[error("{path}: the trace has no jobs (expected a header line and at least one row)")]
    Empty {
        /// The file.
        path: String,
    },
    /// Options that cannot describe a fleet or a workload.
    #[error("{0}")]
    Options(String),
    /// An output file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plot {path}: {what}")]
    Plot {
        /// The file.
        path: String,
        /// What went wrong.
        what: String,
    },
}

/// How synthetic arrivals spread over the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// A steady rate: jobs uniformly over the window (a Poisson process given its count).
    Poisson,
    /// A working day: the rate peaks at 14:00 and is low at night (hour 0 is midnight).
    Diurnal,
    /// A background rate plus a few bursts, each of many jobs within five minutes (a release,
    /// a monorepo push fanning out to a matrix).
    Bursts,
}

/// A synthetic workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// How arrivals spread.
    pub pattern: Pattern,
    /// How many jobs.
    pub jobs: usize,
    /// Over how many hours.
    pub hours: f64,
    /// Distinct templates (`tpl-0`..), chosen uniformly.
    pub templates: usize,
    /// Job run time range in seconds, uniform.
    pub job_secs: (f64, f64),
}

/// The fleet's shape apart from its host count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fleet {
    /// VMs per host (Apple's licence allows 2).
    pub max_vms: usize,
    /// Template size in GiB.
    pub template_gb: u64,
    /// Template volume per host in GiB.
    pub disk_gb: u64,
    /// Pull time range in seconds.
    pub pull_secs: (f64, f64),
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            max_vms: 2,
            template_gb: 40,
            disk_gb: 200,
            pull_secs: (120.0, 600.0),
        }
    }
}

impl Fleet {
    /// Rejects a fleet no host count can help: planning it would only print nonsense.
    pub fn check(&self) -> Result<(), PlanError> {
        if self.max_vms == 0 {
            return Err(PlanError::Options("VMs per host must be at least 1".into()));
        }
        if self.disk_gb == 0 || self.template_gb == 0 {
            return Err(PlanError::Options(
                "--disk-gb and --template-gb must be at least 1".into(),
            ));
        }
        if self.template_gb > self.disk_gb {
            return Err(PlanError::Options(format!(
                "a {} GiB template cannot fit a {} GiB disk (--template-gb > --disk-gb)",
                self.template_gb, self.disk_gb
            )));
        }
        check_range("pull", self.pull_secs)
    }

    /// The fault-free scenario of `hosts` hosts running exactly `arrivals`.
    pub fn scenario(&self, hosts: usize, arrivals: &[Arrival]) -> Scenario {
        let window = arrivals.iter().map(|a| a.at).max().unwrap_or_default();
        let templates: std::collections::BTreeSet<&str> =
            arrivals.iter().map(|a| a.template.as_str()).collect();
        Scenario {
            hosts,
            max_vms: self.max_vms,
            templates: templates.len(),
            template_gb: self.template_gb,
            disk_gb: self.disk_gb,
            jobs: arrivals.len(),
            arrival_window: window,
            job_secs: (0.0, 0.0),
            pull_secs: self.pull_secs,
            faults: Faults::none(),
            arrivals: Some(arrivals.to_vec()),
        }
    }
}

fn check_range(what: &str, (lo, hi): (f64, f64)) -> Result<(), PlanError> {
    if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi) {
        return Err(PlanError::Options(format!(
            "{what} time range {lo}..{hi} s: expected 0 <= min <= max"
        )));
    }
    Ok(())
}

impl Workload {
    /// Rejects a workload that has no jobs or no time to arrive in.
    pub fn check(&self) -> Result<(), PlanError> {
        if self.jobs == 0 {
            return Err(PlanError::Options("--jobs must be at least 1".into()));
        }
        if !(self.hours.is_finite() && self.hours > 0.0) {
            return Err(PlanError::Options("--hours must be positive".into()));
        }
        if self.templates == 0 {
            return Err(PlanError::Options("--templates must be at least 1".into()));
        }
        check_range("job", self.job_secs)
    }

    /// The arrivals this workload makes with `seed` (its own stream, apart from the world's).
    pub fn arrivals(&self, seed: u64) -> Vec<Arrival> {
        let mut d = Dice::new(seed ^ 0xa771_7a15);
        let window = self.hours * 3600.0;
        let mut times: Vec<Duration> = match self.pattern {
            Pattern::Poisson => (0..self.jobs).map(|_| d.secs(0.0, window)).collect(),
            Pattern::Diurnal => (0..self.jobs)
                .map(|_| {
                    loop {
                        let t = d.secs(0.0, window);
                        if d.chance(day_curve(t)) {
                            break t;
                        }
                    }
                })
                .collect(),
            Pattern::Bursts => {
                let bursts = ((self.hours / 6.0).round() as usize).clamp(1, 5);
                let in_bursts = self.jobs * 3 / 10;
                let centres: Vec<Duration> = (0..bursts)
                    .map(|_| d.secs(0.0, (window - 300.0).max(0.0)))
                    .collect();
                let mut times = Vec::with_capacity(self.jobs);
                for n in 0..self.jobs {
                    if n < in_bursts {
                        let c = centres[n % bursts];
                        times.push((c + d.secs(0.0, 300.0)).min(Duration::from_secs_f64(window)));
                    } else {
                        times.push(d.secs(0.0, window));
                    }
                }
                times
            }
        };
        times.sort_unstable();
        times
            .into_iter()
            .map(|at| {
                let tpl = d.between(0, self.templates as u64 - 1);
                Arrival {
                    at,
                    template: format!("tpl-{tpl}"),
                    duration: d.secs(self.job_secs.0, self.job_secs.1),
                }
            })
            .collect()
    }
}

/// Relative arrival rate at `t` into the day, 0..1: peak at 14:00, a tenth of it at night.
fn day_curve(t: Duration) -> f64 {
    let hour = (t.as_secs_f64() / 3600.0) % 24.0;
    let from_peak = (hour - 14.0).abs().min(24.0 - (hour - 14.0).abs());
    0.1 + 0.9 * (-(from_peak * from_peak) / (2.0 * 3.5 * 3.5)).exp()
}

/// Reads a trace file (see [`parse_trace`]).
pub fn read_trace(path: &Path) -> Result<Vec<Arrival>, PlanError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_trace(&shown, &text)
}

/// Parses a trace: CSV with a header naming `time` (seconds from the start, or RFC 3339),
/// `template` (or `labels` holding an `anka-template:` label) and `duration` (seconds); other
/// columns are ignored, and blank lines and lines starting with `#` are skipped. RFC 3339
/// times are taken from the top of the hour of the earliest one, so hour buckets are clock
/// hours. `path` only names the file in errors.
pub fn parse_trace(path: &str, text: &str) -> Result<Vec<Arrival>, PlanError> {
    let shape = |line: usize, column: usize, what: String| PlanError::Shape {
        path: path.to_owned(),
        line,
        column,
        what,
    };
    let mut rows = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((header_line, header)) = rows.next() else {
        return Err(PlanError::Empty {
            path: path.to_owned(),
        });
    };
    let names: Vec<String> = split_fields(header)
        .map_err(|(column, what)| shape(header_line, column, what))?
        .into_iter()
        .map(|(_, f)| f.trim().to_ascii_lowercase())
        .collect();
    let find = |n: &str| names.iter().position(|h| h == n);
    let missing = |what: &str| {
        shape(
            header_line,
            1,
            format!(
                "header {header:?}: expected a `{what}` column (the header needs time, template or labels, and duration)"
            ),
        )
    };
    let time_col = find("time").ok_or_else(|| missing("time"))?;
    let duration_col = find("duration").ok_or_else(|| missing("duration"))?;
    let (template_col, from_labels) = match (find("template"), find("labels")) {
        (Some(c), _) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => return Err(missing("template")),
    };
    let mut absolute: Option<bool> = None;
    let mut jobs: Vec<(i64, String, Duration)> = Vec::new();
    for (line, row) in rows {
        let fields = split_fields(row).map_err(|(column, what)| shape(line, column, what))?;
        if fields.len() != names.len() {
            return Err(shape(
                line,
                row.chars().count() + 1,
                format!(
                    "expected {} fields as in the header, found {}",
                    names.len(),
                    fields.len()
                ),
            ));
        }
        let bad = |col: usize, expected: &str| PlanError::Field {
            path: path.to_owned(),
            line,
            column: fields[col].0,
            name: names[col].clone(),
            expected: expected.to_owned(),
            found: fields[col].1.clone(),
        };
        let raw_time = fields[time_col].1.trim();
        let (ms, is_abs) = match parse_seconds(raw_time) {
            Some(s) => (secs_to_ms(s), false),
            None => match parse_rfc3339(raw_time) {
                Some(ms) => (ms, true),
                None => {
                    return Err(bad(
                        time_col,
                        "seconds from the start (a number >= 0) or an RFC 3339 time",
                    ));
                }
            },
        };
        match absolute {
            None => absolute = Some(is_abs),
            Some(a) if a != is_abs => {
                let first = if a { "RFC 3339 times" } else { "seconds" };
                return Err(bad(time_col, &format!("{first}, as in the first row")));
            }
            Some(_) => {}
        }
        let template = if from_labels {
            template_from_labels(&fields[template_col].1)
                .ok_or_else(|| bad(template_col, "labels including `anka-template:<template>`"))?
        } else {
            let t = fields[template_col].1.trim();
            if t.is_empty() || t.contains(char::is_whitespace) {
                return Err(bad(template_col, "a template name without spaces"));
            }
            t.to_owned()
        };
        let duration = parse_seconds(fields[duration_col].1.trim())
            .filter(|s| *s > 0.0)
            .ok_or_else(|| bad(duration_col, "a run time in seconds (a number > 0)"))?;
        jobs.push((ms, template, Duration::from_secs_f64(duration)));
    }
    let Some(first) = jobs.iter().map(|j| j.0).min() else {
        return Err(PlanError::Empty {
            path: path.to_owned(),
        });
    };
    let base = if absolute == Some(true) {
        first.div_euclid(HOUR_MS as i64) * HOUR_MS as i64
    } else {
        0
    };
    let mut arrivals: Vec<Arrival> = jobs
        .into_iter()
        .map(|(ms, template, duration)| Arrival {
            at: Duration::from_millis(u64::try_from(ms - base).unwrap_or(0)),
            template,
            duration,
        })
        .collect();
    arrivals.sort_by_key(|a| a.at);
    Ok(arrivals)
}

fn secs_to_ms(s: f64) -> i64 {
    (s * 1000.0).round() as i64
}

fn parse_seconds(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (0.0..1e12).contains(&v).then_some(v)
}

/// The template in a label list (`self-hosted,anka-template:x,anka-template-tag:v1`; commas,
/// semicolons or spaces between labels).
fn template_from_labels(labels: &str) -> Option<String> {
    labels
        .split([',', ';', ' ', '\t'])
        .filter_map(|l| l.trim().strip_prefix("anka-template:"))
        .find(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Splits one CSV line into (starting column, unquoted text) pairs; RFC 4180 quoting within
/// the line. An error is (column, what).
fn split_fields(line: &str) -> Result<Vec<(usize, String)>, (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let start = i + 1;
        let mut text = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err((start, "expected a closing quote in this field".into())),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        text.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        text.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None | Some(',') => {}
                Some(_) => {
                    return Err((
                        i + 1,
                        "expected a comma or the end of the line after a closing quote".into(),
                    ));
                }
            }
        } else {
            while let Some(c) = chars.get(i).filter(|c| **c != ',') {
                text.push(*c);
                i += 1;
            }
        }
        fields.push((start, text));
        if chars.get(i) == Some(&',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` as Unix milliseconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        ms = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' || !matches!(ob[0], b'+' | b'-') {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if ob[0] == b'-' { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Nearest-rank percentile of sorted milliseconds, in seconds (0 when empty).
pub fn percentile(sorted_ms: &[u64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let i = ((sorted_ms.len() - 1) as f64 * p).round() as usize;
    sorted_ms[i.min(sorted_ms.len() - 1)] as f64 / 1000.0
}

/// One fleet size's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// Hosts.
    pub hosts: usize,
    /// Jobs in the workload.
    pub jobs: usize,
    /// Jobs a runner started.
    pub started: usize,
    /// Jobs dead-lettered (never started).
    pub dead: usize,
    /// Queue time percentiles over started jobs, seconds.
    pub queue_p50_secs: f64,
    /// 95th percentile.
    pub queue_p95_secs: f64,
    /// 99th percentile.
    pub queue_p99_secs: f64,
    /// Busy VM-time over VM slots × time until the last job ended, 0..1.
    pub utilisation: f64,
    /// Template pulls.
    pub pulls: u64,
    /// VMs cloned.
    pub vms: u64,
    /// Templates evicted for space.
    pub evictions: u64,
    /// Pulls refused for space.
    pub space_refusals: u64,
    /// Whether every job started and p95 is within the target (absent without a target).
    pub meets_target: Option<bool>,
    /// An invariant the run broke (a core bug, or jobs still waiting when the run gave up).
    pub violation: Option<String>,
}

/// One hour of one run, by the hour jobs arrived in (queue) or VMs were busy (utilisation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HourSummary {
    /// Hour from the start, from 0.
    pub hour: u64,
    /// Jobs queued in this hour.
    pub arrivals: usize,
    /// Of those, started.
    pub started: usize,
    /// Median queue time of jobs queued in this hour, seconds.
    pub queue_p50_secs: f64,
    /// 95th percentile.
    pub queue_p95_secs: f64,
    /// Busy VM-time in this hour over the fleet's VM slots × one hour.
    pub utilisation: f64,
}

/// Runs `arrivals` on `hosts` hosts of `fleet` with `seed`.
pub fn run(fleet: &Fleet, hosts: usize, arrivals: &[Arrival], seed: u64) -> Report {
    World::new(fleet.scenario(hosts, arrivals), seed, Options::default())
        .run()
        .0
}

/// Sums a report up; `target_p95` decides `meets_target`.
pub fn summarise(
    fleet: &Fleet,
    hosts: usize,
    jobs: usize,
    report: &Report,
    target_p95: Option<f64>,
) -> RunSummary {
    let mut q: Vec<u64> = report
        .starts
        .iter()
        .map(|s| s.waited().as_millis() as u64)
        .collect();
    q.sort_unstable();
    let end = report
        .starts
        .iter()
        .map(|s| s.started + s.runs)
        .max()
        .unwrap_or_default();
    let busy: u128 = report.starts.iter().map(|s| s.runs.as_millis()).sum();
    let slots = (hosts * fleet.max_vms) as f64;
    let utilisation = busy as f64 / (slots * end.as_millis().max(1) as f64);
    let p95 = percentile(&q, 0.95);
    RunSummary {
        hosts,
        jobs,
        started: report.starts.len(),
        dead: report.dead,
        queue_p50_secs: percentile(&q, 0.50),
        queue_p95_secs: p95,
        queue_p99_secs: percentile(&q, 0.99),
        utilisation: round4(utilisation),
        pulls: report.pulls,
        vms: report.vms,
        evictions: report.evictions,
        space_refusals: report.space_refusals,
        meets_target: target_p95.map(|t| report.starts.len() == jobs && p95 <= t),
        violation: report.violation.as_ref().map(ToString::to_string),
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Per-hour queue times and utilisation of one run, from hour 0 to the last job's end.
pub fn hourly(
    fleet: &Fleet,
    hosts: usize,
    arrivals: &[Arrival],
    report: &Report,
) -> Vec<HourSummary> {
    let end_ms = report
        .starts
        .iter()
        .map(|s| (s.started + s.runs).as_millis() as u64)
        .chain(arrivals.iter().map(|a| a.at.as_millis() as u64))
        .max()
        .unwrap_or(0);
    let hours = (end_ms / HOUR_MS + 1) as usize;
    let mut queued = vec![0usize; hours];
    for a in arrivals {
        if let Some(n) = queued.get_mut((a.at.as_millis() as u64 / HOUR_MS) as usize) {
            *n += 1;
        }
    }
    let mut waits: Vec<Vec<u64>> = vec![Vec::new(); hours];
    let mut busy = vec![0u64; hours];
    for s in &report.starts {
        if let Some(w) = waits.get_mut((s.queued.as_millis() as u64 / HOUR_MS) as usize) {
            w.push(s.waited().as_millis() as u64);
        }
        let (from, to) = (
            s.started.as_millis() as u64,
            (s.started + s.runs).as_millis() as u64,
        );
        let mut h = from / HOUR_MS;
        while h * HOUR_MS < to {
            let overlap = to.min((h + 1) * HOUR_MS) - from.max(h * HOUR_MS);
            if let Some(b) = busy.get_mut(h as usize) {
                *b += overlap;
            }
            h += 1;
        }
    }
    let slot_hour = (hosts * fleet.max_vms) as f64 * HOUR_MS as f64;
    waits
        .into_iter()
        .enumerate()
        .map(|(h, mut w)| {
            w.sort_unstable();
            HourSummary {
                hour: h as u64,
                arrivals: queued[h],
                started: w.len(),
                queue_p50_secs: percentile(&w, 0.50),
                queue_p95_secs: percentile(&w, 0.95),
                utilisation: round4(busy[h] as f64 / slot_hour),
            }
        })
        .collect()
}

/// How host counts are tried when searching for a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Halve the range each run (assumes more hosts never raise p95): about log2(range) runs.
    Binary,
    /// Every count upwards from the smallest until one meets the target.
    Linear,
}

/// A search's runs (sorted by hosts) and the smallest count that met the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// Every count tried.
    pub runs: Vec<RunSummary>,
    /// The smallest count that met the target, if one in the range did.
    pub answer: Option<usize>,
}

/// Checks a host range: a plan of no hosts, or of an empty range, is a typo.
pub fn check_hosts(min: usize, max: usize) -> Result<(), PlanError> {
    if min == 0 {
        return Err(PlanError::Options(
            "host count must be at least 1 (--hosts / --min-hosts)".into(),
        ));
    }
    if min > max {
        return Err(PlanError::Options(format!(
            "--min-hosts {min} is more than --max-hosts {max}"
        )));
    }
    Ok(())
}

/// Finds the fewest hosts in `min..=max` whose run meets the target, calling `eval` for each
/// count tried (`eval` decides `meets_target`). With `Binary`, the count below the answer (if
/// in range) was tried and failed, so the answer is a boundary, not a guess.
pub fn search(
    min: usize,
    max: usize,
    mode: SearchMode,
    mut eval: impl FnMut(usize) -> RunSummary,
) -> Search {
    let mut runs: Vec<RunSummary> = Vec::new();
    let mut meets = |h: usize, runs: &mut Vec<RunSummary>| {
        let r = eval(h);
        let ok = r.meets_target == Some(true);
        runs.push(r);
        ok
    };
    let answer = match mode {
        SearchMode::Linear => (min..=max).find(|&h| meets(h, &mut runs)),
        SearchMode::Binary => {
            // Check the top first: if even it fails there is no answer to narrow down.
            if meets(max, &mut runs) {
                let (mut lo, mut hi) = (min, max);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if meets(mid, &mut runs) {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                Some(lo)
            } else {
                None
            }
        }
    };
    runs.sort_by_key(|r| r.hosts);
    Search { runs, answer }
}

/// Worst case number of runs a search makes, for a progress bar.
pub fn search_runs(min: usize, max: usize, mode: SearchMode) -> u64 {
    let n = (max - min + 1) as u64;
    match mode {
        SearchMode::Linear => n,
        SearchMode::Binary => 1 + u64::from(n.next_power_of_two().trailing_zeros()),
    }
}

/// Where a plan's arrivals came from and what they amount to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadInfo {
    /// `trace <file>` or the synthetic pattern's name.
    pub source: String,
    /// Jobs.
    pub jobs: usize,
    /// Distinct templates asked for.
    pub templates: usize,
    /// Hours from the start to the last arrival.
    pub span_hours: f64,
}

impl WorkloadInfo {
    /// Describes `arrivals` from `source`.
    pub fn new(source: String, arrivals: &[Arrival]) -> Self {
        let templates: std::collections::BTreeSet<&str> =
            arrivals.iter().map(|a| a.template.as_str()).collect();
        let last = arrivals.iter().map(|a| a.at).max().unwrap_or_default();
        Self {
            source,
            jobs: arrivals.len(),
            templates: templates.len(),
            span_hours: (last.as_secs_f64() / 3600.0 * 100.0).round() / 100.0,
        }
    }
}

/// The hourly figures of the run a plan features (the answer, or the largest fleet tried).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hourly {
    /// Its host count.
    pub hosts: usize,
    /// Hour by hour.
    pub hours: Vec<HourSummary>,
}

/// Everything a plan found, as `--json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanOutput {
    /// The seed every run used.
    pub seed: u64,
    /// The work.
    pub workload: WorkloadInfo,
    /// The fleet's shape.
    pub fleet: Fleet,
    /// The queue p95 target, seconds.
    pub target_p95_secs: Option<f64>,
    /// How host counts were searched (absent without a target range).
    pub search: Option<SearchMode>,
    /// Every host count run, by hosts.
    pub runs: Vec<RunSummary>,
    /// The fewest hosts that met the target, when a search found one.
    pub min_hosts: Option<usize>,
    /// Hour by hour, for one run.
    pub hourly: Hourly,
}
