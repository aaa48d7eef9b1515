//! The power sampler: reads the GPUs (NVML, or nvidia-smi) and the RAPL counters at a fixed rate on its
//! own thread, tags each reading with the phase of the run it falls in (`idle`, `warmup`, `load`,
//! `tail`), and writes the readings in the formats `validate` reads.
//!
//! Input: the sources ([`Sources::open`]) and a rate. Output: a [`PowerLog`] and its files: GPU
//! readings as an nvidia-smi CSV on epoch seconds (`gpu-power.csv`), each RAPL counter as read
//! (`rapl-<domain>.csv`: `time_s, energy_uj, max_energy_range_uj`, the layout
//! [`crate::measured::logs::read_rapl`] reads) and, when the CPU is the device measured, each package's
//! power between readings as the vLLM power logger's CSV (`cpu-<package>-power.csv`: `time, power_W`).
//! It knows nothing of requests or servers.

use super::gpu::{GpuReading, GpuSource};
use super::rapl::{self, Domain, DomainKind};
use super::WallClock;
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Which GPU reader to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuChoice {
    /// NVML, else nvidia-smi, else none (said so).
    Auto,
    Nvml,
    NvidiaSmi,
    Off,
}

/// The device whose power `validate` compares with the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Gpu,
    Cpu,
}

impl Device {
    pub fn label(self) -> &'static str {
        match self {
            Device::Gpu => "gpu",
            Device::Cpu => "cpu",
        }
    }
}

/// What to sample.
#[derive(Debug, Clone)]
pub struct PowerOptions {
    /// Readings per second (0.1 to 100).
    pub rate_hz: f64,
    pub gpu: GpuChoice,
    /// The powercap root; `None`: RAPL off.
    pub rapl_root: Option<PathBuf>,
}

/// The sources found, and what was not found and why.
#[derive(Debug)]
pub struct Sources {
    pub gpu: Option<GpuSource>,
    pub rapl: Vec<Domain>,
    pub notes: Vec<String>,
}

impl Sources {
    /// Opens what `opts` asks for. A source asked for by name that cannot be opened is an error; with
    /// `auto` its absence is a note.
    pub fn open(opts: &PowerOptions) -> Result<Sources> {
        let mut notes = Vec::new();
        let flag = |v: &str, m: String| Error::invalid("--gpu", "gpu", v, m);
        let gpu = match opts.gpu {
            GpuChoice::Off => None,
            GpuChoice::Nvml => Some(GpuSource::open_nvml().map_err(|m| flag("nvml", m))?),
            GpuChoice::NvidiaSmi => {
                Some(GpuSource::open_nvidia_smi().map_err(|m| flag("nvidia-smi", m))?)
            }
            GpuChoice::Auto => match GpuSource::open_nvml() {
                Ok(s) => Some(s),
                Err(nvml) => match GpuSource::open_nvidia_smi() {
                    Ok(s) => {
                        notes.push(format!("{nvml}; GPUs read with nvidia-smi instead"));
                        Some(s)
                    }
                    Err(smi) => {
                        notes.push(format!("no GPU power: {nvml}; {smi}"));
                        None
                    }
                },
            },
        };
        let rapl = match &opts.rapl_root {
            Some(root) => {
                let d = rapl::discover(root)?;
                if d.is_empty() {
                    notes.push(format!(
                        "no CPU power: no RAPL zone (intel-rapl:*) with an energy_uj counter under {}",
                        root.display()
                    ));
                }
                d
            }
            None => Vec::new(),
        };
        Ok(Sources { gpu, rapl, notes })
    }

    /// Whether anything can be read.
    pub fn any(&self) -> bool {
        self.gpu.is_some() || !self.rapl.is_empty()
    }

    /// The device whose power a run compares: the GPUs when there are any, else the CPU packages.
    pub fn default_device(&self) -> Option<Device> {
        if self.gpu.is_some() {
            Some(Device::Gpu)
        } else if self.rapl.iter().any(|d| d.kind == DomainKind::Package) {
            Some(Device::Cpu)
        } else {
            None
        }
    }
}

