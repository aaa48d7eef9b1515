//! GPU power: the utilisation-based power model, its profiles, and the two baselines it is compared with.
//!
//! During a batch stage of predicted time T that executes F FLOPs and moves B bytes on one GPU,
//! u_c = F / (T x peak_flops) and u_m = B / (T x peak_bandwidth), each clipped to [0, 1], and the GPU
//! draws P = min(P_cap, P_0 + k_c u_c + k_m u_m). Between stages (model loaded, nothing running) it draws
//! P_idle. Parameters live in `profiles/power/<device>.yaml` with the data they were fitted on and the
//! fit's error (the file format and its checks: [`crate::config::power_profile`]). Baselines: TDP x time,
//! and Vidur-Energy's curve
//! P_idle + (P_max - P_idle) x min(1, (MFU / 0.45)^0.7).
//!
//! [`StageEnergy`] is the one place a stage's cost becomes watts and joules: the event loop reaches it
//! through [`crate::sim::StagePower`]. Nothing here knows about requests or the loop's state.

use crate::catalog::DeviceSpec;
use crate::sim::{StageCost, StagePower};
use serde::Serialize;

pub use crate::config::power_profile::{PowerProfile, PowerProvenance};

impl PowerProfile {
    /// Power of one GPU running a stage of `time_s` seconds with `flops` and `bytes`, watts.
    pub fn busy_w(&self, u: Utilisation) -> f64 {
        (self.p0_w + self.k_compute_w * u.compute + self.k_memory_w * u.memory).min(self.cap_w)
    }
}

/// Compute and memory-bandwidth utilisation of a stage, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Utilisation {
    pub compute: f64,
    pub memory: f64,
}

impl Utilisation {
    /// Utilisation of one GPU executing `flops` and moving `bytes` in `time_s` seconds on `d`.
    pub fn of(flops: f64, bytes: f64, time_s: f64, d: &DeviceSpec) -> Self {
        if time_s <= 0.0 {
            return Utilisation::default();
        }
        Utilisation {
            compute: (flops / (time_s * d.peak_flops())).clamp(0.0, 1.0),
            memory: (bytes / (time_s * d.memory_bandwidth_bytes_s())).clamp(0.0, 1.0),
        }
    }
}

/// Energy of `gpus` GPUs each drawing `power_w` watts for `seconds` seconds, joules: the one place a
/// power becomes an energy (stages, idle stretches, baselines).
pub fn energy_j(power_w: f64, seconds: f64, gpus: f64) -> f64 {
    power_w * seconds * gpus
}

/// What prices a stage's energy: the power profile and the device of each GPU, and how many GPUs run
/// one stage (the tensor-parallel degree).
pub struct StageEnergy {
    pub profile: PowerProfile,
    pub device: DeviceSpec,
    pub gpus_per_stage: u32,
}

impl StagePower for StageEnergy {
    /// Per-GPU power and all-GPU energy of a stage with cost `c`.
    fn price(&self, c: &StageCost) -> (f64, f64) {
        let t = c.time_ns as f64 / 1e9;
        let w = self
            .profile
            .busy_w(Utilisation::of(c.flops, c.bytes, t, &self.device));
        (w, energy_j(w, t, self.gpus_per_stage as f64))
    }
}

/// Vidur-Energy's MFU curve at which power saturates.
pub const VIDUR_MFU_SATURATION: f64 = 0.45;
/// Vidur-Energy's curve exponent.
pub const VIDUR_EXPONENT: f64 = 0.7;

/// Vidur-Energy's power curve: P_idle + (P_max - P_idle) x min(1, (MFU / 0.45)^0.7), watts.
pub fn vidur_energy_w(idle_w: f64, max_w: f64, mfu: f64) -> f64 {
    let x = (mfu.max(0.0) / VIDUR_MFU_SATURATION)
        .powf(VIDUR_EXPONENT)
        .min(1.0);
    idle_w + (max_w - idle_w) * x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> PowerProfile {
        crate::config::power_profile::example_profile()
    }

    #[test]
    fn busy_power_is_linear_in_utilisation_and_capped() {
        let p = profile();
        assert_eq!(
            p.busy_w(Utilisation {
                compute: 0.0,
                memory: 0.0
            }),
            100.0
        );
        assert_eq!(
            p.busy_w(Utilisation {
                compute: 0.5,
                memory: 0.2
            }),
            100.0 + 100.0 + 30.0
        );
        assert_eq!(
            p.busy_w(Utilisation {
                compute: 1.0,
                memory: 1.0
            }),
            400.0
        );
    }

    #[test]
    fn vidur_curve_at_exact_points() {
        assert_eq!(vidur_energy_w(50.0, 400.0, 0.0), 50.0);
        assert_eq!(vidur_energy_w(50.0, 400.0, 0.45), 400.0);
        assert_eq!(vidur_energy_w(50.0, 400.0, 0.9), 400.0);
        let half = vidur_energy_w(50.0, 400.0, 0.225);
        assert!((half - (50.0 + 350.0 * 0.5f64.powf(0.7))).abs() < 1e-12);
    }
}
