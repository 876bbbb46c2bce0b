//! Starting and driving an emulator in-process: [`Emulator::start`] returns an
//! [`EmulatorHandle`] that tests use to create jobs, arm faults and observe; dropping it (or
//! [`EmulatorHandle::shutdown`]) stops every thread.

use crate::Error;
use crate::auth::App;
use crate::calls::Call;
use crate::config::{EmulatorConfig, JobSpec};
use crate::deliveries::Delivery;
use crate::engine::Inner;
use crate::faults::{ActiveFault, Fault};
use crate::jobs::Job;
use crate::payloads::Urls;
use crate::runners::Runner;
use crate::state::{Counts, IssuedSecret, State};
use crate::{server, worker};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

/// Entry point of the library.
pub struct Emulator;

impl Emulator {
    /// Listens on `config.listen`, starts the request threads and the delivery worker, and
    /// pings the configured hooks.
    pub fn start(config: EmulatorConfig) -> Result<EmulatorHandle, Error> {
        let app = match &config.app {
            Some(a) => Some(App::new(a.clone()).map_err(Error::InvalidConfig)?),
            None => None,
        };
        if config.worker_threads == 0 {
            return Err(Error::InvalidConfig("worker_threads must be > 0".into()));
        }
        let server = tiny_http::Server::http(config.listen).map_err(|e| Error::Bind {
            addr: config.listen.to_string(),
            reason: e.to_string(),
        })?;
        let addr = server.server_addr().to_ip().ok_or_else(|| Error::Bind {
            addr: config.listen.to_string(),
            reason: "not an IP listener".into(),
        })?;
        let host = addr.to_string();
        let base_url = format!("http://{host}");
        let urls = Urls {
            base: base_url.clone(),
            host,
        };
        let state = State::new(&config, urls, app)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = Arc::new(Inner::new(
            state,
            tx,
            config.webhook_secret.clone(),
            config.webhook_timeout,
            config.max_body_bytes,
            base_url,
        ));
        let server = Arc::new(server);
        let mut threads = Vec::new();
        let w = Arc::clone(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("ghemu-deliveries".into())
                .spawn(move || worker::run(w, rx))
                .map_err(|e| Error::Bind {
                    addr: addr.to_string(),
                    reason: format!("cannot start a thread: {e}"),
                })?,
        );
        for n in 0..config.worker_threads {
            let i = Arc::clone(&inner);
            let s = Arc::clone(&server);
            let t = std::thread::Builder::new()
                .name(format!("ghemu-http-{n}"))
                .spawn(move || server::serve(i, s));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    drop(EmulatorHandle {
                        inner,
                        addr,
                        threads,
                    });
                    return Err(Error::Bind {
                        addr: addr.to_string(),
                        reason: format!("cannot start a thread: {e}"),
                    });
                }
            }
        }
        let handle = EmulatorHandle {
            inner,
            addr,
            threads,
        };
        for url in &config.webhook_urls {
            if config.ping_on_start {
                handle.inner.add_hook(url)?;
            } else {
                handle.inner.state().add_hook(url, crate::time::now_ms());
            }
        }
        Ok(handle)
    }
}

/// A running emulator. Dropping it shuts it down.
pub struct EmulatorHandle {
    inner: Arc<Inner>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:port`: the API base URL to give a daemon.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a workflow job and sends its `queued` webhook.
    pub fn create_job(&self, spec: JobSpec) -> Result<Job, Error> {
        self.inner.create_job(&spec)
    }

    /// Cancels a workflow run (its unfinished jobs complete as `cancelled`).
    pub fn cancel_run(&self, owner: &str, repo: &str, run_id: u64) -> Result<(), Error> {
        self.inner.cancel_run(owner, repo, run_id)
    }

    /// Arms a fault; returns its id.
    pub fn set_fault(&self, fault: Fault) -> Result<u64, Error> {
        self.inner.set_fault(fault)
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.inner.state().faults.clear();
    }

    /// The armed faults and what is left of them.
    pub fn faults(&self) -> Vec<ActiveFault> {
        self.inner.faults()
    }

    /// The call log (no credentials in it).
    pub fn calls(&self) -> Vec<Call> {
        self.inner.state().calls.all()
    }

    /// A job's current state.
    pub fn job(&self, id: u64) -> Option<Job> {
        self.inner.state().job(id).cloned()
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<Job> {
        self.inner.state().jobs()
    }

    /// Every registered runner.
    pub fn runners(&self) -> Vec<Runner> {
        self.inner.state().runners()
    }

    /// Every delivery attempt, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.state().deliveries.clone()
    }

    /// Counts of jobs, runners, deliveries and calls.
    pub fn counts(&self) -> Counts {
        self.inner.state().counts()
    }

    /// Adds a webhook receiver (pinged at once); returns its hook id.
    pub fn add_hook(&self, url: &str) -> Result<u64, Error> {
        self.inner.add_hook(url)
    }

    /// Every secret handed out so far (installation, registration and remove tokens, runner
    /// session tokens, JIT configs), oldest first: tests grep daemon logs for them.
    pub fn issued_secrets(&self) -> Vec<IssuedSecret> {
        self.inner.state().issued_secrets.clone()
    }

    /// Makes every installation token expire now.
    pub fn expire_installation_tokens(&self) {
        self.inner.state().expire_installation_tokens();
    }

    /// Waits until queued deliveries and timers are done (at most `timeout`).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.inner.wait_idle(timeout)
    }

    /// Blocks until the control API's `POST /_emulator/shutdown` is called.
    pub fn wait_for_shutdown_request(&self) {
        self.inner.wait_shutdown_request();
    }

    /// Stops the server and the worker and waits for their threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.stop_worker();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
