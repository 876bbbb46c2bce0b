//! The webhook receiver's HTTP server: a thin loop around core's
//! [`Receiver`](anklet_core::receiver::Receiver).
//!
//! One thread accepts connections and hands each to a thread of its own, which serves that
//! connection's requests (HTTP/1.1 keep-alive, parsed with `httparse`) until the client closes
//! it, it idles for [`IDLE_TIMEOUT`], or the server stops. A connection therefore never waits
//! for another one. tiny_http (the metrics server's) was used here before: it has no read or
//! idle timeouts and no connection cap, so a client that stalls mid-request or idles on a
//! keep-alive connection holds a thread forever, and its task pool stranded a connection
//! arriving with another one (fixed in `vendor/tiny_http`). The receiver's port faces the
//! internet, so it bounds every read ([`READ_TIMEOUT`], [`IDLE_TIMEOUT`]) and the connections
//! ([`MAX_CONNECTIONS`]); `httparse` (hyper's parser) does the parsing.
//!
//! Each exchange reads the body (at most [`MAX_BODY_BYTES`]; a larger `Content-Length` is
//! refused with 413 before reading), verifies and parses it outside any lock, lets the machine
//! decide under a short mutex, runs the store operation outside it, and answers only after the
//! machine saw the store's answer. At most `workers` store operations other than enqueues run
//! at once, which bounds the store connections the receiver opens; enqueues are
//! group-committed by the Redis store (see [`Pool`](crate::store::shared::Pool)), so many
//! concurrent webhooks cost one commit in flight.
//! Every decision (routes, signature, parsing, status codes) is core's.

use crate::clock::Clock;
use crate::store::shared::SharedStore;
use anklet_core::queue::txn::Op;
use anklet_core::receiver::{
    HttpRequest, HttpResponse, MAX_BODY_BYTES, Receiver, ReceiverEffect, ReceiverNotice,
    ReceiverSettings, RequestId,
};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Called with every notice, for logs and metrics.
pub type NoticeSink = Arc<dyn Fn(&ReceiverNotice) + Send + Sync>;

/// How long a read or write may wait: a keep-alive connection idle that long between two
/// requests is closed, and so is one whose client stops sending (or reading) mid-request, so
/// neither holds a thread forever. One bound for both, set once per connection: setting it
/// around every request cost two system calls per webhook.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Most bytes of a request's head (request line and headers); a larger head is refused with
/// 431. GitHub's heads are under 2 KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most header lines of one request (431 beyond).
const MAX_HEADERS: usize = 100;

