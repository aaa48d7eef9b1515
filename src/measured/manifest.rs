//! Measurement manifests: the YAML files that list what one device's power profile is fitted on
//! (benchmark tables, power time series with their request logs, idle readings) and the serving
//! settings each was measured under; and the reader of the ShareGPT prompt set those benchmarks sent.
//!
//! Input: the manifest and prompt files. Output: typed [`Manifest`]s and prompt lengths. It runs no
//! simulation: `drivers::fit_power::replay` replays what a manifest lists.

use super::edge_logs::{self, EdgeFormat, LogOptions};
use super::logs::{self, PowerTrace};
use crate::config::data::{self, DataDir};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A measurement manifest: the data one device's power profile is fitted on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Device (catalog id) whose profile the data fits.
    pub gpu: String,
    /// Other catalog devices this data may fit (e.g. another memory size of the same chip).
    #[serde(default)]
    pub also_fits: Vec<String>,
    /// Copied into the fitted profile's notes.
    #[serde(default)]
    pub notes: Option<String>,
    pub sources: Vec<Source>,
    /// The data directory the manifest's relative paths were anchored in (see [`Manifest::load`]).
    #[serde(skip)]
    pub data_dir: Option<DataDir>,
}

/// Serving settings shared by every source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serving {
    /// Catalog id of the device the data was measured on (its peaks set the utilisations).
    pub device: String,
    /// Use the Vidur profiles of this catalog device instead of the measured device's own (for a SKU
    /// with the same chip but no profiles of its own, e.g. A100-40GB priced with the A100-80GB
    /// profiles).
    #[serde(default)]
    pub profiles_from: Option<String>,
    /// `vllm` unless the engine batched otherwise (`sarathi` for chunked prefill).
    #[serde(default = "default_policy")]
    pub policy: String,
    #[serde(default)]
    pub max_num_batched_tokens: Option<u32>,
    #[serde(default)]
    pub chunk_size: Option<u32>,
    #[serde(default = "default_gmu")]
    pub gpu_memory_utilization: f64,
}

fn default_policy() -> String {
    "vllm".into()
}

fn default_gmu() -> f64 {
    0.9
}

/// One source of measured data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// LLM-Inference-Bench's power table: static batches, mean power of GPU 0.
    Argonne {
        name: String,
        path: PathBuf,
        /// Rows whose `Hardware` is this.
        hardware: String,
        /// Rows whose `Framework` is this.
        framework: String,
        /// Model names in the file -> catalog models; rows of other models are skipped.
        models: BTreeMap<String, String>,
        /// Idle time inside the power window before and after the batch, seconds.
        #[serde(default = "one_s")]
        padding_s: f64,
        #[serde(flatten)]
        serving: Serving,
    },
    /// ML.ENERGY leaderboard runs: all requests submitted at once under a batch cap, GPU energy of all
    /// GPUs over the steady state (until the waiting queue first empties).
    Mlenergy {
        name: String,
        path: PathBuf,
        /// The exact prompt set (ShareGPT JSON) whose first human turns were sent.
        prompts: PathBuf,
        /// Rows whose `GPU` is this.
        gpu_name: String,
        /// Rows whose `task` is this.
        task: String,
        models: BTreeMap<String, String>,
        /// Times the prompt set was repeated.
        dup_factor: u32,
        /// Characters per token, to estimate prompt lengths from the prompt texts (no tokenizer here).
        chars_per_token: f64,
        /// Tokens the chat template adds to every prompt.
        template_tokens: u32,
        /// Longest output (max_tokens).
        max_output_tokens: u32,
        #[serde(flatten)]
        serving: Serving,
    },
    /// An nvidia-smi power log and the run's per-request log.
    NvidiaSmi(TimeSeries),
    /// The vLLM energy-measurement protocol's power logger and the run's per-request log.
    VllmPowerLog(TimeSeries),
    /// RAPL package-energy counters (CPU) and the run's per-request log.
    Rapl(TimeSeries),
    /// A Jetson's tegrastats log (board input rail, or the `rails` summed) and the run's request log.
    Tegrastats(TimeSeries),
    /// INA3221 voltage and current readings logged from sysfs and the run's request log.
    Ina3221(TimeSeries),
    /// Intel Power Gadget's PowerLog CSV (package energy; `log_start` gives its date) and the run's
    /// request log.
    PowerGadget(TimeSeries),
    /// A PDU's outlet power (snmpget lines with timestamps, or a `timestamp,outlet,power_w` CSV) and the
    /// run's request log.
    Pdu(TimeSeries),
    /// PowerAPI SmartWatts' CSV power reports (one `target`) and the run's request log.
    Smartwatts(TimeSeries),
    /// A published reading of the idle power (no work running): one window of pure idle. It takes part
    /// in every fit like one configuration but is not a leave-one-out test point (it is not a serving
    /// run).
    Idle {
        name: String,
        power_w: f64,
        /// Catalog id of the device it was read on.
        device: String,
        /// Where the reading was published.
        citation: String,
    },
}

