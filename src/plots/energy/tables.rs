//! The power table of a run folder as the figures read it: `power.parquet` as power segments grouped by
//! (replica, stage). Every joule drawn comes from the run's files (written by the power model and
//! accounting) or from [`crate::power::energy_j`]; the figures read `energy_j` of `batches.parquet`
//! themselves, chunk by chunk.

use crate::error::Result;
use crate::runfolder::Table;
use std::collections::BTreeMap;

/// One piece of constant power of a GPU group (a row of power.parquet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Segment {
    pub(super) start: f64,
    pub(super) end: f64,
    pub(super) busy: bool,
    /// Per-GPU power, W.
    pub(super) w: f64,
}

/// The power segments of one (replica, stage) group of `gpus` identical GPUs.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) replica: u64,
    pub(super) stage: u64,
    pub(super) gpus: u64,
    pub(super) segments: Vec<Segment>,
}

/// The groups of power.parquet, ordered by (replica, stage), each group's segments by start.
pub(super) fn power_groups(t: &Table) -> Result<Vec<Group>> {
    let replica = t.u64s("replica")?;
    let stage = t.u64s("stage")?;
    let gpus = t.u64s("gpus")?;
    let start = t.f64s_required("start_s")?;
    let end = t.f64s_required("end_s")?;
    // 0 = busy, 1 = idle, 2 = host (the GPU waits on the engine's host work within a stage, so the
    // segment belongs to the stage); anything else is an error naming the row.
    let state = t.text_codes("state", &["busy", "idle", "host"])?;
    let w = t.f64s_required("power_w")?;
    let mut groups: BTreeMap<(u64, u64), Group> = BTreeMap::new();
    for i in 0..t.rows() {
        let busy = state[i] != 1;
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
                busy,
                w: w[i],
            });
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    for g in &mut out {
        g.segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    Ok(out)
}