/// Most connections served at once; a connection beyond them is answered 503 and closed, so
/// a flood of connections cannot exhaust the process' threads.
pub const MAX_CONNECTIONS: usize = 4096;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The accepting thread could not be started.
    #[error("cannot start the HTTP server on {addr}: {source}")]
    Server {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The open connections, so stopping can close the idle ones and wait for the busy ones.
#[derive(Default)]
struct Connections {
    next: u64,
    open: HashMap<u64, Connection>,
}

struct Connection {
    /// A handle on the socket, to shut an idle connection down when the server stops.
    stream: Option<TcpStream>,
    /// [`IDLE`], [`BUSY`] or [`CLOSED`]: set by the connection's thread around each exchange
    /// without a shared lock, and by [`ReceiverServer::stop`] to close an idle connection.
    state: Arc<AtomicU8>,
    thread: Option<JoinHandle<()>>,
}

/// A connection waiting for its next request.
const IDLE: u8 = 0;
/// A connection in an exchange (its request is being read or answered).
const BUSY: u8 = 1;
/// A connection the server closed while it was idle.
const CLOSED: u8 = 2;

/// What a running receiver shares between its threads.
struct Shared {
    settings: ReceiverSettings,
    machine: Mutex<Receiver>,
    store: Arc<dyn SharedStore>,
    clock: Arc<Clock>,
    notices: NoticeSink,
    next_id: AtomicU64,
    /// Set first thing by [`ReceiverServer::stop`].
    stopping: AtomicBool,
    connections: Mutex<Connections>,
    /// Store operations that may still start (the `workers` bound).
    permits: Mutex<usize>,
    permit_freed: Condvar,
}

/// A running receiver; [`ReceiverServer::stop`] ends it.
pub struct ReceiverServer {
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
    addr: SocketAddr,
}

impl ReceiverServer {
    /// Listens on `addr` (e.g. `0.0.0.0:54321`, or port 0 for any); at most `workers` store
    /// operations other than enqueues run at once, however many connections are open.
    pub fn start(
        addr: &str,
        settings: ReceiverSettings,
        store: Arc<dyn SharedStore>,
        clock: Arc<Clock>,
        workers: usize,
        notices: NoticeSink,
    ) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(addr).map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        let shared = Arc::new(Shared {
            machine: Mutex::new(Receiver::new(settings.clone())),
            settings,
            store,
            clock,
            notices,
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            connections: Mutex::default(),
            permits: Mutex::new(workers.max(1)),
            permit_freed: Condvar::new(),
        });
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("receiver-accept".into())
            .spawn(move || accept_loop(&listener, &accepting))
            .map_err(|source| ServeError::Server {
                addr: addr.to_owned(),
                source,
            })?;
        Ok(Self {
            shared,
            acceptor,
            addr: bound,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking connections and requests, closes idle connections, lets the exchanges in
    /// flight finish, and joins every thread; nothing a client was answered 2xx for is lost.
    pub fn stop(self) {
        // A connection's thread marks itself idle, then looks at `stopping`: either it sees
        // it set, or this sees the connection idle and closes it (both SeqCst).
        self.shared.stopping.store(true, Ordering::SeqCst);
        let idle: Vec<TcpStream> = {
            let mut c = lock(&self.shared.connections);
            c.open
                .values_mut()
                .filter(|conn| {
                    conn.state
                        .compare_exchange(IDLE, CLOSED, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                })
                .filter_map(|conn| conn.stream.take())
                .collect()
        };
        for s in idle {
            // Wakes the thread blocked reading the next request; it sees `stopping` and ends.
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the acceptor with a connection of our own; it sees `stopping` and returns.
        let woken = TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(1));
        if woken.is_ok() {
            let _ = self.acceptor.join();
        }
        loop {
            let thread = {
                let mut c = lock(&self.shared.connections);
                c.open.values_mut().find_map(|conn| conn.thread.take())
            };
            match thread {
                Some(t) => {
                    let _ = t.join();
                }
                None => break,
            }
        }
    }
}

/// Where to connect to reach a listener bound to `addr` (a wildcard address is reached on
/// loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut to = addr;
    if addr.ip().is_unspecified() {
        to.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    to
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => admit(shared, stream),
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "receiver: accepting a connection failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Gives an accepted connection a thread of its own.
fn admit(shared: &Arc<Shared>, mut stream: TcpStream) {
    let state = Arc::new(AtomicU8::new(IDLE));
    let id = {
        let mut c = lock(&shared.connections);
        if c.open.len() >= MAX_CONNECTIONS {
            drop(c);
            tracing::warn!(
                limit = MAX_CONNECTIONS,
                "receiver: too many connections; refusing one with 503"
            );
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let busy = HttpResponse::text(503, "too many connections; try again");
            let _ = stream.write_all(&encode_response(&busy, false, false));
            return;
        }
        c.next += 1;
        let id = c.next;
        c.open.insert(
            id,
            Connection {
                stream: stream.try_clone().ok(),
                state: Arc::clone(&state),
                thread: None,
            },
        );
        id
    };
    let serving = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("receiver-conn".into())
        .spawn(move || {
            serve_connection(&serving, &state, stream);
            lock(&serving.connections).open.remove(&id);
        });
    let mut c = lock(&shared.connections);
    match spawned {
        Ok(thread) => {
            if let Some(conn) = c.open.get_mut(&id) {
                conn.thread = Some(thread);
            }
        }
        Err(e) => {
            c.open.remove(&id);
            drop(c);
            tracing::warn!(error = %e, "receiver: no thread for a new connection; closed it");
        }
    }
}

/// A connection's requests, one after the other, until it closes, idles out or the server
/// stops.
fn serve_connection(shared: &Shared, state: &AtomicU8, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let mut conn = Wire {
        stream,
        buf: Vec::with_capacity(8 * 1024),
        scratch: vec![0; 16 * 1024],
    };
    loop {
        if conn.buf.is_empty() && !matches!(conn.fill(), Ok(true)) {
            return;
        }
        if state
            .compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // Closed by `stop` while idle: the request that just arrived is not taken.
            return;
        }
        let keep_alive = exchange(shared, &mut conn);
        state.store(IDLE, Ordering::SeqCst);
        if !keep_alive || shared.stopping.load(Ordering::SeqCst) {
            let _ = conn.stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// A connection's socket and the bytes read from it but not yet used.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where reads land, zeroed once per connection (a fresh zeroed buffer per read was 12 %
    /// of the receiver's instructions).
    scratch: Vec<u8>,
}

impl Wire {
    /// Reads more bytes into the buffer; `Ok(false)` when the client closed.
    fn fill(&mut self) -> std::io::Result<bool> {
        loop {
            match self.stream.read(&mut self.scratch) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&self.scratch[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes exactly `n` bytes (first from the buffer, then from the socket).
    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
        let from_buf = n.min(self.buf.len());
        out.extend_from_slice(&self.buf[..from_buf]);
        self.buf.drain(..from_buf);
        let rest = n - from_buf;
        if rest > 0 {
            let start = out.len();
            out.resize(start + rest, 0);
            self.stream.read_exact(&mut out[start..])?;
        }
        Ok(())
    }

    /// Takes one CRLF-terminated line of at most `max` bytes (without the CRLF); `None` when
    /// it is longer.
    fn line(&mut self, max: usize) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return Ok(Some(line));
            }
            if self.buf.len() > max {
                return Ok(None);
            }
            if !self.fill()? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// A request's head, owned.
struct Head {
    method: String,
    path: String,
    http11: bool,
    headers: Vec<(String, String)>,
}

impl Head {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn keep_alive(&self) -> bool {
        if self.http11 {
            !self.has_token("Connection", "close")
        } else {
            self.has_token("Connection", "keep-alive")
        }
    }
}

/// How the body is framed.
enum Framing {
    Length(usize),
    Chunked,
}

/// Why a request is answered without reaching the machine (the connection is closed after).
enum Bad {
    /// The client went away or stalled: nothing to answer.
    Gone,
    /// Answer this status, then close.
    Status(u16, &'static str),
}

/// Reads the head from the wire; the bytes after it stay in the buffer.
fn read_head(conn: &mut Wire) -> Result<Head, Bad> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&conn.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    method: req.method.unwrap_or("").to_owned(),
                    path: req.path.unwrap_or("").to_owned(),
                    http11: req.version == Some(1),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                std::str::from_utf8(h.value).map_or_else(
                                    |_| String::from_utf8_lossy(h.value).into_owned(),
                                    str::to_owned,
                                ),
                            )
                        })
                        .collect(),
                };
                conn.buf.drain(..len);
                return Ok(head);
            }
            Ok(httparse::Status::Partial) => {
                if conn.buf.len() > MAX_HEAD_BYTES {
                    return Err(Bad::Status(431, "request head too large"));
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Bad::Status(431, "too many header lines"));
            }
            Err(_) => return Err(Bad::Status(400, "malformed HTTP request")),
        }
        match conn.fill() {
            Ok(true) => {}
            _ => return Err(Bad::Gone),
        }
    }
}

fn framing(head: &Head) -> Result<Framing, Bad> {
    let coding = head
        .values("Transfer-Encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .last();
    if let Some(coding) = coding {
        return if coding.eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(Bad::Status(501, "unsupported Transfer-Encoding"))
        };
    }
    let mut length = None;
    for v in head.values("Content-Length").flat_map(|v| v.split(',')) {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Bad::Status(400, "malformed Content-Length"));
        }
        // Digits beyond usize are certainly too large.
        let n = v.parse::<usize>().unwrap_or(usize::MAX);
        if length.is_some_and(|l| l != n) {
            return Err(Bad::Status(400, "conflicting Content-Length values"));
        }
        length = Some(n);
    }
    Ok(Framing::Length(length.unwrap_or(0)))
}

