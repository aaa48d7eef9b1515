//! A first-order (lumped RC) thermal model of a device, and the throttling it causes.
//!
//! Input: the `edge.thermal` section (ambient, thermal resistance `R`, time constant `tau`, throttle
//! temperature, throttled clock, hysteresis) and, stage by stage, the power a device draws over each
//! interval. Output: its temperature over time and whether it throttles. With constant power `P` over
//! `dt` the temperature relaxes towards `T_ss = ambient + P x R`:
//! `T(t + dt) = T_ss + (T(t) - T_ss) e^(-dt / tau)`. A device at or above `throttle_c` when a stage
//! starts runs that stage at `throttle_clock` (at most), which the power model turns into a longer
//! stage at lower power; it stops throttling once it has cooled `hysteresis_c` below the limit. It may
//! not know about requests, batches or the loop.

use crate::config::raw::ThermalConfig;

/// One device's thermal state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThermalState {
    pub temperature_c: f64,
    /// When the last interval it was told of ended, ns.
    pub at_ns: u64,
    pub throttled: bool,
    /// Highest temperature reached.
    pub max_c: f64,
    /// Time spent in stages run throttled, ns.
    pub throttled_ns: u64,
}

/// The thermal model of one kind of device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thermal {
    pub config: ThermalConfig,
}

impl Thermal {
    /// The state at time 0.
    pub fn initial(&self) -> ThermalState {
        let t = self.config.initial_c.unwrap_or(self.config.ambient_c);
        ThermalState {
            temperature_c: t,
            at_ns: 0,
            throttled: t >= self.config.throttle_c,
            max_c: t,
            throttled_ns: 0,
        }
    }

    /// Steady temperature at constant power `power_w`, degrees C.
    pub fn steady_c(&self, power_w: f64) -> f64 {
        self.config.ambient_c + power_w * self.config.r_th_c_per_w
    }

    /// The temperature after `dt_ns` at constant `power_w`, from `from_c`.
    pub fn relax(&self, from_c: f64, power_w: f64, dt_ns: u64) -> f64 {
        let ss = self.steady_c(power_w);
        ss + (from_c - ss) * (-(dt_ns as f64 / 1e9) / self.config.tau_s).exp()
    }

    /// Advances `s` to `t_ns` at constant `power_w` (nothing when `t_ns` is not later).
    pub fn advance(&self, s: &mut ThermalState, power_w: f64, t_ns: u64) {
        if t_ns <= s.at_ns {
            return;
        }
        s.temperature_c = self.relax(s.temperature_c, power_w, t_ns - s.at_ns);
        s.max_c = s.max_c.max(s.temperature_c);
        s.at_ns = t_ns;
    }

    /// Whether a stage starting in state `s` runs throttled: from `throttle_c` up until the device
    /// has cooled `hysteresis_c` below it. Updates `s.throttled`.
    pub fn decide(&self, s: &mut ThermalState) -> bool {
        let c = &self.config;
        if s.temperature_c >= c.throttle_c {
            s.throttled = true;
        } else if s.temperature_c <= c.throttle_c - c.hysteresis_c {
            s.throttled = false;
        }
        s.throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Thermal {
        Thermal {
            config: ThermalConfig {
                ambient_c: 25.0,
                r_th_c_per_w: 2.0,
                tau_s: 30.0,
                throttle_c: 80.0,
                throttle_clock: 0.6,
                hysteresis_c: 5.0,
                initial_c: None,
            },
        }
    }

    #[test]
    fn approaches_ambient_plus_power_times_resistance() {
        let m = model();
        let mut s = m.initial();
        assert_eq!(s.temperature_c, 25.0);
        // 20 W: steady at 25 + 20 x 2 = 65 C. After one time constant 63.2% of the way.
        m.advance(&mut s, 20.0, 30_000_000_000);
        let one_tau = 25.0 + 40.0 * (1.0 - (-1.0f64).exp());
        assert!(
            (s.temperature_c - one_tau).abs() < 1e-9,
            "{}",
            s.temperature_c
        );
        m.advance(&mut s, 20.0, 600_000_000_000);
        assert!((s.temperature_c - 65.0).abs() < 1e-6);
        // Idle (0 W) brings it back to ambient.
        m.advance(&mut s, 0.0, 1_200_000_000_000);
        assert!((s.temperature_c - 25.0).abs() < 1e-6);
        assert!((s.max_c - 65.0).abs() < 1e-6);
    }

    #[test]
    fn throttles_at_the_limit_and_recovers_below_the_hysteresis() {
        let m = model();
        let mut s = m.initial();
        assert!(!m.decide(&mut s));
        s.temperature_c = 80.0;
        assert!(m.decide(&mut s));
        s.temperature_c = 77.0;
        assert!(m.decide(&mut s), "still within the hysteresis");
        s.temperature_c = 75.0;
        assert!(!m.decide(&mut s));
    }

    #[test]
    fn splitting_an_interval_changes_nothing() {
        let m = model();
        let (mut a, mut b) = (m.initial(), m.initial());
        m.advance(&mut a, 30.0, 10_000_000_000);
        m.advance(&mut b, 30.0, 4_000_000_000);
        m.advance(&mut b, 30.0, 10_000_000_000);
        assert!((a.temperature_c - b.temperature_c).abs() < 1e-9);
    }
}
