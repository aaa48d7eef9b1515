//! Figure: each batch's energy per token against its number of requests ([`EnergyPerToken`]), from
//! the batch stages of `batches.parquet` summed over pipeline stages.

use super::style::*;
use super::tables::*;
use crate::error::{Error, Result};
use crate::plots::{fmt_num, font, DrawResult, Figure, HouseMesh, LOG_SPREAD, TITLE_PX};
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Up to this many batches, the energy-per-token plot draws one dot per batch.
pub(super) const TOKEN_DOTS_MAX: usize = 3000;

/// Above this many distinct batch sizes, batch sizes are grouped into this many log-spaced bins.
pub(super) const SIZE_BINS: usize = 40;

/// Statistics of the energy per token of the batches of one size (or one bin of sizes).
#[derive(Debug, Clone, PartialEq)]
pub struct SizeStat {
    /// Batch size (requests), or the geometric mean of the sizes of a bin.
    pub requests: f64,
    pub batches: usize,
    pub mean: f64,
    pub p10: f64,
    pub p90: f64,
}

/// Energy per token of one kind of batch.
#[derive(Debug, Clone)]
pub struct TokenSeries {
    pub label: String,
    pub color: RGBColor,
    /// (requests, J per token) of every batch, when they are few enough to draw one by one.
    pub dots: Vec<(f64, f64)>,
    pub batches: usize,
    pub stats: Vec<SizeStat>,
}

/// Energy per token of each batch with decodes against its number of requests.
#[derive(Debug, Clone)]
pub struct EnergyPerToken {
    pub series: Vec<TokenSeries>,
    /// Batch sizes are grouped into log-spaced bins (too many distinct sizes).
    pub size_bins: bool,
    pub pipeline_stages: u32,
}

/// A batch: its replica, requests, tokens and energy over all its pipeline stages.
#[derive(Debug, Clone, Copy)]
struct BatchEnergy {
    requests: f64,
    prefill_tokens: f64,
    decode_tokens: f64,
    energy_j: f64,
}

/// The batches of a run with their energy summed over pipeline stages. A batch runs through its
/// replica's stages in order and each stage runs batches first come, first served, so the k-th row of
/// (replica, stage s) is the same batch for every s.
fn batch_energies(run: &RunFolder, energy: &[f64]) -> Result<Vec<BatchEnergy>> {
    let b = run.batches(&[
        "replica",
        "stage",
        "num_requests",
        "prefill_tokens",
        "decode_tokens",
    ])?;
    let replica = b.u64s("replica")?;
    let stage = b.u64s("stage")?;
    let reqs = b.f64s_required("num_requests")?;
    let prefill = b.f64s_required("prefill_tokens")?;
    let decode = b.f64s_required("decode_tokens")?;
    let mut rows: BTreeMap<u64, Vec<Vec<usize>>> = BTreeMap::new();
    for i in 0..b.rows() {
        let per_stage = rows.entry(replica[i]).or_default();
        let s = stage[i] as usize;
        if per_stage.len() <= s {
            per_stage.resize(s + 1, Vec::new());
        }
        per_stage[s].push(i);
    }
    let mut out = Vec::new();
    for per_stage in rows.values() {
        let Some(last) = per_stage.last() else {
            continue;
        };
        for (k, &i) in last.iter().enumerate() {
            let stages: Option<Vec<usize>> = per_stage.iter().map(|s| s.get(k).copied()).collect();
            let Some(stages) = stages else { continue };
            if stages
                .iter()
                .any(|&j| prefill[j] != prefill[i] || decode[j] != decode[i])
            {
                return Err(Error::Column {
                    path: b.path.clone(),
                    column: "prefill_tokens, decode_tokens".into(),
                    row: Some(i + 1),
                    message: "the pipeline stages of a batch do not line up (rows out of order?)"
                        .into(),
                });
            }
            out.push(BatchEnergy {
                requests: reqs[i],
                prefill_tokens: prefill[i],
                decode_tokens: decode[i],
                energy_j: stages.iter().map(|&j| energy[j]).sum(),
            });
        }
    }
    Ok(out)
}

