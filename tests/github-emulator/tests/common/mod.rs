//! Shared helpers for the emulator's tests: a webhook receiver on loopback, an HTTP client
//! with timeouts, app JWTs signed with the test-only key, and an emulator factory.

#![allow(dead_code)]

use github_emulator::{AppConfig, Emulator, EmulatorConfig, EmulatorHandle};
use serde_json::Value;
use std::io::Read;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const PAT: &str = "ghp_emulatortest0000000000000000000000";
pub const SECRET: &str = "test-secret";
pub const APP_ID: u64 = 4242;
pub const PRIVATE_KEY: &str = include_str!("../../../fixtures/github/test-app-key.pem");
pub const PUBLIC_KEY: &str = include_str!("../../../fixtures/github/test-app-key.public.pem");
pub const WAIT: Duration = Duration::from_secs(10);

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn event(&self) -> &str {
        self.header("x-github-event").unwrap_or("")
    }

    pub fn action(&self) -> String {
        self.json()["action"].as_str().unwrap_or("").to_owned()
    }

    pub fn job_id(&self) -> u64 {
        self.json()["workflow_job"]["id"].as_u64().unwrap_or(0)
    }
}

/// A webhook receiver (tiny_http on 127.0.0.1) that records every request.
pub struct Receiver {
    pub url: String,
    got: Arc<(Mutex<Vec<Received>>, Condvar)>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("receiver binds"));
        let addr = server.server_addr().to_ip().expect("ip listener");
        let got: Arc<(Mutex<Vec<Received>>, Condvar)> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (s, g, st) = (Arc::clone(&server), Arc::clone(&got), Arc::clone(&status));
        let dl = Arc::clone(&delay_ms);
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = Vec::new();
                let _ = req.as_reader().take(1 << 20).read_to_end(&mut body);
                let headers = req
                    .headers()
                    .iter()
                    .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_owned()))
                    .collect();
                let code = st.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(dl.load(Ordering::SeqCst)));
                // Recorded before answering: once the emulator is idle, everything is here.
                let (m, c) = &*g;
                m.lock().expect("lock").push(Received { headers, body });
                c.notify_all();
                let _ = req.respond(tiny_http::Response::from_string("ok").with_status_code(code));
            }
        });
        Receiver {
            url: format!("http://{addr}/webhook"),
            got,
            status,
            delay_ms,
            server,
            thread: Some(thread),
        }
    }

    /// Answer this status from now on.
    pub fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Answer this late from now on.
    pub fn delay(&self, d: Duration) {
        self.delay_ms.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.0.lock().expect("lock").clone()
    }

    /// Waits (at most WAIT) until `pred` holds for the received list; returns the list.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let end = Instant::now() + WAIT;
        let (m, c) = &*self.got;
        let mut g = m.lock().expect("lock");
        while !pred(&g) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; got {:?}",
                summary(&g)
            );
            g = c.wait_timeout(g, left).expect("lock").0;
        }
        g.clone()
    }

    /// The `workflow_job` deliveries received, as (job id, action).
    pub fn job_events(&self) -> Vec<(u64, String)> {
        self.all()
            .iter()
            .filter(|r| r.event() == "workflow_job")
            .map(|r| (r.job_id(), r.action()))
            .collect()
    }

    pub fn wait_job_event(&self, job: u64, action: &str) -> Received {
        let all = self.wait_until(&format!("{action} of {job}"), |g| {
            g.iter()
                .any(|r| r.event() == "workflow_job" && r.job_id() == job && r.action() == action)
        });
        all.into_iter()
            .find(|r| r.event() == "workflow_job" && r.job_id() == job && r.action() == action)
            .expect("present")
    }
}

fn summary(g: &[Received]) -> Vec<String> {
    g.iter()
        .map(|r| format!("{} {} {}", r.event(), r.job_id(), r.action()))
        .collect()
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The emulator config the tests start from: one PAT, the test app, a secret, one hook.
pub fn config(receiver: &Receiver) -> EmulatorConfig {
    EmulatorConfig {
        webhook_urls: vec![receiver.url.clone()],
        webhook_secret: Some(SECRET.into()),
        pats: vec![PAT.into()],
        app: Some(AppConfig {
            app_id: APP_ID,
            client_id: Some("Iv1.testclient".into()),
            public_key_pem: PUBLIC_KEY.into(),
            installations: vec![],
        }),
        webhook_timeout: Duration::from_secs(5),
        ..EmulatorConfig::default()
    }
}

pub fn start(receiver: &Receiver) -> EmulatorHandle {
    Emulator::start(config(receiver)).expect("emulator starts")
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Makes a call; `auth` is the full Authorization value.
pub fn call(method: &str, url: &str, auth: Option<&str>, body: Option<&Value>) -> Answer {
    let agent = agent();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    builder = builder.header("accept", "application/vnd.github+json");
    if let Some(a) = auth {
        builder = builder.header("authorization", a);
    }
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let req = builder.body(payload).expect("request builds");
    let mut resp = agent.run(req).expect("call answered");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

pub fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

pub fn pat() -> Option<String> {
    Some(bearer(PAT))
}

/// GET/POST/DELETE with the PAT.
pub fn api(emu: &EmulatorHandle, method: &str, path: &str, body: Option<&Value>) -> Answer {
    call(
        method,
        &format!("{}{path}", emu.base_url()),
        pat().as_deref(),
        body,
    )
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An app JWT with the test key: `iat` and `exp` relative to now.
pub fn jwt(iss: Value, iat_off: i64, exp_off: i64) -> String {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).expect("test key");
    let claims =
        serde_json::json!({"iat": now_s() + iat_off, "exp": now_s() + exp_off, "iss": iss});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("jwt signs")
}

pub fn app_jwt() -> String {
    jwt(serde_json::json!(APP_ID), -60, 540)
}

/// Generates a JIT runner at repo level and returns (runner id, session token, raw response).
pub fn jit_runner(
    emu: &EmulatorHandle,
    owner: &str,
    repo: &str,
    name: &str,
    labels: &[&str],
) -> (u64, String, Answer) {
    let a = api(
        emu,
        "POST",
        &format!("/repos/{owner}/{repo}/actions/runners/generate-jitconfig"),
        Some(&serde_json::json!({"name": name, "runner_group_id": 1, "labels": labels})),
    );
    assert_eq!(a.status, 201, "{:?}", a.body);
    let files =
        github_emulator::decode_jit_config(a.body["encoded_jit_config"].as_str().unwrap_or(""))
            .expect("JIT config decodes");
    let id = files.runner_id().expect("agentId");
    let token = files.token().expect("token").to_owned();
    (id, token, a)
}

/// Runner-service call with the session token.
pub fn service(
    emu: &EmulatorHandle,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    call(
        method,
        &format!("{}/_emulator/runner-service{path}", emu.base_url()),
        Some(&bearer(token)),
        body,
    )
}

/// Opens a session and polls (bounded) until a job is assigned; returns (session, job id).
pub fn session_and_job(emu: &EmulatorHandle, runner_id: u64, token: &str) -> (String, u64) {
    let s = service(
        emu,
        token,
        "POST",
        "/sessions",
        Some(&serde_json::json!({"runner_id": runner_id})),
    );
    assert_eq!(s.status, 200, "{:?}", s.body);
    let sid = s.body["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let end = Instant::now() + WAIT;
    loop {
        let j = service(emu, token, "GET", &format!("/sessions/{sid}/job"), None);
        if j.status == 200 {
            return (sid, j.body["job_id"].as_u64().expect("job id"));
        }
        assert_eq!(j.status, 204);
        assert!(Instant::now() < end, "no job assigned in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}
