//! Contract test: every REST request our builders (`anklet_core::github::rest`) make is sent,
//! exactly as built, to `prism mock --errors` serving GitHub's own OpenAPI description
//! (`@octokit/openapi`), and must be accepted: a method, path, query, header or body that the
//! description does not allow fails the test. Prism answers a valid request with the
//! description's example, and our parser must read it (a parser that rejects GitHub's own
//! example is a bug).
//!
//! Two descriptions are served: api.github.com (repository, organisation and App calls) and
//! GitHub Enterprise Cloud (the only one with the `/enterprises/{enterprise}/actions/...`
//! calls). The tools come from `npm ci --prefix tests/contract` (scripts/test.sh runs it); when
//! they are missing this test fails with instructions, in CI and out of it: it never skips.
//!
//! One wrinkle of the description, not of our requests: its responses are declared as
//! `application/json`, so prism answers a valid request carrying GitHub's recommended
//! `Accept: application/vnd.github+json` with 406 (it validates the request first, so a 406 of
//! type NOT_ACCEPTABLE means "valid request, no example in that media type"). The example is
//! then fetched with the same request under `Accept: application/json`, also validated. Where
//! GitHub's example answer violates GitHub's own schema (prism reports only `response`
//! violations), the request still counts as valid and our parser is given the example straight
//! from the description; the run prints these as notes.
//!
//! The list of builders is checked against the source of `core/src/github/rest/`: a new
//! `pub fn` that returns an `HttpRequest` fails this test until it is added here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract_common;

use anklet_core::github::http::{ACCEPT, HttpRequest, HttpResponse};
use anklet_core::github::link::NextPage;
use anklet_core::github::rest::{ApiScope, apps, deliveries, jobs, runners};
use contract_common::{PrismMock, Tools};
use std::io::Read;
use std::time::{Duration, Instant};

/// How long prism may take to load a description (about 10 s on one idle core).
const PRISM_READY: Duration = Duration::from_secs(180);

/// A dummy credential: prism checks no token, and no real one exists in tests.
const TOKEN: &str = "contract-test-token";

/// The checks of one answer: the summary on success, what went wrong otherwise.
type Check = Box<dyn Fn(&HttpResponse) -> Result<String, String>>;

/// One request our code makes and how to read GitHub's example answer to it.
struct Case {
    name: String,
    request: HttpRequest,
    check: Check,
}

fn case(
    name: impl Into<String>,
    request: HttpRequest,
    check: impl Fn(&HttpResponse) -> Result<String, String> + 'static,
) -> Case {
    Case {
        name: name.into(),
        request: request.with_bearer(TOKEN),
        check: Box::new(check),
    }
}

