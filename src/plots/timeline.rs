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
        let n = TIMELINE_BINS;
        let width = if t_end > 0.0 { t_end / n as f64 } else { 1.0 };
        let mut weighted = vec![0.0f64; n];
        let mut covered = vec![0.0f64; n];
        let mut min = vec![f64::INFINITY; n];
        let mut max = vec![f64::NEG_INFINITY; n];
        for &(s, e, v) in intervals {
            let first = ((s / width).floor() as usize).min(n - 1);
            let last = ((e / width).ceil() as usize).clamp(first + 1, n);
            for b in first..last {
                let (b0, b1) = (b as f64 * width, (b + 1) as f64 * width);
                let overlap = (e.min(b1) - s.max(b0)).max(0.0);
                // A batch that only touches a bin's edge does not count in it, unless it takes no time.
                if overlap > 0.0 || e == s {
                    weighted[b] += v * overlap;
                    covered[b] += overlap;
                    min[b] = min[b].min(v);
                    max[b] = max[b].max(v);
                }
            }
        }
        let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut band: Vec<Vec<(f64, f64, f64)>> = Vec::new();
        let mut open = false;
        for b in 0..n {
            if max[b] == f64::NEG_INFINITY {
                open = false;
                continue;
            }
            if !open {
                segments.push(Vec::new());
                band.push(Vec::new());
                open = true;
            }
            let mid = (b as f64 + 0.5) * width;
            let mean = if covered[b] > 0.0 {
                weighted[b] / covered[b]
            } else {
                (min[b] + max[b]) / 2.0
            };
            segments.last_mut().expect("opened").push((mid, mean));
            band.last_mut().expect("opened").push((mid, min[b], max[b]));
        }
        Profile {
            segments,
            band,
            bin_s: Some(width),
        }
    }

    /// The largest value shown.
    pub fn max(&self) -> f64 {
        let lines = self.segments.iter().flatten().map(|(_, v)| *v);
        let band = self.band.iter().flatten().map(|(_, _, hi)| *hi);
        lines.chain(band).fold(0.0, f64::max)
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

/// The batch stages a timeline draws: those of the first replicas at pipeline stage 0, in file order
/// (one entry per row in each column), and the end of the last batch stage of any replica.
#[derive(Debug, Clone, Default, PartialEq)]
struct ShownBatches {
    replica: Vec<u64>,
    start: Vec<f64>,
    end: Vec<f64>,
    reqs: Vec<f64>,
    prefill: Vec<f64>,
    decode: Vec<f64>,
    kv: Vec<f64>,
    t_end: f64,
    /// Rows of batches.parquet (all replicas and stages).
    rows: usize,
}

/// The columns of batches.parquet a timeline reads.
const TIMELINE_COLUMNS: [&str; 8] = [
    "replica",
    "stage",
    "start_s",
    "end_s",
    "num_requests",
    "prefill_tokens",
    "decode_tokens",
    "kv_blocks_used",
];

impl ShownBatches {
    /// Adds the rows of a chunk of batches.parquet (its rows in file order) where the replica is below
    /// `shown` and the stage is 0; every row counts towards `t_end`.
    fn fold(&mut self, b: &Table, shown: u64) -> Result<()> {
        self.rows += b.rows();
        self.t_end = b
            .f64s_required("end_s")?
            .into_iter()
            .fold(self.t_end, f64::max);
        let replica = b.u64s("replica")?;
        let keep: Vec<usize> = replica
            .iter()
            .zip(b.u64s("stage")?)
            .enumerate()
            .filter(|(_, (r, s))| **r < shown && *s == 0)
            .map(|(i, _)| i)
            .collect();
        if keep.is_empty() {
            return Ok(());
        }
        self.replica.extend(keep.iter().map(|&i| replica[i]));
        for (name, out) in [
            ("start_s", &mut self.start),
            ("end_s", &mut self.end),
            ("num_requests", &mut self.reqs),
            ("prefill_tokens", &mut self.prefill),
            ("decode_tokens", &mut self.decode),
            ("kv_blocks_used", &mut self.kv),
        ] {
            let v = b.f64s_required(name)?;
            out.extend(keep.iter().map(|&i| v[i]));
        }
        Ok(())
    }
}

/// The timelines of the first [`MAX_TIMELINES`] replicas, from batches.parquet (pipeline stage 0: the
/// batches as formed), read chunk by chunk and keeping only the rows drawn.
// Long (~125 lines): three panel definitions per replica, read in the order they are drawn.
pub fn replica_timelines(run: &RunFolder) -> Result<Vec<ReplicaTimeline>> {
    let replicas = run.replicas();
    let shown = replicas.min(MAX_TIMELINES) as u64;
    let mut b = ShownBatches::default();
    run.batches_chunks(&TIMELINE_COLUMNS, |chunk| b.fold(chunk, shown))?;
    if b.rows == 0 {
        return Ok(Vec::new());
    }
    let t_end = b.t_end;
    let ShownBatches {
        replica,
        start,
        end,
        reqs,
        prefill,
        decode,
        kv,
        ..
    } = b;
    // The KV-cache size, from the summary (a summary that does not parse leaves the capacity line out).
    let summary = Summary::deserialize(&run.summary).ok();
    let capacity = summary.as_ref().map(|s| s.kv_blocks_per_replica as f64);
    let block_tokens = summary.map_or(1.0, |s| s.kv_block_size_tokens as f64);
    let (kv_desc, kv_label) = if block_tokens == 1.0 {
        ("KV cache (tokens)".to_string(), "in use".to_string())
    } else {
        (
            "KV cache (blocks)".to_string(),
            format!("in use ({}-token blocks)", fmt_num(block_tokens)),
        )
    };
    let mut figs = Vec::new();
    for r in 0..replicas.min(MAX_TIMELINES) {
        let rows: Vec<usize> = (0..replica.len())
            .filter(|&i| replica[i] == r as u64)
            .collect();
        // `value(i)` over the batches where it applies.
        let profile = |value: &dyn Fn(usize) -> Option<f64>| {
            let iv: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter_map(|&i| value(i).map(|v| (start[i], end[i], v)))
                .collect();
            Profile::of(&iv, t_end)
        };
        let points = |value: &dyn Fn(usize) -> Option<f64>| {
            let iv: Vec<(f64, f64, f64)> = rows
                .iter()
                .filter_map(|&i| value(i).map(|v| (start[i], end[i], v)))
                .collect();
            Profile::points(&iv, t_end)
        };
        let decoding = profile(&|i| (decode[i] > 0.0).then_some(decode[i]));
        let prefilling = points(&|i| (prefill[i] > 0.0).then_some(reqs[i] - decode[i]));
        let prefill_tokens = points(&|i| (prefill[i] > 0.0).then_some(prefill[i]));
        let kv_used = profile(&|i| Some(kv[i]));
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
                limit: capacity.map(|c| (format!("capacity ({})", fmt_num(c)), c)),
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
