//! Metrics: the registry fed by a realistic notice sequence, its three renderings pinned by
//! insta snapshots and read back by a strict text-format reader, and arbitrary label values
//! (hosts, templates) that must still render valid text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod metrics_support;

use anklet_core::handler::Notice;
use anklet_core::ids::{HostId, JobId};
use anklet_core::metrics::{Fleet, Format, Metrics, MetricsRoute, ZERO_TIME, route};
use anklet_core::queue::HostInfo;
use metrics_support::*;
use proptest::prelude::*;
use std::time::Duration;

fn now() -> anklet_core::time::Timestamp {
    at(90_000)
}

#[test]
fn standard_exposition_snapshot() {
    let text = realistic().prometheus();
    parse_exposition(&text, true).unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn anklet_prometheus_snapshot() {
    let text = realistic().anklet_prometheus(now());
    parse_exposition(&text, false).unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn anklet_json_snapshot() {
    let m = realistic();
    let v = serde_json::to_value(m.anklet_export(now())).unwrap();
    insta::assert_json_snapshot!(v);
}

#[test]
fn counts_follow_the_notices() {
    let m = realistic();
    let h1 = m.handler("mac-1").unwrap();
    assert_eq!((h1.successful, h1.failed, h1.canceled), (1, 1, 1));
    assert_eq!(h1.total_ran_vms, 4);
    assert_eq!(h1.jobs_in_flight(), 0);
    assert_eq!(h1.claimed.get("macos-14"), Some(&2));
    assert_eq!(
        h1.requeued
            .get(&("macos-14".to_owned(), "clone_failed".to_owned())),
        Some(&1)
    );
    let h2 = m.handler("mac-2").unwrap();
    assert_eq!((h2.jobs_in_flight(), h2.running_vms()), (1, 1));
    assert_eq!(h2.status.as_str(), "in_progress");
    assert_eq!(
        h2.last_failed.as_ref().unwrap().job_url,
        "https://github.com/acme/app/actions/runs/9002/job/2"
    );
    assert_eq!(m.totals(), [1, 1, 2, 1]);
    let r = &m.receivers()[0];
    assert_eq!(r.accepted.get("enqueued"), Some(&6));
    assert_eq!(r.refused.get(&503), Some(&1));
}

#[test]
fn histograms_measure_each_step() {
    let m = realistic();
    let families = parse_exposition(&m.prometheus(), true).unwrap();
    let value = |family: &str, name: &str, host: &str, template: &str| {
        families[family]
            .iter()
            .find(|(n, l, _)| {
                n == name && l["host"] == host && l["template"] == template && !l.contains_key("le")
            })
            .map(|(_, _, v)| *v)
    };
    // mac-1 on macos-15: jobs 1 and 5, each 3 s queued, 40 s to a VM, 10 s to register,
    // 5 s to run; they ran 300 s and 86,000 s.
    let h = "anklet_job_queued_to_claimed_seconds";
    assert_eq!(
        value(h, &format!("{h}_sum"), "mac-1", "macos-15"),
        Some(6.0)
    );
    let h = "anklet_job_claimed_to_vm_ready_seconds";
    assert_eq!(
        value(h, &format!("{h}_count"), "mac-1", "macos-15"),
        Some(2.0)
    );
    assert_eq!(
        value(h, &format!("{h}_sum"), "mac-1", "macos-15"),
        Some(80.0)
    );
    let h = "anklet_job_vm_ready_to_registered_seconds";
    assert_eq!(
        value(h, &format!("{h}_sum"), "mac-1", "macos-15"),
        Some(20.0)
    );
    let h = "anklet_job_registered_to_in_progress_seconds";
    assert_eq!(
        value(h, &format!("{h}_sum"), "mac-1", "macos-15"),
        Some(10.0)
    );
    let h = "anklet_job_duration_seconds";
    assert_eq!(
        value(h, &format!("{h}_sum"), "mac-1", "macos-15"),
        Some(86_300.0)
    );
    // The job still running on mac-2 has a VM but no registration yet.
    let h = "anklet_job_claimed_to_vm_ready_seconds";
    assert_eq!(
        value(h, &format!("{h}_sum"), "mac-2", "macos-15"),
        Some(70.0)
    );
}

#[test]
fn a_fresh_vm_is_measured_from_its_own_boot() {
    let mut m = realistic();
    let (op, reply) = claim("mac-1", 77, "t", 100_000, 100_000);
    m.observe_store(at(100_000), &op, &reply);
    let id = JobId(77);
    let n =
        |m: &mut Metrics, t: u64, notice: Notice| m.record_handler_notice("mac-1", at(t), &notice);
    n(
        &mut m,
        100_000,
        Notice::JobClaimed {
            job: id,
            attempt: 1,
        },
    );
    n(
        &mut m,
        100_010,
        Notice::Phase {
            job: id,
            phase: "runner_config",
            at: at(100_010),
        },
    );
    n(
        &mut m,
        100_020,
        Notice::FreshVm {
            job: id,
            reason: anklet_core::handler::Reason::StartRunnerFailed,
        },
    );
    assert_eq!(m.handler("mac-1").unwrap().running_vms(), 0);
    n(
        &mut m,
        100_050,
        Notice::Phase {
            job: id,
            phase: "runner_config",
            at: at(100_050),
        },
    );
    n(
        &mut m,
        100_052,
        Notice::Phase {
            job: id,
            phase: "registered",
            at: at(100_052),
        },
    );
    let h = m.handler("mac-1").unwrap();
    assert_eq!(h.running_vms(), 1);
    let hist = |s| h.histograms.get(&(s, "t".to_owned())).unwrap();
    assert_eq!(
        hist(anklet_core::metrics::Step::ClaimedToVmReady).sum(),
        10.0
    );
    assert_eq!(
        hist(anklet_core::metrics::Step::VmReadyToRegistered).sum(),
        2.0
    );
}

#[test]
fn an_unknown_claim_is_labelled_unknown() {
    let mut m = Metrics::new(at(0));
    m.record_handler_notice(
        "solo",
        at(1),
        &Notice::JobClaimed {
            job: JobId(1),
            attempt: 1,
        },
    );
    assert_eq!(m.handler("solo").unwrap().claimed.get("unknown"), Some(&1));
    assert_eq!(m.handler("solo").unwrap().identity.plugin, "github");
}

#[test]
fn heartbeat_payload_is_one_handler_export() {
    let m = realistic();
    let payload = m.heartbeat_payload("mac-2", now()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(v["plugins"].as_array().unwrap().len(), 1);
    assert_eq!(v["plugins"][0]["Name"], "mac-2");
    assert_eq!(v["plugins"][0]["LastSuccessfulRun"], ZERO_TIME);
    assert_eq!(v["total_running_vms"], 1);
    assert_eq!(v["host_cpu_count"], 8);
    assert!(m.heartbeat_payload("nobody", now()).is_none());
}

fn fleet() -> Fleet {
    let m = realistic();
    let hosts = vec![
        HostInfo {
            host: HostId("mac-1".into()),
            last_seen: at(89_995),
            age: Duration::from_secs(5),
            stale: false,
            payload: m.heartbeat_payload("mac-1", at(89_995)).unwrap(),
        },
        HostInfo {
            host: HostId("mac-2".into()),
            last_seen: at(89_000),
            age: Duration::from_secs(1000),
            stale: true,
            payload: m.heartbeat_payload("mac-2", at(89_000)).unwrap(),
        },
        HostInfo {
            host: HostId("mac-3".into()),
            last_seen: at(89_990),
            age: Duration::from_secs(10),
            stale: false,
            payload: "not json".into(),
        },
    ];
    Fleet::from_hosts(&hosts)
}

#[test]
fn fleet_json_snapshots() {
    let f = fleet();
    let v1 = f.json_v1();
    assert_eq!(v1["mac-2"]["stale"], true);
    assert_eq!(v1["mac-1"]["plugin_total_successful_runs_since_start"], 1);
    assert_eq!(v1["mac-3"]["plugin_status"], "unknown");
    insta::assert_json_snapshot!("fleet_v2", f.json_v2());
}

#[test]
fn fleet_prometheus_snapshots() {
    let f = fleet();
    let standard = f.prometheus();
    parse_exposition(&standard, true).unwrap();
    assert!(standard.contains("anklet_fleet_host_stale{host=\"mac-2\"} 1\n"));
    assert!(standard.contains("anklet_fleet_hosts{state=\"stale\"} 1\n"));
    insta::assert_snapshot!("fleet_standard", standard);
    let anklet = f.anklet_prometheus();
    parse_exposition(&anklet, false).unwrap();
    insta::assert_snapshot!("fleet_anklet", anklet);
}

#[test]
fn served_routes() {
    let m = realistic();
    let json = m.respond(route("GET", "/metrics/v1").unwrap(), now());
    assert_eq!((json.status, json.content_type), (200, "application/json"));
    let prom = m.respond(MetricsRoute::V1(Format::Prometheus), now());
    assert!(prom.body.contains(
        "plugin_status{name=\"mac-1\",plugin=\"github\",owner=\"acme\",status=\"idle\"} 1\n"
    ));
    let f = fleet();
    assert_eq!(f.respond(MetricsRoute::V2(Format::Json)).status, 200);
}

#[test]
fn the_reader_catches_broken_text() {
    for bad in [
        "a{b=c} 1\n",
        "a{b=\"c} 1\n",
        "a 1\nb 1\na 2\n",
        "a running\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP x y\n# TYPE x counter\nx 1\n",
        "a{b=\"\\x\"} 1\n",
    ] {
        let lint = bad.contains("HELP") || bad.contains("TYPE");
        assert!(parse_exposition(bad, lint).is_err(), "{bad:?} was accepted");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Host and template names come from config and job labels: any text must still render
    /// valid exposition, and read back to the same value.
    #[test]
    fn arbitrary_label_values_render_valid_text(
        host in "\\PC{0,12}|[\\\\\"\n a-z]{0,12}",
        template in "\\PC{0,12}|[\\\\\"\n{}=,a-z]{0,12}",
    ) {
        let mut m = Metrics::new(at(0));
        job(&mut m, &host, 1, &template, 10, 60, "completed(finished(success))");
        job(&mut m, &host, 2, &template, 200, 0, "requeued(pull_failed)");
        let families = parse_exposition(&m.prometheus(), true).map_err(TestCaseError::fail)?;
        let claimed = &families["anklet_jobs_claimed_total"];
        prop_assert_eq!(&claimed[0].1["host"], &host);
        // The labels' template is trimmed; none at all is labelled `unknown`.
        let expected = if template.trim().is_empty() { "unknown" } else { template.trim() };
        prop_assert_eq!(claimed[0].1["template"].as_str(), expected);
        parse_exposition(&m.anklet_prometheus(at(300)), false).map_err(TestCaseError::fail)?;
    }
}
