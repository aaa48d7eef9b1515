//! Replica timelines of a run: per replica, the requests and prefill tokens per batch and the KV-cache
//! use over simulated time, as exact steps for a few batches and time bins (mean and min-max band) for many.
//!
//! Input: `batches.parquet` (and the summary's KV-cache size) of a [`RunFolder`], read chunk by chunk,
//! keeping only the rows drawn (stage 0 of the first replicas). Output: one [`ReplicaTimeline`] per
//! replica up to [`super::MAX_TIMELINES`], drawn by [`super::render`]. Shares the house style of
//! [`super`] and touches no file.

use super::{
    fmt_num, fmt_secs, font, legend_line, DrawResult, Figure, HouseMesh, EXACT_STEPS_MAX,
    LEGEND_PX, MAX_TIMELINES, PALETTE, TIMELINE_BINS, TITLE_PX,
};
use crate::error::Result;
use crate::metrics::Summary;
use crate::runfolder::{RunFolder, Table};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;

/// Up to this many sparse events per replica (prefill batches) are drawn one point each.
const EXACT_POINTS_MAX: usize = 5000;

/// A quantity over simulated time, defined while some batch runs: exact steps for a few batches,
/// time bins for many. Between batches the line breaks (no value is drawn where no batch ran).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Polylines `(time s, value)`, one per stretch of time covered by batches.
    pub segments: Vec<Vec<(f64, f64)>>,
    /// When binned: per stretch, `(bin middle s, min, max)` of the values in each bin.
    pub band: Vec<Vec<(f64, f64, f64)>>,
    /// Width of a time bin in seconds, when binned.
    pub bin_s: Option<f64>,
}

impl Profile {
    /// The profile of values held over intervals `(start s, end s, value)`, sorted by start and not
    /// overlapping, on `[0, t_end]`. Up to `EXACT_STEPS_MAX` intervals are drawn as exact steps; more are
    /// averaged in `TIMELINE_BINS` time bins, each value weighted by the time it was held in the bin,
    /// time without a batch excluded.
    pub fn of(intervals: &[(f64, f64, f64)], t_end: f64) -> Profile {
        Self::build(intervals, t_end, EXACT_STEPS_MAX, false)
    }

    /// The profile of sparse events (e.g. prefill batches): up to `EXACT_POINTS_MAX` intervals, one point
    /// per interval at its start; more are binned as [`Profile::of`] does.
    pub fn points(intervals: &[(f64, f64, f64)], t_end: f64) -> Profile {
        Self::build(intervals, t_end, EXACT_POINTS_MAX, true)
    }

    fn build(intervals: &[(f64, f64, f64)], t_end: f64, exact_max: usize, points: bool) -> Profile {
        if points && intervals.len() <= exact_max {
            return Profile {
                segments: intervals.iter().map(|&(s, _, v)| vec![(s, v)]).collect(),
                band: Vec::new(),
                bin_s: None,
            };
        }
        if intervals.len() <= exact_max {
            let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
            let mut prev_end = f64::NEG_INFINITY;
            for &(s, e, v) in intervals {
                if s > prev_end || segments.is_empty() {
                    segments.push(Vec::new());
                }
                let seg = segments.last_mut().expect("a segment was just pushed");
                seg.push((s, v));
                seg.push((e, v));
                prev_end = e;
            }
            return Profile {
                segments,
                band: Vec::new(),
                bin_s: None,
            };
        }
        let mut bins = Bins::new(t_end);
        for &(s, e, v) in intervals {
            bins.add(s, e, v);
        }
        bins.profile()
    }

    /// The largest value shown.
    pub fn max(&self) -> f64 {
        let lines = self.segments.iter().flatten().map(|(_, v)| *v);
        let band = self.band.iter().flatten().map(|(_, _, hi)| *hi);
        lines.chain(band).fold(0.0, f64::max)
    }
}