/// One GPU reading of all GPUs.
#[derive(Debug, Clone)]
pub struct GpuRow {
    pub t: f64,
    pub phase: String,
    pub gpus: Vec<GpuReading>,
}

/// One reading of every RAPL counter.
#[derive(Debug, Clone)]
pub struct RaplRow {
    pub t: f64,
    pub phase: String,
    pub uj: Vec<u64>,
}

/// A phase of the run, epoch seconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhaseSpan {
    pub name: String,
    pub start_epoch_s: f64,
    pub end_epoch_s: f64,
}

/// What a sampler read.
#[derive(Debug, Clone, Default)]
pub struct PowerLog {
    pub gpu_source: Option<String>,
    pub gpu: Vec<GpuRow>,
    pub domains: Vec<Domain>,
    pub rapl: Vec<RaplRow>,
    pub phases: Vec<PhaseSpan>,
    /// Readings that failed (a GPU that stopped answering), with when; the sampler carries on.
    pub errors: Vec<String>,
}

/// The current phase, and every phase change (name, epoch seconds) so far.
type PhaseState = Arc<Mutex<(String, Vec<(String, f64)>)>>;

/// A sampler running on its own thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    phase: PhaseState,
    clock: WallClock,
    handle: JoinHandle<PowerLog>,
}

impl Sampler {
    /// Starts reading `sources` every `1 / rate_hz` seconds, in phase `phase`.
    pub fn start(sources: Sources, rate_hz: f64, clock: WallClock, phase: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let ph: PhaseState = Arc::new(Mutex::new((
            phase.to_string(),
            vec![(phase.to_string(), clock.now())],
        )));
        let (stop2, ph2) = (stop.clone(), ph.clone());
        let period = Duration::from_secs_f64(1.0 / rate_hz);
        let handle = std::thread::spawn(move || {
            let mut log = PowerLog {
                gpu_source: sources.gpu.as_ref().map(|g| g.label().to_string()),
                domains: sources.rapl.clone(),
                ..Default::default()
            };
            let start = std::time::Instant::now();
            let mut k: u32 = 0;
            loop {
                let phase = ph2.lock().map(|p| p.0.clone()).unwrap_or_default();
                if let Some(g) = &sources.gpu {
                    let r = g.read();
                    let t = clock.now();
                    match r {
                        Ok(gpus) => log.gpu.push(GpuRow {
                            t,
                            phase: phase.clone(),
                            gpus,
                        }),
                        Err(e) if log.errors.len() < 100 => log.errors.push(format!("{t:.3}: {e}")),
                        Err(_) => {}
                    }
                }
                if !sources.rapl.is_empty() {
                    let t = clock.now();
                    let uj: Result<Vec<u64>> = sources.rapl.iter().map(Domain::read_uj).collect();
                    match uj {
                        Ok(uj) => log.rapl.push(RaplRow { t, phase, uj }),
                        Err(e) if log.errors.len() < 100 => log.errors.push(format!("{t:.3}: {e}")),
                        Err(_) => {}
                    }
                }
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                k += 1;
                let next = period * k;
                let el = start.elapsed();
                if next > el {
                    // Sleep in short steps so that a stop is seen soon.
                    let mut left = next - el;
                    while left > Duration::ZERO && !stop2.load(Ordering::SeqCst) {
                        let step = left.min(Duration::from_millis(50));
                        std::thread::sleep(step);
                        left = left.saturating_sub(step);
                    }
                }
            }
            log
        });
        Sampler {
            stop,
            phase: ph,
            clock,
            handle,
        }
    }

    /// Tags the readings from now on with `phase`.
    pub fn set_phase(&self, phase: &str) {
        if let Ok(mut p) = self.phase.lock() {
            p.0 = phase.to_string();
            p.1.push((phase.to_string(), self.clock.now()));
        }
    }

