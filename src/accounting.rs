//! Energy accounting and its conversion to carbon, cost and water per region.
//!
//! Input: a finished simulation (its batch-stage log with each stage's power and energy), the power
//! profile (each pool's, when the prefill pool has hardware of its own), and region files. Output: GPU
//! energy over the whole simulated span (busy stages plus idle power between them, for every GPU), the
//! two baselines (TDP x time, Vidur-Energy's MFU curve), the host CPU's energy under partial GPU
//! offload (its loaded idle over the span and each stage's energy above it; part of the IT energy,
//! not of the GPU's), hourly IT energy aligned to the run's start time, and per region: facility
//! energy (x PUE), operational
//! carbon (constant or hourly grid intensity), embodied carbon amortised per GPU-hour of each device,
//! cost (energy x price + each device's GPU-hours x its rental price) and water (IT kWh x (WUE + PUE
//! x grid water intensity)).

use crate::catalog::DeviceSpec;
use crate::cluster::window::RequestWindow;
use crate::cluster::BatchItem;
use crate::config::Scenario;
use crate::error::Result;
use crate::power::{energy_j, vidur_energy_w, PowerProfile, Utilisation};
use crate::sim::{BatchRow, BatchSink, EnergySharing, KvTransfer};
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// Joules per kilowatt-hour.
pub const J_PER_KWH: f64 = 3.6e6;

pub use crate::config::region::{
    load_embodied, load_region, Embodied, HourlySeries, Region, RegionFile, SeriesRef,
};

/// GPU energy of a run, its baselines, and its hourly profile.
#[derive(Debug, Clone, Serialize)]
pub struct EnergyTotals {
    /// The simulated span: time 0 to the last event, seconds.
    pub span_s: f64,
    pub gpus: u32,
    /// Energy of the batch stages (all GPUs), joules.
    pub busy_energy_j: f64,
    /// Idle power between stages, every GPU, joules.
    pub idle_energy_j: f64,
    /// busy + idle, joules.
    pub gpu_energy_j: f64,
    /// Host power over the span, joules.
    pub host_energy_j: f64,
    /// GPU + host ("IT") energy, joules.
    pub it_energy_j: f64,
    /// Baseline: every GPU at TDP over the whole span, joules.
    pub tdp_baseline_energy_j: f64,
    /// Baseline: Vidur-Energy's MFU curve during stages, the fitted idle power between them, joules.
    pub vidur_baseline_energy_j: f64,
    /// Energy of the links that moved KV caches between pools (disaggregated serving), joules;
    /// part of the IT energy.
    #[serde(default)]
    pub link_energy_j: f64,
    /// Partial GPU offload: energy of the host CPUs (one per replica), their loaded idle over the
    /// span plus their power above it while they run their layers, joules; part of the IT energy, not
    /// of `gpu_energy_j`. `None` without offload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu_energy_j: Option<f64>,
    /// IT energy per wall-clock hour from the hour containing the start time, joules.
    #[serde(skip)]
    pub hourly_it_energy_j: Vec<f64>,
    /// Busy and idle energy of each GPU group (replica x pipeline stage, in that order), joules.
    #[serde(skip)]
    pub groups: Vec<GroupEnergy>,
    /// The run's GPUs by pool: one part for colocated serving or pools of one hardware, the decode
    /// pool and then the prefill pool when the prefill pool has hardware of its own.
    #[serde(skip)]
    pub fleet: Vec<FleetPart>,
}

/// GPUs of one device in a run, with the device's embodied carbon (rental price and embodied carbon
/// are per device).
#[derive(Debug, Clone)]
pub struct FleetPart {
    pub device: DeviceSpec,
    pub embodied: Option<Embodied>,
    pub gpus: u32,
}

/// The power figures of one pool's GPUs.
struct PoolPower {
    idle_w: f64,
    /// GPUs per pipeline stage (a tensor-parallel group, times its data-parallel ranks).
    stage_gpus: f64,
    tdp_w: f64,
    device: DeviceSpec,
    embodied: Option<Embodied>,
    gpus: u32,
}

/// The energy of one GPU group (the GPUs of one pipeline stage of one replica).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupEnergy {
    pub busy_j: f64,
    pub idle_j: f64,
}

/// Calls `f(hour, seconds)` for each hourly bucket that [a, b) seconds of the run overlap, hours
/// counted from the hour containing the start (`offset_s` into it).
fn spread(offset_s: f64, a: f64, b: f64, f: &mut dyn FnMut(usize, f64)) {
    let (a, b) = (a + offset_s, b + offset_s);
    let mut h = (a / 3600.0).floor() as usize;
    while (h as f64) * 3600.0 < b {
        let overlap = b.min((h + 1) as f64 * 3600.0) - a.max(h as f64 * 3600.0);
        if overlap > 0.0 {
            f(h, overlap);
        }
        h += 1;
    }
}

