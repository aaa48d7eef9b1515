//! Figure: each batch's energy per token against its number of requests ([`EnergyPerToken`]), from
//! the batch stages of `batches.parquet` summed over pipeline stages. The table is read chunk by chunk;
//! what is kept is the energy per token of each batch with decodes, grouped by batch size (the
//! percentiles need every value), and the rows of batches still between pipeline stages.

use super::style::*;
use super::tables::finite_stage_energies;
use crate::error::{Error, Result};
use crate::plots::{fmt_num, font, DrawResult, Figure, HouseMesh, LOG_SPREAD, TITLE_PX};
use crate::runfolder::{RunFolder, BATCHES};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

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

/// A batch: its requests, tokens and energy over all its pipeline stages.
#[derive(Debug, Clone, Copy)]
struct BatchEnergy {
    /// Decode steps the row covers (a run of steps counts as that many batches, each at its mean).
    steps: f64,
    requests: f64,
    prefill_tokens: f64,
    decode_tokens: f64,
    energy_j: f64,
}

/// One row of batches.parquet waiting for the other pipeline stages of its batch.
#[derive(Debug, Clone, Copy)]
struct StageRow {
    steps: f64,
    requests: f64,
    prefill_tokens: f64,
    decode_tokens: f64,
    energy_j: f64,
    /// Its row in the file (from 1), for errors.
    file_row: usize,
}

impl StageRow {
    /// The batch of a run with one pipeline stage.
    fn batch(&self) -> BatchEnergy {
        BatchEnergy {
            steps: self.steps,
            requests: self.requests,
            prefill_tokens: self.prefill_tokens,
            decode_tokens: self.decode_tokens,
            energy_j: self.energy_j,
        }
    }
}

/// The columns of batches.parquet the figure reads.
const BATCH_COLUMNS: [&str; 7] = [
    "replica",
    "stage",
    "steps",
    "num_requests",
    "prefill_tokens",
    "decode_tokens",
    "energy_j",
];

/// The batches of a run with their energy summed over pipeline stages, from the rows of batches.parquet
/// in file order. A batch runs through its replica's stages in order and each stage runs batches first
/// come, first served, so the k-th row of (replica, stage s) is the same batch for every s: a batch is
/// complete once each stage of its replica has a row waiting, and is then passed on, so only the rows
/// of batches still in the pipeline are held.
#[derive(Debug, Default)]
struct BatchMatcher {
    /// Pipeline stages of the run.
    stages: usize,
    /// Per replica (index = replica), the rows waiting at each stage (index = stage).
    waiting: Vec<Vec<VecDeque<StageRow>>>,
    /// Per replica, the highest stage seen.
    top_stage: Vec<usize>,
    /// Per replica, the batches passed on so far.
    done: Vec<usize>,
}

impl BatchMatcher {
    fn new(stages: usize) -> Self {
        BatchMatcher {
            stages: stages.max(1),
            ..Default::default()
        }
    }

    /// Takes a row of `replica` at `stage`; `out` receives (replica, index of the batch in its replica,
    /// batch) for each batch it completes. A stage beyond the run's pipeline stages is an error naming
    /// the row, as is a batch whose stages disagree on its tokens (rows out of order).
    fn push(
        &mut self,
        path: &Path,
        replica: u64,
        stage: u64,
        row: StageRow,
        out: &mut impl FnMut(u64, usize, BatchEnergy),
    ) -> Result<()> {
        let (r, s) = (replica as usize, stage as usize);
        if s >= self.stages {
            return Err(Error::Column {
                path: path.to_path_buf(),
                column: "stage".into(),
                row: Some(row.file_row),
                message: format!(
                    "stage {stage}, but the run has {} pipeline stages",
                    self.stages
                ),
            });
        }
        if self.done.len() <= r {
            self.done.resize(r + 1, 0);
            self.top_stage.resize(r + 1, 0);
            self.waiting.resize(r + 1, Vec::new());
        }
        let batch = if self.stages == 1 {
            row.batch()
        } else {
            self.top_stage[r] = self.top_stage[r].max(s);
            let queues = &mut self.waiting[r];
            if queues.is_empty() {
                queues.resize(self.stages, VecDeque::new());
            }
            queues[s].push_back(row);
            if queues.iter().any(VecDeque::is_empty) {
                return Ok(());
            }
            Self::pop_batch(path, queues)?
        };
        out(replica, self.done[r], batch);
        self.done[r] += 1;
        Ok(())
    }