fn debug<T: std::fmt::Debug, E: std::fmt::Display>(r: Result<T, E>) -> Result<String, String> {
    r.map(|v| format!("{v:?}")).map_err(|e| e.to_string())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Sends a request the way the blocking runtime does (runtime-blocking/src/github.rs).
fn send(agent: &ureq::Agent, request: &HttpRequest) -> Result<HttpResponse, String> {
    let mut builder = ureq::http::Request::builder()
        .method(request.method.as_str())
        .uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let http = builder
        .body(request.body.clone().unwrap_or_default())
        .map_err(|e| format!("bad request: {e}"))?;
    let mut response = agent.run(http).map_err(|e| format!("transport: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(16 << 20)
        .read_to_end(&mut body)
        .map_err(|e| format!("read body: {e}"))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// What prism made of a request it accepted.
#[derive(Debug)]
enum Accepted {
    /// It answered with the description's example.
    Example,
    /// 406 NOT_ACCEPTABLE: the request is valid, but the description has no example in the
    /// asked-for media type (it declares `application/json` only).
    NotAcceptable,
    /// The request is valid, but GitHub's example for the answer violates GitHub's own schema
    /// (prism reports `response` violations as a 500): an inconsistency of the description.
    ExampleOffSchema(String),
}

/// What prism thinks of a request: accepted (see [`Accepted`]) or refused (`Err`, with its
/// reasons). Any violation located in the request refuses it.
fn verdict(request: &HttpRequest, response: &HttpResponse) -> Result<Accepted, String> {
    let body = String::from_utf8_lossy(&response.body);
    if let Some(v) = response.header("sl-violations") {
        let list: Vec<serde_json::Value> = serde_json::from_str(v).unwrap_or_default();
        let in_response = |x: &serde_json::Value| x["location"][0] == "response";
        if list.is_empty() || !list.iter().all(in_response) {
            return Err(format!("HTTP {}; violations: {v}", response.status));
        }
        return Ok(Accepted::ExampleOffSchema(v.to_owned()));
    }
    if response.is_success() {
        return Ok(Accepted::Example);
    }
    if response.status == 406
        && body.contains("NOT_ACCEPTABLE")
        && request.header("accept") == Some(ACCEPT)
    {
        return Ok(Accepted::NotAcceptable);
    }
    Err(format!("HTTP {}: {body}", response.status))
}

fn with_accept(request: &HttpRequest, accept: &str) -> HttpRequest {
    let mut r = request.clone();
    for (n, v) in &mut r.headers {
        if n.eq_ignore_ascii_case("accept") {
            *v = accept.to_owned();
        }
    }
    r
}

/// One OpenAPI description, read on first use (only needed when prism cannot serve an
/// example).
struct Description {
    path: std::path::PathBuf,
    json: std::cell::OnceCell<serde_json::Value>,
}

impl Description {
    fn new(path: &std::path::Path) -> Self {
        Self {
            path: path.to_path_buf(),
            json: std::cell::OnceCell::new(),
        }
    }

    fn json(&self) -> &serde_json::Value {
        self.json.get_or_init(|| {
            let text = std::fs::read(&self.path).expect("read the description");
            serde_json::from_slice(&text).expect("the description is JSON")
        })
    }

    /// The first success example the description gives for the operation `request` hits, as
    /// a response (status and body; no headers).
    fn example(&self, request: &HttpRequest) -> Result<HttpResponse, String> {
        let spec = self.json();
        let path = path_of(request).split('?').next().unwrap_or("");
        let segments: Vec<&str> = path.split('/').collect();
        let paths = spec["paths"].as_object().ok_or("no paths")?;
        // The template that matches with the most literal segments (as prism routes).
        let (_, item) = paths
            .iter()
            .filter_map(|(template, item)| {
                let t: Vec<&str> = template.split('/').collect();
                let fits = t.len() == segments.len()
                    && t.iter()
                        .zip(&segments)
                        .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()));
                fits.then(|| (t.iter().filter(|t| !t.starts_with('{')).count(), item))
            })
            .max_by_key(|(literals, _)| *literals)
            .ok_or_else(|| format!("no path of the description matches {path}"))?;
        let method = request.method.as_str().to_ascii_lowercase();
        let responses = item[&method]["responses"]
            .as_object()
            .ok_or_else(|| format!("no {method} operation"))?;
        let (status, response) = responses
            .iter()
            .filter(|(code, _)| code.starts_with('2'))
            .min_by_key(|(code, _)| code.as_str())
            .ok_or("no success response")?;
        let response = resolve(spec, response);
        let media = &response["content"]["application/json"];
        let value = match media["examples"]
            .as_object()
            .and_then(|e| e.values().next())
        {
            Some(example) => resolve(spec, example)["value"].clone(),
            None => media["example"].clone(),
        };
        Ok(HttpResponse::new(
            status.parse().map_err(|_| "status is not a number")?,
            serde_json::to_vec(&value).map_err(|e| e.to_string())?,
        ))
    }
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a serde_json::Value, v: &'a serde_json::Value) -> &'a serde_json::Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => spec.pointer(pointer).unwrap_or(&serde_json::Value::Null),
        None => v,
    }
}

/// Sends one case; `Err` says what prism refused or what our parser rejected. Notes about the
/// description itself (not our requests) are pushed to `notes`.
fn run_case(
    agent: &ureq::Agent,
    description: &Description,
    c: &Case,
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let answer = send(agent, &c.request)?;
    let first = verdict(&c.request, &answer)
        .map_err(|e| format!("prism refused the request as built: {e}"))?;
    let example = match first {
        Accepted::Example => answer,
        Accepted::NotAcceptable | Accepted::ExampleOffSchema(_) => {
            let json = with_accept(&c.request, "application/json");
            let again = send(agent, &json)?;
            match verdict(&json, &again)
                .map_err(|e| format!("prism refused it under Accept: application/json: {e}"))?
            {
                Accepted::Example => again,
                Accepted::NotAcceptable => return Err("406 under application/json".into()),
                Accepted::ExampleOffSchema(why) => {
                    notes.push(format!(
                        "{}: GitHub's example answer violates GitHub's own schema ({why}); our \
                         parser was given the example from the description",
                        c.name
                    ));
                    description.example(&c.request)?
                }
            }
        }
    };
    (c.check)(&example).map_err(|e| {
        format!(
            "our parser rejected GitHub's example (HTTP {}): {e}",
            example.status
        )
    })
}

fn path_of(request: &HttpRequest) -> &str {
    let rest = request.url.split_once("://").map_or("", |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

/// The requests of a repository or organisation scope (api.github.com).
fn scope_cases(base: &str, scope: &ApiScope, label: &str) -> Vec<Case> {
    let jit = runners::JitRequest::new(
        "anklet-vm-mac-mini-1-289782451-1",
        runners::DEFAULT_RUNNER_GROUP_ID,
        &[
            "anka-template:d792c6f6-198c-470f-9526-9c998efe7ab4".to_owned(),
            "anka-template-tag:vanilla+port-forward-8080".to_owned(),
            "macOS".to_owned(),
        ],
    );
    let mut cases = vec![
        case(
            format!("{label} registration token"),
            runners::registration_token(base, scope),
            |r| debug(runners::parse_runner_token(r)),
        ),
        case(
            format!("{label} remove token"),
            runners::remove_token(base, scope),
            |r| debug(runners::parse_runner_token(r)),
        ),
        case(
            format!("{label} generate-jitconfig"),
            runners::generate_jitconfig(base, scope, &jit),
            |r| debug(runners::parse_jitconfig(r)),
        ),
        case(
            format!("{label} list runners"),
            runners::list_runners(base, scope, None, None),
            |r| debug(runners::parse_runner_page(r)),
        ),
        case(
            format!("{label} list runners by name"),
            runners::list_runners(base, scope, Some("anklet-vm-mac mini/1-289782451-1"), None),
            |r| debug(runners::parse_runner_page(r)),
        ),
        case(
            format!("{label} list runners, page 2"),
            runners::list_runners(base, scope, Some("r"), Some(&NextPage::Page(2))),
            |r| debug(runners::parse_runner_page(r)),
        ),
        case(
            format!("{label} get runner"),
            runners::get_runner(base, scope, 23),
            |r| debug(runners::parse_runner(r)),
        ),
        case(
            format!("{label} delete runner"),
            runners::delete_runner(base, scope, 23),
            |r| debug(runners::parse_delete_runner(r)),
        ),
    ];
    if !matches!(scope, ApiScope::Repository { .. }) {
        cases.push(case(
            format!("{label} list runner groups"),
            runners::list_runner_groups(base, scope, None),
            |r| debug(runners::parse_runner_groups(r)),
        ));
        cases.push(case(
            format!("{label} list runner groups, page 2"),
            runners::list_runner_groups(base, scope, Some(&NextPage::Page(2))),
            |r| debug(runners::parse_runner_groups(r)),
        ));
    }
    let hook = 12_345_678;
    let optional = |what: &str, r: Option<HttpRequest>| -> HttpRequest {
        r.unwrap_or_else(|| panic!("{label}: no {what} request"))
    };
    cases.extend([
        case(
            format!("{label} list hook deliveries"),
            optional(
                "deliveries",
                deliveries::list_deliveries(base, scope, hook, None),
            ),
            |r| debug(deliveries::parse_delivery_page(r)),
        ),
        case(
            format!("{label} list hook deliveries, next cursor"),
            optional(
                "deliveries",
                deliveries::list_deliveries(
                    base,
                    scope,
                    hook,
                    Some(&NextPage::Cursor("v1_12077215967".into())),
                ),
            ),
            |r| debug(deliveries::parse_delivery_page(r)),
        ),
        case(
            format!("{label} get hook delivery"),
            optional(
                "delivery",
                deliveries::get_delivery(base, scope, hook, 12_345_678_901),
            ),
            |r| {
                deliveries::parse_delivery(r)
                    .map(|d| format!("{:?} payload {} bytes", d.summary, d.payload.len()))
                    .map_err(|e| e.to_string())
            },
        ),
        case(
            format!("{label} redeliver"),
            optional(
                "redeliver",
                deliveries::redeliver(base, scope, hook, 12_345_678_901),
            ),
            |r| debug(deliveries::parse_redeliver(r)),
        ),
        case(
            format!("{label} find App installation"),
            optional("installation", apps::find_installation(base, scope)),
            |r| debug(apps::parse_installation_id(r)),
        ),
    ]);
    cases
}

/// Every request of the api.github.com description.
fn dotcom_cases(base: &str) -> Vec<Case> {
    let repo = ApiScope::Repository {
        owner: "octo-org".into(),
        repo: "octo.repo_1".into(),
    };
    let org = ApiScope::Organization("octo-org".into());
    let mut cases = scope_cases(base, &repo, "repo");
    cases.extend(scope_cases(base, &org, "org"));
    cases.extend([
        case(
            "get workflow job",
            jobs::get_job(base, "octo-org", "octo.repo_1", 399_444_496),
            |r| debug(jobs::parse_job(r)),
        ),
        case(
            "cancel workflow run",
            jobs::cancel_workflow_run(base, "octo-org", "octo.repo_1", 30_433_642),
            |r| debug(jobs::parse_cancel(r)),
        ),
        case(
            "App installation token",
            apps::installation_token(base, 1_296_269),
            |r| debug(apps::parse_installation_token(r)),
        ),
    ]);
    cases
}

/// Every request of an enterprise scope (GitHub Enterprise Cloud description).
fn enterprise_cases(base: &str) -> Vec<Case> {
    let ent = ApiScope::Enterprise("octo-enterprise".into());
    assert!(
        apps::find_installation(base, &ent).is_none()
            && deliveries::list_deliveries(base, &ent, 1, None).is_none()
            && deliveries::get_delivery(base, &ent, 1, 1).is_none()
            && deliveries::redeliver(base, &ent, 1, 1).is_none(),
        "enterprises have no installation lookup or hooks API; a builder that makes one must be \
         added to this test"
    );
    let jit = runners::JitRequest::new("anklet-vm-h-1-1", 3, &["anka-template:t".to_owned()]);
    vec![
        case(
            "enterprise registration token",
            runners::registration_token(base, &ent),
            |r| debug(runners::parse_runner_token(r)),
        ),
        case(
            "enterprise remove token",
            runners::remove_token(base, &ent),
            |r| debug(runners::parse_runner_token(r)),
        ),
        case(
            "enterprise generate-jitconfig",
            runners::generate_jitconfig(base, &ent, &jit),
            |r| debug(runners::parse_jitconfig(r)),
        ),
        case(
            "enterprise list runners",
            runners::list_runners(base, &ent, None, None),
            |r| debug(runners::parse_runner_page(r)),
        ),
        case(
            "enterprise list runners by name, page 3",
            runners::list_runners(
                base,
                &ent,
                Some("anklet-vm-h-1-1"),
                Some(&NextPage::Page(3)),
            ),
            |r| debug(runners::parse_runner_page(r)),
        ),
        case(
            "enterprise get runner",
            runners::get_runner(base, &ent, 42),
            |r| debug(runners::parse_runner(r)),
        ),
        case(
            "enterprise delete runner",
            runners::delete_runner(base, &ent, 42),
            |r| debug(runners::parse_delete_runner(r)),
        ),
        case(
            "enterprise list runner groups",
            runners::list_runner_groups(base, &ent, None),
            |r| debug(runners::parse_runner_groups(r)),
        ),
    ]
}

/// Every request builder this test sends (their names in `core/src/github/rest/*.rs`).
const COVERED: &[&str] = &[
    "apps::find_installation",
    "apps::installation_token",
    "deliveries::get_delivery",
    "deliveries::list_deliveries",
    "deliveries::redeliver",
    "jobs::cancel_workflow_run",
    "jobs::get_job",
    "runners::delete_runner",
    "runners::generate_jitconfig",
    "runners::get_runner",
    "runners::list_runner_groups",
    "runners::list_runners",
    "runners::registration_token",
    "runners::remove_token",
];

/// The `pub fn`s of `core/src/github/rest/*.rs` that return an `HttpRequest` (or an
/// `Option` of one), as `module::name`.
fn builders_in_source() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src/github/rest");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("core/src/github/rest") {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("pub fn ") {
            let sig = &text[i..];
            let sig = &sig[..sig.find('{').unwrap_or(sig.len())];
            if sig.contains("-> HttpRequest") || sig.contains("-> Option<HttpRequest>") {
                let name = sig["pub fn ".len()..].split(['(', '<']).next().unwrap();
                found.push(format!("{module}::{name}"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_request_builder_is_covered() {
    assert_eq!(
        builders_in_source(),
        COVERED,
        "core/src/github/rest/ has request builders this contract test does not send: add \
         cases for them (and to COVERED)"
    );
}

/// Broken requests prism must refuse: proof that it validates (so a pass means something),
/// each with the builders' own headers (so a 406 cannot hide a refusal).
fn negative_controls(base: &str) -> Vec<(&'static str, HttpRequest)> {
    let scope = ApiScope::Repository {
        owner: "o".into(),
        repo: "r".into(),
    };
    let good = runners::generate_jitconfig(
        base,
        &scope,
        &runners::JitRequest::new("n", 1, &["l".to_owned()]),
    );
    let mut no_group = good.clone();
    no_group.body =
        Some(br#"{"name":"n","labels":["self-hosted"],"work_folder":"_work"}"#.to_vec());
    let mut group_as_text = good.clone();
    group_as_text.body = Some(
        br#"{"name":"n","runner_group_id":"1","labels":["self-hosted"],"work_folder":"_work"}"#
            .to_vec(),
    );
    let mut wrong_path = runners::registration_token(base, &scope);
    wrong_path.url = wrong_path.url.replace("/runners/", "/runner/");
    let mut delete_as_get = runners::delete_runner(base, &scope, 1);
    delete_as_get.url = delete_as_get
        .url
        .replace("/runners/1", "/runners/registration-token");
    let mut bad_query = runners::list_runners(base, &scope, None, None);
    bad_query.url = bad_query.url.replace("per_page=100", "per_page=all");
    let org = ApiScope::Organization("o".into());
    let mut enterprise_only = runners::list_runner_groups(base, &org, None);
    enterprise_only.url = enterprise_only.url.replace("/orgs/o/", "/enterprises/o/");
    vec![
        ("JIT body without runner_group_id", no_group),
        ("JIT body with runner_group_id as a string", group_as_text),
        ("a path GitHub does not have", wrong_path),
        ("a method the path does not take", delete_as_get),
        ("a per_page that is not an integer", bad_query),
        ("an enterprise path on api.github.com", enterprise_only),
    ]
    .into_iter()
    .map(|(n, r)| (n, r.with_bearer(TOKEN)))
    .collect()
}

#[test]
fn every_request_our_builders_make_is_valid_against_githubs_openapi_description() {
    let started = Instant::now();
    let tools = Tools::find().unwrap_or_else(|e| {
        panic!("the contract test cannot run: {e}");
    });
    eprintln!("node {} / prism / @octokit/openapi", tools.node_version);
    // Both descriptions load at once (about 10 s each).
    let (dotcom, ghec) = std::thread::scope(|s| {
        let ghec = s.spawn(|| PrismMock::start(&tools, &tools.ghec_spec, PRISM_READY));
        let dotcom = PrismMock::start(&tools, &tools.dotcom_spec, PRISM_READY);
        (dotcom, ghec.join().expect("prism start thread"))
    });
    let mut dotcom = dotcom.unwrap_or_else(|e| panic!("prism (api.github.com): {e}"));
    let mut ghec = ghec.unwrap_or_else(|e| panic!("prism (ghec): {e}"));
    eprintln!("prism ready after {:.1?}", started.elapsed());
    let agent = agent();

    let mut failures = Vec::new();
    let mut passed = 0;
    let mut notes = Vec::new();
    for (what, spec, cases) in [
        (
            "api.github.com",
            &tools.dotcom_spec,
            dotcom_cases(&dotcom.base_url()),
        ),
        ("ghec", &tools.ghec_spec, enterprise_cases(&ghec.base_url())),
    ] {
        let description = Description::new(spec);
        for c in &cases {
            match run_case(&agent, &description, c, &mut notes) {
                Ok(summary) => {
                    passed += 1;
                    eprintln!(
                        "ok   [{what}] {}: {} {}\n       example: {}",
                        c.name,
                        c.request.method,
                        path_of(&c.request),
                        summary.chars().take(300).collect::<String>()
                    );
                }
                Err(e) => {
                    eprintln!("FAIL [{what}] {}: {e}", c.name);
                    failures.push(format!(
                        "[{what}] {} ({} {}): {e}",
                        c.name,
                        c.request.method,
                        path_of(&c.request)
                    ));
                }
            }
        }
    }
    for (name, request) in negative_controls(&dotcom.base_url()) {
        let answer = send(&agent, &request).expect("send a negative control");
        match verdict(&request, &answer) {
            Err(why) => eprintln!(
                "ok   [negative control] {name} refused: {}",
                why.chars().take(200).collect::<String>()
            ),
            Ok(_) => failures.push(format!(
                "prism accepted a broken request ({name}: {} {}): it is not validating",
                request.method,
                path_of(&request)
            )),
        }
    }
    for note in &notes {
        eprintln!("note: {note}");
    }
    assert!(dotcom.is_running() && ghec.is_running(), "prism died");
    eprintln!(
        "{passed} requests valid, {} failures, in {:.1?}",
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} request(s) do not match GitHub's OpenAPI description:\n{}\n\nprism log \
         (api.github.com):\n{}\n\nprism log (ghec):\n{}",
        failures.len(),
        failures.join("\n"),
        dotcom.log_tail(),
        ghec.log_tail()
    );
}