fn grow(v: &mut Vec<f64>, h: usize) {
    if v.len() <= h {
        v.resize(h + 1, 0.0);
    }
}

/// Accumulates the energy of batch-stage rows as the simulation produces them, in memory that grows
/// with the number of GPU groups and of hours, not of rows.
pub struct EnergyAcc {
    pipeline_stages: u32,
    gpus: u32,
    /// Each pool's power figures (the scenario's, then the prefill pool's when it has its own), and
    /// the pool of each GPU group.
    pools: Vec<PoolPower>,
    group_pool: Vec<usize>,
    host_w: f64,
    offset_s: f64,
    busy_j: f64,
    vidur_busy_j: f64,
    busy_s: Vec<f64>,
    /// Busy energy per group.
    busy_j_group: Vec<f64>,
    link_j: f64,
    /// Partial GPU offload: the host CPUs' loaded-idle power, all of them, watts, and their energy
    /// above it so far, joules.
    host_cpu_idle_w: Option<f64>,
    host_cpu_j: f64,
    /// Busy energy (and link and host CPU energy above idle) per hour.
    hourly_busy_j: Vec<f64>,
    /// Busy seconds per group per hour.
    busy_hour: Vec<Vec<f64>>,
}

impl EnergyAcc {
    /// An accumulator for scenario `s` priced by `profile`; with the prefill pool's own hardware
    /// (`Scenario::prefill_pool`), `prefill_profile` gives that pool's idle power (the scenario's
    /// profile when `None`).
    pub fn new(
        s: &Scenario,
        profile: &PowerProfile,
        prefill_profile: Option<&PowerProfile>,
        start_offset_s: f64,
    ) -> Self {
        let hw = &s.hardware;
        let groups = (hw.replicas * hw.pipeline_stages) as usize;
        let gpus = s.total_gpus();
        let pool = |p: &Scenario, profile: &PowerProfile, replicas: u32| PoolPower {
            idle_w: profile.between_batches_w(),
            stage_gpus: p.gpus_per_stage() as f64,
            tdp_w: p.device.tdp_w,
            device: p.power_device.clone(),
            embodied: p.energy.embodied,
            gpus: replicas * p.gpus_per_replica(),
        };
        let (pools, group_pool) = match (&s.prefill_pool, &s.disaggregation) {
            (Some(p), Some(d)) => {
                let split = (d.prefill_replicas * hw.pipeline_stages) as usize;
                (
                    vec![
                        pool(s, profile, hw.replicas - d.prefill_replicas),
                        pool(p, prefill_profile.unwrap_or(profile), d.prefill_replicas),
                    ],
                    (0..groups).map(|g| usize::from(g < split)).collect(),
                )
            }
            _ => (vec![pool(s, profile, hw.replicas)], vec![0; groups]),
        };
        EnergyAcc {
            pipeline_stages: hw.pipeline_stages,
            gpus,
            pools,
            group_pool,
            host_w: s.energy.host_power_w_per_gpu * gpus as f64,
            offset_s: start_offset_s,
            busy_j: 0.0,
            vidur_busy_j: 0.0,
            busy_s: vec![0.0; groups],
            busy_j_group: vec![0.0; groups],
            link_j: 0.0,
            // One host CPU per replica, each at its loaded idle all along.
            host_cpu_idle_w: s
                .energy
                .host_cpu_power
                .as_ref()
                .filter(|_| s.offload.is_some())
                .map(|h| h.profile.between_batches_w() * hw.replicas as f64),
            host_cpu_j: 0.0,
            hourly_busy_j: Vec::new(),
            busy_hour: vec![Vec::new(); groups],
        }
    }

