//! Guards the architecture: core depends on no runtime, network or OS crate, and its source
//! never reads a clock or touches files, env, sockets, threads or processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "smol",
    "async-std",
    "mio",
    "redis",
    "reqwest",
    "ureq",
    "hyper",
    "axum",
    "tiny_http",
    "sysinfo",
    "process-wrap",
    "signal-hook",
    "nix",
    "libc",
];

const FORBIDDEN_CALLS: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "std::thread",
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "thread::sleep",
];

#[test]
fn core_dependency_tree_has_no_io_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "anklet-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"serde"),
        "cargo tree output looks wrong:\n{tree}"
    );
    let bad: Vec<&&str> = FORBIDDEN_CRATES
        .iter()
        .filter(|c| names.contains(c))
        .collect();
    assert!(
        bad.is_empty(),
        "anklet-core depends on IO crates {bad:?}:\n{tree}"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_source_touches_no_clock_or_os() {
    let mut files = vec![];
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5, "found too few source files: {files:?}");
    let mut hits = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for call in FORBIDDEN_CALLS {
                if code.contains(call) {
                    hits.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "core/src reads a clock or touches the OS:\n{}",
        hits.join("\n")
    );
}
