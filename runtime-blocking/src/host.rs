//! Host probes with sysinfo: CPU count and memory (for capacity checks and metrics), and the
//! space of the volume holding the template library (for the pull task's disk-buffer rule).
//! Which volume holds a path is decided by core ([`anklet_core::vm::volume::space_of`]).
//! Both daemons use these; each call is a fresh, blocking read (the tokio daemon runs it on a
//! blocking thread).

use anklet_core::handler::DiskSpace;
use anklet_core::metrics::HostStats;
use anklet_core::vm::volume::{Volume, space_of};
use std::path::{Path, PathBuf};
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

/// CPU and memory of this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// Logical CPUs.
    pub cpus: usize,
    /// Physical memory in bytes.
    pub total_memory_bytes: u64,
    /// Memory available to new processes in bytes.
    pub available_memory_bytes: u64,
}

/// A probe that could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// sysinfo does not support this OS.
    #[error("host probe unsupported here: {0}")]
    Unsupported(String),
    /// No mounted volume holds the path.
    #[error("no mounted volume holds {0}")]
    NoVolume(PathBuf),
}

/// Reads CPU count and memory now.
pub fn host_facts() -> Result<HostFacts, ProbeError> {
    let kind = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    let sys =
        System::new_with_specifics(kind).map_err(|e| ProbeError::Unsupported(e.to_string()))?;
    Ok(HostFacts {
        cpus: sys.cpus().len(),
        total_memory_bytes: sys.total_memory(),
        available_memory_bytes: sys.available_memory(),
    })
}

/// Every mounted volume with its size and free space.
pub fn volumes() -> Result<Vec<Volume>, ProbeError> {
    let disks =
        Disks::new_with_refreshed_list().map_err(|e| ProbeError::Unsupported(e.to_string()))?;
    Ok(disks
        .iter()
        .map(|d| Volume {
            mount_point: d.mount_point().to_string_lossy().into_owned(),
            space: DiskSpace {
                total_bytes: d.total_space(),
                available_bytes: d.available_space(),
            },
        })
        .collect())
}

/// The space of the volume that holds `path` (symlinks resolved when the path exists).
pub fn volume_space(path: &Path) -> Result<DiskSpace, ProbeError> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    space_of(&real.to_string_lossy(), &volumes()?).ok_or(ProbeError::NoVolume(real))
}

/// CPU usage between two reads: sysinfo measures usage as the change since the previous
/// refresh, so the sampler keeps its `System` from one heartbeat to the next and each figure
/// covers the whole interval.
pub struct CpuSampler(System);

impl CpuSampler {
    /// A sampler whose first figure covers the time from now to the first read.
    pub fn new() -> Result<Self, ProbeError> {
        let kind = RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_usage());
        let mut sys =
            System::new_with_specifics(kind).map_err(|e| ProbeError::Unsupported(e.to_string()))?;
        sys.refresh_cpu_usage();
        Ok(Self(sys))
    }

    /// Percent of all CPUs busy since the previous read.
    pub fn usage_percentage(&mut self) -> f64 {
        self.0.refresh_cpu_usage();
        f64::from(self.0.global_cpu_usage()).clamp(0.0, 100.0)
    }
}

/// The host figures metrics report (Anklet's `host_*` fields): CPUs, CPU usage (0 without a
/// sampler), memory, and the volume holding `/` as Anklet measures it.
pub fn metrics_stats(cpu: Option<&mut CpuSampler>) -> Result<HostStats, ProbeError> {
    let facts = host_facts()?;
    let disk = volume_space(Path::new("/"))?;
    Ok(HostStats {
        cpu_count: facts.cpus as u64,
        cpu_usage_percentage: cpu.map_or(0.0, CpuSampler::usage_percentage),
        memory_total_bytes: facts.total_memory_bytes,
        memory_used_bytes: facts
            .total_memory_bytes
            .saturating_sub(facts.available_memory_bytes),
        memory_available_bytes: facts.available_memory_bytes,
        disk_total_bytes: disk.total_bytes,
        disk_used_bytes: disk.total_bytes.saturating_sub(disk.available_bytes),
        disk_available_bytes: disk.available_bytes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn metrics_stats_are_consistent() {
        let mut cpu = CpuSampler::new().expect("Linux is supported");
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let s = metrics_stats(Some(&mut cpu)).expect("Linux is supported and / is mounted");
        assert!((0.0..=100.0).contains(&s.cpu_usage_percentage));
        assert!(s.cpu_count >= 1);
        assert!(s.disk_total_bytes > 0);
        assert_eq!(
            s.disk_used_bytes + s.disk_available_bytes,
            s.disk_total_bytes
        );
        assert!(s.memory_used_bytes <= s.memory_total_bytes);
    }

    #[test]
    fn this_host_has_cpus_and_memory() {
        let f = host_facts().expect("Linux is supported");
        assert!(f.cpus >= 1);
        assert!(f.total_memory_bytes > 0);
        assert!(f.available_memory_bytes <= f.total_memory_bytes);
    }

    #[test]
    fn the_volume_of_a_temp_dir_has_room_and_matches_a_listed_volume() {
        let dir = tempfile::tempdir().expect("temp dir");
        let space = volume_space(dir.path()).expect("a volume holds /tmp");
        assert!(space.total_bytes > 0);
        assert!(space.available_bytes <= space.total_bytes);
        let listed = volumes().expect("volumes");
        assert!(
            listed
                .iter()
                .any(|v| v.space.total_bytes == space.total_bytes)
        );
    }
}