    /// Adds one batch-stage row.
    pub fn add(&mut self, r: &BatchRow) {
        let g = (r.replica * self.pipeline_stages + r.stage) as usize;
        let (a, b) = (r.start_ns as f64 / 1e9, r.end_ns as f64 / 1e9);
        let dur = b - a;
        let e = r.energy_j;
        self.busy_j += e;
        self.busy_s[g] += dur;
        self.busy_j_group[g] += e;
        let p = &self.pools[self.group_pool[g]];
        let u = Utilisation::of(r.flops, r.bytes, dur, &p.device);
        self.vidur_busy_j += energy_j(
            vidur_energy_w(p.idle_w, p.tdp_w, u.compute),
            dur,
            p.stage_gpus,
        );
        // The host CPU's energy above idle goes with the row's hours, as the row's own does.
        self.host_cpu_j += r.host_cpu_j;
        let e_here = e + r.host_cpu_j;
        let (hourly, busy_hour) = (&mut self.hourly_busy_j, &mut self.busy_hour[g]);
        spread(self.offset_s, a, b, &mut |h, overlap| {
            grow(hourly, h);
            grow(busy_hour, h);
            hourly[h] += e_here * overlap / dur.max(1e-300);
            busy_hour[h] += overlap;
        });
    }

    /// Adds the energy of a KV-cache transfer between pools, to the hours it spans.
    pub fn add_transfer(&mut self, t: &KvTransfer) {
        let e = t.energy_j();
        if e <= 0.0 {
            return;
        }
        self.link_j += e;
        let (a, b) = (t.start_ns as f64 / 1e9, t.end_ns as f64 / 1e9);
        let dur = b - a;
        let hourly = &mut self.hourly_busy_j;
        spread(self.offset_s, a, b, &mut |h, overlap| {
            grow(hourly, h);
            hourly[h] += e * overlap / dur.max(1e-300);
        });
    }

    /// The totals for a run whose span ends at `span_ns`.
    pub fn finish(&self, span_ns: u64) -> EnergyTotals {
        let span_s = span_ns as f64 / 1e9;
        let nhours = ((self.offset_s + span_s) / 3600.0).floor() as usize + 1;
        let mut hourly = self.hourly_busy_j.clone();
        hourly.resize(nhours.max(hourly.len()), 0.0);
        let pool = |g: usize| &self.pools[self.group_pool[g]];
        let groups: Vec<GroupEnergy> = self
            .busy_s
            .iter()
            .zip(&self.busy_j_group)
            .enumerate()
            .map(|(g, (b, j))| GroupEnergy {
                busy_j: *j,
                idle_j: energy_j(pool(g).idle_w, (span_s - b).max(0.0), pool(g).stage_gpus),
            })
            .collect();
        let idle_j: f64 = groups.iter().map(|g| g.idle_j).sum();
        // The host CPUs' loaded idle is drawn over the whole span, as the host's power is.
        let host_w = self.host_w + self.host_cpu_idle_w.unwrap_or(0.0);
        spread(self.offset_s, 0.0, span_s, &mut |h, overlap| {
            grow(&mut hourly, h);
            let idle_here: f64 = self
                .busy_hour
                .iter()
                .enumerate()
                .map(|(g, bh)| {
                    energy_j(
                        pool(g).idle_w,
                        (overlap - bh.get(h).copied().unwrap_or(0.0)).max(0.0),
                        pool(g).stage_gpus,
                    )
                })
                .sum();
            hourly[h] += idle_here + energy_j(host_w, overlap, 1.0);
        });
        hourly.truncate(nhours);
        let host_j = energy_j(self.host_w, span_s, 1.0);
        let host_cpu_j = self
            .host_cpu_idle_w
            .map(|w| energy_j(w, span_s, 1.0) + self.host_cpu_j);
        EnergyTotals {
            span_s,
            gpus: self.gpus,
            busy_energy_j: self.busy_j,
            idle_energy_j: idle_j,
            gpu_energy_j: self.busy_j + idle_j,
            host_energy_j: host_j,
            it_energy_j: self.busy_j + idle_j + host_j + self.link_j + host_cpu_j.unwrap_or(0.0),
            link_energy_j: self.link_j,
            host_cpu_energy_j: host_cpu_j,
            tdp_baseline_energy_j: self
                .pools
                .iter()
                .map(|p| p.tdp_w * p.gpus as f64 * span_s)
                .sum::<f64>()
                + host_j,
            vidur_baseline_energy_j: self.vidur_busy_j + idle_j + host_j,
            hourly_it_energy_j: hourly,
            groups,
            fleet: self
                .pools
                .iter()
                .map(|p| FleetPart {
                    device: p.device.clone(),
                    embodied: p.embodied,
                    gpus: p.gpus,
                })
                .collect(),
        }
    }
}

impl BatchSink for EnergyAcc {
    fn push(&mut self, row: &BatchRow) -> Result<()> {
        self.add(row);
        Ok(())
    }

    fn transfer(&mut self, t: &KvTransfer) -> Result<()> {
        self.add_transfer(t);
        Ok(())
    }
}

