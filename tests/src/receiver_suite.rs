//! The receiver behaviour both daemons must show over real HTTP, as functions each runtime's
//! tests call with the address of its own server: one suite, two implementations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use hmac::{KeyInit, Mac};

/// The secret the suite signs with; servers under test must be configured with it.
pub const SECRET: &str = "receiver-suite-test-secret";

/// A `workflow_job` `queued` payload for `job` with an anka-template label.
pub fn queued_payload(job: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "action": "queued",
        "workflow_job": {
            "id": job, "run_id": 9, "labels": ["self-hosted", "anka-template:t1"],
            "status": "queued", "runner_name": null, "conclusion": null
        },
        "repository": { "name": "app", "full_name": "acme/app", "owner": { "login": "acme" } }
    }))
    .unwrap()
}

/// `sha256=<hex>` of `body` under [`SECRET`], as GitHub signs.
pub fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An HTTP client that reports 4xx/5xx as statuses, not errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .build()
        .into()
}

/// Posts a `workflow_job` delivery; returns status and body.
pub fn post(base: &str, guid: &str, body: &[u8], signature: Option<&str>) -> (u16, String) {
    let mut req = agent()
        .post(format!("{base}/jobs/v1/receiver"))
        .header("X-GitHub-Event", "workflow_job")
        .header("X-GitHub-Delivery", guid)
        .header("Content-Type", "application/json");
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature-256", sig);
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// Posts a correctly signed `queued` delivery for `job`.
pub fn post_job(base: &str, guid: &str, job: u64) -> (u16, String) {
    let body = queued_payload(job);
    post(base, guid, &body, Some(&sign(&body)))
}

/// Signed → 200 and stored (`has_job` reads the server's store); tampered, unsigned and
/// malformed → 401/401/400 and nothing stored; healthcheck and Anklet's `/jobs` answer.
pub fn routes_and_signatures(base: &str, has_job: &dyn Fn(u64) -> bool) {
    let (status, text) = post_job(base, "suite-1", 101);
    assert_eq!(status, 200, "{text}");
    assert!(has_job(101), "a 200 means the job is in the store");

    let body = queued_payload(102);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(post(base, "suite-2", &tampered, Some(&sign(&body))).0, 401);
    assert_eq!(post(base, "suite-3", &body, None).0, 401);
    assert_eq!(post(base, "suite-4", b"{", Some(&sign(b"{"))).0, 400);
    assert!(!has_job(102), "refused deliveries store nothing");

    let mut resp = agent().get(format!("{base}/healthcheck")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "ok");
    let resp = agent().post(format!("{base}/jobs")).send(&b""[..]).unwrap();
    assert_eq!(resp.status().as_u16(), 501);
}

/// A body over 25 MiB is never accepted: a 413, or the connection cut while sending.
pub fn oversized_is_refused(base: &str) {
    let big = vec![b' '; anklet_core::receiver::MAX_BODY_BYTES + 1];
    let result = agent()
        .post(format!("{base}/jobs/v1/receiver"))
        .header("X-GitHub-Event", "workflow_job")
        .header("X-Hub-Signature-256", &sign(&big))
        .send(&big[..]);
    if let Ok(resp) = result {
        assert_eq!(resp.status().as_u16(), 413);
    }
}

/// `threads` × `per_thread` distinct jobs from `first_job` on, posted concurrently, all 200.
pub fn concurrent_deliveries(base: &str, threads: u64, per_thread: u64, first_job: u64) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let base = base.to_owned();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let job = first_job + t * per_thread + i;
                    let (status, text) = post_job(&base, &format!("c{job}"), job);
                    assert_eq!(status, 200, "{text}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// After the store went down, a delivery gets 503; `restore` brings the store back, and
/// GitHub's redelivery (same GUID and body) is then stored.
pub fn outage_then_redelivery(
    base: &str,
    restore: &mut dyn FnMut(),
    has_job: &dyn Fn(u64) -> bool,
) {
    let (status, text) = post_job(base, "lost-1", 7);
    assert_eq!(status, 503, "{text}");
    restore();
    let stored = (0..50).any(|_| {
        let ok = post_job(base, "lost-1", 7).0 == 200;
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(stored, "the redelivery was stored once the store was back");
    assert!(has_job(7));
}

/// `connections` keep-alive connections opened in one burst, then a request on each: every
/// one is answered within `within` while all the others stay open. GitHub opens connections
/// in bursts; a server that parks a connection until another one closes makes that delivery
/// time out on GitHub's side (10 s).
pub fn keep_alive_burst(base: &str, connections: usize, within: std::time::Duration) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut streams: Vec<std::net::TcpStream> = (0..connections)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for s in &mut streams {
        s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: suite\r\n\r\n")
            .unwrap();
    }
    let start = std::time::Instant::now();
    for (i, s) in streams.iter_mut().enumerate() {
        let left = within.saturating_sub(start.elapsed());
        s.set_read_timeout(Some(left.max(std::time::Duration::from_millis(1))))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) => panic!("connection {i} closed before its response"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "connection {i} of {connections} got no response within {within:?} \
                     while the others stay open: {e}"
                ),
            }
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "connection {i}: {}",
            String::from_utf8_lossy(&got)
        );
    }
    drop(streams);
}

/// `threads` clients post the same `jobs` jobs from `first_job` on at once, each delivery with
/// its own GUID (GitHub's redeliveries of one event): every job is stored once, exactly one
/// of its deliveries is answered `enqueued` and the others `already_known`, all with 200.
pub fn concurrent_duplicates(base: &str, threads: u64, jobs: u64, first_job: u64) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let base = base.to_owned();
            std::thread::spawn(move || {
                (0..jobs)
                    .map(|i| {
                        let job = first_job + i;
                        let (status, text) = post_job(&base, &format!("d{job}-{t}"), job);
                        assert_eq!(status, 200, "{text}");
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                        v["result"] == "enqueued"
                    })
                    .collect::<Vec<bool>>()
            })
        })
        .collect();
    let mut enqueued = vec![0u64; usize::try_from(jobs).unwrap()];
    for h in handles {
        for (i, fresh) in h.join().unwrap().into_iter().enumerate() {
            enqueued[i] += u64::from(fresh);
        }
    }
    assert!(
        enqueued.iter().all(|n| *n == 1),
        "each job is answered `enqueued` exactly once: {enqueued:?}"
    );
}
