//! Executable stand-in scripts for tests that spawn them from a multi-threaded test binary.
//!
//! A file still open for writing cannot be executed (ETXTBSY), and a test binary runs tests on
//! many threads: a child forked by one test while another writes a script inherits the write
//! descriptor until its own exec, so the script's first exec can fail at random under load.
//! Writing the file from a child process (`sh -c 'cat > …'`) means no descriptor of it is ever
//! open in the test process.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `body` to `path` and makes it executable (0755), from a child process.
///
/// # Panics
/// When `sh` cannot be run or the write fails: a test fixture that cannot be made is a test
/// failure.
pub fn write_executable(path: &Path, body: &str) {
    let fail = |what: &str, e: std::io::Error| -> ! {
        panic!("writing the script {}: {what}: {e}", path.display())
    };
    let mut child = Command::new("sh")
        .args(["-c", r#"cat > "$1" && chmod 755 "$1""#, "write_executable"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail("spawn sh", e));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(body.as_bytes())
            .unwrap_or_else(|e| fail("write to sh", e));
    }
    let status = child.wait().unwrap_or_else(|e| fail("wait for sh", e));
    assert!(
        status.success(),
        "writing {} failed: {status}",
        path.display()
    );
}
