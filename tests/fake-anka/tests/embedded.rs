//! The library entry point used in-process, as a daemon embedding the fake would: `run_at` with
//! in-memory streams gives the same envelopes and exit statuses as the binary.

use std::ffi::OsString;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use fake_anka::{Io, run_at};
use serde_json::Value;

/// A writer whose bytes the test can read afterwards.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

fn call(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let (out, err) = (Buf::default(), Buf::default());
    let code = run_at(
        home,
        args.iter().map(OsString::from).collect(),
        Io {
            stdin: Box::new(io::empty()),
            stdout: Box::new(out.clone()),
            stderr: Box::new(err.clone()),
        },
    );
    (code, out.text(), err.text())
}

#[test]
fn run_at_answers_like_the_binary() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (code, out, _) = call(dir.path(), &[]);
    assert_eq!(code, 0);
    assert!(out.contains("usage: anka"));

    let (code, out, _) = call(dir.path(), &["-j", "version"]);
    assert_eq!(code, 0);
    assert!(!out.ends_with('\n'));
    let env: Value = serde_json::from_str(&out)?;
    assert_eq!(env["body"]["version"], "3.9.1");

    let (code, out, err) = call(dir.path(), &["-j", "show", "ghost"]);
    assert_eq!(code, 3);
    let env: Value = serde_json::from_str(&out)?;
    assert_eq!(env["message"], "ghost: not found");
    assert!(err.starts_with("fake-anka:"));
    assert!(dir.path().join("state.json").exists());
    Ok(())
}