/// Shares a stage's energy among its requests by tokens processed: a prefill chunk counts its tokens, a
/// decode step counts one. Padding sequences of static batches are paid for by the real ones. A
/// request's share goes to its prefill energy when it prefilled in the stage, else to its decode energy.
pub struct ShareByTokens;

impl EnergySharing for ShareByTokens {
    fn share(&self, energy_j: f64, items: &[BatchItem], requests: &mut RequestWindow) {
        if !energy_j.is_finite() {
            return;
        }
        let tokens: u64 = items.iter().map(|i| i.prefill_tokens.max(1) as u64).sum();
        for item in items {
            let share = energy_j * item.prefill_tokens.max(1) as f64 / tokens as f64;
            let req = &mut requests[item.request as usize];
            if item.prefill_tokens > 0 {
                req.prefill_energy_j += share;
            } else {
                req.decode_energy_j += share;
            }
        }
    }
}

/// Splits a batch stage's energy between prefill and decode by tokens, as [`ShareByTokens`] shares it
/// among requests: each prefill token and each decode step (one token) gets the same share; padding sequences
/// of static batches get none. Returns (prefill J, decode J).
pub fn split_stage_energy(energy_j: f64, prefill_tokens: f64, decode_tokens: f64) -> (f64, f64) {
    let tokens = prefill_tokens + decode_tokens;
    if tokens > 0.0 {
        (
            energy_j * prefill_tokens / tokens,
            energy_j * decode_tokens / tokens,
        )
    } else {
        (0.0, energy_j)
    }
}

/// One run's footprint in one region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionReport {
    pub region: String,
    pub name: String,
    pub pue: f64,
    /// `constant` or `hourly`.
    pub carbon_intensity_kind: String,
    /// Energy-weighted mean grid intensity over the run, gCO2e/kWh.
    pub carbon_intensity_g_per_kwh: f64,
    pub energy_kwh_facility: f64,
    /// Operational carbon: facility kWh x grid intensity, grams CO2e.
    pub carbon_g: f64,
    pub carbon_g_per_1k_tokens: Option<f64>,
    /// Embodied carbon of the GPUs for the span, amortised over their lifetime, grams CO2e.
    pub embodied_carbon_g: Option<f64>,
    pub total_carbon_g: Option<f64>,
    pub energy_cost_usd: Option<f64>,
    pub rental_cost_usd: Option<f64>,
    /// energy + rental cost; null when either is unknown.
    pub cost_usd: Option<f64>,
    pub water_l: Option<f64>,
    /// What was missing, when a value is null.
    pub notes: Vec<String>,
}

/// Grams CO2e per joule of GPU (IT) energy at a grid intensity (g/kWh) and a PUE: what a request's
/// attributed energy is charged.
pub fn g_per_j(intensity_g_per_kwh: f64, pue: f64) -> f64 {
    intensity_g_per_kwh * pue / J_PER_KWH
}

