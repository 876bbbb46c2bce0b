//! Metrics, sans-IO: a registry fed by the handlers' [`Notice`](crate::handler::Notice)s, the
//! receivers' [`ReceiverNotice`](crate::receiver::ReceiverNotice)s, the store's claim answers
//! and snapshots the runtime takes (queue depth, host CPU/memory/disk), rendered three ways:
//!
//! | route | body | module |
//! |---|---|---|
//! | `/metrics/v1?format=json` (default) | Anklet's export JSON (Go field names) | [`anklet`] |
//! | `/metrics/v1?format=prometheus` | Anklet's metric names, as valid text | [`anklet`] |
//! | `/metrics` | standard exposition (`anklet_*`, histograms) that passes `promtool` | `standard` |
//! | aggregator `/metrics/v1`, `/metrics/v2` | the fleet from the store's heartbeats | [`fleet`] |
//!
//! Time is a parameter everywhere; this module reads no clock and opens no socket. The HTTP
//! servers live in the runtimes and only call [`route`] and `respond`.
//!
//! ```text
//! handler notice ──▶ Metrics::record_handler_notice(host, now, n)
//! store claim    ──▶ Metrics::observe_store(now, op, reply)     (template, queued→claimed)
//! receiver notice ─▶ Metrics::record_receiver_notice(name, now, n)
//! runtime probes ──▶ set_host_stats / set_queue_depth
//! heartbeat      ◀── Metrics::heartbeat_payload(host, now) ──▶ Op::Heartbeat(host, payload)
//! aggregator     ◀── Fleet::from_hosts(Op::Hosts(stale_after(interval)) answer)
//! ```

pub mod anklet;
mod datetime;
pub mod exposition;
pub mod fleet;
pub mod histogram;
mod registry;
mod routes;
mod standard;

pub use datetime::{ZERO_TIME, rfc3339_nanos, rfc3339_seconds, unix_seconds};
pub use fleet::{Fleet, FleetEntry, FleetHost, stale_after};
pub use registry::{
    HandlerMetrics, HostStats, LastRun, Metrics, PluginIdentity, QueueDepth, ReceiverMetrics, Step,
    UNKNOWN_TEMPLATE,
};
pub use routes::{FIRST_METRICS_PORT, Format, MetricsRoute, candidate_ports, route};
