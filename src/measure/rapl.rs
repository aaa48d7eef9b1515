//! CPU energy through Linux powercap (RAPL): the zones under `/sys/class/powercap` (or another root, so
//! that tests can point it at a constructed tree), their cumulative `energy_uj` counters, and the
//! wrap-around at `max_energy_range_uj`.
//!
//! Input: the powercap root. Output: the domains found ([`Domain`]) and counter readings. It reads
//! nothing but files under the root and writes nothing.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The powercap root of a Linux host.
pub const DEFAULT_ROOT: &str = "/sys/class/powercap";

/// What a RAPL domain measures, from its `name` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainKind {
    /// `package-N`: the whole CPU socket.
    Package,
    /// `dram`: the memory attached to a package.
    Dram,
    /// `core`, `uncore`, `psys` and anything else.
    Other,
}

/// One RAPL zone with an energy counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// The zone's folder name, e.g. `intel-rapl:0` or `intel-rapl:0:1`.
    pub zone: String,
    /// A label unique on the host: the zone's `name` (`package-0`), a subzone's prefixed with its
    /// package's (`package-0-dram`).
    pub label: String,
    pub kind: DomainKind,
    /// The `energy_uj` file.
    pub energy_path: PathBuf,
    /// The counter wraps to 0 after this many microjoules.
    pub max_range_uj: u64,
}

fn read_trim(p: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(p).map(|s| s.trim().to_string())
}

fn read_u64(p: &Path) -> Result<u64> {
    let text = read_trim(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Error::io(
                p,
                std::io::Error::new(
                    e.kind(),
                    "permission denied: the RAPL energy counters are readable by root only on \
                     most kernels (run as root, or grant read access to energy_uj)",
                ),
            )
        } else {
            Error::io(p, e)
        }
    })?;
    text.parse::<u64>().map_err(|_| Error::Csv {
        path: p.to_path_buf(),
        message: format!("`{text}` is not a counter value (a whole number of microjoules)"),
    })
}

/// Every zone whose folder name starts with `intel-rapl:` (the name AMD's RAPL driver uses too) and
/// that has an `energy_uj` counter, found at the root and in the zones' subfolders, sorted by zone.
/// A root that does not exist gives no domains (no powercap on this host); an unreadable counter or a
/// zone without `max_energy_range_uj` is an error naming the file.
pub fn discover(root: &Path) -> Result<Vec<Domain>> {
    let mut zones: Vec<PathBuf> = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let p = e.path();
            if name.starts_with("intel-rapl:") && p.is_dir() {
                if p.join("energy_uj").exists() {
                    zones.push(p.clone());
                }
                // Subzones live inside their package's folder (and are linked at the root too).
                stack.push(p);
            }
        }
    }
    // The same zone reached at the root and inside its parent: keep one.
    let mut seen = std::collections::BTreeMap::new();
    for z in zones {
        let zone = z
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        seen.entry(zone).or_insert(z);
    }
    let mut out = Vec::new();
    for (zone, dir) in &seen {
        let name = read_trim(&dir.join("name")).unwrap_or_else(|_| zone.clone());
        let kind = if name.starts_with("package") {
            DomainKind::Package
        } else if name == "dram" {
            DomainKind::Dram
        } else {
            DomainKind::Other
        };
        // intel-rapl:P:S is a subzone of package P.
        let parts: Vec<&str> = zone.split(':').collect();
        let label = if parts.len() > 2 {
            let parent = format!("{}:{}", parts[0], parts[1]);
            let pname = seen
                .get(&parent)
                .and_then(|d| read_trim(&d.join("name")).ok())
                .unwrap_or(parent);
            format!("{pname}-{name}")
        } else {
            name
        };
        let range_path = dir.join("max_energy_range_uj");
        let max_range_uj = read_u64(&range_path)?;
        if max_range_uj == 0 {
            return Err(Error::Csv {
                path: range_path,
                message: "max_energy_range_uj is 0: the counter's wrap-around is unknown".into(),
            });
        }
        let energy_path = dir.join("energy_uj");
        read_u64(&energy_path)?;
        out.push(Domain {
            zone: zone.clone(),
            label: label.replace(['/', ' '], "-"),
            kind,
            energy_path,
            max_range_uj,
        });
    }
    Ok(out)
}

impl Domain {
    /// The counter now, microjoules.
    pub fn read_uj(&self) -> Result<u64> {
        read_u64(&self.energy_path)
    }
}

/// Microjoules the counter advanced from `prev` to `cur`, counting one wrap at `max_range_uj` when it
/// went down (a sampler reads far more often than a counter wraps: hours at package power).
pub fn delta_uj(prev: u64, cur: u64, max_range_uj: u64) -> u64 {
    if cur >= prev {
        cur - prev
    } else {
        max_range_uj.saturating_sub(prev) + cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_that_goes_down_wrapped_once() {
        assert_eq!(delta_uj(100, 250, 1000), 150);
        assert_eq!(delta_uj(900, 50, 1000), 150);
        assert_eq!(delta_uj(5, 5, 1000), 0);
    }

    #[test]
    fn a_missing_root_has_no_domains() {
        let d = discover(Path::new("/nonexistent/powercap")).unwrap();
        assert!(d.is_empty());
    }
}