/// The footprint of `e` in `region`, for a run that started at `start` and produced `output_tokens`:
/// rental and embodied carbon per device of `e.fleet`, each part's GPU-hours at its device's price
/// and embodied carbon.
pub fn region_report(
    e: &EnergyTotals,
    region: &Region,
    start: DateTime<Utc>,
    output_tokens: u64,
) -> Result<RegionReport> {
    let f = &region.file;
    let pue = f.pue.value;
    let it_kwh = e.it_energy_j / J_PER_KWH;
    let facility_kwh = it_kwh * pue;
    let mut notes = Vec::new();
    let n = e.hourly_it_energy_j.len();
    let (carbon_g, kind) = match &region.hourly_carbon {
        Some(series) => {
            let w = series.window(start, n)?;
            let g: f64 = e
                .hourly_it_energy_j
                .iter()
                .zip(w)
                .map(|(j, i)| j / J_PER_KWH * pue * i)
                .sum();
            (g, "hourly")
        }
        None => (
            facility_kwh * f.carbon_intensity_g_per_kwh.value,
            "constant",
        ),
    };
    // The region's tariff (all-in: energy, delivery, taxes) prices the bill when it has one; an hourly
    // series (a wholesale market price) prices it only where no tariff is known, and otherwise serves
    // as a signal (price-threshold dispatch, holding for cheap hours).
    let energy_cost = match (&region.hourly_price, &f.electricity_price_usd_per_kwh) {
        (_, Some(p)) => Some(facility_kwh * p.value),
        (Some(series), None) => {
            let w = series.window(start, n)?;
            Some(
                e.hourly_it_energy_j
                    .iter()
                    .zip(w)
                    .map(|(j, p)| j / J_PER_KWH * pue * p)
                    .sum::<f64>(),
            )
        }
        (None, None) => {
            notes.push(format!("no electricity price for {}", f.id));
            None
        }
    };
    let mut rental = Some(0.0);
    let mut embodied_g = Some(0.0);
    for part in &e.fleet {
        let (device, gpu_hours) = (&part.device, part.gpus as f64 * e.span_s / 3600.0);
        let r = match &device.rental_usd_per_gpu_hour {
            Some(r) => Some(gpu_hours * r.value),
            None => {
                notes.push(format!("no rental price for {}", device.name));
                None
            }
        };
        let g = match part.embodied {
            Some(em) => Some(amortised_embodied_g(
                em.kgco2e_per_device,
                1.0,
                em.lifetime_years,
                gpu_hours,
            )),
            None => {
                notes.push(format!("no embodied-carbon factor for {}", device.name));
                None
            }
        };
        rental = rental.zip(r).map(|(a, b)| a + b);
        embodied_g = embodied_g.zip(g).map(|(a, b)| a + b);
    }
    // Two pools of one device lacking a figure say so once.
    let mut seen = std::collections::BTreeSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    let water = match (&f.wue_l_per_kwh, &f.grid_water_intensity_l_per_kwh) {
        (Some(wue), Some(grid)) => Some(it_kwh * (wue.value + pue * grid.value)),
        _ => {
            notes.push(format!("no WUE or grid water intensity for {}", f.id));
            None
        }
    };
    Ok(RegionReport {
        region: f.id.clone(),
        name: f.name.clone(),
        pue,
        carbon_intensity_kind: kind.to_string(),
        // A constant intensity is reported as it is, not as carbon over energy (which may differ in
        // the last bit): request rows priced as they finish use it too.
        carbon_intensity_g_per_kwh: match region.hourly_carbon {
            Some(_) if facility_kwh > 0.0 => carbon_g / facility_kwh,
            _ => f.carbon_intensity_g_per_kwh.value,
        },
        energy_kwh_facility: facility_kwh,
        carbon_g,
        carbon_g_per_1k_tokens: (output_tokens > 0)
            .then(|| carbon_g / output_tokens as f64 * 1000.0),
        embodied_carbon_g: embodied_g,
        total_carbon_g: embodied_g.map(|g| g + carbon_g),
        energy_cost_usd: energy_cost,
        rental_cost_usd: rental,
        cost_usd: energy_cost.zip(rental).map(|(a, b)| a + b),
        water_l: water,
        notes,
    })
}

/// Embodied carbon of a part (a GPU, an array, a battery) of `size` units at `kg_per_unit` kgCO2e
/// each, amortised evenly over `lifetime_years` and charged for `span_h` hours of use, grams CO2e:
/// `kg_per_unit x size x 1000 x span_h / (lifetime_years x 8760)`.
pub fn amortised_embodied_g(kg_per_unit: f64, size: f64, lifetime_years: f64, span_h: f64) -> f64 {
    kg_per_unit * size * 1000.0 * span_h / (lifetime_years * 8760.0)
}

/// Seconds from the hour containing `start` to `start`.
pub fn offset_in_hour_s(start: DateTime<Utc>) -> f64 {
    start.minute() as f64 * 60.0 + start.second() as f64 + start.nanosecond() as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_stage_energy_is_split_by_tokens_as_requests_are_charged() {
        // 300 prefill tokens and 100 decode steps: three quarters to prefill.
        assert_eq!(split_stage_energy(40.0, 300.0, 100.0), (30.0, 10.0));
        assert_eq!(split_stage_energy(40.0, 0.0, 8.0), (0.0, 40.0));
        assert_eq!(split_stage_energy(40.0, 512.0, 0.0), (40.0, 0.0));
    }

    #[test]
    fn embodied_carbon_is_amortised_over_the_lifetime_per_hour_of_use() {
        // 1.2 kWp at 810 kg/kWp over 30 years, for a day: 972,000 g x 24 / 262,800 = 88.767 g.
        let g = amortised_embodied_g(810.0, 1.2, 30.0, 24.0);
        assert!((g - 972_000.0 * 24.0 / 262_800.0).abs() < 1e-9);
        assert!((g - 88.767).abs() < 1e-3);
        // A GPU's figure by the same rule: 150 kg over 5 years, for 1 hour.
        assert!((amortised_embodied_g(150.0, 1.0, 5.0, 1.0) - 150_000.0 / 43_800.0).abs() < 1e-9);
    }
}