/// Reads a chunked body; `Ok(None)` when it exceeds [`MAX_BODY_BYTES`].
fn read_chunked(conn: &mut Wire) -> Result<Option<Vec<u8>>, Bad> {
    let mut body = Vec::new();
    loop {
        let line = match conn.line(1024) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(Bad::Status(400, "malformed chunk size")),
            Err(_) => return Err(Bad::Gone),
        };
        let size = line.split(|b| *b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or(Bad::Status(400, "malformed chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                match conn.line(MAX_HEAD_BYTES) {
                    Ok(Some(l)) if l.is_empty() => return Ok(Some(body)),
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(Bad::Status(431, "trailers too large")),
                    Err(_) => return Err(Bad::Gone),
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Ok(None);
        }
        conn.take(size, &mut body).map_err(|_| Bad::Gone)?;
        match conn.line(0) {
            Ok(Some(l)) if l.is_empty() => {}
            Ok(_) => return Err(Bad::Status(400, "malformed chunk")),
            Err(_) => return Err(Bad::Gone),
        }
    }
}

/// One exchange, start to finish; whether the connection stays open.
fn exchange(shared: &Shared, conn: &mut Wire) -> bool {
    let head = match read_head(conn) {
        Ok(head) => head,
        Err(bad) => return refuse_raw(conn, bad),
    };
    let framing = match framing(&head) {
        Ok(f) => f,
        Err(bad) => return refuse_raw(conn, bad),
    };
    let mut keep_alive = head.keep_alive();
    let id = RequestId(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let declared_too_large = matches!(framing, Framing::Length(n) if n > MAX_BODY_BYTES);
    let body = if declared_too_large {
        None
    } else {
        let expects_continue =
            head.http11 && head.has_token("Expect", "100-continue") && conn.buf.is_empty();
        if expects_continue
            && conn
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err()
        {
            return false;
        }
        match framing {
            Framing::Length(n) => {
                let mut body = Vec::with_capacity(n);
                if let Err(e) = conn.take(n, &mut body) {
                    tracing::debug!(error = %e, "receiver: client went away while sending the body");
                    return false;
                }
                Some(body)
            }
            Framing::Chunked => match read_chunked(conn) {
                Ok(body) => body,
                Err(bad) => return refuse_raw(conn, bad),
            },
        }
    };
    let response = {
        let Head {
            method,
            path,
            headers,
            ..
        } = head;
        let head_only = method == "HEAD";
        let response = match body {
            Some(body) => {
                let req = HttpRequest {
                    method,
                    path,
                    headers,
                    body,
                };
                // Routes, signature and parsing need no lock: only the outcome goes to the
                // machine.
                let checked = Receiver::check(&shared.settings, &req);
                let effects = {
                    let mut m = lock(&shared.machine);
                    m.handle_checked(id, checked);
                    std::iter::from_fn(|| m.poll_effect()).collect()
                };
                run_effects(shared, effects)
            }
            None => {
                // The body was not read: the connection cannot carry another request.
                keep_alive = false;
                let delivery = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("x-github-delivery"))
                    .map(|(_, v)| v.as_str());
                let effects = {
                    let mut m = lock(&shared.machine);
                    m.handle_oversized(id, delivery);
                    std::iter::from_fn(|| m.poll_effect()).collect()
                };
                run_effects(shared, effects)
            }
        };
        response.map(|r| (r, head_only))
    };
    let Some((response, head_only)) = response else {
        tracing::error!(%id, "receiver: the machine gave no response");
        return false;
    };
    let wire = encode_response(&response, keep_alive, head_only);
    if let Err(e) = conn.stream.write_all(&wire) {
        tracing::debug!(error = %e, "receiver: client went away before the response");
        return false;
    }
    keep_alive
}

/// Answers a request the machine never saw (malformed framing); always closes.
fn refuse_raw(conn: &mut Wire, bad: Bad) -> bool {
    if let Bad::Status(status, why) = bad {
        let _ = conn.stream.write_all(&encode_response(
            &HttpResponse::text(status, why),
            false,
            false,
        ));
    }
    false
}

/// One of the `workers` slots a store operation holds while it runs.
struct Permit<'a>(&'a Shared);

