//! The edge/cloud split point (`simwatt split`): each request generates its first w* tokens on an edge
//! device and the rest on a server, and a sweep over w* reports device energy, radio energy, server
//! energy, latency and battery drain, with the optimum.
//!
//! Inputs: a device config (its workload makes the requests, once; an `edge.battery` section gives the
//! battery figures), a server config (its workload section is replaced by the requests handed over), a
//! [`Network`] (uplink bandwidth, round trip, radio energy per MB, bytes per token of text) and the
//! list of w*. Per w*, the device runs every request with its output capped at w* (none at w* = 0:
//! the device then runs nothing and the whole request goes to the server), and the server runs the
//! requests whose output is longer than w*, with w* more prompt tokens and w* fewer output tokens,
//! arriving when the device finished them plus the transfer of their text. Outputs: a [`SplitRow`]
//! per w*, the [`Optimum`], and with [`run`] a folder holding `split.csv`, `split.json` and
//! `split.png` / `.svg` (docs/edge.md, docs/metrics.md). This module drives `simulate`; nothing below
//! the drivers imports it.

use crate::config::{self, Scenario};
use crate::drivers::simulate::{self, RunOutcome};
use crate::drivers::{to_json, Caches};
use crate::error::{Error, Result};
use crate::metrics::{RequestRow, Stats};
use crate::output::{RunDir, RunKind};
use crate::plots::{fmt_num, font, legend_line, DrawResult, Figure, HouseMesh, PALETTE};
use crate::predictor::profile::TableCache;
use crate::units::{ns_to_secs, secs_to_ns};
use crate::workload::{self, RequestSpec};
use clap::Args;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Default uplink bandwidth, MB/s: a Wi-Fi link's sustained upload (about 80 Mbit/s).
pub const DEFAULT_BANDWIDTH_MB_S: f64 = 10.0;
/// Default round trip, ms: a Wi-Fi hop and a wide-area path to a regional data centre.
pub const DEFAULT_RTT_MS: f64 = 20.0;
/// Default radio energy per MB sent, J/MB: a Wi-Fi radio drawing about 1 W while it sends at 10 MB/s.
pub const DEFAULT_RADIO_J_PER_MB: f64 = 0.1;
/// Default bytes per token of text sent (UTF-8 text averages about 4 bytes per token).
pub const DEFAULT_BYTES_PER_TOKEN: f64 = 4.0;

/// `simwatt split`
// Doc comments here are --help text, where <name> stands for a value, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Args)]
pub struct SplitCmd {
    /// Device config (YAML): the edge device, its model and the workload whose requests are split,
    /// e.g. experiments/jetson-battery.yaml.
    #[arg(long, value_name = "FILE")]
    pub device: PathBuf,
    /// Server config (YAML): the server that finishes the requests (its workload is replaced), e.g.
    /// experiments/split-server.yaml.
    #[arg(long, value_name = "FILE")]
    pub server: PathBuf,
    /// The w* values: tokens generated on the device before the request moves to the server,
    /// comma-separated, e.g. 0,16,32,64,128,256.
    #[arg(long, value_name = "N,N,...")]
    pub tokens: String,
    /// Uplink bandwidth from the device to the server, MB/s.
    #[arg(long, value_name = "MB_S", default_value_t = DEFAULT_BANDWIDTH_MB_S, allow_hyphen_values = true)]
    pub bandwidth_mb_s: f64,
    /// Round-trip latency between device and server, ms (added once per hand-over).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_RTT_MS, allow_hyphen_values = true)]
    pub rtt_ms: f64,
    /// Energy of the device's radio per MB sent, J/MB.
    #[arg(long, value_name = "J_PER_MB", default_value_t = DEFAULT_RADIO_J_PER_MB, allow_hyphen_values = true)]
    pub radio_j_per_mb: f64,
    /// Bytes per token of the text sent (the prompt and the tokens generated so far).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BYTES_PER_TOKEN, allow_hyphen_values = true)]
    pub bytes_per_token: f64,
    /// Override a key of the device config, e.g. --set workload.requests=100. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output folder (split.csv, split.json, split.png, split.svg).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the output folder if a previous `split` wrote it and it holds nothing else.
    #[arg(long)]
    pub force: bool,
    /// Print nothing but errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The link between device and server. Every figure is an assumption of the caller (the defaults are
/// stated on the constants above), not a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Network {
    pub bandwidth_mb_s: f64,
    pub rtt_ms: f64,
    pub radio_j_per_mb: f64,
    pub bytes_per_token: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            bandwidth_mb_s: DEFAULT_BANDWIDTH_MB_S,
            rtt_ms: DEFAULT_RTT_MS,
            radio_j_per_mb: DEFAULT_RADIO_J_PER_MB,
            bytes_per_token: DEFAULT_BYTES_PER_TOKEN,
        }
    }
}

