//! `anklet demo` end to end: the GitHub emulator, fake Macs and the tokio daemon in one
//! process; every job completes once and no VM or runner is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn demo_with_four_jobs_passes() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_anklet"))
        .args([
            "demo",
            "--jobs",
            "4",
            "--job-ms",
            "1000",
            "--timeout-secs",
            "120",
        ])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("anklet demo: a local fleet with stand-ins"));
    assert!(stdout.contains("4/4 jobs completed once · 0 runners left · 0 VMs left"));
    assert!(stdout.contains("✓ demo passed"));
}