    /// The batch of the first row waiting at each stage (all have one), taken off the queues: the
    /// sizes of the last stage, the energy of all.
    fn pop_batch(path: &Path, queues: &mut [VecDeque<StageRow>]) -> Result<BatchEnergy> {
        let last = *queues
            .last()
            .and_then(VecDeque::front)
            .expect("a row at each stage");
        let lined_up = queues.iter().all(|q| {
            q.front().is_some_and(|r| {
                r.prefill_tokens == last.prefill_tokens && r.decode_tokens == last.decode_tokens
            })
        });
        if !lined_up {
            return Err(Error::Column {
                path: path.to_path_buf(),
                column: "prefill_tokens, decode_tokens".into(),
                row: Some(last.file_row),
                message: "the pipeline stages of a batch do not line up (rows out of order?)"
                    .into(),
            });
        }
        let energy_j = queues
            .iter_mut()
            .map(|q| q.pop_front().expect("a row at each stage").energy_j)
            .sum();
        Ok(BatchEnergy {
            energy_j,
            ..last.batch()
        })
    }

    /// After the last row: a replica whose rows never reached the run's last stage has as many stages
    /// as it has rows for (its batches are matched over those); any other waiting row belongs to a
    /// batch that did not finish and is left out.
    fn finish(self, path: &Path, out: &mut impl FnMut(u64, usize, BatchEnergy)) -> Result<()> {
        for (r, queues) in self.waiting.into_iter().enumerate() {
            let top = self.top_stage[r];
            if queues.is_empty() || top + 1 >= self.stages {
                continue;
            }
            let mut queues: Vec<_> = queues.into_iter().take(top + 1).collect();
            let mut k = self.done[r];
            while queues.iter().all(|q| !q.is_empty()) {
                out(r as u64, k, Self::pop_batch(path, &mut queues)?);
                k += 1;
            }
        }
        Ok(())
    }
}

/// The energy per token of batches of each size, gathered batch by batch: per exact size, its values
/// (J per token) and count.
#[derive(Debug, Default)]
struct SizeGroups {
    /// Keyed by the bits of the size (requests in the batch), which is positive.
    by_size: BTreeMap<u64, Vec<f64>>,
}

impl SizeGroups {
    fn push(&mut self, requests: f64, j_per_token: f64) {
        self.by_size
            .entry(requests.to_bits())
            .or_default()
            .push(j_per_token);
    }

    fn len(&self) -> usize {
        self.by_size.values().map(Vec::len).sum()
    }

    /// The statistics per batch size, or per log-spaced bin of sizes over `bins` = (smallest, largest).
    fn stats(self, bins: Option<(f64, f64)>) -> Vec<SizeStat> {
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
        let mut groups: BTreeMap<i64, Vec<(f64, Vec<f64>)>> = BTreeMap::new();
        for (bits, ys) in self.by_size {
            let x = f64::from_bits(bits);
            groups.entry(key(x)).or_default().push((x, ys));
        }
        groups
            .into_values()
            .map(|g| {
                let n: usize = g.iter().map(|(_, ys)| ys.len()).sum();
                let ln_sum: f64 = g
                    .iter()
                    .flat_map(|(x, ys)| std::iter::repeat_n(x.ln(), ys.len()))
                    .sum();
                let mut ys: Vec<f64> = g.into_iter().flat_map(|(_, ys)| ys).collect();
                // As `crate::plots::sorted`; `total_cmp` is a total order in which equal values are the
                // same bits, so the unstable sort gives the same sequence, sooner.
                ys.retain(|y| y.is_finite());
                ys.sort_unstable_by(f64::total_cmp);
                SizeStat {
                    requests: (ln_sum / n as f64).exp(),
                    batches: n,
                    mean: ys.iter().sum::<f64>() / n as f64,
                    p10: crate::metrics::quantile_sorted(&ys, 0.1),
                    p90: crate::metrics::quantile_sorted(&ys, 0.9),
                }
            })
            .collect()
    }
}

/// What the figure keeps of each kind of batch with decodes (decode-only, mixed).
#[derive(Debug, Default)]
struct KindFold {
    groups: SizeGroups,
    /// (replica, index in its replica, requests, J per token) of each batch while there are at most
    /// `TOKEN_DOTS_MAX` batches with decodes in all.
    dots: Vec<(u64, usize, f64, f64)>,
}

