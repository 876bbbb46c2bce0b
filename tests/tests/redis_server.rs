//! The test server helper itself: start, ping, kill, restart on the same port with AOF.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anklet_tests::redis_server::{RedisServer, ServerOptions, must_start};

fn cli(s: &RedisServer, args: &[&str]) -> String {
    let out = s.cli(args).unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn aof_survives_sigkill_and_restart_on_the_same_port() {
    let mut s = must_start(ServerOptions {
        aof: true,
        ..ServerOptions::default()
    });
    let port = s.port();
    assert_eq!(s.url(), format!("redis://127.0.0.1:{port}/"));
    assert_eq!(cli(&s, &["SET", "k", "v"]), "OK");
    s.kill();
    assert!(!s.is_running());
    assert!(s.cli(&["PING"]).unwrap().stdout.is_empty() || cli(&s, &["PING"]) != "PONG");
    s.restart().unwrap();
    assert_eq!(s.port(), port);
    assert_eq!(cli(&s, &["GET", "k"]), "v");
}

#[test]
fn without_aof_a_restart_starts_empty() {
    let mut s = RedisServer::start().unwrap();
    assert_eq!(cli(&s, &["SET", "k", "v"]), "OK");
    s.restart().unwrap();
    assert_eq!(cli(&s, &["EXISTS", "k"]), "0");
}
