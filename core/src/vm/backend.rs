//! Which VM backend serves a job: Anka by default, tart or a dry run when the host's config or
//! the job's `anklet-backend:<kind>` label says so. A pure function, so the simulator and both
//! daemons route the same way.

/// Prefix of the label that picks a backend for one job.
pub const BACKEND_LABEL: &str = "anklet-backend:";

/// The VM backends a runtime can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Veertu's `anka` CLI (see [`super::plan`]).
    Anka,
    /// Cirrus Labs' `tart` (command lines in [`super::tart`]).
    Tart,
    /// Logs each effect and answers success ([`super::dry_run`]).
    DryRun,
}

impl BackendKind {
    /// Reads a backend name as written in a label or config (`anka`, `tart`, `dry-run`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "anka" => Some(BackendKind::Anka),
            "tart" => Some(BackendKind::Tart),
            "dry-run" | "dry_run" | "dryrun" => Some(BackendKind::DryRun),
            _ => None,
        }
    }

    /// The spelling used in labels, config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Anka => "anka",
            BackendKind::Tart => "tart",
            BackendKind::DryRun => "dry-run",
        }
    }
}

/// A job asked for a backend this host does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown VM backend {0:?} in an `anklet-backend:` label")]
pub struct UnknownBackend(pub String);

/// The backend for a job: the first `anklet-backend:` label wins, else the host's default.
pub fn route<S: AsRef<str>>(
    labels: &[S],
    default: BackendKind,
) -> Result<BackendKind, UnknownBackend> {
    match labels
        .iter()
        .find_map(|l| l.as_ref().strip_prefix(BACKEND_LABEL))
    {
        None => Ok(default),
        Some(name) => BackendKind::parse(name).ok_or_else(|| UnknownBackend(name.to_owned())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_label_overrides_the_default() {
        let labels = ["self-hosted", "anklet-backend:tart", "anklet-backend:anka"];
        assert_eq!(route(&labels, BackendKind::Anka), Ok(BackendKind::Tart));
        assert_eq!(
            route(&["self-hosted"], BackendKind::DryRun),
            Ok(BackendKind::DryRun)
        );
        assert_eq!(
            route(&["anklet-backend:qemu"], BackendKind::Anka),
            Err(UnknownBackend("qemu".into()))
        );
        for k in [BackendKind::Anka, BackendKind::Tart, BackendKind::DryRun] {
            assert_eq!(BackendKind::parse(k.as_str()), Some(k));
        }
    }
}
