//! Measuring a real serving run the way the measurement studies simwatt validates against do: a power
//! sampler ([`power`]: GPUs through NVML or nvidia-smi ([`gpu`]), CPU packages and DRAM through RAPL
//! ([`rapl`])), a load generator for OpenAI-compatible servers ([`load`]), and the writers of what they
//! record in the formats [`crate::measured`] reads ([`record`]).
//!
//! Input: a workload's requests (from [`crate::workload`]), an endpoint, the host's power interfaces.
//! Output: readings and per-request records, and their files in a measured-run folder. It may not
//! import a driver or run a simulation; `drivers::measure` wires it to the CLI and to run folders.

pub mod gpu;
pub mod load;
pub mod power;
pub mod rapl;
pub mod record;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The clock every reading and request of one run is stamped with: epoch seconds read once, advanced
/// by a monotonic clock, so that intervals never jump with the wall clock and the power and request
/// logs share one time line.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    epoch0: f64,
    start: Instant,
}

impl WallClock {
    pub fn new() -> Self {
        let epoch0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        WallClock {
            epoch0,
            start: Instant::now(),
        }
    }

    /// Seconds since 1970-01-01 UTC.
    pub fn now(&self) -> f64 {
        self.epoch0 + self.start.elapsed().as_secs_f64()
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}
