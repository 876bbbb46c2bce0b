//! The fake's whole world, persisted as one `state.json`: registry contents, local templates and
//! their on-disk layers, VMs, in-flight pulls, fault bookkeeping and counters.
//!
//! Disk usage is never stored: it is the sum of the layers' bytes plus the full copies of `clone -c`
//! VMs, so it cannot drift. A layer (one pulled tag of one template) is shared copy-on-write by the
//! VMs cloned from it and is freed only when neither a template nor a VM refers to it, which is how
//! deleting a template with live clones frees only the bytes no clone shares.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Everything the fake knows; see the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// What `anka -j version` answers.
    pub version: VersionInfo,
    /// What `anka -j license show` answers.
    pub license: LicenseInfo,
    /// The disk's capacity in bytes; `available` = total − used.
    pub disk_total: u64,
    /// Fake durations of the slow operations, before time scaling.
    pub timings: Timings,
    /// Multiplier for every delay; `FAKE_ANKA_TIME_SCALE` overrides it.
    pub time_scale: f64,
    /// How many VMs may run at once (Apple's limit, 2).
    pub max_running: usize,
    /// What a pull that overlaps another pull of the same template does: `corrupt` (Anka's silent
    /// corruption, the default) or `fail` (refused at once).
    pub overlapping_pulls: OverlapMode,
    /// The registry's templates, by uuid.
    pub registry: BTreeMap<String, RegistryTemplate>,
    /// Templates present locally, by uuid.
    pub templates: BTreeMap<String, LocalTemplate>,
    /// Bytes on disk per pulled tag, keyed `"<uuid>@<tag>"`.
    pub layers: BTreeMap<String, Layer>,
    /// VMs, by name.
    pub vms: BTreeMap<String, Vm>,
    /// Pulls running right now (possibly of dead processes; checked by pid).
    pub pulls: Vec<PullRecord>,
    /// Counters reported by `anka __stats`.
    pub stats: Stats,
    /// How many times each `times`-limited fault rule has fired, by rule key.
    pub fault_uses: BTreeMap<String, u32>,
    /// How many `probability` draws each fault rule has made, by rule key.
    pub fault_draws: BTreeMap<String, u64>,
    /// Source of unique ids (VM uuids, pull ids, IPs).
    pub next_id: u64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            version: VersionInfo::default(),
            license: LicenseInfo::default(),
            disk_total: 500_000_000_000,
            timings: Timings::default(),
            time_scale: 1.0,
            max_running: 2,
            overlapping_pulls: OverlapMode::Corrupt,
            registry: BTreeMap::new(),
            templates: BTreeMap::new(),
            layers: BTreeMap::new(),
            vms: BTreeMap::new(),
            pulls: Vec::new(),
            stats: Stats::default(),
            fault_uses: BTreeMap::new(),
            fault_draws: BTreeMap::new(),
            next_id: 1,
        }
    }
}

/// What overlapping pulls of one template do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlapMode {
    /// Both pulls "succeed" and the layer is corrupt (VMs cloned from it fail to start).
    #[default]
    Corrupt,
    /// The later pull fails at once.
    Fail,
}

/// `anka -j version` body: `{product, version, build}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionInfo {
    /// Product name.
    pub product: String,
    /// Version like `3.9.1`.
    pub version: String,
    /// Build number like `216`.
    pub build: String,
}

impl Default for VersionInfo {
    fn default() -> Self {
        Self {
            product: "Anka Virtualization".into(),
            version: "3.9.1".into(),
            build: "216".into(),
        }
    }
}

/// `anka -j license show` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LicenseInfo {
    /// `valid` unless a fault says otherwise.
    pub status: String,
    /// Anklet rejects `com.veertu.anka.run` and `com.veertu.anka.develop`.
    pub license_type: String,
    /// Product name.
    pub product: String,
    /// Expiry like `30-mar-2031`.
    pub expires: String,
    /// Licensed core count.
    pub max_number_of_cores: u32,
    /// Fulfilment id.
    pub fulfillment: String,
}

impl Default for LicenseInfo {
    fn default() -> Self {
        Self {
            status: "valid".into(),
            license_type: "com.veertu.anka.entplus".into(),
            product: "Anka Build Enterprise Plus".into(),
            expires: "30-mar-2031".into(),
            max_number_of_cores: 32,
            fulfillment: "fake-anka".into(),
        }
    }
}

