//! GPU power: the utilisation-based power model, its profiles, and the two baselines it is compared with.
//!
//! During a batch stage of predicted GPU time T that executes F FLOPs and moves B bytes on one GPU,
//! u_c = F / (T x peak_flops) and u_m = B / (T x peak_bandwidth), each clipped to [0, 1], and the GPU
//! demands P_d = P_0 + k_c u_c + k_m u_m. Under the cap it draws P_d for T. Above it the clocks fall
//! (DVFS): dynamic power scales as f^alpha, so the clock fraction is f = ((P_cap - P_0) / (P_d -
//! P_0))^(1/alpha), the compute-bound share s = u_c / (u_c + u_m) of the stage stretches by 1/f
//! (T' = T (s / f + 1 - s)) and the GPU draws P_cap for T'. An SM clock limit (a fraction of the
//! maximum clock) caps f too; where it sets the clock, the stage stretches the same way and the GPU
//! draws P_0 + (P_d - P_0) f^alpha. A memory-clock limit f_m (a Jetson power mode's) stretches the
//! memory-bound share by 1/f_m, T' = T (s / f + (1 - s) / f_m), with the stage's dynamic energy kept.
//! A stage in which the GPU waits part of its time on another device (partial GPU offload, the
//! cost's `idle_ns`) draws loaded idle over that part and the above over the rest. The host CPU of such
//! a stage (the cost's `cpu_ns`, `cpu_flops`, `cpu_bytes`) is priced by its own profile, with
//! utilisations relative to its catalog peaks: `(P_cpu(u) - P_cpu_idle) x cpu_ns`, its energy above
//! loaded idle, which the accounting adds to the CPU's loaded idle over the span
//! ([`HostCpuPower`]); it is not part of the GPU's energy.
//! While the GPU waits on the engine's host
//! work after the stage (host time H) it decays from its stage power to loaded idle with time constant
//! tau: E_H = P_li H + (P - P_li) tau (1 - e^(-H / tau)). Between stages (replica up, nothing to run)
//! it draws loaded idle P_li. Parameters live in `profiles/power/<device>.yaml` with the data they were fitted on and the
//! fit's error (the file format and its checks: [`crate::config::power_profile`]). Baselines: TDP x time,
//! and Vidur-Energy's curve
//! P_idle + (P_max - P_idle) x min(1, (MFU / 0.45)^0.7).
//!
//! [`StageEnergy`] is the one place a stage's cost becomes watts and joules: the event loop reaches it
//! through [`crate::sim::StagePower`]. Nothing here knows about requests or the loop's state.

use crate::catalog::DeviceSpec;
use crate::sim::{StageCost, StagePower, StagePrice};
use crate::units::duration_ns;
use serde::Serialize;
use std::cell::{Cell, RefCell};

pub use crate::config::power_profile::{PowerProfile, PowerProvenance};
pub mod thermal;
pub use thermal::{Thermal, ThermalState};

impl PowerProfile {
    /// Power one GPU demands at full clocks at utilisation `u`, watts (may exceed the cap).
    pub fn demand_w(&self, u: Utilisation) -> f64 {
        self.p0_w + self.k_compute_w * u.compute + self.k_memory_w * u.memory
    }

    /// Power of one GPU at utilisation `u` at full clocks, watts: the demand, at most the cap.
    pub fn busy_w(&self, u: Utilisation) -> f64 {
        self.demand_w(u).min(self.cap_w)
    }

    /// The clock fraction the cap allows at utilisation `u` and the factor by which the stage's time
    /// stretches (both 1 under the cap).
    pub fn throttle(&self, u: Utilisation) -> (f64, f64) {
        let op = self.operating_point(u, 1.0);
        (op.clock, op.stretch)
    }

