//! Self-hosted runners: where they are registered (repo, org or enterprise), their labels, and
//! whether they are online and busy, as the runners API shows them.

use serde::Serialize;

/// The level a runner is registered at; it decides which jobs the runner may get and which
/// runners API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum Scope {
    /// `/repos/{owner}/{repo}`.
    Repo {
        /// Owner login.
        owner: String,
        /// Repository name.
        repo: String,
    },
    /// `/orgs/{org}`.
    Org {
        /// Organisation login.
        org: String,
    },
    /// `/enterprises/{enterprise}`: every job of the emulator.
    Enterprise {
        /// Enterprise slug.
        enterprise: String,
    },
}

impl Scope {
    /// Whether a job of `owner/repo` may run on a runner registered here.
    pub fn covers(&self, owner: &str, repo: &str) -> bool {
        match self {
            Scope::Repo { owner: o, repo: r } => {
                o.eq_ignore_ascii_case(owner) && r.eq_ignore_ascii_case(repo)
            }
            Scope::Org { org } => org.eq_ignore_ascii_case(owner),
            Scope::Enterprise { .. } => true,
        }
    }

    /// The web path of the scope (`owner/repo`, `org`, `enterprises/e`), used for `gitHubUrl`.
    pub fn web_path(&self) -> String {
        match self {
            Scope::Repo { owner, repo } => format!("{owner}/{repo}"),
            Scope::Org { org } => org.clone(),
            Scope::Enterprise { enterprise } => format!("enterprises/{enterprise}"),
        }
    }

    /// Whether two scopes are the same registration level and name.
    pub fn same(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Repo { owner: a, repo: b }, Scope::Repo { owner: c, repo: d }) => {
                a.eq_ignore_ascii_case(c) && b.eq_ignore_ascii_case(d)
            }
            (Scope::Org { org: a }, Scope::Org { org: b }) => a.eq_ignore_ascii_case(b),
            (Scope::Enterprise { enterprise: a }, Scope::Enterprise { enterprise: b }) => {
                a.eq_ignore_ascii_case(b)
            }
            _ => false,
        }
    }
}

/// One registered runner. Its session credential is kept elsewhere and never shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Runner {
    /// Runner id (`runner.id`, `agentId`).
    pub id: u64,
    /// Runner name, unique in its scope.
    pub name: String,
    /// Registration level.
    pub scope: Scope,
    /// Labels as registered.
    pub labels: Vec<String>,
    /// Takes one job, then is removed.
    pub ephemeral: bool,
    /// Made with generate-jitconfig (else registered with a registration token).
    pub jit: bool,
    /// Has a runner-service session.
    pub online: bool,
    /// The current session id.
    pub session_id: Option<String>,
    /// The job it runs (busy while that job is in progress).
    pub job_id: Option<u64>,
    /// The queued job it was made for, as far as the emulator can tell (the job whose id
    /// appears in its name, else the oldest matching job no other runner was made for).
    pub made_for: Option<u64>,
    /// Whether a job it had has ended (an ephemeral runner takes no other).
    pub done: bool,
}

/// Label names GitHub marks `read-only` (the runner's default labels).
const READ_ONLY: [&str; 9] = [
    "self-hosted",
    "macos",
    "linux",
    "windows",
    "x64",
    "x86",
    "arm",
    "arm64",
    "osx",
];

/// `read-only` for default labels, `custom` for the rest, as the runners API types them.
pub fn label_type(name: &str) -> &'static str {
    if READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        "read-only"
    } else {
        "custom"
    }
}

/// The job id a runner name mentions (`anklet-host-14541957942-1` names job 14541957942): a
/// run of digits in the name equal to one of `candidates`.
pub fn job_named_in(name: &str, candidates: &[u64]) -> Option<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u64>().ok())
        .find(|n| candidates.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_jobs() {
        let org = Scope::Org { org: "Acme".into() };
        assert!(org.covers("acme", "x"));
        assert!(!org.covers("other", "x"));
        let repo = Scope::Repo {
            owner: "a".into(),
            repo: "b".into(),
        };
        assert!(repo.covers("a", "b") && !repo.covers("a", "c"));
        assert!(
            Scope::Enterprise {
                enterprise: "e".into()
            }
            .covers("z", "z")
        );
    }

    #[test]
    fn names_point_at_jobs() {
        assert_eq!(
            job_named_in("anklet-h1-14541957942-2", &[14541957942]),
            Some(14541957942)
        );
        assert_eq!(job_named_in("runner-7", &[8]), None);
        assert_eq!(label_type("macOS"), "read-only");
        assert_eq!(label_type("anka-template:x"), "custom");
    }
}