impl Network {
    /// Refuses a value no link has, naming its flag.
    pub fn check(&self) -> Result<()> {
        let checks = [
            (
                "--bandwidth-mb-s",
                "bandwidth_mb_s",
                self.bandwidth_mb_s,
                false,
            ),
            ("--rtt-ms", "rtt_ms", self.rtt_ms, true),
            (
                "--radio-j-per-mb",
                "radio_j_per_mb",
                self.radio_j_per_mb,
                true,
            ),
            (
                "--bytes-per-token",
                "bytes_per_token",
                self.bytes_per_token,
                false,
            ),
        ];
        for (flag, field, v, zero_ok) in checks {
            let ok = v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0));
            if !ok {
                let want = if zero_ok {
                    "must be a finite number, 0 or more"
                } else {
                    "must be a finite number above 0"
                };
                return Err(Error::invalid(flag, field, v, want));
            }
        }
        Ok(())
    }

    /// MB sent for `tokens` tokens of text.
    fn mb(&self, tokens: u64) -> f64 {
        tokens as f64 * self.bytes_per_token / 1e6
    }

    /// Seconds from the device's hand-over to the request's arrival at the server.
    fn transfer_s(&self, tokens: u64) -> f64 {
        self.mb(tokens) / self.bandwidth_mb_s + self.rtt_ms / 1e3
    }
}

/// Parses `--tokens`: comma-separated whole numbers, at least one, each once.
pub fn parse_tokens(text: &str) -> Result<Vec<u32>> {
    let bad = |m: &str| Error::invalid("--tokens", "tokens", text, m);
    let mut out = Vec::new();
    for part in text.split(',') {
        let p = part.trim();
        if p.is_empty() {
            return Err(bad(
                "a comma-separated list of whole numbers of tokens, e.g. 0,16,64",
            ));
        }
        let v: u32 = p.parse().map_err(|_| {
            bad(&format!(
                "`{p}` is not a whole number of tokens (0 or more)"
            ))
        })?;
        if out.contains(&v) {
            return Err(bad(&format!("{v} is listed twice")));
        }
        out.push(v);
    }
    out.sort_unstable();
    Ok(out)
}