fn one_s() -> f64 {
    1.0
}

/// A measured serving run with a power time series.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSeries {
    pub name: String,
    /// The power log.
    pub path: PathBuf,
    /// The per-request log (arrival, prompt and output tokens).
    pub requests: PathBuf,
    /// Skip this source, with a message, when its files are absent (data that may not be copied into
    /// the repository and is read from beside it).
    #[serde(default)]
    pub optional: bool,
    pub model: String,
    #[serde(default = "one_u32")]
    pub tensor_parallel: u32,
    pub max_num_seqs: u32,
    /// Seconds each power reading averages over (default: the interval since the previous reading).
    #[serde(default)]
    pub averaging_s: Option<f64>,
    /// Seconds added to the power log's clock to put it on the request log's clock.
    #[serde(default)]
    pub clock_offset_s: f64,
    /// UTC offset (`+HH:MM`) of the host that wrote local times without a zone (nvidia-smi's
    /// `timestamp`); without it they are read as UTC.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Windows overlapping the `warmup_s` seconds before the first request are dropped (the engine's
    /// warm-up request, which the request log does not list).
    #[serde(default)]
    pub warmup_s: f64,
    /// RAPL only: the counter's wrap-around range, microjoules.
    #[serde(default)]
    pub max_energy_range_uj: Option<f64>,
    /// Edge and desktop logs: the rails, outlets or target read and the clock of a log without one.
    #[serde(flatten)]
    pub log: LogOptions,
    #[serde(flatten)]
    pub serving: Serving,
}

fn one_u32() -> u32 {
    1
}

impl Source {
    /// The time series of a source that has one (a power log beside a request log).
    pub fn time_series(&self) -> Option<&TimeSeries> {
        match self {
            Source::NvidiaSmi(t)
            | Source::VllmPowerLog(t)
            | Source::Rapl(t)
            | Source::Tegrastats(t)
            | Source::Ina3221(t)
            | Source::PowerGadget(t)
            | Source::Pdu(t)
            | Source::Smartwatts(t) => Some(t),
            Source::Argonne { .. } | Source::Mlenergy { .. } | Source::Idle { .. } => None,
        }
    }

    /// The same, to change.
    fn time_series_mut(&mut self) -> Option<&mut TimeSeries> {
        match self {
            Source::NvidiaSmi(t)
            | Source::VllmPowerLog(t)
            | Source::Rapl(t)
            | Source::Tegrastats(t)
            | Source::Ina3221(t)
            | Source::PowerGadget(t)
            | Source::Pdu(t)
            | Source::Smartwatts(t) => Some(t),
            Source::Argonne { .. } | Source::Mlenergy { .. } | Source::Idle { .. } => None,
        }
    }

    /// Reads the power log of a time-series source, as its format says.
    pub fn read_power(&self) -> Result<Vec<PowerTrace>> {
        let Some(t) = self.time_series() else {
            return Err(Error::Internal(format!(
                "{}: not a time-series source",
                self.name()
            )));
        };
        let edge = |f: EdgeFormat| -> Result<Vec<PowerTrace>> {
            Ok(vec![edge_logs::read_edge_log(
                f,
                &t.path,
                &t.log,
                t.averaging_s,
            )?])
        };
        match self {
            Source::NvidiaSmi(_) => logs::read_nvidia_smi(&t.path, t.averaging_s),
            Source::VllmPowerLog(_) => Ok(vec![logs::read_vllm_power_log(&t.path, t.averaging_s)?]),
            Source::Rapl(_) => Ok(vec![logs::read_rapl(&t.path, t.max_energy_range_uj)?]),
            Source::Tegrastats(_) => edge(EdgeFormat::Tegrastats),
            Source::Ina3221(_) => edge(EdgeFormat::Ina3221),
            Source::PowerGadget(_) => edge(EdgeFormat::PowerGadget),
            Source::Pdu(_) => edge(EdgeFormat::Pdu),
            Source::Smartwatts(_) => edge(EdgeFormat::Smartwatts),
            Source::Argonne { .. } | Source::Mlenergy { .. } | Source::Idle { .. } => Err(
                Error::Internal(format!("{}: not a time series", self.name())),
            ),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Source::Argonne { name, .. }
            | Source::Mlenergy { name, .. }
            | Source::Idle { name, .. } => name,
            Source::NvidiaSmi(t)
            | Source::VllmPowerLog(t)
            | Source::Rapl(t)
            | Source::Tegrastats(t)
            | Source::Ina3221(t)
            | Source::PowerGadget(t)
            | Source::Pdu(t)
            | Source::Smartwatts(t) => &t.name,
        }
    }

