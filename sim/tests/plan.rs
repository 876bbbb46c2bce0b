//! `anklet-sim plan`: the output for a small synthetic trace (snapshots), the host search's
//! boundary, determinism, trace errors that point at line and column, and the SVG plots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_sim::plan::{
    self, Fleet, Pattern, PlanError, SearchMode, Workload, parse_trace, read_trace,
};
use assert_cmd::Command;
use std::path::Path;

const TRACE: &str = "../tests/fixtures/sim/trace.csv";

fn sim() -> Command {
    let mut c = Command::cargo_bin("anklet-sim").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs a plan of the fixture trace, returning stdout and the JSON it wrote.
fn plan_fixture(extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("plan.json");
    let out = sim()
        .args([
            "plan",
            "--trace",
            TRACE,
            "--min-hosts",
            "1",
            "--max-hosts",
            "8",
        ])
        .args(["--target-p95", "600", "--json"])
        .arg(&json)
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    (
        String::from_utf8(out).unwrap(),
        std::fs::read_to_string(json).unwrap(),
    )
}

#[test]
fn plan_of_the_fixture_trace_matches_its_snapshots() {
    let (table, json) = plan_fixture(&[]);
    insta::assert_snapshot!("plan_table", table);
    insta::assert_snapshot!("plan_json", json);
}

#[test]
fn the_same_seed_gives_the_same_plan() {
    assert_eq!(plan_fixture(&[]), plan_fixture(&[]));
    let synthetic = || {
        sim()
            .args([
                "plan",
                "--arrivals",
                "bursts",
                "--jobs",
                "60",
                "--hours",
                "2",
            ])
            .args(["--hosts", "3", "--seed", "9"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    assert_eq!(synthetic(), synthetic());
}

#[test]
fn the_search_stops_at_a_boundary_of_the_target() {
    let arrivals = read_trace(&Path::new(env!("CARGO_MANIFEST_DIR")).join(TRACE)).unwrap();
    let fleet = Fleet::default();
    let target = 600.0;
    let eval = |hosts: usize| {
        let report = plan::run(&fleet, hosts, &arrivals, 1);
        plan::summarise(&fleet, hosts, arrivals.len(), &report, Some(target))
    };
    for mode in [SearchMode::Binary, SearchMode::Linear] {
        let found = plan::search(1, 8, mode, eval);
        let n = found.answer.expect("some fleet of 1..=8 hosts meets 600 s");
        assert!(n > 1, "one host should not keep up with the burst");
        let at = eval(n);
        let below = eval(n - 1);
        assert!(
            at.queue_p95_secs <= target && at.started == at.jobs,
            "{at:?}"
        );
        assert_eq!(at.meets_target, Some(true));
        assert_eq!(below.meets_target, Some(false), "{below:?}");
        // The search tried the count below the answer and saw it fail.
        let tried = found.runs.iter().find(|r| r.hosts == n - 1).unwrap();
        assert_eq!(tried, &below);
    }
}

#[test]
fn a_target_no_fleet_in_range_meets_exits_1() {
    sim()
        .args([
            "plan",
            "--trace",
            TRACE,
            "--min-hosts",
            "1",
            "--max-hosts",
            "2",
        ])
        .args(["--target-p95", "60"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no fleet of 1..=2 hosts meets"));
}

fn error(text: &str) -> String {
    parse_trace("t.csv", text).unwrap_err().to_string()
}

#[test]
fn trace_errors_name_the_file_line_and_column() {
    assert_eq!(
        error("time,template,duration\n0,a,60\n5,b,soon\n"),
        "t.csv:3:5: column `duration`: expected a run time in seconds (a number > 0), found \"soon\""
    );
    assert_eq!(
        error("# comment\ntime,template,duration\nyesterday,a,60\n"),
        "t.csv:3:1: column `time`: expected seconds from the start (a number >= 0) or an RFC 3339 time, found \"yesterday\""
    );
    assert_eq!(
        error("time,labels,duration\n0,\"self-hosted,macos\",60\n"),
        "t.csv:2:3: column `labels`: expected labels including `anka-template:<template>`, found \"self-hosted,macos\""
    );
    assert!(error("time,template,duration\n0,a\n").starts_with("t.csv:2:4: expected 3 fields"));
    assert!(error("time,duration\n0,60\n").contains("expected a `template` column"));
    assert!(
        error("time,template,duration\n0,\"a,60\n")
            .starts_with("t.csv:2:3: expected a closing quote")
    );
    assert!(
        error("time,template,duration\n0,a,60\n2026-01-01T00:00:00Z,a,60\n")
            .contains("expected seconds, as in the first row")
    );
    assert!(matches!(
        parse_trace("t.csv", "# nothing\ntime,template,duration\n\n"),
        Err(PlanError::Empty { .. })
    ));
}

#[test]
fn traces_take_labels_and_rfc3339_times() {
    let text = "time,labels,duration,repo\n\
        2026-03-01T09:30:00Z,\"self-hosted,anka-template:mac-a,anka-template-tag:v1\",60,x\n\
        2026-03-01T10:15:30.5+01:00,self-hosted;anka-template:mac-b,90.5,y\n";
    let a = parse_trace("t.csv", text).unwrap();
    // From the top of the earliest hour (09:00Z); 10:15:30.5+01:00 is 09:15:30.5Z.
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].template, "mac-b");
    assert_eq!(a[0].at.as_millis(), 930_500);
    assert_eq!(a[0].duration.as_millis(), 90_500);
    assert_eq!(a[1].template, "mac-a");
    assert_eq!(a[1].at.as_secs(), 1800);
}

#[test]
fn bad_files_and_impossible_options_exit_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "time,template,duration\n0,a,-3\n").unwrap();
    sim()
        .args(["plan", "--trace"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad.csv:2:5: column `duration`"));
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "time,template,duration\n").unwrap();
    sim()
        .args(["plan", "--trace"])
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("the trace has no jobs"));
    sim()
        .args(["plan", "--trace", "no-such.csv"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no-such.csv"));
    for (args, says) in [
        (vec!["--hosts", "0"], "at least 1"),
        (
            vec!["--min-hosts", "5", "--max-hosts", "2"],
            "more than --max-hosts",
        ),
        (vec!["--template-gb", "300"], "cannot fit"),
        (vec!["--jobs", "0"], "--jobs"),
        (vec!["--hours", "0"], "--hours"),
        (vec!["--pull-min-secs", "900"], "pull time range"),
    ] {
        sim()
            .arg("plan")
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
}

/// A small well-formedness check: every element closes, in order, and attributes are quoted.
fn assert_well_formed(svg: &str) {
    let mut open: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        let end = rest[i..].find('>').expect("a tag ends") + i;
        let tag = &rest[i + 1..end];
        if tag.starts_with('?') || tag.starts_with('!') {
        } else if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect();
            assert!(!name.is_empty(), "empty tag");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes in <{tag}>"
            );
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        assert!(!rest[..i].contains('>'), "stray '>' in text");
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed {open:?}");
}

#[test]
fn svg_plots_are_written_and_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _) = plan_fixture(&["--svg", dir.path().to_str().unwrap()]);
    for name in [
        "queue_by_hour.svg",
        "utilisation_by_hour.svg",
        "hosts_vs_p95.svg",
    ] {
        let svg = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{name}");
        assert_well_formed(&svg);
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{name} has no line"
        );
        assert!(svg.contains("<text"), "{name} has no text");
    }
}

#[test]
fn synthetic_days_have_their_shape() {
    let day = |pattern| Workload {
        pattern,
        jobs: 2000,
        hours: 24.0,
        templates: 2,
        job_secs: (60.0, 120.0),
    };
    let per_hour = |pattern| {
        let mut h = [0usize; 24];
        for a in day(pattern).arrivals(5) {
            h[(a.at.as_secs() / 3600).min(23) as usize] += 1;
        }
        h
    };
    let d = per_hour(Pattern::Diurnal);
    let afternoon: usize = d[12..17].iter().sum();
    let night: usize = d[0..5].iter().sum();
    assert!(afternoon > 4 * night, "{d:?}");
    let p = per_hour(Pattern::Poisson);
    assert!(p.iter().all(|&n| n > 50 && n < 120), "{p:?}");
    // Bursts: some five minutes hold a burst's share (150 of 2000) where a steady rate would
    // bring about 7.
    let b = day(Pattern::Bursts).arrivals(5);
    let most = b
        .iter()
        .map(|a| {
            b.iter()
                .filter(|x| x.at >= a.at && x.at.as_secs() < a.at.as_secs() + 300)
                .count()
        })
        .max()
        .unwrap();
    assert!(most >= 140, "{most}");
    assert_eq!(
        day(Pattern::Bursts).arrivals(5),
        b,
        "same seed, same arrivals"
    );
}

#[test]
fn disks_too_small_for_every_template_show_evictions_and_refusals() {
    let fleet = Fleet {
        template_gb: 50,
        disk_gb: 100,
        ..Fleet::default()
    };
    let arrivals = read_trace(&Path::new(env!("CARGO_MANIFEST_DIR")).join(TRACE)).unwrap();
    let report = plan::run(&fleet, 8, &arrivals, 1);
    let s = plan::summarise(&fleet, 8, arrivals.len(), &report, Some(600.0));
    // One 50 GiB template fits with the 10% buffer; switching evicts, and a host whose only
    // template is in use cannot make room.
    assert!(s.evictions > 0 && s.space_refusals > 0, "{s:?}");
    assert_eq!(s.started + s.dead, s.jobs, "{s:?}");
    assert_eq!(
        s.meets_target,
        Some(false),
        "jobs that never started miss the target"
    );
}