    /// Where one GPU runs a stage at utilisation `u` under the power cap and an SM clock limit
    /// (`clock_limit`, a fraction of the maximum clock, 1 for none): the clock is the lower of the
    /// one the cap allows, `((P_cap - P_0) / (P_d - P_0))^(1/alpha)`, and the limit; the
    /// compute-bound share `s` of the stage stretches, `T' = T (s / f + 1 - s)`, and dynamic power
    /// falls as `f^alpha`, `P = P_0 + (P_d - P_0) f^alpha` (the cap itself when the cap sets the clock).
    pub fn operating_point(&self, u: Utilisation, clock_limit: f64) -> OperatingPoint {
        self.operating_point_capped(u, clock_limit, self.cap_w)
    }

    /// The same under the power limit `cap_w` instead of the profile's.
    pub fn operating_point_capped(
        &self,
        u: Utilisation,
        clock_limit: f64,
        cap_w: f64,
    ) -> OperatingPoint {
        let demand = self.demand_w(u);
        let capped = demand > cap_w && demand > self.p0_w;
        let by_cap = if capped {
            ((cap_w - self.p0_w) / (demand - self.p0_w))
                .powf(1.0 / self.dvfs_exponent)
                .clamp(MIN_CLOCK, 1.0)
        } else {
            1.0
        };
        let limit = if clock_limit.is_finite() {
            clock_limit.clamp(MIN_CLOCK, 1.0)
        } else {
            1.0
        };
        if by_cap >= 1.0 && limit >= 1.0 {
            return OperatingPoint {
                clock: 1.0,
                stretch: 1.0,
                power_w: demand,
            };
        }
        let clock = by_cap.min(limit);
        let power_w = if capped && by_cap <= limit {
            cap_w
        } else {
            (self.p0_w + (demand - self.p0_w).max(0.0) * clock.powf(self.dvfs_exponent)).min(cap_w)
        };
        let share = if u.compute + u.memory > 0.0 {
            u.compute / (u.compute + u.memory)
        } else {
            0.0
        };
        OperatingPoint {
            clock,
            stretch: share / clock + 1.0 - share,
            power_w,
        }
    }

    /// The same with the memory clock limited to `memory_clock` (a fraction of the device's maximum,
    /// 1 for none, as a Jetson power mode sets it): the memory-bound share `1 - s` of the stage
    /// stretches by its inverse too, `T' = T (s / f + (1 - s) / f_mem)`, and the stage's dynamic energy
    /// stays what it is at full memory clock (the same bytes move, more slowly), so the power above
    /// `P_0` falls by the extra stretch. The clock the cap allows is the one at full memory clock.
    ///
    /// When no limit binds (no clock limit below 1, no memory clock below 1, the demand within the
    /// cap: most stages of most runs) the answer, full clocks at the demanded power, is given at once,
    /// without the search's clamps (`operating_point_search`, which gives the same).
    #[inline]
    pub fn operating_point_clocks(
        &self,
        u: Utilisation,
        clock_limit: f64,
        memory_clock: f64,
        cap_w: f64,
    ) -> OperatingPoint {
        let unbound = |limit: f64| !limit.is_finite() || limit >= 1.0;
        let demand = self.demand_w(u);
        if unbound(clock_limit) && unbound(memory_clock) && !(demand > cap_w && demand > self.p0_w)
        {
            return OperatingPoint {
                clock: 1.0,
                stretch: 1.0,
                power_w: demand,
            };
        }
        self.operating_point_search(u, clock_limit, memory_clock, cap_w)
    }

    /// [`PowerProfile::operating_point_clocks`] by the clamps and the cap's clock.
    fn operating_point_search(
        &self,
        u: Utilisation,
        clock_limit: f64,
        memory_clock: f64,
        cap_w: f64,
    ) -> OperatingPoint {
        let op = self.operating_point_capped(u, clock_limit, cap_w);
        let mem = if memory_clock.is_finite() {
            memory_clock.clamp(MIN_CLOCK, 1.0)
        } else {
            1.0
        };
        if mem >= 1.0 {
            return op;
        }
        let share = if u.compute + u.memory > 0.0 {
            u.compute / (u.compute + u.memory)
        } else {
            0.0
        };
        let stretch = share / op.clock + (1.0 - share) / mem;
        OperatingPoint {
            clock: op.clock,
            stretch,
            power_w: self.p0_w + (op.power_w - self.p0_w).max(0.0) * op.stretch / stretch,
        }
    }