/// Fake durations before scaling, in milliseconds, except the pull rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Timings {
    /// Download speed of a pull, bytes per second (60 MB/s: 80 GB ≈ 22 min at scale 1).
    pub pull_bytes_per_sec: f64,
    /// How many steps a pull fills the disk in (one progress line each).
    pub pull_steps: u32,
    /// `clone`.
    pub clone_ms: f64,
    /// `start` (and the auto-start of `run`).
    pub start_ms: f64,
    /// `stop`, and the stop part of deleting a running VM.
    pub stop_ms: f64,
    /// `delete`.
    pub delete_ms: f64,
    /// Overhead of `run` before the guest command.
    pub run_ms: f64,
    /// `list`, `show`, `version` and other queries.
    pub query_ms: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            pull_bytes_per_sec: 60_000_000.0,
            pull_steps: 5,
            clone_ms: 500.0,
            start_ms: 20_000.0,
            stop_ms: 5_000.0,
            delete_ms: 1_000.0,
            run_ms: 200.0,
            query_ms: 50.0,
        }
    }
}

/// A template in the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryTemplate {
    /// Template uuid.
    pub uuid: String,
    /// Template name.
    pub name: String,
    /// The tag used when none is given.
    pub latest: String,
    /// Tags and their sizes.
    pub tags: BTreeMap<String, TagInfo>,
}

/// One tag of a registry template: its sizes and VM shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TagInfo {
    /// Download size in bytes; also what the pulled tag occupies on disk.
    pub size: u64,
    /// Logical disk size of the VM (`hard_drive`).
    pub hard_drive: u64,
    /// CPU cores.
    pub cpu_cores: u32,
    /// RAM in bytes.
    pub ram_size: u64,
}

impl Default for TagInfo {
    fn default() -> Self {
        Self {
            size: 1_000_000_000,
            hard_drive: 107_374_182_400,
            cpu_cores: 4,
            ram_size: 8_589_934_592,
        }
    }
}

/// A template present on this host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalTemplate {
    /// Template uuid (same as in the registry).
    pub uuid: String,
    /// Template name.
    pub name: String,
    /// The checked-out tag (`version` in `list`).
    pub version: String,
    /// Every tag with a layer on disk, complete or not.
    pub tags: BTreeSet<String>,
    /// When it was first pulled.
    pub creation_date: String,
    /// Last use.
    pub access_date: String,
}

/// One pulled tag on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layer {
    /// Owning template uuid.
    pub template_uuid: String,
    /// Tag.
    pub tag: String,
    /// Sizes and shape from the registry.
    pub info: TagInfo,
    /// Bytes written so far (`info.size` once complete).
    pub bytes: u64,
    /// False while pulling or after a failed pull (a `partial` template).
    pub complete: bool,
    /// Damaged by overlapping pulls: VMs cloned from it fail to start.
    pub corrupt: bool,
}

/// The VM states Anka reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmStatus {
    /// Running (counts against the 2-VM limit).
    Running,
    /// Stopped.
    Stopped,
    /// Suspended (on ARM really stopped; does not count as running).
    Suspended,
    /// Crashed / lost: `run` exits 125.
    Failed,
}

impl VmStatus {
    /// The status string in `list`/`show`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Suspended => "suspended",
            Self::Failed => "failed",
        }
    }
}

/// A host folder mounted into a VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    /// Host path.
    pub host_path: String,
    /// Name of the folder in the guest.
    pub guest_name: String,
}

/// A VM (a clone of a template).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vm {
    /// VM name.
    pub name: String,
    /// VM uuid.
    pub uuid: String,
    /// The template it was cloned from.
    pub template_uuid: String,
    /// The tag it was cloned from.
    pub tag: String,
    /// The layer it shares copy-on-write (`None` for a `clone -c` copy).
    pub layer: Option<String>,
    /// Bytes of its own (a full copy for `clone -c`).
    pub own_bytes: u64,
    /// Shape from the template.
    pub info: TagInfo,
    /// Current state.
    pub status: VmStatus,
    /// Created.
    pub creation_date: String,
    /// Last used.
    pub access_date: String,
    /// Last stopped.
    pub stop_date: Option<String>,
    /// Guest IP while running.
    pub ip: Option<String>,
    /// The emulated runner's pid (leader of its own process group).
    pub runner_pid: Option<u32>,
    /// The `vm_crash` watcher's pid.
    pub crash_watch_pid: Option<u32>,
    /// Epoch seconds at which a `vm_crash` fault takes the VM down.
    pub crash_at: Option<f64>,
    /// Host folders mounted into it.
    pub mounts: Vec<MountRecord>,
    /// Guest commands of `anka run` running in it right now, killed when the VM goes down.
    #[serde(default)]
    pub guests: Vec<GuestProc>,
}