/// Values held over intervals, averaged into [`TIMELINE_BINS`] time bins on `[0, t_end]` as they come:
/// each value weighted by the time it was held in a bin, with the min and max of each bin.
#[derive(Debug, Clone)]
struct Bins {
    width: f64,
    weighted: Vec<f64>,
    covered: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl Bins {
    fn new(t_end: f64) -> Bins {
        let n = TIMELINE_BINS;
        Bins {
            width: if t_end > 0.0 { t_end / n as f64 } else { 1.0 },
            weighted: vec![0.0; n],
            covered: vec![0.0; n],
            min: vec![f64::INFINITY; n],
            max: vec![f64::NEG_INFINITY; n],
        }
    }

    fn add(&mut self, s: f64, e: f64, v: f64) {
        let (n, width) = (TIMELINE_BINS, self.width);
        let first = ((s / width).floor() as usize).min(n - 1);
        let last = ((e / width).ceil() as usize).clamp(first + 1, n);
        for b in first..last {
            let (b0, b1) = (b as f64 * width, (b + 1) as f64 * width);
            let overlap = (e.min(b1) - s.max(b0)).max(0.0);
            // A batch that only touches a bin's edge does not count in it, unless it takes no time.
            if overlap > 0.0 || e == s {
                self.weighted[b] += v * overlap;
                self.covered[b] += overlap;
                self.min[b] = self.min[b].min(v);
                self.max[b] = self.max[b].max(v);
            }
        }
    }

    fn profile(self) -> Profile {
        let width = self.width;
        let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut band: Vec<Vec<(f64, f64, f64)>> = Vec::new();
        let mut open = false;
        for b in 0..TIMELINE_BINS {
            if self.max[b] == f64::NEG_INFINITY {
                open = false;
                continue;
            }
            if !open {
                segments.push(Vec::new());
                band.push(Vec::new());
                open = true;
            }
            let mid = (b as f64 + 0.5) * width;
            let mean = if self.covered[b] > 0.0 {
                self.weighted[b] / self.covered[b]
            } else {
                (self.min[b] + self.max[b]) / 2.0
            };
            segments.last_mut().expect("opened").push((mid, mean));
            band.last_mut()
                .expect("opened")
                .push((mid, self.min[b], self.max[b]));
        }
        Profile {
            segments,
            band,
            bin_s: Some(width),
        }
    }
}

/// A profile built from intervals as they are read: kept when there are few (the count is known from a
/// first pass over the table), else folded into [`Bins`] at once, so a long run's batches are never
/// held. Gives the [`Profile::build`] of the same intervals.
enum ProfileAcc {
    Exact {
        intervals: Vec<(f64, f64, f64)>,
        exact_max: usize,
        points: bool,
    },
    Binned(Bins),
}

impl ProfileAcc {
    fn new(count: usize, t_end: f64, exact_max: usize, points: bool) -> ProfileAcc {
        if count > exact_max {
            ProfileAcc::Binned(Bins::new(t_end))
        } else {
            ProfileAcc::Exact {
                intervals: Vec::with_capacity(count),
                exact_max,
                points,
            }
        }
    }

    fn add(&mut self, s: f64, e: f64, v: f64) {
        match self {
            ProfileAcc::Exact { intervals, .. } => intervals.push((s, e, v)),
            ProfileAcc::Binned(b) => b.add(s, e, v),
        }
    }

    fn finish(self, t_end: f64) -> Profile {
        match self {
            ProfileAcc::Exact {
                intervals,
                exact_max,
                points,
            } => Profile::build(&intervals, t_end, exact_max, points),
            ProfileAcc::Binned(b) => b.profile(),
        }
    }
}

/// One line of a timeline panel.
#[derive(Debug, Clone)]
struct Line {
    label: String,
    profile: Profile,
    color: RGBColor,
    /// Draw the min-max band of binned values.
    band: bool,
    /// Draw points (sparse events) rather than lines.
    markers: bool,
}

/// One panel of a timeline: a few quantities against time.
#[derive(Debug, Clone)]
struct Panel {
    y_desc: String,
    lines: Vec<Line>,
    /// A dashed horizontal line (label, value), e.g. the KV-cache capacity.
    limit: Option<(String, f64)>,
}

/// Batch size, prefill tokens per batch and KV-cache use of one replica over simulated time.
#[derive(Debug, Clone)]
pub struct ReplicaTimeline {
    pub replica: u32,
    pub replicas: u32,
    pub pipeline_stages: u32,
    pub t_end: f64,
    /// Width of the time bins, when the batches are too many to draw one by one.
    pub bin_s: Option<f64>,
    panels: Vec<Panel>,
}

/// What a first pass over batches.parquet learns: the end of the last batch stage of any replica, the
/// table's rows, and per shown replica (stage 0) its batches, those with decodes and those with
/// prefills, which decide whether each line is drawn exactly or binned.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counts {
    t_end: f64,
    rows: usize,
    all: Vec<usize>,
    decode: Vec<usize>,
    prefill: Vec<usize>,
}

