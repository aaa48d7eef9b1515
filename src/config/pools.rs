//! Disaggregated serving (docs/disaggregation.md): which replicas prefill and which decode, the router
//! of the decode pool and the link a KV cache crosses between them, resolved and checked.
//!
//! Input: the raw `hardware.prefill_replicas`, `hardware.kv_link`, `hardware.prefill_pool` and
//! `decode_router`. Output: a [`Disaggregation`] (or none: colocated serving) whose link numbers are
//! written back into the raw config, so `config.resolved.yaml` shows them, and, with
//! `hardware.prefill_pool`, the prefill pool resolved as a scenario of its own ([`prefill_pool`]).
//! May not: run anything.

use super::raw::{KvLinkConfig, KvLinkNumbers, PoolHardwareConfig, RawConfig, RouterKind};
use super::{Policy, Scenario};
use crate::catalog::{Catalog, Catalogs};
use crate::error::{Error, Result};
use std::path::Path;

/// A named link: bandwidth per GPU and direction (GB/s), latency per transfer (us), and where the
/// numbers come from. Bandwidths are the line rates of the standards (a transfer reaches less: set
/// `bandwidth_gb_s` to a measured figure for a closer answer); latencies are assumed orders of
/// magnitude of a point-to-point transfer's setup, not measurements; link power is 0 (the presets know
/// no measured NIC power: set `power_w` to count it).
pub struct LinkPreset {
    pub name: &'static str,
    pub bandwidth_gb_s: f64,
    pub latency_us: f64,
    pub source: &'static str,
}

/// The link presets `hardware.kv_link` may name.
pub const LINK_PRESETS: [LinkPreset; 5] = [
    LinkPreset {
        name: "nvlink4",
        bandwidth_gb_s: 450.0,
        latency_us: 2.0,
        source:
            "NVLink 4 (H100 SXM): 900 GB/s per GPU both directions together (NVIDIA H100 datasheet)",
    },
    LinkPreset {
        name: "nvlink3",
        bandwidth_gb_s: 300.0,
        latency_us: 2.0,
        source:
            "NVLink 3 (A100 SXM): 600 GB/s per GPU both directions together (NVIDIA A100 datasheet)",
    },
    LinkPreset {
        name: "infiniband_ndr",
        bandwidth_gb_s: 50.0,
        latency_us: 5.0,
        source: "InfiniBand NDR, 400 Gb/s per port, one port per GPU as in a DGX H100",
    },
    LinkPreset {
        name: "infiniband_hdr",
        bandwidth_gb_s: 25.0,
        latency_us: 5.0,
        source: "InfiniBand HDR, 200 Gb/s per port, one port per GPU as in a DGX A100",
    },
    LinkPreset {
        name: "ethernet_100g",
        bandwidth_gb_s: 12.5,
        latency_us: 10.0,
        source: "100 Gb/s Ethernet (RoCE), one port per GPU",
    },
];

/// The link between a prefill and a decode replica, per GPU: each GPU of a replica sends its share of
/// the KV cache (its layers, its KV heads) over its own link, all in parallel.
#[derive(Debug, Clone, PartialEq)]
pub struct KvLink {
    /// The preset it came from (`None`: numbers given in the config).
    pub name: Option<String>,
    /// Bytes per second per GPU, one direction.
    pub bytes_per_s: f64,
    /// Fixed time of each transfer, ns.
    pub latency_ns: u64,
    /// Power each GPU's link draws during a transfer, W.
    pub power_w: f64,
}

impl KvLink {
    /// Time to move `bytes_per_gpu` from each GPU of a prefill replica to its peer in a decode
    /// replica: bytes / bandwidth + latency, ns (rounded to the nanosecond). `None` past the end of
    /// time.
    pub fn transfer_ns(&self, bytes_per_gpu: u64) -> Option<u64> {
        let flow = (bytes_per_gpu as f64 / self.bytes_per_s * 1e9).round();
        if flow.is_nan() || flow >= u64::MAX as f64 {
            return None;
        }
        (flow as u64).checked_add(self.latency_ns)
    }
}

/// Disaggregated serving: replicas `0..prefill_replicas` prefill, the others decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Disaggregation {
    pub prefill_replicas: u32,
    /// Routes each prefilled request to a decode replica.
    pub decode_router: RouterKind,
    pub link: KvLink,
}