/// A guest command running under an `anka run` process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestProc {
    /// The command's pid.
    pub pid: u32,
    /// The `anka run` process that waits for it (checked before killing, against pid reuse).
    pub parent: u32,
}

/// A pull in flight.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRecord {
    /// Unique id of this pull.
    pub id: u64,
    /// Template uuid.
    pub uuid: String,
    /// Tag.
    pub tag: String,
    /// Pid of the `anka` process pulling (a dead pid means an abandoned pull).
    pub pid: u32,
    /// Epoch seconds.
    pub started: f64,
    /// Another pull of the same template overlapped this one: the result is corrupt.
    pub overlapped: bool,
}

/// Counters for `anka __stats`: invariants a test can assert after driving the fake.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Most VMs ever running at once.
    pub max_running_seen: usize,
    /// How many times a pull started while another pull of the same template ran.
    pub overlapping_pulls: u64,
    /// Most pulls (of any template) in flight at once.
    pub max_concurrent_pulls: usize,
    /// Pulls started.
    pub pulls_started: u64,
    /// Pulls that completed.
    pub pulls_completed: u64,
    /// Pulls that failed (disk full, faults).
    pub pulls_failed: u64,
    /// Starts refused by the 2-VM limit.
    pub licence_refusals: u64,
    /// VMs created.
    pub vms_created: u64,
    /// VMs deleted.
    pub vms_deleted: u64,
    /// Emulated runners spawned.
    pub runners_started: u64,
    /// Emulated runners killed by stop/delete/crash.
    pub runners_killed: u64,
    /// VMs taken down by `vm_crash`.
    pub crashes: u64,
    /// Fault rules fired.
    pub faults_fired: u64,
}

/// The layer key of a template tag.
pub fn layer_key(uuid: &str, tag: &str) -> String {
    format!("{uuid}@{tag}")
}

impl State {
    /// Bytes in use: every layer plus every VM's own bytes.
    pub fn used(&self) -> u64 {
        let layers: u64 = self.layers.values().map(|l| l.bytes).sum();
        let vms: u64 = self.vms.values().map(|v| v.own_bytes).sum();
        layers.saturating_add(vms)
    }

    /// Free bytes.
    pub fn available(&self) -> u64 {
        self.disk_total.saturating_sub(self.used())
    }

    /// VMs currently running.
    pub fn running(&self) -> usize {
        self.vms
            .values()
            .filter(|v| v.status == VmStatus::Running)
            .count()
    }

    /// A fresh number for ids.
    pub fn fresh_id(&mut self) -> u64 {
        let n = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        n
    }

    /// The VM called `id` (by name or uuid).
    pub fn vm_name(&self, id: &str) -> Option<String> {
        if self.vms.contains_key(id) {
            return Some(id.to_string());
        }
        self.vms
            .values()
            .find(|v| v.uuid == id)
            .map(|v| v.name.clone())
    }

    /// The local template called `id` (by uuid or name).
    pub fn template_uuid(&self, id: &str) -> Option<String> {
        if self.templates.contains_key(id) {
            return Some(id.to_string());
        }
        self.templates
            .values()
            .find(|t| t.name == id)
            .map(|t| t.uuid.clone())
    }

    /// The registry template called `id` (by uuid or name).
    pub fn registry_uuid(&self, id: &str) -> Option<String> {
        if self.registry.contains_key(id) {
            return Some(id.to_string());
        }
        self.registry
            .values()
            .find(|t| t.name == id)
            .map(|t| t.uuid.clone())
    }

    /// Whether the template's checked-out tag is incompletely pulled.
    pub fn template_partial(&self, uuid: &str) -> bool {
        self.templates.get(uuid).is_some_and(|t| {
            self.layers
                .get(&layer_key(uuid, &t.version))
                .is_none_or(|l| !l.complete)
        })
    }

    /// Frees layers that no template lists and no VM shares.
    pub fn gc_layers(&mut self) {
        let mut live: BTreeSet<String> = BTreeSet::new();
        for t in self.templates.values() {
            for tag in &t.tags {
                live.insert(layer_key(&t.uuid, tag));
            }
        }
        for v in self.vms.values() {
            if let Some(l) = &v.layer {
                live.insert(l.clone());
            }
        }
        self.layers.retain(|k, _| live.contains(k));
    }

    /// Records the running count after a start, for `max_running_seen`.
    pub fn note_running(&mut self) {
        let n = self.running();
        if n > self.stats.max_running_seen {
            self.stats.max_running_seen = n;
        }
    }
}