/// One w* of the sweep. Energies in joules, times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitRow {
    /// Tokens generated on the device before the hand-over.
    pub w_tokens: u32,
    pub requests: u64,
    /// Requests that went to the server (their output is longer than w*).
    pub server_requests: u64,
    /// Requests that did not complete (rejected on the device or the server).
    pub unfinished_requests: u64,
    pub device_output_tokens: u64,
    pub server_output_tokens: u64,
    /// What the device run drew over its span: GPU (busy and idle) and host energy, and the host
    /// CPU's under partial offload (0 at w* = 0, when the device runs nothing).
    pub device_energy_j: f64,
    /// The device's busy energy attributed to the requests (the part that grows with the work done).
    pub device_busy_energy_j: f64,
    /// The radio's energy sending the text of the requests handed over.
    pub radio_energy_j: f64,
    pub transfer_mb: f64,
    /// The server's busy energy attributed to these requests (sum of its request rows' energy): the
    /// marginal cost on a shared server, without its idle power.
    pub server_energy_j: f64,
    /// device + radio + server.
    pub total_energy_j: f64,
    pub j_per_output_token: f64,
    /// Each request's end to end latency: completion on the server (or on the device when it finishes
    /// there) minus its arrival on the device.
    pub e2e_mean_s: f64,
    pub e2e_p50_s: f64,
    pub e2e_p90_s: f64,
    /// First token: on the device for w* > 0, on the server (after the transfer) at w* = 0.
    pub ttft_mean_s: f64,
    /// The device run's share of its battery and the battery's runtime at the run's mean power
    /// (`edge.battery`; `None` without one, and 0 / `None` at w* = 0).
    pub battery_drain_fraction: Option<f64>,
    pub battery_runtime_h: Option<f64>,
}

/// The w* that minimises each objective (the first such w* on a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Optimum {
    pub lowest_total_energy_tokens: u32,
    pub lowest_device_energy_tokens: u32,
    pub lowest_e2e_mean_tokens: u32,
}

/// The w* of `rows` minimising each objective.
pub fn optimum(rows: &[SplitRow]) -> Option<Optimum> {
    let argmin = |f: fn(&SplitRow) -> f64| {
        rows.iter()
            .fold(None::<&SplitRow>, |best, r| match best {
                Some(b) if f(b) <= f(r) => Some(b),
                _ => Some(r),
            })
            .map(|r| r.w_tokens)
    };
    Some(Optimum {
        lowest_total_energy_tokens: argmin(|r| r.total_energy_j)?,
        lowest_device_energy_tokens: argmin(|r| r.device_energy_j)?,
        lowest_e2e_mean_tokens: argmin(|r| r.e2e_mean_s)?,
    })
}

/// Loads and resolves a config with overrides, naming `flag` when the file is missing.
pub fn load(flag: &str, path: &Path, overrides: &[String], caches: &Caches) -> Result<Scenario> {
    if !path.is_file() {
        return Err(Error::invalid(
            flag,
            flag.trim_start_matches('-'),
            path.display(),
            "no such file",
        ));
    }
    let raw = config::load(path, overrides)?;
    Scenario::resolve(&caches.catalogs, path, raw)
}

fn with_requests(s: &Scenario, n: usize) -> Scenario {
    let mut s = s.clone();
    s.workload.requests = Some(n as u64);
    s
}

fn energy_sum(rows: &[RequestRow]) -> f64 {
    rows.iter().filter_map(|r| r.energy_j).sum()
}