fn size_stats(points: &[(f64, f64)], bins: Option<(f64, f64)>) -> Vec<SizeStat> {
    // Key: the batch size, or the index of its log-spaced bin.
    let key = |x: f64| -> i64 {
        match bins {
            None => x.round() as i64,
            Some((lo, hi)) => {
                let f = (x.ln() - lo.ln()) / (hi.ln() - lo.ln()).max(1e-12);
                ((f * SIZE_BINS as f64).floor() as i64).clamp(0, SIZE_BINS as i64 - 1)
            }
        }
    };
    let mut groups: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    for &(x, y) in points {
        groups.entry(key(x)).or_default().push((x, y));
    }
    groups
        .into_values()
        .map(|g| {
            let n = g.len();
            let ys = crate::plots::sorted(g.iter().map(|p| p.1).collect());
            SizeStat {
                requests: (g.iter().map(|p| p.0.ln()).sum::<f64>() / n as f64).exp(),
                batches: n,
                mean: ys.iter().sum::<f64>() / n as f64,
                p10: crate::metrics::quantile_sorted(&ys, 0.1),
                p90: crate::metrics::quantile_sorted(&ys, 0.9),
            }
        })
        .collect()
}

/// The energy-per-token figure of a run whose batches have energies; none when no batch decodes.
pub fn energy_per_token(run: &RunFolder) -> Result<Option<EnergyPerToken>> {
    let Some(energy) = stage_energies(run)? else {
        return Ok(None);
    };
    let batches = batch_energies(run, &energy)?;
    let with_decodes: Vec<&BatchEnergy> = batches
        .iter()
        .filter(|b| b.decode_tokens > 0.0 && b.requests > 0.0)
        .collect();
    if with_decodes.is_empty() {
        return Ok(None);
    }
    let j_per_token = |b: &BatchEnergy| b.energy_j / (b.prefill_tokens + b.decode_tokens);
    let decode_only: Vec<(f64, f64)> = with_decodes
        .iter()
        .filter(|b| b.prefill_tokens == 0.0)
        .map(|b| (b.requests, j_per_token(b)))
        .collect();
    let mixed: Vec<(f64, f64)> = with_decodes
        .iter()
        .filter(|b| b.prefill_tokens > 0.0)
        .map(|b| (b.requests, j_per_token(b)))
        .collect();
    let mut sizes: Vec<i64> = with_decodes
        .iter()
        .map(|b| b.requests.round() as i64)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let lo = with_decodes
        .iter()
        .map(|b| b.requests)
        .fold(f64::INFINITY, f64::min);
    let hi = with_decodes.iter().map(|b| b.requests).fold(0.0, f64::max);
    let size_bins = sizes.len() > 2 * SIZE_BINS;
    let bins = size_bins.then_some((lo, hi));
    let dots = with_decodes.len() <= TOKEN_DOTS_MAX;
    let mut series = Vec::new();
    for (points, label, color) in [
        (decode_only, "decode-only", DECODE),
        (mixed, "mixed (prefill + decode)", PREFILL),
    ] {
        if points.is_empty() {
            continue;
        }
        series.push(TokenSeries {
            label: label.into(),
            color,
            batches: points.len(),
            stats: size_stats(&points, bins),
            dots: if dots { points } else { Vec::new() },
        });
    }
    Ok(Some(EnergyPerToken {
        series,
        size_bins,
        pipeline_stages: run.pipeline_stages(),
    }))
}

impl EnergyPerToken {
    fn legend(&self) -> Vec<(String, Swatch)> {
        let per = if self.size_bins {
            "per bin of batch sizes"
        } else {
            "per batch size"
        };
        let mut items = Vec::new();
        for s in &self.series {
            let n = fmt_count(s.batches);
            if s.dots.is_empty() {
                items.push((
                    format!("{}: {n} batches, mean {per}", s.label),
                    Swatch::Line(s.color, 3),
                ));
                items.push((
                    format!("{}: 10th to 90th percentile", s.label),
                    Swatch::Fill(s.color, 0.2),
                ));
            } else {
                items.push((
                    format!("{}: {n} batches, one dot per batch", s.label),
                    Swatch::Dot(s.color),
                ));
                items.push((format!("{}: mean {per}", s.label), Swatch::Line(s.color, 3)));
            }
        }
        items
    }

    fn x_bounds(&self) -> (f64, f64) {
        let xs = self.series.iter().flat_map(|s| {
            s.stats
                .iter()
                .map(|t| t.requests)
                .chain(s.dots.iter().map(|d| d.0))
        });
        let (lo, hi) = xs.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
        if lo.is_finite() && hi > 0.0 {
            (lo, hi)
        } else {
            (1.0, 1.0)
        }
    }