impl Counts {
    fn fold(&mut self, b: &Table) -> Result<()> {
        self.rows += b.rows();
        self.t_end = b
            .f64s_required("end_s")?
            .into_iter()
            .fold(self.t_end, f64::max);
        let (replica, stage) = (b.u64s("replica")?, b.u64s("stage")?);
        let (prefill, decode) = (
            b.f64s_required("prefill_tokens")?,
            b.f64s_required("decode_tokens")?,
        );
        for i in 0..b.rows() {
            let r = replica[i] as usize;
            if r < self.all.len() && stage[i] == 0 {
                self.all[r] += 1;
                self.decode[r] += usize::from(decode[i] > 0.0);
                self.prefill[r] += usize::from(prefill[i] > 0.0);
            }
        }
        Ok(())
    }
}

/// The four lines of one replica's timeline, built as the rows arrive.
struct Lines {
    decoding: ProfileAcc,
    prefilling: ProfileAcc,
    prefill_tokens: ProfileAcc,
    kv_used: ProfileAcc,
}

/// Adds the rows of a chunk of batches.parquet (in file order) of the shown replicas at stage 0.
fn fold_lines(lines: &mut [Lines], b: &Table) -> Result<()> {
    let (replica, stage) = (b.u64s("replica")?, b.u64s("stage")?);
    let col = |name| b.f64s_required(name);
    let (start, end, steps) = (col("start_s")?, col("end_s")?, col("steps")?);
    let (reqs, prefill, decode, kv) = (
        col("num_requests")?,
        col("prefill_tokens")?,
        col("decode_tokens")?,
        col("kv_blocks_used")?,
    );
    for i in 0..b.rows() {
        let Some(l) = lines.get_mut(replica[i] as usize).filter(|_| stage[i] == 0) else {
            continue;
        };
        let (s, e) = (start[i], end[i]);
        if decode[i] > 0.0 {
            // A run of decode steps holds its tokens per step throughout.
            l.decoding.add(s, e, decode[i] / steps[i].max(1.0));
        }
        if prefill[i] > 0.0 {
            l.prefilling.add(s, e, reqs[i] - decode[i]);
            l.prefill_tokens.add(s, e, prefill[i]);
        }
        l.kv_used.add(s, e, kv[i]);
    }
    Ok(())
}

/// The columns of batches.parquet a timeline reads.
const TIMELINE_COLUMNS: [&str; 9] = [
    "replica",
    "stage",
    "start_s",
    "end_s",
    "steps",
    "num_requests",
    "prefill_tokens",
    "decode_tokens",
    "kv_blocks_used",
];

