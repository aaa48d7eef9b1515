//! The power table of a run folder as the figures read it: `power.parquet` as power rows grouped by
//! (replica, stage). Every joule drawn comes from the run's files (written by the power model and
//! accounting) or from [`crate::power::energy_j`]; the figures read `energy_j` of `batches.parquet`
//! themselves, chunk by chunk.

use crate::error::Result;
use crate::runfolder::Table;
use std::collections::BTreeMap;

/// One row of power.parquet: a stretch of a GPU group's timeline and its mean power, split into what
/// the GPUs drew while working (busy and host wait) and while idle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Segment {
    pub(super) start: f64,
    pub(super) end: f64,
    /// Whether the GPUs worked at all in the stretch (busy or host wait).
    pub(super) busy: bool,
    /// Per-GPU energy drawn while working over the stretch's length, W.
    pub(super) busy_w: f64,
    /// Per-GPU energy drawn while idle over the stretch's length, W.
    pub(super) idle_w: f64,
}

/// The power rows of one (replica, stage) group of `gpus` identical GPUs.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) replica: u64,
    pub(super) stage: u64,
    pub(super) gpus: u64,
    pub(super) segments: Vec<Segment>,
}

/// Adds the rows of `t` (a chunk of power.parquet) whose (replica, stage) `keep` accepts to
/// `groups`; [`sorted_groups`] then orders them.
pub(super) fn add_power_rows(
    t: &Table,
    keep: &dyn Fn(u64, u64) -> bool,
    groups: &mut BTreeMap<(u64, u64), Group>,
) -> Result<()> {
    let replica = t.u64s("replica")?;
    let stage = t.u64s("stage")?;
    let gpus = t.u64s("gpus")?;
    let start = t.f64s_required("start_s")?;
    let end = t.f64s_required("end_s")?;
    let idle_s = t.f64s_required("idle_s")?;
    let energy = t.f64s_required("energy_j")?;
    let idle_energy = t.f64s_required("idle_energy_j")?;
    for i in 0..t.rows() {
        if !keep(replica[i], stage[i]) {
            continue;
        }
        let len = end[i] - start[i];
        // Per-GPU watts over the row: joules of the group / (GPUs x seconds).
        let per_gpu_w = |j: f64| {
            if len > 0.0 && gpus[i] > 0 {
                j / (gpus[i] as f64 * len)
            } else {
                0.0
            }
        };
        groups
            .entry((replica[i], stage[i]))
            .or_insert_with(|| Group {
                replica: replica[i],
                stage: stage[i],
                gpus: gpus[i],
                segments: Vec::new(),
            })
            .segments
            .push(Segment {
                start: start[i],
                end: end[i],
                busy: idle_s[i] < len,
                busy_w: per_gpu_w(energy[i] - idle_energy[i]),
                idle_w: per_gpu_w(idle_energy[i]),
            });
    }
    Ok(())
}

/// The groups in (replica, stage) order, each group's rows by start.
pub(super) fn sorted_groups(groups: BTreeMap<(u64, u64), Group>) -> Vec<Group> {
    let mut out: Vec<Group> = groups.into_values().collect();
    for g in &mut out {
        g.segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    out
}

/// The `energy_j` column of a chunk of batches.parquet when every stage in it has a finite energy (a
/// run with a power profile); `None` when the column is absent or a value is missing or not finite.
pub(super) fn finite_stage_energies(b: &Table) -> Result<Option<Vec<f64>>> {
    if !b.has("energy_j") {
        return Ok(None);
    }
    let energy = b.f64s("energy_j")?;
    if energy.iter().any(|v| !v.is_some_and(f64::is_finite)) {
        return Ok(None);
    }
    Ok(Some(energy.into_iter().flatten().collect()))
}