    /// Takes one last reading, stops, and returns what was read.
    pub fn finish(self) -> Result<PowerLog> {
        let end = self.clock.now();
        self.stop.store(true, Ordering::SeqCst);
        let mut log = self
            .handle
            .join()
            .map_err(|_| Error::Internal("the power sampler's thread panicked".into()))?;
        let changes = self.phase.lock().map(|p| p.1.clone()).unwrap_or_default();
        log.phases = changes
            .iter()
            .enumerate()
            .map(|(i, (name, t))| PhaseSpan {
                name: name.clone(),
                start_epoch_s: *t,
                end_epoch_s: changes.get(i + 1).map_or(end, |c| c.1),
            })
            .collect();
        Ok(log)
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

impl PowerLog {
    /// Writes the logs into `dir` and returns the names written. `device`: whose power `validate`
    /// reads (the GPU log, or the CPU packages' power); the other source's readings are kept in files
    /// `validate` does not take for device power (the RAPL counters as read), or not written (GPU
    /// readings while the CPU is the device).
    pub fn write(&self, dir: &Path, device: Option<Device>) -> Result<Vec<String>> {
        let mut files = Vec::new();
        let put = |name: &str, text: &str, files: &mut Vec<String>| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            files.push(name.to_string());
            Ok(())
        };
        if device != Some(Device::Cpu) && !self.gpu.is_empty() {
            let mut s = String::from(
                "epoch_s,index,name,power.draw [W],utilization.gpu [%],clocks.sm [MHz],memory.used [MiB],phase\n",
            );
            for row in &self.gpu {
                for g in &row.gpus {
                    let _ = writeln!(
                        s,
                        "{:.6},{},{},{},{},{},{},{}",
                        row.t,
                        g.index,
                        g.name.replace(',', " "),
                        g.power_w,
                        cell(g.util_pct),
                        cell(g.sm_clock_mhz),
                        cell(g.mem_used_mib),
                        row.phase
                    );
                }
            }
            put("gpu-power.csv", &s, &mut files)?;
        }
        for (i, d) in self.domains.iter().enumerate() {
            let mut s = String::from("time_s,energy_uj,max_energy_range_uj,phase\n");
            for r in &self.rapl {
                let _ = writeln!(s, "{:.6},{},{},{}", r.t, r.uj[i], d.max_range_uj, r.phase);
            }
            put(&format!("rapl-{}.csv", d.label), &s, &mut files)?;
            if device == Some(Device::Cpu) && d.kind == DomainKind::Package {
                let mut s = String::from("time,power_W,phase\n");
                for w in self.rapl.windows(2) {
                    let dt = w[1].t - w[0].t;
                    if dt <= 0.0 {
                        continue;
                    }
                    let j = rapl::delta_uj(w[0].uj[i], w[1].uj[i], d.max_range_uj) as f64 * 1e-6;
                    let _ = writeln!(s, "{:.6},{},{}", w[1].t, j / dt, w[1].phase);
                }
                put(&format!("cpu-{}-power.csv", d.label), &s, &mut files)?;
            }
        }
        Ok(files)
    }

    /// Mean power per source over the readings of `phase`, for the manifest and the terminal:
    /// (label, watts).
    pub fn mean_power(&self, phase: &str) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let rows: Vec<&GpuRow> = self.gpu.iter().filter(|r| r.phase == phase).collect();
        if let Some(first) = rows.first() {
            for (k, g) in first.gpus.iter().enumerate() {
                let v: Vec<f64> = rows
                    .iter()
                    .filter_map(|r| r.gpus.get(k).map(|x| x.power_w))
                    .collect();
                out.push((
                    format!("gpu{}", g.index),
                    v.iter().sum::<f64>() / v.len() as f64,
                ));
            }
        }
        for (i, d) in self.domains.iter().enumerate() {
            let (mut j, mut s) = (0.0, 0.0);
            for w in self.rapl.windows(2) {
                if w[1].phase == phase {
                    j += rapl::delta_uj(w[0].uj[i], w[1].uj[i], d.max_range_uj) as f64 * 1e-6;
                    s += w[1].t - w[0].t;
                }
            }
            if s > 0.0 {
                out.push((d.label.clone(), j / s));
            }
        }
        out
    }
}