    /// Energy of one GPU waiting `seconds` on the host right after drawing `after_w` watts, joules: loaded
    /// idle plus the decay from `after_w` with time constant `tail_ms`.
    pub fn host_wait_j(&self, after_w: f64, seconds: f64) -> f64 {
        self.host_wait_j_decayed(after_w, seconds, self.tail_decay(seconds))
    }

    /// The share of the decay after a burst that a host wait of `seconds` sees: `1 - exp(-s / tau)`
    /// (0 without a tail).
    fn tail_decay(&self, seconds: f64) -> f64 {
        if self.tail_ms > 0.0 && seconds > 0.0 {
            1.0 - (-seconds / (self.tail_ms * 1e-3)).exp()
        } else {
            0.0
        }
    }

    /// [`PowerProfile::host_wait_j`] with the wait's [`PowerProfile::tail_decay`] given.
    fn host_wait_j_decayed(&self, after_w: f64, seconds: f64, decay: f64) -> f64 {
        let idle = self.between_batches_w();
        let tail = if self.tail_ms > 0.0 && seconds > 0.0 {
            (after_w - idle).max(0.0) * (self.tail_ms * 1e-3) * decay
        } else {
            0.0
        };
        energy_j(idle, seconds, 1.0) + tail
    }
}

pub use crate::config::power_profile::MIN_CLOCK;

/// The clock, time stretch and power of one GPU running a stage ([`PowerProfile::operating_point`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    /// Clock fraction of the maximum (1: full clocks).
    pub clock: f64,
    /// Factor by which the stage's GPU time stretches (at least 1).
    pub stretch: f64,
    /// Power drawn during the stretched stage, watts (at most the cap).
    pub power_w: f64,
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

/// What prices a stage's energy: the power profile (its `cap_w` the power limit in force) and the
/// device of each GPU, how many GPUs run one stage (the tensor-parallel degree), and the SM and memory
/// clock limits as fractions of the device's maximum clocks (1: none).
pub struct StageEnergy {
    pub profile: PowerProfile,
    pub device: DeviceSpec,
    pub gpus_per_stage: u32,
    pub clock_limit: f64,
    /// The memory-clock limit as a fraction of the device's maximum (1: none; a power mode sets it).
    pub memory_clock: f64,
    /// The last host wait priced, ns, and its [`PowerProfile::tail_decay`]: batches of one size wait
    /// the same time, and the exponential is most of a price's cost.
    last_decay: Cell<(u64, f64)>,
    /// The device's thermal model (`edge.thermal`) and each GPU group's state, by the group index the
    /// loop gives ([`StagePower::price_at`]); `None`: no heat.
    thermal: Option<(Thermal, RefCell<Vec<ThermalState>>)>,
    /// The power limit hour by hour (`carbon_power_cap`): hour `k` of the run is the `k`-th value, the
    /// run's first hour starting `offset_ns` before time 0; `None`: the profile's cap all along.
    hourly_caps: Option<HourlyCaps>,
    /// The host CPU of a partial GPU offload, which prices the cost's `cpu_ns` (`None`: no offload,
    /// or the CPU's work left unpriced).
    host_cpu: Option<HostCpuPower>,
}

/// The host CPU of a partial GPU offload as the power model prices it: its power profile and its
/// catalog entry (the peaks its utilisations are relative to; not the peaks `hardware.threads`
/// reach, so fewer threads draw less).
#[derive(Debug, Clone)]
pub struct HostCpuPower {
    pub profile: PowerProfile,
    pub device: DeviceSpec,
}

impl HostCpuPower {
    /// Energy of the CPU above its loaded idle over `cpu_ns` nanoseconds of `flops` and `bytes`,
    /// joules: `(min(P_0 + k_c u_c + k_m u_m, cap) - P_idle) x t`. Its clocks are not modelled: the
    /// roofline's time stands.
    pub fn above_idle_j(&self, cpu_ns: u64, flops: f64, bytes: f64) -> f64 {
        let t = cpu_ns as f64 / 1e9;
        let u = Utilisation::of(flops, bytes, t, &self.device);
        energy_j(
            self.profile.busy_w(u) - self.profile.between_batches_w(),
            t,
            1.0,
        )
    }
}