/// The timelines of the first [`MAX_TIMELINES`] replicas, from batches.parquet (pipeline stage 0: the
/// batches as formed), read twice chunk by chunk: once to count each line's batches (and find the end
/// of time), once to fold them into exact steps or time bins, so no batch is held when there are many.
// Long (~125 lines): three panel definitions per replica, read in the order they are drawn.
pub fn replica_timelines(run: &RunFolder) -> Result<Vec<ReplicaTimeline>> {
    let replicas = run.replicas();
    let shown = replicas.min(MAX_TIMELINES) as usize;
    let mut counts = Counts {
        all: vec![0; shown],
        decode: vec![0; shown],
        prefill: vec![0; shown],
        ..Counts::default()
    };
    run.batches_chunks(
        &[
            "replica",
            "stage",
            "end_s",
            "prefill_tokens",
            "decode_tokens",
        ],
        |chunk| counts.fold(chunk),
    )?;
    if counts.rows == 0 {
        return Ok(Vec::new());
    }
    let t_end = counts.t_end;
    let mut lines: Vec<Lines> = (0..shown)
        .map(|r| Lines {
            decoding: ProfileAcc::new(counts.decode[r], t_end, EXACT_STEPS_MAX, false),
            prefilling: ProfileAcc::new(counts.prefill[r], t_end, EXACT_POINTS_MAX, true),
            prefill_tokens: ProfileAcc::new(counts.prefill[r], t_end, EXACT_POINTS_MAX, true),
            kv_used: ProfileAcc::new(counts.all[r], t_end, EXACT_STEPS_MAX, false),
        })
        .collect();
    run.batches_chunks(&TIMELINE_COLUMNS, |chunk| fold_lines(&mut lines, chunk))?;
    // The KV-cache size, from the summary (a summary that does not parse leaves the capacity line out).
    let summary = Summary::deserialize(&run.summary).ok();
    // Replica r's own: with a prefill pool of its own hardware, the first replicas have its cache.
    let capacity = |r: u32| {
        summary
            .as_ref()
            .map(|s| match s.prefill_pool_kv_blocks_per_replica {
                Some(b) if r < s.prefill_replicas => b as f64,
                _ => s.kv_blocks_per_replica as f64,
            })
    };
    let block_tokens = summary
        .as_ref()
        .map_or(1.0, |s| s.kv_block_size_tokens as f64);
    let (kv_desc, kv_label) = if block_tokens == 1.0 {
        ("KV cache (tokens)".to_string(), "in use".to_string())
    } else {
        (
            "KV cache (blocks)".to_string(),
            format!("in use ({}-token blocks)", fmt_num(block_tokens)),
        )
    };
    let mut figs = Vec::new();
    for (r, l) in lines.into_iter().enumerate() {
        let r = r as u32;
        let decoding = l.decoding.finish(t_end);
        let prefilling = l.prefilling.finish(t_end);
        let prefill_tokens = l.prefill_tokens.finish(t_end);
        let kv_used = l.kv_used.finish(t_end);
        let bin_s = kv_used.bin_s;
        let panels = vec![
            Panel {
                y_desc: "requests per batch".into(),
                lines: vec![
                    Line {
                        label: "decoding (batches with decodes)".into(),
                        profile: decoding,
                        color: PALETTE[0],
                        band: false,
                        markers: false,
                    },
                    Line {
                        label: "prefilling (a batch with prefills)".into(),
                        profile: prefilling,
                        color: PALETTE[1],
                        band: false,
                        markers: true,
                    },
                ],
                limit: None,
            },
            Panel {
                y_desc: "prefill tokens per batch".into(),
                lines: vec![Line {
                    label: "prefill tokens of a batch".into(),
                    profile: prefill_tokens,
                    color: PALETTE[1],
                    band: true,
                    markers: true,
                }],
                limit: None,
            },
            Panel {
                y_desc: kv_desc.clone(),
                lines: vec![Line {
                    label: kv_label.clone(),
                    profile: kv_used,
                    color: PALETTE[2],
                    band: false,
                    markers: false,
                }],
                limit: capacity(r).map(|c| (format!("capacity ({})", fmt_num(c)), c)),
            },
        ];
        figs.push(ReplicaTimeline {
            replica: r,
            replicas,
            pipeline_stages: run.pipeline_stages(),
            t_end,
            bin_s,
            panels,
        });
    }
    Ok(figs)
}