/// One w*: the device run, the hand-over and the server run.
fn one(
    device: &Scenario,
    server: &Scenario,
    specs: &[RequestSpec],
    w: u32,
    net: &Network,
    tables: &TableCache,
) -> Result<SplitRow> {
    let n = specs.len();
    // The device's part: every request, its output capped at w*.
    let dev: Option<RunOutcome> = if w == 0 {
        None
    } else {
        let capped: Vec<RequestSpec> = specs
            .iter()
            .map(|s| RequestSpec {
                output_tokens: s.output_tokens.min(w),
                ..*s
            })
            .collect();
        Some(simulate::simulate_specs(
            with_requests(device, n),
            &capped,
            tables,
            &|_| {},
        )?)
    };
    // Hand-over: requests with output left, arriving at the server after the transfer.
    let mut handed: Vec<(u64, usize)> = Vec::new(); // (arrival ns at the server, request index)
    let mut mb = 0.0;
    let mut done_on_device = vec![None; n];
    for (i, s) in specs.iter().enumerate() {
        let left_from_s = match &dev {
            None => Some(ns_to_secs(s.arrival_ns)),
            Some(o) => o.rows[i].completion_s,
        };
        let Some(t) = left_from_s else { continue };
        if s.output_tokens <= w {
            done_on_device[i] = Some(t);
            continue;
        }
        let tokens = s.prompt_tokens as u64 + w as u64;
        mb += net.mb(tokens);
        handed.push((secs_to_ns(t + net.transfer_s(tokens)), i));
    }
    handed.sort_unstable();
    let server_specs: Vec<RequestSpec> = handed
        .iter()
        .map(|&(at, i)| RequestSpec {
            arrival_ns: at,
            prompt_tokens: specs[i].prompt_tokens + w,
            output_tokens: specs[i].output_tokens - w,
            prefix_group: 0,
            prefix_tokens: 0,
            held_ns: 0,
            deadline_ns: None,
        })
        .collect();
    let srv = if server_specs.is_empty() {
        None
    } else {
        Some(simulate::simulate_specs(
            with_requests(server, server_specs.len()),
            &server_specs,
            tables,
            &|_| {},
        )?)
    };
    // Per request: end to end and first-token latencies.
    let mut e2e = Vec::with_capacity(n);
    let mut ttft = Vec::with_capacity(n);
    let mut server_done = vec![None; n];
    if let Some(o) = &srv {
        for (j, &(_, i)) in handed.iter().enumerate() {
            let r = &o.rows[j];
            server_done[i] = r.completion_s.map(|c| (c, r.first_token_s));
        }
    }
    for (i, s) in specs.iter().enumerate() {
        let arrival = ns_to_secs(s.arrival_ns);
        let end = done_on_device[i].or(server_done[i].map(|(c, _)| c));
        let Some(end) = end else { continue };
        e2e.push(end - arrival);
        let first = match &dev {
            Some(o) => o.rows[i].first_token_s,
            None => server_done[i].and_then(|(_, f)| f),
        };
        if let Some(f) = first {
            ttft.push(f - arrival);
        }
    }
    let unfinished = (n - e2e.len()) as u64;
    // The same statistics the summary's latency figures are.
    let e2e = Stats::of(e2e);
    let ttft_mean_s = Stats::of(ttft).map_or(f64::NAN, |t| t.mean);
    let (device_energy_j, device_busy_energy_j, drain, runtime) = match &dev {
        None => (0.0, 0.0, Some(0.0), None),
        Some(o) => {
            let e = &o.summary.energy;
            (
                e.energy_j.unwrap_or(0.0)
                    + e.host_energy_j.unwrap_or(0.0)
                    + e.host_cpu_energy_j.unwrap_or(0.0),
                energy_sum(&o.rows),
                e.battery_drain_fraction,
                e.battery_runtime_h,
            )
        }
    };
    let drain = drain.filter(|_| device.edge.as_ref().is_some_and(|e| e.battery.is_some()));
    let radio_energy_j = mb * net.radio_j_per_mb;
    let server_energy_j = srv.as_ref().map(|o| energy_sum(&o.rows)).unwrap_or(0.0);
    let total_energy_j = device_energy_j + radio_energy_j + server_energy_j;
    let device_output_tokens: u64 = dev.as_ref().map(|o| o.summary.output_tokens).unwrap_or(0);
    let server_output_tokens: u64 = srv.as_ref().map(|o| o.summary.output_tokens).unwrap_or(0);
    let out_tokens = device_output_tokens + server_output_tokens;
    Ok(SplitRow {
        w_tokens: w,
        requests: n as u64,
        server_requests: server_specs.len() as u64,
        unfinished_requests: unfinished,
        device_output_tokens,
        server_output_tokens,
        device_energy_j,
        device_busy_energy_j,
        radio_energy_j,
        transfer_mb: mb,
        server_energy_j,
        total_energy_j,
        j_per_output_token: if out_tokens > 0 {
            total_energy_j / out_tokens as f64
        } else {
            f64::NAN
        },
        e2e_mean_s: e2e.map_or(f64::NAN, |e| e.mean),
        e2e_p50_s: e2e.map_or(f64::NAN, |e| e.p50),
        e2e_p90_s: e2e.map_or(f64::NAN, |e| e.p90),
        ttft_mean_s,
        battery_drain_fraction: drain,
        battery_runtime_h: runtime,
    })
}

