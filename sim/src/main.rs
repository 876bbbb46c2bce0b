//! anklet-sim: simulate a fleet of Macs running the production anklet core against seeded
//! models of GitHub and Anka, with faults, and check that no job is lost or run twice and no
//! VM is left behind.

use anklet_sim::plan::{
    self, Fleet, Hourly, Pattern, PlanOutput, RunSummary, SearchMode, Workload, WorkloadInfo,
};
use anklet_sim::plot::write_plots;
use anklet_sim::scenario::Scenario;
use anklet_sim::sweep::{run_seed, sweep};
use anklet_sim::world::{Options, Report, World};
use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Deterministic fleet simulator for anklet-rs. The same seed always gives the same run.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed and print its report (and the trace tail if it breaks an invariant).
    Run {
        /// The seed: it chooses the fleet, the jobs, the faults and every timing.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run one seed again, printing every event: reproduces a failure exactly.
    Replay {
        /// The seed a sweep or a test reported.
        #[arg(long)]
        seed: u64,
    },
    /// Run many seeds; stop at the first invariant violation and print how to replay it.
    Sweep {
        /// How many seeds.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
    },
    /// Simulate one fault-free fleet and print queue times and throughput.
    Fleet {
        /// Handler hosts.
        #[arg(long, default_value_t = 10)]
        hosts: usize,
        /// Jobs arriving over the window.
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Arrival window in hours.
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
        /// Seed for timings.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Capacity planning: run a day of arrivals (a trace or a synthetic day) on one fleet size
    /// or a range of them, and find the fewest hosts that keep queue p95 within a target.
    /// Exits 1 when no host count in the range meets the target, 2 on bad input.
    Plan(Box<PlanArgs>),
}

#[derive(Args)]
struct PlanArgs {
    /// CSV trace with a header: `time` (seconds from the start, or RFC 3339), `template` (or
    /// `labels` holding `anka-template:NAME`), `duration` (seconds). Lines starting with `#`
    /// are comments.
    #[arg(long, conflicts_with = "arrivals")]
    trace: Option<PathBuf>,
    /// Synthetic arrivals when there is no trace: poisson (steady), diurnal (peak at 14:00,
    /// quiet at night), bursts (background plus a few bursts of many jobs within minutes).
    #[arg(long, value_enum)]
    arrivals: Option<ArrivalPattern>,
    /// Synthetic jobs.
    #[arg(long, default_value_t = 500, conflicts_with = "trace")]
    jobs: usize,
    /// Synthetic window in hours (hour 0 is midnight for diurnal).
    #[arg(long, default_value_t = 24.0, conflicts_with = "trace")]
    hours: f64,
    /// One fleet size (default 10 when no range is given).
    #[arg(long, conflicts_with_all = ["min_hosts", "max_hosts"])]
    hosts: Option<usize>,
    /// Smallest fleet to try (default 1).
    #[arg(long)]
    min_hosts: Option<usize>,
    /// Largest fleet to try (default 100 with --target-p95).
    #[arg(long)]
    max_hosts: Option<usize>,
    /// Queue-time p95 target in seconds: search the host range for the fewest hosts meeting it
    /// (every job started and p95 at or under the target).
    #[arg(long)]
    target_p95: Option<f64>,
    /// How to search the host range: binary (about log2 of the range runs; assumes more hosts
    /// never raise p95) or linear (upwards from --min-hosts until one meets the target).
    #[arg(long, value_enum, default_value_t = SearchArg::Binary)]
    search: SearchArg,
    /// Distinct templates of synthetic jobs.
    #[arg(long, default_value_t = 2, conflicts_with = "trace")]
    templates: usize,
    /// Template size in GiB.
    #[arg(long, default_value_t = 40)]
    template_gb: u64,
    /// Template volume per host in GiB.
    #[arg(long, default_value_t = 200)]
    disk_gb: u64,
    /// Shortest template pull, seconds.
    #[arg(long, default_value_t = 120.0)]
    pull_min_secs: f64,
    /// Longest template pull, seconds.
    #[arg(long, default_value_t = 600.0)]
    pull_max_secs: f64,
    /// Shortest synthetic job, seconds (a trace gives each job's duration).
    #[arg(long, default_value_t = 60.0, conflicts_with = "trace")]
    job_min_secs: f64,
    /// Longest synthetic job, seconds.
    #[arg(long, default_value_t = 480.0, conflicts_with = "trace")]
    job_max_secs: f64,
    /// Seed for synthetic arrivals and every timing; each fleet size runs with it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write SVG plots into this directory.
    #[arg(long)]
    svg: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ArrivalPattern {
    Poisson,
    Diurnal,
    Bursts,
}

#[derive(Clone, Copy, ValueEnum)]
enum SearchArg {
    Binary,
    Linear,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("anklet-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { seed } => {
            let (report, tail) = run_seed(
                seed,
                Options {
                    trace: true,
                    ..Options::default()
                },
            );
            print_report(seed, &report);
            Ok(verdict(seed, &report, &tail))
        }
        Command::Replay { seed } => {
            let options = Options {
                trace: true,
                trace_all: true,
                ..Options::default()
            };
            let (report, trace) = run_seed(seed, options);
            let mut out = std::io::stdout().lock();
            for line in &trace {
                // A closed pipe (`| head`) ends the listing, not the program.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
            drop(out);
            print_report(seed, &report);
            Ok(verdict(seed, &report, &[]))
        }
        Command::Sweep { seeds, start } => {
            if seeds == 0 {
                bail!("--seeds must be at least 1");
            }
            let bar = ProgressBar::new(seeds);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let started = Instant::now();
            let runs = sweep(start, seeds, Options::default(), |_| bar.inc(1));
            bar.finish_and_clear();
            let mut table = Table::new();
            table.set_header(vec![
                "seeds",
                "jobs ran",
                "cancelled",
                "dead-lettered",
                "VMs",
                "pulls",
                "violations",
                "wall time",
            ]);
            let sum = |f: fn(&Report) -> u64| runs.iter().map(|r| f(&r.report)).sum::<u64>();
            let violations = runs.iter().filter(|r| r.report.violation.is_some()).count();
            table.add_row(vec![
                runs.len().to_string(),
                sum(|r| r.ran as u64).to_string(),
                sum(|r| r.cancelled as u64).to_string(),
                sum(|r| r.dead as u64).to_string(),
                sum(|r| r.vms).to_string(),
                sum(|r| r.pulls).to_string(),
                violations.to_string(),
                format!("{:.1}s", started.elapsed().as_secs_f64()),
            ]);
            println!("{table}");
            match runs.iter().find(|r| r.report.violation.is_some()) {
                Some(failed) => {
                    let (report, tail) = run_seed(
                        failed.seed,
                        Options {
                            trace: true,
                            ..Options::default()
                        },
                    );
                    Ok(verdict(failed.seed, &report, &tail))
                }
                None => {
                    println!("{} seeds from {start}: every invariant held", runs.len());
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Fleet {
            hosts,
            jobs,
            hours,
            seed,
        } => {
            if hosts == 0 || hours.is_nan() || hours <= 0.0 {
                bail!("--hosts and --hours must be positive");
            }
            let window = Duration::from_secs_f64(hours * 3600.0);
            let started = Instant::now();
            let (report, tail) = World::new(
                Scenario::fleet(hosts, jobs, window),
                seed,
                Options::default(),
            )
            .run();
            let wall = started.elapsed().as_secs_f64();
            print_report(seed, &report);
            let days = report.simulated.as_secs_f64() / 86_400.0;
            println!(
                "simulated {days:.2} fleet-days in {wall:.2}s wall: {:.2} fleet-days/s",
                days / wall.max(1e-9)
            );
            Ok(verdict(seed, &report, &tail))
        }
        Command::Plan(args) => plan_command(&args),
    }
}

fn plan_command(a: &PlanArgs) -> Result<ExitCode> {
    let fleet = Fleet {
        max_vms: 2,
        template_gb: a.template_gb,
        disk_gb: a.disk_gb,
        pull_secs: (a.pull_min_secs, a.pull_max_secs),
    };
    fleet.check()?;
    if let Some(t) = a.target_p95
        && !(t.is_finite() && t >= 0.0)
    {
        bail!("--target-p95 must be a number of seconds >= 0");
    }
    let (source, arrivals) = match &a.trace {
        Some(path) => (format!("trace {}", path.display()), plan::read_trace(path)?),
        None => {
            let pattern = match a.arrivals.unwrap_or(ArrivalPattern::Poisson) {
                ArrivalPattern::Poisson => Pattern::Poisson,
                ArrivalPattern::Diurnal => Pattern::Diurnal,
                ArrivalPattern::Bursts => Pattern::Bursts,
            };
            let workload = Workload {
                pattern,
                jobs: a.jobs,
                hours: a.hours,
                templates: a.templates,
                job_secs: (a.job_min_secs, a.job_max_secs),
            };
            workload.check()?;
            let name = format!("{pattern:?}").to_lowercase();
            (
                format!("{name}, {} jobs over {} h", a.jobs, a.hours),
                workload.arrivals(a.seed),
            )
        }
    };
    let mode = match a.search {
        SearchArg::Binary => SearchMode::Binary,
        SearchArg::Linear => SearchMode::Linear,
    };
    let ranged = a.min_hosts.is_some() || a.max_hosts.is_some();
    let (min, max) = match (a.hosts, ranged, a.target_p95) {
        (Some(n), _, _) => (n, n),
        (None, true, _) => {
            let min = a.min_hosts.unwrap_or(1);
            let default_max = if a.target_p95.is_some() { 100 } else { min };
            (min, a.max_hosts.unwrap_or(default_max))
        }
        (None, false, Some(_)) => (1, 100),
        (None, false, None) => (10, 10),
    };
    plan::check_hosts(min, max)?;
    let searching = a.target_p95.is_some() && min < max;
    let total = if searching {
        plan::search_runs(min, max, mode)
    } else {
        (max - min + 1) as u64
    };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} fleet sizes {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut reports = BTreeMap::new();
    let mut eval = |hosts: usize| -> RunSummary {
        bar.set_message(format!("(running {hosts} hosts)"));
        let report = plan::run(&fleet, hosts, &arrivals, a.seed);
        let summary = plan::summarise(&fleet, hosts, arrivals.len(), &report, a.target_p95);
        reports.insert(hosts, report);
        bar.inc(1);
        summary
    };
    let (runs, min_hosts) = if searching {
        let found = plan::search(min, max, mode, &mut eval);
        (found.runs, found.answer)
    } else {
        ((min..=max).map(&mut eval).collect::<Vec<_>>(), None)
    };
    bar.finish_and_clear();
    let featured = min_hosts.unwrap_or(max);
    let hours = match reports.get(&featured) {
        Some(report) => plan::hourly(&fleet, featured, &arrivals, report),
        None => Vec::new(),
    };
    let out = PlanOutput {
        seed: a.seed,
        workload: WorkloadInfo::new(source, &arrivals),
        fleet,
        target_p95_secs: a.target_p95,
        search: searching.then_some(mode),
        runs,
        min_hosts,
        hourly: Hourly {
            hosts: featured,
            hours,
        },
    };
    print!("{}", render_plan(&out));
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&out)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if let Some(dir) = &a.svg {
        write_plots(dir, &out.hourly.hours, featured, &out.runs, a.target_p95)?;
    }
    for r in &out.runs {
        if let Some(v) = &r.violation {
            eprintln!(
                "anklet-sim: warning: the run of {} hosts broke an invariant: {v}",
                r.hosts
            );
        }
    }
    let missed = a.target_p95.is_some() && out.runs.iter().all(|r| r.meets_target != Some(true));
    if missed {
        eprintln!(
            "anklet-sim: no fleet of {min}..={max} hosts meets queue p95 <= {}s",
            a.target_p95.unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Seconds, or `-` for an hour in which no queued job started (no queue time, not zero).
fn secs_or_dash(started: usize, secs: f64) -> String {
    if started == 0 {
        "-".into()
    } else {
        format!("{secs:.1}s")
    }
}

/// The plan as the terminal shows it: the workload, one row per fleet size, the featured run
/// hour by hour, and the answer.
fn render_plan(out: &PlanOutput) -> String {
    let w = &out.workload;
    let f = &out.fleet;
    let mut text = format!(
        "workload: {}; {} jobs, {} templates, last arrival at {:.2} h\n\
         fleet: {} VMs per host, {} GiB templates on {} GiB disks, pulls {}..{} s; seed {}\n",
        w.source,
        w.jobs,
        w.templates,
        w.span_hours,
        f.max_vms,
        f.template_gb,
        f.disk_gb,
        f.pull_secs.0,
        f.pull_secs.1,
        out.seed
    );
    let mut runs = Table::new();
    runs.load_style(comfy_table::presets::ASCII_FULL_CONDENSED);
    let mut header = vec![
        "hosts",
        "started",
        "dead",
        "queue p50",
        "p95",
        "p99",
        "utilisation",
        "pulls",
        "evictions",
        "refused for space",
    ];
    if out.target_p95_secs.is_some() {
        header.push("meets target");
    }
    runs.set_header(header);
    for r in &out.runs {
        let mut row = vec![
            r.hosts.to_string(),
            format!("{}/{}", r.started, r.jobs),
            r.dead.to_string(),
            format!("{:.1}s", r.queue_p50_secs),
            format!("{:.1}s", r.queue_p95_secs),
            format!("{:.1}s", r.queue_p99_secs),
            format!("{:.1}%", r.utilisation * 100.0),
            r.pulls.to_string(),
            r.evictions.to_string(),
            r.space_refusals.to_string(),
        ];
        if let Some(ok) = r.meets_target {
            row.push(if ok { "yes" } else { "no" }.into());
        }
        runs.add_row(row);
    }
    text += &format!("{runs}\n");
    let mut hours = Table::new();
    hours.load_style(comfy_table::presets::ASCII_FULL_CONDENSED);
    hours.set_header(vec!["hour", "arrivals", "queue p50", "p95", "utilisation"]);
    for h in &out.hourly.hours {
        hours.add_row(vec![
            h.hour.to_string(),
            h.arrivals.to_string(),
            secs_or_dash(h.started, h.queue_p50_secs),
            secs_or_dash(h.started, h.queue_p95_secs),
            format!("{:.1}%", h.utilisation * 100.0),
        ]);
    }
    text += &format!(
        "hour by hour with {} hosts (queue times by the hour jobs were queued):\n{hours}\n",
        out.hourly.hosts
    );
    if let Some(target) = out.target_p95_secs {
        match out.min_hosts {
            Some(n) => {
                let below = out.runs.iter().find(|r| r.hosts + 1 == n);
                text += &format!("fewest hosts with queue p95 <= {target}s: {n}");
                if let Some(b) = below {
                    text += &format!(" ({} hosts: p95 {:.1}s)", b.hosts, b.queue_p95_secs);
                }
                text += "\n";
            }
            None if out.runs.len() == 1 => {
                let met = out.runs.iter().any(|r| r.meets_target == Some(true));
                text += &format!(
                    "{} hosts {} queue p95 <= {target}s\n",
                    out.hourly.hosts,
                    if met { "meet" } else { "do not meet" }
                );
            }
            None => text += &format!("no fleet size tried meets queue p95 <= {target}s\n"),
        }
    }
    text
}

fn print_report(seed: u64, r: &Report) {
    let mut q = r.queue_ms.clone();
    q.sort_unstable();
    let mut table = Table::new();
    table.set_header(vec![
        "seed",
        "ran",
        "cancelled",
        "dead",
        "queue p50",
        "p95",
        "p99",
        "VMs",
        "pulls",
        "utilisation",
        "simulated",
    ]);
    table.add_row(vec![
        seed.to_string(),
        r.ran.to_string(),
        r.cancelled.to_string(),
        r.dead.to_string(),
        format!("{:.1}s", plan::percentile(&q, 0.50)),
        format!("{:.1}s", plan::percentile(&q, 0.95)),
        format!("{:.1}s", plan::percentile(&q, 0.99)),
        r.vms.to_string(),
        r.pulls.to_string(),
        format!("{:.1}%", r.utilisation * 100.0),
        format!("{:.1}h", r.simulated.as_secs_f64() / 3600.0),
    ]);
    println!("{table}");
}

fn verdict(seed: u64, r: &Report, tail: &[String]) -> ExitCode {
    match &r.violation {
        None => ExitCode::SUCCESS,
        Some(v) => {
            eprintln!("INVARIANT VIOLATED with seed {seed}: {v}");
            if !tail.is_empty() {
                eprintln!("last events:");
                for line in tail {
                    eprintln!("  {line}");
                }
            }
            eprintln!("reproduce with: anklet-sim replay --seed {seed}");
            ExitCode::from(1)
        }
    }
}