impl<'a> Permit<'a> {
    fn take(shared: &'a Shared) -> Self {
        let mut free = shared.permits.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = shared
                .permit_freed
                .wait(free)
                .unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Self(shared)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.permits.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.permit_freed.notify_one();
    }
}

/// Executes effects until the response appears; store operations run outside the lock.
fn run_effects(shared: &Shared, mut effects: Vec<ReceiverEffect>) -> Option<HttpResponse> {
    let mut response = None;
    while !effects.is_empty() {
        let mut next = Vec::new();
        for effect in effects {
            match effect {
                ReceiverEffect::Respond { response: r, .. } => response = Some(r),
                ReceiverEffect::Notice(n) => (shared.notices)(&n),
                ReceiverEffect::Store { id, op, .. } => {
                    // Enqueues are group-committed by the store (one commit in flight at a
                    // time, however many wait), so only other operations take a permit.
                    let _permit = (!matches!(op, Op::Enqueue(_))).then(|| Permit::take(shared));
                    let result = shared.store.run(shared.clock.now(), op);
                    let mut m = lock(&shared.machine);
                    m.handle_store_result(shared.clock.now(), id, result);
                    next.extend(std::iter::from_fn(|| m.poll_effect()));
                }
            }
        }
        effects = next;
    }
    response
}

/// The response's bytes: status line, `Date`, `Content-Type`, `Content-Length`, and
/// `Connection: close` when the connection ends after it.
fn encode_response(r: &HttpResponse, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut out = Vec::with_capacity(160 + r.body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    );
    if !head_only {
        out.extend_from_slice(r.body.as_bytes());
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value behind these mutexes is only changed through methods that leave it
    // consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Logs a receiver notice with tracing (the daemon's default sink; shared with `anklet`).
pub use crate::common::notices::log_receiver_notice as log_notice;
