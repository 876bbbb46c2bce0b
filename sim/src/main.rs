//! anklet-sim: simulate a fleet of Macs running the production anklet core against seeded
//! models of GitHub and Anka, with faults, and check that no job is lost or run twice and no
//! VM is left behind.

use anklet_sim::scenario::Scenario;
use anklet_sim::sweep::{run_seed, sweep};
use anklet_sim::world::{Options, Report, World};
use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
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
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
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
        format!("{:.1}s", percentile(&q, 0.50)),
        format!("{:.1}s", percentile(&q, 0.95)),
        format!("{:.1}s", percentile(&q, 0.99)),
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