/// The energy-per-token figure of a run whose batches have energies; none when no batch decodes.
/// batches.parquet is read chunk by chunk: per batch size, the energies per token are kept, not the
/// table.
pub fn energy_per_token(run: &RunFolder) -> Result<Option<EnergyPerToken>> {
    let path = run.dir.join(BATCHES.file);
    let mut matcher = BatchMatcher::new(run.pipeline_stages() as usize);
    // [decode-only, mixed]
    let mut kinds: [KindFold; 2] = Default::default();
    let mut with_decodes = 0usize;
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    let mut take = |replica: u64, k: usize, b: BatchEnergy| {
        if !(b.decode_tokens > 0.0 && b.requests > 0.0) {
            return;
        }
        with_decodes += 1;
        lo = lo.min(b.requests);
        hi = hi.max(b.requests);
        let y = b.energy_j / (b.prefill_tokens + b.decode_tokens);
        let kind = &mut kinds[usize::from(b.prefill_tokens > 0.0)];
        for _ in 0..(b.steps as u64).max(1) {
            kind.groups.push(b.requests, y);
        }
        if with_decodes <= TOKEN_DOTS_MAX {
            kind.dots.push((replica, k, b.requests, y));
        }
    };
    // Every stage needs a finite energy (a run with a power profile); else there is no figure.
    let mut finite = true;
    let rows = run.batches_chunks(&BATCH_COLUMNS, |b| {
        if !finite {
            return Ok(());
        }
        let Some(energy) = finite_stage_energies(b)? else {
            finite = false;
            return Ok(());
        };
        let replica = b.u64s("replica")?;
        let stage = b.u64s("stage")?;
        let steps = b.f64s_required("steps")?;
        let reqs = b.f64s_required("num_requests")?;
        let prefill = b.f64s_required("prefill_tokens")?;
        let decode = b.f64s_required("decode_tokens")?;
        for (i, e) in energy.into_iter().enumerate() {
            let row = StageRow {
                steps: steps[i],
                requests: reqs[i],
                prefill_tokens: prefill[i],
                decode_tokens: decode[i],
                energy_j: e,
                file_row: b.file_row(i),
            };
            matcher.push(&b.path, replica[i], stage[i], row, &mut take)?;
        }
        Ok(())
    })?;
    if rows == 0 || !finite {
        return Ok(None);
    }
    matcher.finish(&path, &mut take)?;
    if with_decodes == 0 {
        return Ok(None);
    }
    let mut sizes: Vec<i64> = kinds
        .iter()
        .flat_map(|k| k.groups.by_size.keys())
        .map(|&bits| f64::from_bits(bits).round() as i64)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let size_bins = sizes.len() > 2 * SIZE_BINS;
    let bins = size_bins.then_some((lo, hi));
    let dots = with_decodes <= TOKEN_DOTS_MAX;
    let mut series = Vec::new();
    for (kind, label, color) in kinds
        .into_iter()
        .zip([
            ("decode-only", DECODE),
            ("mixed (prefill + decode)", PREFILL),
        ])
        .map(|(k, (l, c))| (k, l, c))
    {
        let batches = kind.groups.len();
        if batches == 0 {
            continue;
        }
        let mut kind_dots = kind.dots;
        // In the order of the batches: replica by replica, each replica's in turn.
        kind_dots.sort_by_key(|d| (d.0, d.1));
        series.push(TokenSeries {
            label: label.into(),
            color,
            batches,
            stats: kind.groups.stats(bins),
            dots: if dots {
                kind_dots.into_iter().map(|d| (d.2, d.3)).collect()
            } else {
                Vec::new()
            },
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

    fn size_stats(points: &[(f64, f64)], bins: Option<(f64, f64)>) -> Vec<SizeStat> {
        let mut g = SizeGroups::default();
        for &(x, y) in points {
            g.push(x, y);
        }
        g.stats(bins)
    }

    fn row(prefill: f64, energy: f64, file_row: usize) -> StageRow {
        StageRow {
            steps: 1.0,
            requests: 2.0,
            prefill_tokens: prefill,
            decode_tokens: 1.0,
            energy_j: energy,
            file_row,
        }
    }

    #[test]
    fn batches_are_matched_across_stages_as_their_rows_arrive() {
        // Two stages, two replicas; stage 1 of a batch comes after stage 0 of the next one.
        let path = Path::new("batches.parquet");
        let rows = [
            (0, 0, row(10.0, 1.0, 1)),
            (1, 0, row(20.0, 2.0, 2)),
            (0, 0, row(30.0, 3.0, 3)),
            (0, 1, row(10.0, 0.5, 4)),
            (1, 1, row(20.0, 0.25, 5)),
            (0, 1, row(30.0, 0.125, 6)),
            (0, 0, row(40.0, 4.0, 7)),
        ];
        let mut m = BatchMatcher::new(2);
        let mut got = Vec::new();
        let mut take =
            |r: u64, k: usize, b: BatchEnergy| got.push((r, k, b.prefill_tokens, b.energy_j));
        for (r, s, x) in rows {
            m.push(path, r, s, x, &mut take).unwrap();
        }
        m.finish(path, &mut take).unwrap();
        // The batch whose stage 1 never came is left out.
        assert_eq!(
            got,
            vec![(0, 0, 10.0, 1.5), (1, 0, 20.0, 2.25), (0, 1, 30.0, 3.125)]
        );
        // Stages that disagree on a batch's tokens are an error naming the row of the last stage.
        let mut m = BatchMatcher::new(2);
        m.push(path, 0, 0, row(10.0, 1.0, 1), &mut |_, _, _| {})
            .unwrap();
        let e = m
            .push(path, 0, 1, row(11.0, 1.0, 2), &mut |_, _, _| {})
            .unwrap_err();
        assert!(matches!(e, Error::Column { row: Some(2), .. }), "{e:?}");
    }

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