/// The sweep: the device config's requests, made once, split at each of `tokens` (sorted).
pub fn sweep(
    device: &Scenario,
    server: &Scenario,
    tokens: &[u32],
    net: &Network,
    tables: &TableCache,
) -> Result<Vec<SplitRow>> {
    net.check()?;
    if tokens.is_empty() {
        return Err(Error::invalid(
            "--tokens",
            "tokens",
            "(none)",
            "list at least one w*",
        ));
    }
    if device.model_name != server.model_name {
        return Err(Error::invalid(
            &server.source,
            "model",
            &server.model_name,
            format!(
                "the server must serve the device's model ({}) to continue its requests",
                device.model_name
            ),
        ));
    }
    let mut specs = workload::generate(&device.source, &device.workload, device.seed)?;
    specs.sort_by_key(|s| s.arrival_ns);
    for s in &mut specs {
        s.prefix_group = 0;
        s.prefix_tokens = 0;
    }
    tokens
        .iter()
        .map(|&w| one(device, server, &specs, w, net, tables))
        .collect()
}

/// The columns of split.csv, in order (docs/metrics.md describes them).
pub const COLUMNS: [&str; 20] = [
    "w_tokens",
    "requests",
    "server_requests",
    "unfinished_requests",
    "device_output_tokens",
    "server_output_tokens",
    "device_energy_j",
    "device_busy_energy_j",
    "radio_energy_j",
    "transfer_mb",
    "server_energy_j",
    "total_energy_j",
    "j_per_output_token",
    "e2e_mean_s",
    "e2e_p50_s",
    "e2e_p90_s",
    "ttft_mean_s",
    "battery_drain_fraction",
    "battery_runtime_h",
    "optimum",
];

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// split.csv: one row per w*; `optimum` names the objectives this w* minimises (`total_energy`,
/// `device_energy`, `e2e_mean`, joined by `+`).
pub fn csv(rows: &[SplitRow], opt: &Optimum) -> String {
    let mut s = COLUMNS.join(",");
    s.push('\n');
    for r in rows {
        let mut tags = Vec::new();
        if r.w_tokens == opt.lowest_total_energy_tokens {
            tags.push("total_energy");
        }
        if r.w_tokens == opt.lowest_device_energy_tokens {
            tags.push("device_energy");
        }
        if r.w_tokens == opt.lowest_e2e_mean_tokens {
            tags.push("e2e_mean");
        }
        let cells = [
            r.w_tokens.to_string(),
            r.requests.to_string(),
            r.server_requests.to_string(),
            r.unfinished_requests.to_string(),
            r.device_output_tokens.to_string(),
            r.server_output_tokens.to_string(),
            num(r.device_energy_j),
            num(r.device_busy_energy_j),
            num(r.radio_energy_j),
            num(r.transfer_mb),
            num(r.server_energy_j),
            num(r.total_energy_j),
            num(r.j_per_output_token),
            num(r.e2e_mean_s),
            num(r.e2e_p50_s),
            num(r.e2e_p90_s),
            num(r.ttft_mean_s),
            r.battery_drain_fraction.map(num).unwrap_or_default(),
            r.battery_runtime_h.map(num).unwrap_or_default(),
            tags.join("+"),
        ];
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

#[derive(Serialize)]
struct SplitJson<'a> {
    simwatt_version: &'a str,
    device_config: String,
    device_overrides: &'a [String],
    server_config: String,
    model: &'a str,
    device: &'a str,
    server: &'a str,
    network: &'a Network,
    optimum: &'a Optimum,
    rows: &'a [SplitRow],
}

/// What [`run`] wrote.
pub struct SplitOutcome {
    pub rows: Vec<SplitRow>,
    pub optimum: Optimum,
    pub dir: PathBuf,
}

/// `simwatt split`: the sweep, written to `cmd.out` as split.csv, split.json and split.png / .svg.
pub fn run(cmd: &SplitCmd, caches: &Caches) -> Result<SplitOutcome> {
    let tokens = parse_tokens(&cmd.tokens)?;
    let net = Network {
        bandwidth_mb_s: cmd.bandwidth_mb_s,
        rtt_ms: cmd.rtt_ms,
        radio_j_per_mb: cmd.radio_j_per_mb,
        bytes_per_token: cmd.bytes_per_token,
    };
    net.check()?;
    let device = load("--device", &cmd.device, &cmd.set, caches)?;
    let server = load("--server", &cmd.server, &[], caches)?;
    let inputs = vec![
        ("device config".to_string(), cmd.device.clone()),
        ("server config".to_string(), cmd.server.clone()),
    ];
    crate::output::check_target(&cmd.out, cmd.force, RunKind::Split, &inputs)?;
    let rows = sweep(&device, &server, &tokens, &net, &caches.tables)?;
    let opt = optimum(&rows).ok_or_else(|| Error::Internal("an empty split sweep".into()))?;
    let dir = RunDir::create(&cmd.out, cmd.force, RunKind::Split, &inputs, &|m| {
        eprintln!("note: {m}")
    })?;
    dir.write_text("split.csv", &csv(&rows, &opt))?;
    let json = SplitJson {
        simwatt_version: env!("CARGO_PKG_VERSION"),
        device_config: cmd.device.display().to_string(),
        device_overrides: &cmd.set,
        server_config: cmd.server.display().to_string(),
        model: &device.model_name,
        device: &device.device_name,
        server: &server.device_name,
        network: &net,
        optimum: &opt,
        rows: &rows,
    };
    dir.write_text("split.json", &to_json(&json)?)?;
    let chart = SplitChart {
        title: format!(
            "{} split between {} and {}",
            device.model_name, device.device_name, server.device_name
        ),
        rows: rows.clone(),
        optimum: opt,
    };
    crate::plots::render(&chart, dir.path())?;
    let path = dir.commit()?;
    Ok(SplitOutcome {
        rows,
        optimum: opt,
        dir: path,
    })
}

/// A column of the table, as a plotted series reads it.
type Metric = fn(&SplitRow) -> f64;

/// Energies (top) and latency (bottom) against w*, the optima marked.
pub struct SplitChart {
    pub title: String,
    pub rows: Vec<SplitRow>,
    pub optimum: Optimum,
}

impl Figure for SplitChart {
    fn stem(&self) -> String {
        "split".into()
    }
    fn caption(&self) -> String {
        "Energy and latency against the tokens generated on the device before the hand-over".into()
    }
    fn section(&self) -> &'static str {
        "split"
    }
    fn size(&self) -> (u32, u32) {
        (1200, 1000)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let xs: Vec<f64> = self.rows.iter().map(|r| r.w_tokens as f64).collect();
        let (mut x0, mut x1) = (
            xs.iter().cloned().fold(f64::INFINITY, f64::min),
            xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
        if x1 <= x0 {
            x0 -= 1.0;
            x1 += 1.0;
        }
        let pad = (x1 - x0) * 0.03;
        let (title, rest) = root.split_vertically(50);
        title.draw(&Text::new(self.title.clone(), (20, 12), font(26)))?;
        let (top, bottom) = rest.split_vertically((rest.dim_in_pixel().1 as f64 * 0.58) as i32);
        let series: [(&str, Metric, RGBColor, u32); 4] = [
            ("total", |r| r.total_energy_j, PALETTE[7], 4),
            (
                "device (GPU + host, whole run)",
                |r| r.device_energy_j,
                PALETTE[0],
                3,
            ),
            (
                "server (attributed busy)",
                |r| r.server_energy_j,
                PALETTE[1],
                3,
            ),
            ("device radio", |r| r.radio_energy_j, PALETTE[2], 3),
        ];
        let ymax = self
            .rows
            .iter()
            .map(|r| r.total_energy_j)
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.1;
        let kj = ymax > 5e3;
        let scale = if kj { 1e-3 } else { 1.0 };
        let mut chart = ChartBuilder::on(&top)
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(100)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..ymax * scale)?;
        chart
            .configure_mesh()
            .house_style()
            .x_desc("w* (tokens generated on the device)")
            .y_desc(if kj { "energy (kJ)" } else { "energy (J)" })
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        let best = self.optimum.lowest_total_energy_tokens as f64;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(best, 0.0), (best, ymax * scale)],
            BLACK.mix(0.35).stroke_width(2),
        )))?;
        for (label, f, color, width) in series {
            let pts: Vec<(f64, f64)> = self
                .rows
                .iter()
                .map(|r| (r.w_tokens as f64, f(r) * scale))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))?
                .label(label)
                .legend(legend_line(color, width));
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
        }
        let best_row = self.rows.iter().find(|r| r.w_tokens as f64 == best);
        if let Some(r) = best_row {
            chart.draw_series(std::iter::once(TriangleMarker::new(
                (best, r.total_energy_j * scale),
                12,
                PALETTE[4].filled(),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(18))
            .legend_area_size(45)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        let e2e_max = self
            .rows
            .iter()
            .map(|r| r.e2e_p90_s)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.1;
        let mut lat = ChartBuilder::on(&bottom)
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(100)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..e2e_max)?;
        lat.configure_mesh()
            .house_style()
            .x_desc("w* (tokens generated on the device)")
            .y_desc("latency (s)")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        lat.draw_series(std::iter::once(PathElement::new(
            vec![(best, 0.0), (best, e2e_max)],
            BLACK.mix(0.35).stroke_width(2),
        )))?
        .label(format!(
            "lowest total energy: w* = {}",
            self.optimum.lowest_total_energy_tokens
        ))
        .legend(legend_line(RGBColor(150, 150, 150), 2));
        let lat_series: [(&str, Metric, RGBColor); 3] = [
            ("end to end, mean", |r| r.e2e_mean_s, PALETTE[0]),
            ("end to end, p90", |r| r.e2e_p90_s, PALETTE[5]),
            ("time to first token, mean", |r| r.ttft_mean_s, PALETTE[3]),
        ];
        for (label, f, color) in lat_series {
            let pts: Vec<(f64, f64)> = self
                .rows
                .iter()
                .map(|r| (r.w_tokens as f64, f(r)))
                .filter(|p| p.1.is_finite())
                .collect();
            lat.draw_series(LineSeries::new(pts.clone(), color.stroke_width(3)))?
                .label(label)
                .legend(legend_line(color, 3));
            lat.draw_series(pts.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
        }
        lat.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(18))
            .legend_area_size(45)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_sorted_and_refuse_junk() {
        assert_eq!(parse_tokens("64, 0,16").unwrap(), vec![0, 16, 64]);
        for bad in ["", "a", "1,,2", "-1", "3,3", "1.5"] {
            let e = parse_tokens(bad).unwrap_err().to_string();
            assert!(e.contains("--tokens"), "{bad}: {e}");
        }
    }

    #[test]
    fn network_refuses_negative_bandwidth() {
        let n = Network {
            bandwidth_mb_s: -1.0,
            ..Network::default()
        };
        assert!(n
            .check()
            .unwrap_err()
            .to_string()
            .contains("--bandwidth-mb-s"));
        assert!(Network::default().check().is_ok());
    }
}
