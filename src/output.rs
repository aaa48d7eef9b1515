//! Writing a run folder: all files go to a hidden sibling folder first, which is renamed into place only
//! when every file is written, so an interrupted or failed run never leaves a folder that looks complete.

use crate::error::{Error, Result};
use crate::metrics::RequestRow;
use crate::sim::BatchLog;
use crate::units::ns_to_secs;
use polars::prelude::*;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A run folder being written.
pub struct RunDir {
    target: PathBuf,
    tmp: PathBuf,
    force: bool,
}

impl RunDir {
    /// Prepares to write `target`. Fails if it exists and is not empty, unless `force`.
    pub fn create(target: &Path, force: bool) -> Result<Self> {
        let occupied = target.exists()
            && std::fs::read_dir(target)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true);
        if occupied && !force {
            return Err(Error::Output {
                path: target.to_path_buf(),
                message: "already exists and is not empty; choose another --out or pass --force to replace it"
                    .into(),
            });
        }
        let name = target
            .file_name()
            .ok_or_else(|| Error::Output {
                path: target.to_path_buf(),
                message: "not a folder name".into(),
            })?
            .to_string_lossy()
            .to_string();
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(RunDir {
            target: target.to_path_buf(),
            tmp,
            force,
        })
    }

    /// The folder being written (hidden until [`RunDir::commit`]).
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Path of `name` inside the folder being written.
    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    pub fn write_text(&self, name: &str, text: &str) -> Result<()> {
        let p = self.file(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    }

    /// Moves the finished folder into place (replacing an old one when forced).
    pub fn commit(self) -> Result<PathBuf> {
        if self.target.exists() {
            if !self.force
                && std::fs::read_dir(&self.target)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                return Err(Error::Output {
                    path: self.target.clone(),
                    message: "appeared while the run was being written; results left in place"
                        .into(),
                });
            }
            std::fs::remove_dir_all(&self.target).map_err(|e| Error::io(&self.target, e))?;
        }
        std::fs::rename(&self.tmp, &self.target).map_err(|e| Error::io(&self.target, e))?;
        Ok(self.target.clone())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // A folder not committed is removed; after a commit `tmp` no longer exists.
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn frame_err(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| Error::Output {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The per-request table.
pub fn requests_frame(rows: &[RequestRow]) -> Result<DataFrame> {
    let col_f = |name: &str, f: &dyn Fn(&RequestRow) -> Option<f64>| {
        Column::new(
            name.into(),
            rows.iter().map(f).collect::<Vec<Option<f64>>>(),
        )
    };
    DataFrame::new_infer_height(vec![
        Column::new(
            "request_id".into(),
            rows.iter().map(|r| r.request_id).collect::<Vec<u64>>(),
        ),
        Column::new(
            "arrival_s".into(),
            rows.iter().map(|r| r.arrival_s).collect::<Vec<f64>>(),
        ),
        Column::new(
            "prompt_tokens".into(),
            rows.iter().map(|r| r.prompt_tokens).collect::<Vec<u32>>(),
        ),
        Column::new(
            "output_tokens".into(),
            rows.iter().map(|r| r.output_tokens).collect::<Vec<u32>>(),
        ),
        Column::new(
            "replica".into(),
            rows.iter().map(|r| r.replica).collect::<Vec<u32>>(),
        ),
        Column::new(
            "status".into(),
            rows.iter()
                .map(|r| r.status.as_str())
                .collect::<Vec<&str>>(),
        ),
        col_f("scheduled_s", &|r| r.scheduled_s),
        col_f("first_token_s", &|r| r.first_token_s),
        col_f("completion_s", &|r| r.completion_s),
        col_f("ttft_s", &|r| r.ttft_s),
        col_f("e2e_s", &|r| r.e2e_s),
        col_f("tbt_mean_s", &|r| r.tbt_mean_s),
        col_f("tbt_max_s", &|r| r.tbt_max_s),
        Column::new(
            "preemptions".into(),
            rows.iter().map(|r| r.preemptions).collect::<Vec<u32>>(),
        ),
        col_f("energy_j", &|r| r.energy_j),
        col_f("prefill_energy_j", &|r| r.prefill_energy_j),
        col_f("decode_energy_j", &|r| r.decode_energy_j),
        col_f("carbon_g", &|r| r.carbon_g),
    ])
    .map_err(|e| Error::Internal(e.to_string()))
}

/// The batch-stage table.
pub fn batches_frame(b: &BatchLog) -> Result<DataFrame> {
    let secs = |v: &[u64]| v.iter().map(|t| ns_to_secs(*t)).collect::<Vec<f64>>();
    DataFrame::new_infer_height(vec![
        Column::new("replica".into(), b.replica.clone()),
        Column::new("stage".into(), b.stage.clone()),
        Column::new("start_s".into(), secs(&b.start_ns)),
        Column::new("end_s".into(), secs(&b.end_ns)),
        Column::new("num_requests".into(), b.num_requests.clone()),
        Column::new("prefill_tokens".into(), b.prefill_tokens.clone()),
        Column::new("decode_tokens".into(), b.decode_tokens.clone()),
        Column::new("padding_seqs".into(), b.padding_seqs.clone()),
        Column::new("kv_blocks_used".into(), b.kv_blocks_used.clone()),
        Column::new("flops".into(), b.flops.clone()),
        Column::new("bytes".into(), b.bytes.clone()),
        Column::new("power_w".into(), b.power_w.clone()),
        Column::new("energy_j".into(), b.energy_j.clone()),
    ])
    .map_err(|e| Error::Internal(e.to_string()))
}

pub fn write_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    CsvWriter::new(&mut f).finish(df).map_err(frame_err(path))
}

pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(f)
        .finish(df)
        .map(|_| ())
        .map_err(frame_err(path))
}

/// Per-GPU power as piecewise-constant segments: for each (replica, stage) group of `gpus` identical
/// GPUs, busy segments (one per batch stage) and the idle segments between them, over the whole span.
pub fn power_frame(s: &crate::config::Scenario, res: &crate::sim::SimResult) -> Result<DataFrame> {
    let hw = &s.raw.hardware;
    let idle_w = match crate::run::power_profile(s)?.0 {
        Some(p) => p.idle_w,
        None => {
            return Err(Error::Internal(
                "power.parquet without a power profile".into(),
            ))
        }
    };
    let b = &res.batches;
    let (mut rep, mut stg, mut start, mut end, mut state, mut watts) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in 0..hw.replicas {
        for st in 0..hw.pipeline_stages {
            let mut t = 0u64;
            let mut push = |a: u64, z: u64, busy: bool, w: f64| {
                rep.push(r);
                stg.push(st);
                start.push(ns_to_secs(a));
                end.push(ns_to_secs(z));
                state.push(if busy { "busy" } else { "idle" });
                watts.push(w);
            };
            for i in (0..b.len()).filter(|&i| b.replica[i] == r && b.stage[i] == st) {
                if b.start_ns[i] > t {
                    push(t, b.start_ns[i], false, idle_w);
                }
                push(b.start_ns[i], b.end_ns[i], true, b.power_w[i]);
                t = b.end_ns[i];
            }
            if res.end_ns > t {
                push(t, res.end_ns, false, idle_w);
            }
        }
    }
    let n = rep.len();
    DataFrame::new_infer_height(vec![
        Column::new("replica".into(), rep),
        Column::new("stage".into(), stg),
        Column::new("gpus".into(), vec![hw.tensor_parallel; n]),
        Column::new("start_s".into(), start),
        Column::new("end_s".into(), end),
        Column::new("state".into(), state),
        Column::new("power_w".into(), watts),
    ])
    .map_err(|e| Error::Internal(e.to_string()))
}
