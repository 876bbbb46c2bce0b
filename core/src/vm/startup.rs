//! The start-up check Anklet makes before serving jobs (anka-cli.md §0): `anka -j version` and
//! `anka -j license show`. A host whose licence is not valid, or is a run/develop licence that
//! cannot run CI VMs, must not claim jobs; a host below Anka 3.9.0 cannot mount host folders.

use super::anka;
use super::error::AnkaError;
use super::output::interpret;
use super::process::{Invocation, ProcessOutput, Program};
use serde_json::Value;
use std::time::Duration;

/// Licence types Anklet refuses: they cannot run CI workloads.
pub const REFUSED_LICENCES: [&str; 2] = ["com.veertu.anka.run", "com.veertu.anka.develop"];

/// An Anka version, normalised the way Anklet does (cut at the first space, `v` stripped).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AnkaVersion {
    /// `[major, minor, patch]`; missing parts are 0.
    pub parts: [u64; 3],
    /// What anka printed.
    pub raw: String,
}

impl AnkaVersion {
    /// Reads `3.9.1`, `v4.0.1`, `3.9.0 (build 123)` or `3.9.1.216`.
    pub fn parse(raw: &str) -> Option<Self> {
        let head = raw.trim().split(' ').next()?;
        let head = head.strip_prefix(['v', 'V']).unwrap_or(head);
        let mut parts = [0u64; 3];
        let mut fields = head.split('.');
        for p in &mut parts {
            match fields.next() {
                Some(f) => *p = f.parse().ok()?,
                None => break,
            }
        }
        Some(Self {
            parts,
            raw: raw.to_owned(),
        })
    }

    /// Host-to-guest folder mounts need Anka 3.9.0 or later.
    pub fn supports_mounts(&self) -> bool {
        self.parts >= [3, 9, 0]
    }
}

/// What start-up learnt about the host's Anka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupReport {
    /// The CLI's version.
    pub version: AnkaVersion,
    /// The licence type, e.g. `com.veertu.anka.entplus`.
    pub licence_type: String,
    /// The product, when anka names it.
    pub product: Option<String>,
}

/// The two calls, in order: `version`, then `license show`.
pub fn invocations(timeout: Duration) -> [Invocation; 2] {
    let call = |args| Invocation {
        program: Program::Anka,
        args,
        stdin: None,
        timeout,
    };
    [call(anka::version()), call(anka::license_show())]
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads the two outputs; an unusable licence or an unreadable version is an error the
/// runtime reports before it claims anything.
pub fn report(
    version: &ProcessOutput,
    licence: &ProcessOutput,
) -> Result<StartupReport, AnkaError> {
    let v = interpret(version)?;
    let raw = text(&v.body, "version").ok_or_else(|| AnkaError::UnexpectedBody {
        what: "version",
        detail: "no version".into(),
    })?;
    let version = AnkaVersion::parse(&raw).ok_or_else(|| AnkaError::UnexpectedBody {
        what: "version",
        detail: format!("unreadable version {raw:?}"),
    })?;
    let l = interpret(licence)?;
    let status = text(&l.body, "status").unwrap_or_default();
    let licence_type = text(&l.body, "license_type").unwrap_or_default();
    if !status.eq_ignore_ascii_case("valid") {
        return Err(AnkaError::Refused {
            what: "licence",
            detail: format!("status is {status:?}, not \"valid\""),
        });
    }
    if REFUSED_LICENCES.contains(&licence_type.as_str()) {
        return Err(AnkaError::Refused {
            what: "licence",
            detail: format!("{licence_type} cannot run CI VMs"),
        });
    }
    Ok(StartupReport {
        version,
        licence_type,
        product: text(&l.body, "product").or_else(|| text(&v.body, "product")),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_normalised_like_anklet() {
        let v = |s| AnkaVersion::parse(s).map(|v| v.parts);
        assert_eq!(v("3.9.1"), Some([3, 9, 1]));
        assert_eq!(v("v4.0.1"), Some([4, 0, 1]));
        assert_eq!(v("3.9.0 (build 123)"), Some([3, 9, 0]));
        assert_eq!(v("3.9.1.216"), Some([3, 9, 1]));
        assert_eq!(v("3"), Some([3, 0, 0]));
        assert_eq!(v("x.y"), None);
        assert!(AnkaVersion::parse("3.9.0").unwrap().supports_mounts());
        assert!(!AnkaVersion::parse("3.8.7").unwrap().supports_mounts());
    }

    #[test]
    fn the_startup_calls_are_version_then_license_show() {
        let [a, b] = invocations(Duration::from_secs(5));
        assert_eq!((a.args, b.args), (anka::version(), anka::license_show()));
    }

    #[test]
    fn run_and_develop_licences_are_refused() {
        let version = ProcessOutput::exited(
            0,
            include_bytes!("../../../tests/fixtures/anka/version_ok.json").as_slice(),
        );
        let good = ProcessOutput::exited(
            0,
            include_bytes!("../../../tests/fixtures/anka/license_show_ok.json").as_slice(),
        );
        let r = report(&version, &good).unwrap();
        assert_eq!(
            (r.version.parts, r.licence_type.as_str()),
            ([3, 9, 1], "com.veertu.anka.entplus")
        );
        let develop = ProcessOutput::exited(
            0,
            r#"{"status":"OK","body":{"status":"valid","license_type":"com.veertu.anka.develop"}}"#,
        );
        assert!(matches!(
            report(&version, &develop),
            Err(AnkaError::Refused { .. })
        ));
        let expired = ProcessOutput::exited(
            0,
            r#"{"status":"OK","body":{"status":"expired","license_type":"com.veertu.anka.entplus"}}"#,
        );
        let e = report(&version, &expired).unwrap_err();
        assert_eq!(e.class(), crate::handler::FailureClass::Permanent);
    }
}