/// Resolves the disaggregation settings of `raw` (`None`: colocated), writing the defaults and the
/// link's numbers back into it.
pub fn resolve(path: &Path, raw: &mut RawConfig) -> Result<Option<Disaggregation>> {
    let inv = |field: &str, value: &dyn std::fmt::Display, msg: &str| {
        Error::invalid(path, field, value, msg)
    };
    let hw = &mut raw.hardware;
    let link = match hw.kv_link.take() {
        None => None,
        Some(KvLinkConfig::Preset(name)) => {
            let p = LINK_PRESETS
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    let known: Vec<&str> = LINK_PRESETS.iter().map(|p| p.name).collect();
                    inv(
                        "hardware.kv_link",
                        &name,
                        &format!(
                            "is no link preset; presets: {}, or give {{bandwidth_gb_s, latency_us, power_w}}",
                            known.join(", ")
                        ),
                    )
                })?;
            Some(KvLinkNumbers {
                name: Some(p.name.to_string()),
                bandwidth_gb_s: p.bandwidth_gb_s,
                latency_us: p.latency_us,
                power_w: 0.0,
            })
        }
        Some(KvLinkConfig::Custom(n)) => Some(n),
    };
    if let Some(n) = &link {
        let check = |field: &str, v: f64, lo: f64, hi: f64, what: &str| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(inv(&format!("hardware.kv_link.{field}"), &v, what))
            }
        };
        check(
            "bandwidth_gb_s",
            n.bandwidth_gb_s,
            1e-6,
            1e6,
            "must be a number of GB/s above 0 and at most 1,000,000",
        )?;
        check(
            "latency_us",
            n.latency_us,
            0.0,
            1e9,
            "must be a number of microseconds from 0 to 1e9",
        )?;
        check(
            "power_w",
            n.power_w,
            0.0,
            1e4,
            "must be a number of watts from 0 to 10,000",
        )?;
    }
    hw.kv_link = link.clone().map(KvLinkConfig::Custom);
    if hw.prefill_replicas == 0 {
        if hw.prefill_pool.is_some() {
            return Err(inv(
                "hardware.prefill_pool",
                &"(set)",
                "needs hardware.prefill_replicas > 0: without a prefill pool every replica has hardware's layout",
            ));
        }
        return Ok(None);
    }
    if hw.prefill_replicas >= hw.replicas {
        return Err(inv(
            "hardware.prefill_replicas",
            &hw.prefill_replicas,
            &format!(
                "must be less than hardware.replicas ({}): the replicas after the prefill ones decode",
                hw.replicas
            ),
        ));
    }
    if raw.scheduler.policy == Policy::FasterTransformer {
        return Err(inv(
            "hardware.prefill_replicas",
            &hw.prefill_replicas,
            "needs a policy that batches continuously (vllm, orca, sarathi, lightllm): faster_transformer's static batches cannot take in prefilled requests",
        ));
    }
    let n = link.ok_or_else(|| {
        inv(
            "hardware.kv_link",
            &"(absent)",
            &format!(
                "is needed with hardware.prefill_replicas {}: a preset ({}) or {{bandwidth_gb_s, latency_us, power_w}}",
                hw.prefill_replicas,
                LINK_PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let decode_router = *raw.decode_router.get_or_insert(raw.router);
    Ok(Some(Disaggregation {
        prefill_replicas: hw.prefill_replicas,
        decode_router,
        link: KvLink {
            name: n.name,
            bytes_per_s: n.bandwidth_gb_s * 1e9,
            latency_ns: (n.latency_us * 1e3).round() as u64,
            power_w: n.power_w,
        },
    }))
}

/// Resolves `hardware.prefill_pool` (`None`: absent): the prefill replicas as a colocated scenario of
/// their own, resolved exactly as a run is, from `original` (the config as read, before `main`'s
/// resolution filled it in) with the pool's hardware in place of `hardware`, `prefill_replicas`
/// replicas and no disaggregation. Its memory plan, predictor, engine cost and power profile are then
/// built as for any run. `main` (the resolved config) gets the pool's fields written back, each filled.
///
/// Refused: a `pipeline_stages` other than `hardware.pipeline_stages` (the loop runs one pipeline
/// depth), and whatever the pool's own resolution refuses (a model that does not fit its device and
/// TP, a power cap out of its device's range), the field named `hardware.prefill_pool.<field>`.
pub fn prefill_pool(
    catalogs: &Catalogs,
    catalog: &Catalog,
    path: &Path,
    original: &RawConfig,
    main: &mut RawConfig,
) -> Result<Option<Box<Scenario>>> {
    let Some(pool) = original.hardware.prefill_pool.clone() else {
        return Ok(None);
    };
    let hw = &original.hardware;
    if let Some(pp) = pool.pipeline_stages.filter(|&pp| pp != hw.pipeline_stages) {
        return Err(Error::invalid(
            path,
            "hardware.prefill_pool.pipeline_stages",
            pp,
            format!(
                "must equal hardware.pipeline_stages ({}): the pools may differ in device and tensor parallelism, but the loop runs one pipeline depth for every replica",
                hw.pipeline_stages
            ),
        ));
    }
    let gpu = pool.gpu.clone().unwrap_or_else(|| hw.gpu.clone());
    // The same device (as the catalog knows it) keeps hardware's power settings unless the pool
    // gives its own; another device has its own limits and power profile.
    let key = |g: &str| catalog.device(g).map(|(k, _)| k.to_string());
    let same_device = key(&gpu).is_some() && key(&gpu) == key(&hw.gpu);
    let mut raw = original.clone();
    raw.hardware = super::raw::HardwareConfig {
        gpu: gpu.clone(),
        tensor_parallel: pool.tensor_parallel.unwrap_or(hw.tensor_parallel),
        expert_parallel: hw.expert_parallel,
        data_parallel: hw.data_parallel,
        pipeline_stages: hw.pipeline_stages,
        replicas: hw.prefill_replicas,
        gpu_memory_utilization: pool
            .gpu_memory_utilization
            .unwrap_or(hw.gpu_memory_utilization),
        power_cap_w: pool.power_cap_w.or(hw.power_cap_w.filter(|_| same_device)),
        sm_clock_mhz: pool
            .sm_clock_mhz
            .or(hw.sm_clock_mhz.filter(|_| same_device)),
        power_mode: pool
            .power_mode
            .clone()
            .or(hw.power_mode.clone().filter(|_| same_device)),
        // The prefill pool's device keeps hardware's threads when it is the same CPU.
        threads: hw.threads.filter(|_| same_device),
        // Partial offload is refused with disaggregated serving (config::offload).
        host_cpu: None,
        gpu_layers: None,
        prefill_replicas: 0,
        kv_link: None,
        prefill_pool: None,
    };
    raw.decode_router = None;
    raw.energy.host_cpu_power_profile = None;
    raw.energy.power_profile = match &pool.power_profile {
        Some(p) => Some(p.clone()),
        None => original
            .energy
            .power_profile
            .clone()
            .filter(|_| same_device),
    };
    let s = Scenario::resolve(catalogs, path, raw)
        .map_err(|e| in_pool(e, pool.power_profile.is_some()))?;
    let r = &s.raw.hardware;
    main.hardware.prefill_pool = Some(PoolHardwareConfig {
        gpu: Some(gpu),
        tensor_parallel: Some(r.tensor_parallel),
        pipeline_stages: Some(r.pipeline_stages),
        gpu_memory_utilization: Some(r.gpu_memory_utilization),
        power_cap_w: r.power_cap_w,
        sm_clock_mhz: r.sm_clock_mhz,
        power_mode: r.power_mode.clone(),
        power_profile: s.raw.energy.power_profile.clone(),
    });
    Ok(Some(Box::new(s)))
}

/// An error of the prefill pool's resolution, its field named as the config names it: a
/// `hardware.<field>` is `hardware.prefill_pool.<field>` (and so is the power profile the pool set),
/// and any other is said to be the prefill pool's.
fn in_pool(e: Error, own_profile: bool) -> Error {
    let rename = |field: String| match field.strip_prefix("hardware.") {
        Some(rest) => (format!("hardware.prefill_pool.{rest}"), false),
        None if own_profile && field == "energy.power_profile" => {
            ("hardware.prefill_pool.power_profile".to_string(), false)
        }
        None => (field, true),
    };
    let said = |other: bool, message: String| {
        if other {
            format!("{message} (in the prefill pool: hardware.prefill_pool)")
        } else {
            message
        }
    };
    match e {
        Error::Invalid {
            path,
            field,
            value,
            message,
        } => {
            let (field, other) = rename(field);
            Error::Invalid {
                path,
                field,
                value,
                message: said(other, message),
            }
        }
        Error::Field {
            path,
            field,
            message,
        } => {
            let (field, other) = rename(field);
            Error::Field {
                path,
                field,
                message: said(other, message),
            }
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_time_is_bytes_over_bandwidth_plus_latency() {
        let link = KvLink {
            name: None,
            bytes_per_s: 50e9,
            latency_ns: 5_000,
            power_w: 0.0,
        };
        // 100 MB at 50 GB/s: 2 ms, plus 5 us.
        assert_eq!(link.transfer_ns(100_000_000), Some(2_005_000));
        assert_eq!(link.transfer_ns(0), Some(5_000));
        let slow = KvLink {
            bytes_per_s: 1e-3,
            ..link
        };
        assert_eq!(slow.transfer_ns(u64::MAX), None);
    }
}
