//! Figure: prefill, decode and idle GPU energy of each replica ([`EnergyByReplica`]): busy energy from
//! `batches.parquet` (split by tokens as accounting shares it, summed per replica chunk by chunk), idle
//! energy from `power.parquet`.

use super::style::*;
use super::tables::finite_stage_energies;
use crate::accounting::split_stage_energy;
use crate::error::Result;
use crate::plots::{fmt_num, font, DrawResult, Figure, HouseMesh, TICK_PX, TITLE_PX};
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Prefill, decode and idle GPU energy of each replica.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyByReplica {
    /// Joules per replica (index = replica).
    pub prefill_j: Vec<f64>,
    pub decode_j: Vec<f64>,
    pub idle_j: Vec<f64>,
}

/// The energy of each replica, from batches.parquet (busy) and power.parquet (idle); none without either.
pub fn energy_by_replica(run: &RunFolder) -> Result<Option<EnergyByReplica>> {
    let Some(busy) = busy_energy(run)? else {
        return Ok(None);
    };
    // Idle energy of each power row, summed by replica chunk by chunk (busy energy comes from the
    // batches).
    let mut idle_j: Vec<f64> = Vec::new();
    let rows = run.power_chunks(&["replica", "idle_energy_j"], |t| {
        for (r, j) in t
            .u64s("replica")?
            .into_iter()
            .zip(t.f64s_required("idle_energy_j")?)
        {
            let r = r as usize;
            if idle_j.len() <= r {
                idle_j.resize(r + 1, 0.0);
            }
            idle_j[r] += j;
        }
        Ok(())
    })?;
    if rows.is_none() {
        return Ok(None);
    }
    let n = idle_j
        .len()
        .max(busy.prefill_j.len())
        .max(run.replicas() as usize);
    let mut out = EnergyByReplica {
        idle_j: vec![0.0; n],
        ..busy
    };
    out.prefill_j.resize(n, 0.0);
    out.decode_j.resize(n, 0.0);
    for (r, j) in idle_j.iter().enumerate() {
        out.idle_j[r] += j;
    }
    Ok(Some(out))
}

/// The busy GPU energy of each replica (index = replica; as many entries as the highest replica with a
/// batch stage, plus one), each stage's `energy_j` split between prefill and decode by tokens, summed in
/// the order of batches.parquet, which is read chunk by chunk. None when the table has no rows or a stage
/// has no finite energy (a run without a power profile).
fn busy_energy(run: &RunFolder) -> Result<Option<EnergyByReplica>> {
    let mut busy = EnergyByReplica {
        prefill_j: Vec::new(),
        decode_j: Vec::new(),
        idle_j: Vec::new(),
    };
    let mut finite = true;
    let rows = run.batches_chunks(
        &["replica", "prefill_tokens", "decode_tokens", "energy_j"],
        |b| {
            if !finite {
                return Ok(());
            }
            let Some(energy) = finite_stage_energies(b)? else {
                finite = false;
                return Ok(());
            };
            let replica = b.u64s("replica")?;
            let prefill = b.f64s_required("prefill_tokens")?;
            let decode = b.f64s_required("decode_tokens")?;
            for (i, e) in energy.into_iter().enumerate() {
                let (p, d) = split_stage_energy(e, prefill[i], decode[i]);
                let r = replica[i] as usize;
                if busy.prefill_j.len() <= r {
                    busy.prefill_j.resize(r + 1, 0.0);
                    busy.decode_j.resize(r + 1, 0.0);
                }
                busy.prefill_j[r] += p;
                busy.decode_j[r] += d;
            }
            Ok(())
        },
    )?;
    Ok((rows > 0 && finite).then_some(busy))
}

impl EnergyByReplica {
    fn totals(&self) -> Vec<f64> {
        (0..self.prefill_j.len())
            .map(|r| self.prefill_j[r] + self.decode_j[r] + self.idle_j[r])
            .collect()
    }
}

impl Figure for EnergyByReplica {
    fn stem(&self) -> String {
        "energy_by_replica".into()
    }
    fn caption(&self) -> String {
        "GPU energy of each replica over the run: busy energy of its batch stages (`batches.parquet`), a \
         stage's energy split between prefill and decode by tokens (prefill tokens and decode steps alike, \
         as requests are charged), and idle energy between stages (`power.parquet`); host energy is not \
         included"
            .into()
    }
    fn section(&self) -> &'static str {
        ENERGY_SECTION
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.prefill_j.len();
        let totals = self.totals();
        let max = totals.iter().copied().fold(0.0, f64::max);
        let (scale, unit) = energy_unit(max);
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        let (p, d, i) = (sum(&self.prefill_j), sum(&self.decode_j), sum(&self.idle_j));
        let all = p + d + i;
        let scope = if n > 1 { "all replicas: " } else { "" };
        let part =
            |name: &str, v: f64| format!("{name} ({scope}{}, {})", fmt_energy(v), fmt_pct(v, all));
        let legend = vec![
            (part("idle", i), Swatch::Fill(IDLE, 0.8)),
            (part("decode", d), Swatch::Fill(DECODE, 0.8)),
            (part("prefill", p), Swatch::Fill(PREFILL, 0.8)),
        ];
        let (_, h) = root.dim_in_pixel();
        let (chart_area, legend_area) = root.split_vertically(h - legend_height(legend.len()));
        legend_strip(&legend_area, &legend)?;
        let y_max = if max > 0.0 { max / scale * 1.12 } else { 1.0 };
        let mut chart = ChartBuilder::on(&chart_area)
            .caption("GPU energy per replica", font(TITLE_PX))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(100)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..y_max)?;
        // Replica labels: every one up to 30 replicas, else every k-th.
        let every = n.div_ceil(30).max(1);
        let label = move |v: &f64| {
            let r = v.round();
            if (v - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < n && r as usize % every == 0 {
                format!("{}", r as usize)
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .house_style()
            .disable_x_mesh()
            .x_desc("replica")
            .y_desc(format!("GPU energy ({unit})"))
            .x_labels(n.min(30) + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| fmt_num(*v))
            .y_labels(6)
            .draw()?;
        let half = if n > 1 { 0.35 } else { 0.15 };
        for (r, total) in totals.iter().enumerate() {
            let x = r as f64;
            let mut y = 0.0;
            for (v, c) in [
                (self.prefill_j[r], PREFILL),
                (self.decode_j[r], DECODE),
                (self.idle_j[r], IDLE),
            ] {
                let top = y + v / scale;
                if top > y {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x - half, y), (x + half, top)],
                        c.mix(0.8).filled(),
                    )))?;
                }
                y = top;
            }
            if n <= 16 {
                let at = chart.backend_coord(&(x, total / scale));
                text_at(
                    &chart_area,
                    &format!("{} {unit}", fmt_num(total / scale)),
                    (at.0, at.1 - 6),
                    &font(TICK_PX).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )?;
            }
        }
        Ok(())
    }
}