/// A power limit per hour of the run.
#[derive(Debug, Clone)]
pub struct HourlyCaps {
    /// How far into its hour of the day time 0 is, ns.
    pub offset_ns: u64,
    /// The limit of each hour, watts per GPU.
    pub caps_w: Vec<f64>,
    /// Set when a stage started past the last hour (priced at the last hour's limit); the driver
    /// makes that an error.
    pub past_end: Cell<bool>,
}

impl HourlyCaps {
    /// The limit in force at `t_ns`.
    pub fn at(&self, t_ns: u64) -> f64 {
        let hour = (t_ns.saturating_add(self.offset_ns) / 3_600_000_000_000) as usize;
        match self.caps_w.get(hour) {
            Some(&w) => w,
            None => {
                self.past_end.set(true);
                self.caps_w.last().copied().unwrap_or(f64::INFINITY)
            }
        }
    }
}

impl StageEnergy {
    pub fn new(
        profile: PowerProfile,
        device: DeviceSpec,
        gpus_per_stage: u32,
        clock_limit: f64,
    ) -> Self {
        StageEnergy {
            profile,
            device,
            gpus_per_stage,
            clock_limit,
            memory_clock: 1.0,
            last_decay: Cell::new((u64::MAX, 0.0)),
            thermal: None,
            hourly_caps: None,
            host_cpu: None,
        }
    }

    /// The same, with the host CPU of a partial GPU offload pricing the CPU's share of each stage.
    pub fn with_host_cpu(mut self, host_cpu: Option<HostCpuPower>) -> Self {
        self.host_cpu = host_cpu;
        self
    }

    /// The same, with each GPU group heating and cooling by `thermal` (throttling as it says).
    pub fn with_thermal(mut self, thermal: Option<Thermal>) -> Self {
        self.thermal = thermal.map(|t| (t, RefCell::new(Vec::new())));
        self
    }

    /// The same, with the memory clock limited to `memory_clock` of the device's maximum.
    pub fn with_memory_clock(mut self, memory_clock: f64) -> Self {
        self.memory_clock = memory_clock;
        self
    }

    /// The same, with the power limit set hour by hour.
    pub fn with_hourly_caps(mut self, caps: Option<HourlyCaps>) -> Self {
        self.hourly_caps = caps;
        self
    }

    /// Whether a stage started past the last hour of the hourly limits.
    pub fn ran_past_hourly_caps(&self) -> bool {
        self.hourly_caps.as_ref().is_some_and(|h| h.past_end.get())
    }

    /// Each GPU group's thermal state so far (empty without a thermal model), by group index.
    pub fn thermal_states(&self) -> Vec<ThermalState> {
        self.thermal
            .as_ref()
            .map(|(_, s)| s.borrow().clone())
            .unwrap_or_default()
    }

    /// The price of `c` with the SM clock limited to `clock_limit`, the memory clock to
    /// `memory_clock` and the power to `cap_w`.
    fn price_limited(&self, c: &StageCost, clock_limit: f64, cap_w: f64) -> StagePrice {
        if (c.idle_ns | c.cpu_ns) != 0 {
            return self.price_waiting(c, clock_limit, cap_w);
        }
        let t = c.time_ns as f64 / 1e9;
        let u = Utilisation::of(c.flops, c.bytes, t, &self.device);
        let OperatingPoint {
            clock,
            stretch,
            power_w: w,
        } = self
            .profile
            .operating_point_clocks(u, clock_limit, self.memory_clock, cap_w);
        let gpu_ns = if stretch > 1.0 {
            duration_ns(c.time_ns as f64 * stretch).max(c.time_ns)
        } else {
            c.time_ns
        };
        let gpus = self.gpus_per_stage as f64;
        let host_s = c.host_ns as f64 / 1e9;
        let host_j = self
            .profile
            .host_wait_j_decayed(w, host_s, self.decay(c.host_ns, host_s));
        let host_power_w = if host_s > 0.0 {
            host_j / host_s
        } else {
            self.profile.between_batches_w()
        };
        StagePrice {
            gpu_ns,
            power_w: w,
            host_power_w,
            energy_j: energy_j(w, gpu_ns as f64 / 1e9, gpus) + host_j * gpus,
            clock,
            host_cpu_j: 0.0,
        }
    }