    /// The files the source reads.
    pub fn files(&self) -> Vec<&Path> {
        match self {
            Source::Argonne { path, .. } => vec![path],
            Source::Mlenergy { path, prompts, .. } => vec![path, prompts],
            Source::Idle { .. } => vec![],
            ts => ts
                .time_series()
                .map_or_else(Vec::new, |t| vec![t.path.as_path(), t.requests.as_path()]),
        }
    }

    /// What the source is, for the profile's provenance; `show` writes a path.
    pub fn describe_with(&self, show: &dyn Fn(&Path) -> String) -> String {
        match self {
            Source::Idle {
                power_w, citation, ..
            } => format!("idle reading {power_w} W from {citation}"),
            _ => self
                .files()
                .iter()
                .map(|p| show(p))
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }

    /// The files a source reads, to anchor them.
    fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        match self {
            Source::Argonne { path, .. } => vec![path],
            Source::Mlenergy { path, prompts, .. } => vec![path, prompts],
            Source::Idle { .. } => vec![],
            ts => ts
                .time_series_mut()
                .map_or_else(Vec::new, |t| vec![&mut t.path, &mut t.requests]),
        }
    }

    /// Whether a missing file of the source is skipped rather than an error.
    pub fn optional(&self) -> bool {
        self.time_series().is_some_and(|t| t.optional)
    }
}

impl Manifest {
    /// Reads a manifest. Its relative data paths are anchored as a config's are
    /// ([`data::anchor`]): beside the manifest, else in the data directory found from the manifest's
    /// location, else in the current directory; so `fit power` works from any directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::input::read_text(path)?;
        crate::input::check_yaml_depth(path, &text)?;
        let de = serde_yaml::Deserializer::from_str(&text);
        let mut m: Manifest = serde_path_to_error::deserialize(de).map_err(|e| Error::Field {
            path: path.to_path_buf(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        m.data_dir = DataDir::find(path, None);
        for s in &mut m.sources {
            for p in s.files_mut() {
                *p = data::anchor(p, path, m.data_dir.as_ref());
            }
        }
        Ok(m)
    }

    /// What `src` is, for the profile's provenance, its paths relative to the data directory (so
    /// that a fit gives the same profile wherever it runs).
    pub fn describe(&self, src: &Source) -> String {
        src.describe_with(&|p| data::shown(p, self.data_dir.as_ref()))
    }
}

/// Characters of the first human turn of each conversation of a ShareGPT JSON file.
pub fn prompt_chars(path: &Path) -> Result<Vec<usize>> {
    let text = crate::input::read_text(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Csv {
        path: path.to_path_buf(),
        message: format!("not valid JSON: {e}"),
    })?;
    let bad = |m: &str| Error::Csv {
        path: path.to_path_buf(),
        message: m.to_string(),
    };
    let convs = v
        .as_array()
        .ok_or_else(|| bad("expected a list of conversations"))?;
    let mut out = Vec::with_capacity(convs.len());
    for (i, c) in convs.iter().enumerate() {
        let turn = c["conversations"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["from"] == "human"))
            .and_then(|t| t["value"].as_str())
            .ok_or_else(|| bad(&format!("conversation {i} has no human turn")))?;
        out.push(turn.chars().count());
    }
    if out.is_empty() {
        return Err(bad("no conversations"));
    }
    Ok(out)
}

/// Prompt lengths estimated from the prompt texts' characters: `ceil(chars / chars_per_token)` plus the
/// chat template's tokens (there is no tokenizer here).
pub fn prompt_tokens_of(chars: &[usize], chars_per_token: f64, template_tokens: u32) -> Vec<u32> {
    chars
        .iter()
        .map(|&c| (c as f64 / chars_per_token).ceil() as u32 + template_tokens)
        .collect()
}
