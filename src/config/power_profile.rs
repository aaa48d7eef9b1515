//! The power-profile file format (`profiles/power/<device>.yaml`): the parameters of one device's power
//! model and where they came from, read and checked.
//!
//! Input: a YAML file. Output: a [`PowerProfile`] whose parameters are finite, non-negative and below
//! the cap. The model that prices a batch stage with these parameters lives in `power/`; this module
//! holds only the data and its checks, and may not compute power.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a power profile's parameters came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowerProvenance {
    /// `fitted` (from measurements) or `published` (from datasheet figures, not fitted).
    pub method: String,
    /// The data the parameters came from.
    pub data: Vec<String>,
    /// Fit error, when fitted (metric name -> value).
    #[serde(default)]
    pub error: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Parameters of one device's power model, watts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowerProfile {
    /// Device id in the device catalog.
    pub device: String,
    /// Idle power as fitted from the profile's data (benchmark idle readings mix GPUs with and without
    /// a process); used between stages when `loaded_idle_w` is absent.
    pub idle_w: f64,
    /// Power of a live server's GPU with the engine up, weights and KV cache allocated and no work
    /// (CUDA context held, clocks up): what a replica draws between batches and while the GPU waits on
    /// the host. `loaded_idle_source` says where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_idle_w: Option<f64>,
    /// Where `loaded_idle_w` came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_idle_source: Option<String>,
    /// Power of the GPU with no process on it (empty idle), for reporting; watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_idle_w: Option<f64>,
    /// Time constant of the decay from busy power to loaded idle after a burst of GPU work, ms (0: an
    /// immediate drop).
    #[serde(default)]
    pub tail_ms: f64,
    /// Where `tail_ms` came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_source: Option<String>,
    /// Exponent of dynamic power against clock (P_dyn ~ f^alpha) used when a stage's demand exceeds
    /// the cap and the clocks fall.
    #[serde(default = "default_dvfs_exponent")]
    pub dvfs_exponent: f64,
    /// Power of a running stage at zero utilisation.
    pub p0_w: f64,
    /// Extra power at full compute utilisation.
    pub k_compute_w: f64,
    /// Extra power at full memory-bandwidth utilisation.
    pub k_memory_w: f64,
    /// Power cap (the board limit).
    pub cap_w: f64,
    pub provenance: PowerProvenance,
}

/// Lowest clock fraction the DVFS model goes to (a stage whose P_0 nearly reaches the cap, or the
/// lowest SM clock limit a config may set, as a fraction of the device's maximum).
pub const MIN_CLOCK: f64 = 0.05;

/// Dynamic power against clock frequency, P ~ f V^2 with V roughly proportional to f in the DVFS range.
pub const DEFAULT_DVFS_EXPONENT: f64 = 3.0;

fn default_dvfs_exponent() -> f64 {
    DEFAULT_DVFS_EXPONENT
}

impl PowerProfile {
    /// What a live replica's GPU draws with nothing to run: `loaded_idle_w`, else `idle_w`.
    pub fn between_batches_w(&self) -> f64 {
        self.loaded_idle_w.unwrap_or(self.idle_w)
    }

    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::input::read_text(path)?;
        Self::parse(path, &text)
    }

    /// Reads and checks a profile from a file or the built-in copy.
    pub fn load_from(origin: &super::data::Origin) -> Result<Self> {
        Self::parse(&origin.name(), &origin.text()?)
    }

    /// Parses and checks profile text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        crate::input::check_yaml_depth(path, text)?;
        let de = serde_yaml::Deserializer::from_str(text);
        let p: PowerProfile = serde_path_to_error::deserialize(de).map_err(|e| Error::Field {
            path: path.to_path_buf(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        p.validate(path)?;
        Ok(p)
    }

    /// Every parameter finite and non-negative, idle and P_0 below the cap.
    pub fn validate(&self, path: &Path) -> Result<()> {
        for (field, v) in [
            ("idle_w", self.idle_w),
            ("p0_w", self.p0_w),
            ("k_compute_w", self.k_compute_w),
            ("k_memory_w", self.k_memory_w),
            ("cap_w", self.cap_w),
            ("loaded_idle_w", self.loaded_idle_w.unwrap_or(0.0)),
            ("empty_idle_w", self.empty_idle_w.unwrap_or(0.0)),
            ("tail_ms", self.tail_ms),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(
                    path,
                    field,
                    v,
                    "must be a finite number >= 0",
                ));
            }
        }
        if !(self.dvfs_exponent.is_finite() && (1.0..=10.0).contains(&self.dvfs_exponent)) {
            return Err(Error::invalid(
                path,
                "dvfs_exponent",
                self.dvfs_exponent,
                "must be a number from 1 to 10",
            ));
        }
        if self.cap_w <= 0.0
            || self.idle_w > self.cap_w
            || self.p0_w > self.cap_w
            || self.between_batches_w() > self.cap_w
        {
            return Err(Error::invalid(
                path,
                "cap_w",
                self.cap_w,
                format!(
                    "must be > 0 and at least idle_w ({}) and p0_w ({})",
                    self.idle_w, self.p0_w
                ),
            ));
        }
        Ok(())
    }
}

/// A small profile with round numbers, for the power model's and the format's unit tests.
#[cfg(test)]
pub(crate) fn example_profile() -> PowerProfile {
    PowerProfile {
        device: "x".into(),
        idle_w: 60.0,
        loaded_idle_w: None,
        loaded_idle_source: None,
        empty_idle_w: None,
        tail_ms: 0.0,
        tail_source: None,
        dvfs_exponent: DEFAULT_DVFS_EXPONENT,
        p0_w: 100.0,
        k_compute_w: 200.0,
        k_memory_w: 150.0,
        cap_w: 400.0,
        provenance: PowerProvenance {
            method: "published".into(),
            data: vec![],
            error: Default::default(),
            notes: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> PowerProfile {
        example_profile()
    }

    #[test]
    fn invalid_profiles_are_named() {
        let mut p = profile();
        p.cap_w = 50.0;
        let e = p.validate(Path::new("p.yaml")).unwrap_err().to_string();
        assert!(e.contains("cap_w") && e.contains("50"), "{e}");
        p.cap_w = 400.0;
        p.k_memory_w = f64::NAN;
        assert!(p
            .validate(Path::new("p.yaml"))
            .unwrap_err()
            .to_string()
            .contains("k_memory_w"));
    }
}
