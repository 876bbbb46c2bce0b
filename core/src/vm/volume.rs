//! Which mounted volume holds a path: the one whose mount point is the longest prefix of it,
//! compared component by component (`/Volumes/data` holds `/Volumes/data/anka`, not
//! `/Volumes/database`). Runtimes list the volumes; the choice is made here.

use crate::handler::DiskSpace;
use std::path::Path;

/// One mounted volume as a runtime's probe sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Where it is mounted.
    pub mount_point: String,
    /// Its size and free space.
    pub space: DiskSpace,
}

/// The space of the volume holding `path`, or `None` when no mount point is a prefix of it
/// (a relative path, or a probe that listed nothing).
pub fn space_of(path: &str, volumes: &[Volume]) -> Option<DiskSpace> {
    let path = Path::new(path);
    volumes
        .iter()
        .filter(|v| path.starts_with(Path::new(&v.mount_point)))
        .max_by_key(|v| Path::new(&v.mount_point).components().count())
        .map(|v| v.space)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(mount_point: &str, total: u64) -> Volume {
        Volume {
            mount_point: mount_point.into(),
            space: DiskSpace {
                total_bytes: total,
                available_bytes: total / 2,
            },
        }
    }

    #[test]
    fn the_longest_mount_point_prefix_wins() {
        let vols = [
            vol("/", 1),
            vol("/Volumes/data", 2),
            vol("/Volumes/database", 3),
        ];
        let total = |p| space_of(p, &vols).map(|d| d.total_bytes);
        assert_eq!(total("/Volumes/data/anka/img_lib"), Some(2));
        assert_eq!(total("/Volumes/data"), Some(2));
        assert_eq!(total("/Volumes/databases"), Some(1));
        assert_eq!(total("/Users/ci"), Some(1));
        assert_eq!(total("relative/path"), None);
        assert_eq!(space_of("/x", &[]), None);
    }
}