    /// A stage in which the GPU waits `idle_ns` of its `time_ns` on another device (partial GPU
    /// offload: the host CPU's layers and the link's transfers): the GPU's work, `time_ns - idle_ns`,
    /// priced at its utilisation over that share (stretched, and at the power the cap and clocks
    /// allow, as any stage), the wait at loaded idle. The stage's power is the mean over both, so that
    /// its energy is that power over the stage's time. The host CPU's share, `cpu_ns`, is priced by
    /// [`HostCpuPower::above_idle_j`] apart (`host_cpu_j`).
    fn price_waiting(&self, c: &StageCost, clock_limit: f64, cap_w: f64) -> StagePrice {
        let wait_ns = c.idle_ns.min(c.time_ns);
        let work_ns = c.time_ns - wait_ns;
        let work = StageCost {
            time_ns: work_ns,
            host_ns: c.host_ns,
            idle_ns: 0,
            cpu_ns: 0,
            cpu_flops: 0.0,
            cpu_bytes: 0.0,
            ..*c
        };
        let busy = if work_ns > 0 {
            self.price_limited(&work, clock_limit, cap_w)
        } else {
            let mut p = self.price_limited(&work, clock_limit, cap_w);
            p.power_w = self.profile.between_batches_w();
            p
        };
        let idle_w = self.profile.between_batches_w();
        let gpu_ns = busy.gpu_ns.saturating_add(wait_ns);
        let power_w = if gpu_ns > 0 {
            (busy.power_w * busy.gpu_ns as f64 + idle_w * wait_ns as f64) / gpu_ns as f64
        } else {
            idle_w
        };
        let gpus = self.gpus_per_stage as f64;
        let host_s = c.host_ns as f64 / 1e9;
        let host_j =
            self.profile
                .host_wait_j_decayed(power_w, host_s, self.decay(c.host_ns, host_s));
        StagePrice {
            gpu_ns,
            power_w,
            host_power_w: if host_s > 0.0 {
                host_j / host_s
            } else {
                idle_w
            },
            energy_j: energy_j(power_w, gpu_ns as f64 / 1e9, gpus) + host_j * gpus,
            clock: busy.clock,
            host_cpu_j: match &self.host_cpu {
                Some(h) if c.cpu_ns > 0 => h.above_idle_j(c.cpu_ns, c.cpu_flops, c.cpu_bytes),
                _ => 0.0,
            },
        }
    }

    fn decay(&self, host_ns: u64, host_s: f64) -> f64 {
        let (ns, d) = self.last_decay.get();
        if ns == host_ns {
            return d;
        }
        let d = self.profile.tail_decay(host_s);
        self.last_decay.set((host_ns, d));
        d
    }
}

impl StagePower for StageEnergy {
    /// The stage's GPU time at the clocks the cap and the clock limit allow, its power during GPU work
    /// and host wait, and the energy of all its GPUs.
    fn price(&self, c: &StageCost) -> StagePrice {
        self.price_limited(c, self.clock_limit, self.profile.cap_w)
    }

