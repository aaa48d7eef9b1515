//! Latency CDFs of a run: time to first token, time per output token and largest inter-token gap, and end-to-end latency over its
//! completed requests, all replicas together and, for 2 to 8 replicas, one line per replica.
//!
//! Input: `requests.parquet` of a [`RunFolder`], read chunk by chunk, keeping per latency the replica and
//! value of each completed request. Output: one [`LatencyCdf`] per latency, drawn by [`super::render`];
//! nothing when no request completed. Shares the house style of [`super`] and touches no file itself.

use super::{
    fmt_num, fmt_secs, font, legend_below, sorted, tick_label, DrawResult, Figure, HouseMesh,
    LOG_SPREAD, PALETTE, TITLE_PX,
};
use crate::error::Result;
use crate::metrics::quantile_sorted;
use crate::runfolder::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Per-replica CDF lines are drawn for 2 to this many replicas (beyond, only the total).
const MAX_CDF_REPLICAS: usize = 8;
/// CDFs over at most this many values are drawn as exact steps.
const CDF_STEPS_MAX: usize = 50;
/// CDFs over more values are drawn through this many quantiles.
const CDF_POINTS: usize = 1000;

/// One line of a CDF.
#[derive(Debug, Clone)]
pub struct CdfSeries {
    pub label: String,
    /// Values in ascending order.
    pub sorted: Vec<f64>,
    pub color: RGBColor,
    pub width: u32,
}

/// Cumulative distribution of a per-request latency.
#[derive(Debug, Clone)]
pub struct LatencyCdf {
    pub stem: &'static str,
    pub title: String,
    pub caption: String,
    pub x_desc: &'static str,
    pub series: Vec<CdfSeries>,
}

fn pct_label(prefix: &str, v: &[f64]) -> String {
    format!(
        "{prefix}: p50 {}, p99 {} (n = {})",
        fmt_secs(quantile_sorted(v, 0.5)),
        fmt_secs(quantile_sorted(v, 0.99)),
        v.len()
    )
}

/// The latency CDFs of a run: time to first token, time per output token and largest inter-token gap,
/// end-to-end latency, over
/// completed requests. Runs with no completed request get none.
pub fn latency_cdfs(run: &RunFolder) -> Result<Vec<LatencyCdf>> {
    // Per latency, (replica, value) of each completed request with a value, in request order; read chunk
    // by chunk so that only these pairs, not the table's columns, are held for a long run.
    let names = ["ttft_s", "tpot_s", "itl_max_s", "e2e_s"];
    let mut values: [Vec<(u64, f64)>; 4] = Default::default();
    run.requests_chunks(
        &[
            "status",
            "replica",
            "ttft_s",
            "tpot_s",
            "itl_max_s",
            "e2e_s",
        ],
        |req| {
            let done = req.text_is("status", "completed")?;
            let replica = req.u64s("replica")?;
            for (name, out) in names.iter().zip(values.iter_mut()) {
                out.extend(
                    req.f64s(name)?
                        .into_iter()
                        .zip(&replica)
                        .zip(&done)
                        .filter_map(|((v, r), d)| v.filter(|_| *d).map(|v| (*r, v))),
                );
            }
            Ok(())
        },
    )?;
    let [ttft_values, tpot_values, itl_max_values, e2e_values] = values;
    let n_replicas = run.replicas() as usize;
    // The total in the first colour, then one line per replica (when there are a few).
    let by_replica = |vals: &[(u64, f64)]| -> Vec<CdfSeries> {
        let all = sorted(vals.iter().map(|(_, v)| *v).collect());
        if all.is_empty() {
            return Vec::new();
        }
        let per_replica = (2..=MAX_CDF_REPLICAS).contains(&n_replicas);
        let mut series = vec![CdfSeries {
            label: pct_label(
                if per_replica {
                    "all replicas"
                } else {
                    "all requests"
                },
                &all,
            ),
            sorted: all,
            color: PALETTE[0],
            width: 3,
        }];
        if per_replica {
            for r in 0..n_replicas {
                let v = sorted(
                    vals.iter()
                        .filter(|(q, _)| *q == r as u64)
                        .map(|(_, v)| *v)
                        .collect(),
                );
                if !v.is_empty() {
                    series.push(CdfSeries {
                        label: pct_label(&format!("replica {r}"), &v),
                        sorted: v,
                        color: PALETTE[1 + r % (PALETTE.len() - 1)],
                        width: 2,
                    });
                }
            }
        }
        series
    };
    let mut figs = Vec::new();
    let ttft = by_replica(&ttft_values);
    if !ttft.is_empty() {
        figs.push(LatencyCdf {
            stem: "ttft_cdf",
            title: "Time to first token".into(),
            caption: "Time to first token (TTFT, `ttft_s`): CDF over completed requests".into(),
            x_desc: "time to first token (s)",
            series: ttft,
        });
    }
    let tpot = sorted(tpot_values.into_iter().map(|(_, v)| v).collect());
    let itl_max = sorted(itl_max_values.into_iter().map(|(_, v)| v).collect());
    if !tpot.is_empty() {
        figs.push(LatencyCdf {
            stem: "tpot_cdf",
            title: "Time per output token and largest inter-token gap, per request".into(),
            caption:
                "CDF over completed requests with two or more output tokens of each request's \
                      time per output token (`tpot_s`, its mean gap) and its largest inter-token \
                      latency (`itl_max_s`, preemption stalls included). The summary's `itl_*_s` \
                      percentiles are over every token gap instead, so they differ from these"
                    .into(),
            x_desc: "token gap (s)",
            series: vec![
                CdfSeries {
                    label: pct_label("TPOT of a request", &tpot),
                    sorted: tpot,
                    color: PALETTE[0],
                    width: 3,
                },
                CdfSeries {
                    label: pct_label("largest ITL of a request", &itl_max),
                    sorted: itl_max,
                    color: PALETTE[1],
                    width: 2,
                },
            ],
        });
    }
    let e2e = by_replica(&e2e_values);
    if !e2e.is_empty() {
        figs.push(LatencyCdf {
            stem: "e2e_cdf",
            title: "End-to-end latency".into(),
            caption:
                "End-to-end latency (`e2e_s`, arrival to last token): CDF over completed requests"
                    .into(),
            x_desc: "end-to-end latency (s)",
            series: e2e,
        });
    }
    Ok(figs)
}