    fn y_max(&self) -> f64 {
        let hi = self
            .series
            .iter()
            .flat_map(|s| {
                s.stats
                    .iter()
                    .map(|t| t.p90.max(t.mean))
                    .chain(s.dots.iter().map(|d| d.1))
            })
            .fold(0.0, f64::max);
        if hi > 0.0 {
            hi * 1.08
        } else {
            1.0
        }
    }

    fn draw_on<DB, X>(&self, root: &DrawingArea<DB, Shift>, x_range: X, log: bool) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption("Energy per token against batch size", font(TITLE_PX))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(100)
            .build_cartesian_2d(x_range, 0.0..self.y_max())?;
        let x_desc = if log {
            "requests in the batch (log scale)"
        } else {
            "requests in the batch"
        };
        let x_fmt = |v: &f64| crate::plots::tick_label(*v, log);
        chart
            .configure_mesh()
            .house_style()
            .x_desc(x_desc)
            .y_desc("energy per token (J/token)")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for s in &self.series {
            let color = s.color;
            if s.dots.is_empty() {
                let mut band: Vec<(f64, f64)> =
                    s.stats.iter().map(|t| (t.requests, t.p90)).collect();
                band.extend(s.stats.iter().rev().map(|t| (t.requests, t.p10)));
                if s.stats.len() > 1 {
                    chart.draw_series(std::iter::once(Polygon::new(
                        band,
                        color.mix(0.2).filled(),
                    )))?;
                }
            } else {
                chart.draw_series(
                    s.dots
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.mix(0.35).filled())),
                )?;
            }
            chart.draw_series(LineSeries::new(
                s.stats.iter().map(|t| (t.requests, t.mean)),
                color.stroke_width(3),
            ))?;
            chart.draw_series(
                s.stats
                    .iter()
                    .map(|t| Circle::new((t.requests, t.mean), 3, color.filled())),
            )?;
        }
        Ok(())
    }
}

impl Figure for EnergyPerToken {
    fn stem(&self) -> String {
        "energy_per_token".into()
    }
    fn caption(&self) -> String {
        let stages = if self.pipeline_stages > 1 {
            " summed over its pipeline stages"
        } else {
            ""
        };
        format!(
            "Energy per token of each batch with decodes against its number of requests: the batch's \
             `energy_j`{stages} over its `prefill_tokens + decode_tokens` (the share each token is charged); \
             for decode-only batches this is the energy per output token"
        )
    }
    fn section(&self) -> &'static str {
        ENERGY_SECTION
    }
    fn size(&self) -> (u32, u32) {
        (1200, 650 + legend_height(self.legend().len()))
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let legend = self.legend();
        let (_, h) = root.dim_in_pixel();
        let (chart_area, legend_area) = root.split_vertically(h - legend_height(legend.len()));
        legend_strip(&legend_area, &legend)?;
        let (lo, hi) = self.x_bounds();
        if hi / lo > LOG_SPREAD {
            let start = 10f64.powf(lo.log10().floor()) * (1.0 - 1e-9);
            self.draw_on(&chart_area, (start..hi * 1.25).log_scale(), true)
        } else {
            self.draw_on(&chart_area, 0.0..hi * 1.08 + 0.5, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_group_exactly_or_in_log_bins() {
        let pts = [(1.0, 0.5), (1.0, 0.3), (4.0, 0.1), (4.0, 0.1), (4.0, 0.1)];
        let s = size_stats(&pts, None);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].requests, s[0].batches), (1.0, 2));
        assert!((s[0].mean - 0.4).abs() < 1e-12);
        assert_eq!(s[1].batches, 3);
        let pts: Vec<(f64, f64)> = (1..=1000).map(|n| (n as f64, 1.0 / n as f64)).collect();
        let s = size_stats(&pts, Some((1.0, 1000.0)));
        // Bins 1, 2, 3, 5 and 7 of 40 (log-spaced over [1, 1000]) hold no integer size.
        assert_eq!(s.len(), SIZE_BINS - 5);
        assert!(s.windows(2).all(|w| w[0].requests < w[1].requests));
        assert_eq!(s.iter().map(|t| t.batches).sum::<usize>(), 1000);
    }
}