    /// With a thermal model: the group cools at loaded idle from its last stage to `start_ns`, runs
    /// the stage throttled when it is hot ([`Thermal::decide`]), then heats at the stage's power over
    /// its GPU work and host wait.
    fn price_at(&self, c: &StageCost, group: usize, start_ns: u64) -> StagePrice {
        let cap_w = self
            .hourly_caps
            .as_ref()
            .map_or(self.profile.cap_w, |h| h.at(start_ns));
        let Some((model, states)) = &self.thermal else {
            return self.price_limited(c, self.clock_limit, cap_w);
        };
        let mut states = states.borrow_mut();
        if states.len() <= group {
            states.resize(group + 1, model.initial());
        }
        let s = &mut states[group];
        model.advance(s, self.profile.between_batches_w(), start_ns);
        let p = if model.decide(s) {
            let limit = self.clock_limit.min(model.config.throttle_clock);
            let p = self.price_limited(c, limit, cap_w);
            s.throttled_ns = s
                .throttled_ns
                .saturating_add(p.gpu_ns.saturating_add(c.host_ns));
            p
        } else {
            self.price_limited(c, self.clock_limit, cap_w)
        };
        let gpu_end = start_ns.saturating_add(p.gpu_ns);
        model.advance(s, p.power_w, gpu_end);
        model.advance(s, p.host_power_w, gpu_end.saturating_add(c.host_ns));
        p
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
    fn a_stage_no_limit_binds_runs_at_full_clocks_as_the_operating_point_says() {
        // `operating_point_clocks` answers at once when no clock limit, memory clock or cap binds;
        // the search must then give the same, full clocks at the demanded power, whatever the
        // unbinding limits are written as.
        let p = profile();
        for &(compute, memory) in &[(0.0, 0.0), (0.3, 0.9), (0.9, 0.2), (1.0, 1.0)] {
            let u = Utilisation { compute, memory };
            let demand = p.demand_w(u);
            for &clock in &[1.0, 1.5, f64::INFINITY] {
                for &mem in &[1.0, 2.0, f64::INFINITY] {
                    for &cap in &[demand, demand + 50.0, f64::INFINITY] {
                        assert_eq!(
                            p.operating_point_search(u, clock, mem, cap),
                            OperatingPoint {
                                clock: 1.0,
                                stretch: 1.0,
                                power_w: demand
                            },
                            "u {u:?}, clock {clock}, memory clock {mem}, cap {cap}"
                        );
                    }
                }
            }
        }
        // And the price is the same through either path: a binding limit taken away gives the
        // unlimited price.
        let device = crate::catalog::Catalog::builtin()
            .unwrap()
            .device("a100")
            .unwrap()
            .1
            .clone();
        let e = StageEnergy::new(p.clone(), device, 1, 1.0);
        let c = StageCost {
            time_ns: 2_000_000,
            host_ns: 500_000,
            flops: 2e11,
            bytes: 1e9,
            idle_ns: 0,
            cpu_ns: 0,
            cpu_flops: 0.0,
            cpu_bytes: 0.0,
        };
        let full = e.price_limited(&c, f64::INFINITY, f64::INFINITY);
        assert_eq!(e.price_limited(&c, 1.0, p.cap_w.max(1e9)), full);
        assert_eq!((full.clock, full.gpu_ns), (1.0, c.time_ns));
        assert!(e.price_limited(&c, 0.5, f64::INFINITY).gpu_ns > c.time_ns);
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
    fn a_memory_clock_stretches_the_memory_bound_share_and_keeps_dynamic_energy() {
        let p = profile();
        let u = Utilisation {
            compute: 0.1,
            memory: 0.3,
        };
        let full = p.operating_point_capped(u, 0.8, p.cap_w);
        // At full memory clock nothing changes.
        assert_eq!(p.operating_point_clocks(u, 0.8, 1.0, p.cap_w), full);
        let op = p.operating_point_clocks(u, 0.8, 0.5, p.cap_w);
        let s = 0.1 / 0.4;
        assert!((op.stretch - (s / 0.8 + (1.0 - s) / 0.5)).abs() < 1e-12);
        assert_eq!(op.clock, full.clock);
        // Dynamic energy per stage (power above P_0 times the stretch) is what it was.
        let dynamic = |o: &OperatingPoint| (o.power_w - p.p0_w) * o.stretch;
        assert!((dynamic(&op) - dynamic(&full)).abs() < 1e-9);
        // A purely memory-bound stage takes 1 / f_mem as long.
        let m = Utilisation {
            compute: 0.0,
            memory: 0.8,
        };
        let op = p.operating_point_clocks(m, 1.0, 2.0 / 3.0, p.cap_w);
        assert!((op.stretch - 1.5).abs() < 1e-12);
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