/// Points of an empirical CDF: exact steps for small samples, the points `(x_i, (i + 1) / n)` for
/// medium ones (thick steps draw as jagged teeth), quantiles for large ones.
fn cdf_points(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n > CDF_STEPS_MAX && n <= CDF_POINTS {
        let mut pts = Vec::with_capacity(n + 1);
        if let Some(&x0) = sorted.first() {
            pts.push((x0, 0.0));
        }
        pts.extend(
            sorted
                .iter()
                .enumerate()
                .map(|(i, &x)| (x, (i + 1) as f64 / n as f64)),
        );
        pts
    } else if n <= CDF_POINTS {
        let mut pts = Vec::with_capacity(2 * n);
        for (i, &x) in sorted.iter().enumerate() {
            pts.push((x, i as f64 / n as f64));
            pts.push((x, (i + 1) as f64 / n as f64));
        }
        pts
    } else {
        (0..=CDF_POINTS)
            .map(|k| {
                let q = k as f64 / CDF_POINTS as f64;
                (quantile_sorted(sorted, q), q)
            })
            .collect()
    }
}

impl Figure for LatencyCdf {
    fn stem(&self) -> String {
        self.stem.to_string()
    }
    fn caption(&self) -> String {
        self.caption.clone()
    }
    fn section(&self) -> &'static str {
        "Latency"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let lo = self
            .series
            .iter()
            .filter_map(|s| s.sorted.iter().copied().find(|v| *v > 0.0))
            .fold(f64::INFINITY, f64::min);
        let hi = self
            .series
            .iter()
            .filter_map(|s| s.sorted.last().copied())
            .fold(0.0, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > 0.0 {
            (lo, hi)
        } else {
            (1e-3, 1.0)
        };
        // A wide spread (preemption stalls next to normal gaps) reads better on a log axis.
        // The legend goes in a strip below the chart, where it cannot hide a curve.
        let (_, h) = root.dim_in_pixel();
        let legend_h = 30 + 30 * self.series.len() as u32;
        let (chart_area, legend_area) = root.split_vertically(h.saturating_sub(legend_h));
        let items: Vec<(String, (RGBColor, u32))> = self
            .series
            .iter()
            .map(|s| (s.label.clone(), (s.color, s.width)))
            .collect();
        legend_below(&legend_area, &items)?;
        if hi / lo > LOG_SPREAD {
            // Start just below a power of ten, so that the log axis labels it (it labels powers of ten
            // inside the range, then their multiples).
            let start = 10f64.powf(lo.log10().floor()) * (1.0 - 1e-9);
            let range = (start..hi * 1.25).log_scale();
            self.draw_on(&chart_area, range, start, true)
        } else {
            self.draw_on(&chart_area, 0.0..hi * 1.04, 0.0, false)
        }
    }
}

impl LatencyCdf {
    fn draw_on<DB, X>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x_range: X,
        floor: f64,
        log: bool,
    ) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(TITLE_PX))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(90)
            .build_cartesian_2d(x_range, 0.0..1.0)?;
        let x_desc = if log {
            self.x_desc.replacen(" (s)", " (s, log scale)", 1)
        } else {
            self.x_desc.to_string()
        };
        let x_fmt = |v: &f64| tick_label(*v, log);
        chart
            .configure_mesh()
            .house_style()
            .x_desc(x_desc)
            .y_desc("fraction of requests ≤ x")
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        for s in &self.series {
            let style = s.color.stroke_width(s.width);
            chart.draw_series(LineSeries::new(
                cdf_points(&s.sorted)
                    .into_iter()
                    .map(|(x, y)| (x.max(floor), y)),
                style,
            ))?;
        }
        Ok(())
    }
}