impl Figure for ReplicaTimeline {
    fn stem(&self) -> String {
        format!("timeline_replica{}", self.replica)
    }
    fn caption(&self) -> String {
        let stage = if self.pipeline_stages > 1 {
            ", at pipeline stage 0"
        } else {
            ""
        };
        let binned = self
            .bin_s
            .map(|w| {
                format!(
                    "; means over {} time bins weighted by batch run time (shaded: min to max)",
                    fmt_secs(w)
                )
            })
            .unwrap_or_default();
        format!(
            "Replica {}: requests decoding and prefilling per batch, prefill tokens per batch and KV-cache \
             use over simulated time{stage}{binned}",
            self.replica
        )
    }
    fn section(&self) -> &'static str {
        "Replica timelines"
    }
    fn size(&self) -> (u32, u32) {
        (1200, 1050)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let title = if self.replicas > 1 {
            format!(
                "Replica {} of {}: batches over time",
                self.replica, self.replicas
            )
        } else {
            "Batches over time".to_string()
        };
        let body = root.margin(12, 0, 0, 0).titled(&title, font(TITLE_PX))?;
        let areas = body.split_evenly((self.panels.len(), 1));
        let last = self.panels.len() - 1;
        for (i, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            draw_panel(area, panel, self.t_end, i == last)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    t_end: f64,
    x_desc: bool,
) -> DrawResult<DB> {
    let y_max = panel
        .lines
        .iter()
        .map(|l| l.profile.max())
        .chain(panel.limit.as_ref().map(|(_, v)| *v))
        .fold(0.0, f64::max);
    // Headroom for the legend in the upper right: a quarter of the panel for one row, more for more.
    let rows = panel.lines.len() + usize::from(panel.limit.is_some());
    let y_max = if y_max > 0.0 {
        y_max * (1.2 + 0.12 * rows as f64)
    } else {
        1.0
    };
    let x_max = if t_end > 0.0 { t_end } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .margin_right(40)
        .x_label_area_size(if x_desc { 70 } else { 36 })
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    let mut mesh = chart.configure_mesh();
    mesh.house_style();
    mesh.y_desc(panel.y_desc.as_str())
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .y_labels(5);
    if x_desc {
        mesh.x_desc("simulated time (s)");
    }
    mesh.draw()?;
    for line in &panel.lines {
        let color = line.color;
        if line.band {
            for stretch in &line.profile.band {
                let mut poly: Vec<(f64, f64)> = stretch.iter().map(|p| (p.0, p.2)).collect();
                poly.extend(stretch.iter().rev().map(|p| (p.0, p.1)));
                chart.draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2).filled())))?;
            }
        }
        let label = match line.profile.bin_s {
            Some(w) if line.band => {
                format!("{}: mean per {}, shaded min-max", line.label, fmt_secs(w))
            }
            Some(w) => format!("{}: mean per {}", line.label, fmt_secs(w)),
            None => line.label.clone(),
        };
        if line.markers {
            chart
                .draw_series(
                    line.profile
                        .segments
                        .iter()
                        .flatten()
                        .map(|&p| Circle::new(p, 2, color.filled())),
                )?
                .label(label.as_str())
                .legend(move |(x, y)| Circle::new((x + 15, y), 5, color.filled()));
            continue;
        }
        for (k, seg) in line.profile.segments.iter().enumerate() {
            let drawn = if seg.len() == 1 {
                chart.draw_series(seg.iter().map(|&p| Circle::new(p, 2, color.filled())))?
            } else {
                chart.draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))?
            };
            if k == 0 {
                drawn.label(label.as_str()).legend(legend_line(color, 3));
            }
        }
    }
    if let Some((label, v)) = &panel.limit {
        let grey = RGBColor(60, 60, 60);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, *v), (x_max, *v)],
                10,
                6,
                grey.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(legend_line(grey, 2));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(8)
        .legend_area_size(44)
        .label_font(font(LEGEND_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_break_between_batches() {
        let p = Profile::of(&[(1.0, 2.0, 5.0), (2.0, 3.0, 7.0), (4.0, 5.0, 1.0)], 6.0);
        assert_eq!(p.bin_s, None);
        assert_eq!(
            p.segments,
            vec![
                vec![(1.0, 5.0), (2.0, 5.0), (2.0, 7.0), (3.0, 7.0)],
                vec![(4.0, 1.0), (5.0, 1.0)],
            ]
        );
        assert_eq!(p.max(), 7.0);
    }

    #[test]
    fn bins_weight_values_by_time_and_leave_idle_bins_empty() {
        // 2000 batches over [0, 250): values 10 and 20 alternating, the 20s three times as long (binary
        // fractions, so bin edges are exact); the rest of [0, 600] is idle.
        let mut iv = Vec::new();
        let mut t = 0.0;
        for i in 0..2000 {
            let (d, v) = if i % 2 == 0 {
                (0.0625, 10.0)
            } else {
                (0.1875, 20.0)
            };
            iv.push((t, t + d, v));
            t += d;
        }
        let p = Profile::of(&iv, 600.0);
        assert_eq!(p.bin_s, Some(1.0));
        assert_eq!(p.segments.len(), 1, "one busy stretch");
        let seg = &p.segments[0];
        assert_eq!(seg.len(), 250);
        assert_eq!(seg[0].0, 0.5);
        assert!((seg[0].1 - 17.5).abs() < 1e-6, "{:?}", seg[0]);
        assert_eq!((p.band[0][0].1, p.band[0][0].2), (10.0, 20.0));
    }
}
