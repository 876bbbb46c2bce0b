//! The metrics server (tiny_http) under bursts of keep-alive connections: every connection is
//! answered while the others stay open. tiny_http 0.12.0's task pool queued a connection that
//! arrived while a just-woken worker still counted as idle, and nothing picked it up until some
//! keep-alive connection closed; the workspace patches the crate (vendor/tiny_http/PATCHED.md)
//! and this test fails without that patch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_core::metrics::Metrics;
use anklet_lite::clock::Clock;
use anklet_lite::metrics::{MetricsServer, MetricsSource};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a burst may take to be answered in full (a few milliseconds when it works).
const WITHIN: Duration = Duration::from_secs(5);

/// Reads one response (head and `Content-Length` body) from `s`, leaving the connection open.
fn read_response(s: &mut TcpStream, what: &str) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match s.read(&mut buf) {
            Ok(0) => panic!("{what} closed before its response"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{what} got no response within {WITHIN:?}: {e}"),
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or_else(|| panic!("{what}: no Content-Length in {head}"));
    while got.len() < head_end + length {
        match s.read(&mut buf) {
            Ok(0) => panic!("{what} closed inside its body"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{what}: body not complete within {WITHIN:?}: {e}"),
        }
    }
    (head, got.split_off(head_end))
}

/// Opens `n` connections at once, sends a metrics request on each, and checks every one is
/// answered within [`WITHIN`] while all stay open; returns them still open.
fn burst(addr: SocketAddr, round: usize, n: usize) -> Vec<TcpStream> {
    let mut streams: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for s in &mut streams {
        s.write_all(b"GET /metrics/v1?format=prometheus HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
    }
    let start = Instant::now();
    for (i, s) in streams.iter_mut().enumerate() {
        let left = WITHIN.saturating_sub(start.elapsed());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let what = format!("round {round}: keep-alive connection {i} of {n} (the others open)");
        let (head, body) = read_response(s, &what);
        assert!(head.starts_with("HTTP/1.1 200"), "{what}: {head}");
        assert!(!body.is_empty(), "{what}: empty metrics body");
    }
    streams
}

#[test]
fn every_keep_alive_connection_of_a_burst_is_answered() {
    let clock = Arc::new(Clock::new());
    let registry = Arc::new(Mutex::new(Metrics::new(clock.now())));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = MetricsServer::start(listener, MetricsSource::Local(registry), clock).unwrap();
    let addr = server.local_addr();
    // The pool's idle workers are waiting when the first burst comes (before, every early
    // connection got a new thread and the flaw rarely showed).
    std::thread::sleep(Duration::from_millis(200));
    let first = burst(addr, 1, 60);
    // Closed, those connections leave ~60 idle workers; a larger burst outruns them while the
    // woken ones have not yet taken their connection.
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    let mut second = burst(addr, 2, 100);

    // The connections are still usable: a second request on one is answered too.
    let s = &mut second[0];
    s.write_all(b"GET /metrics/v1?format=prometheus HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(WITHIN)).unwrap();
    let (head, _) = read_response(s, "a second request on a kept-alive connection");
    assert!(head.starts_with("HTTP/1.1 200"), "second request: {head}");
    drop(second);
    server.stop();
}
