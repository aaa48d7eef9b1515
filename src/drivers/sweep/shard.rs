//! Shards: which runs a shard holds, where its file goes, and running it with rayon.
//!
//! Run `r` of a sweep belongs to shard `r mod N`, so neighbouring runs (which often differ in cost, e.g.
//! along a rate axis) are spread over the shards. The shard index comes from the command line or, with
//! `auto/N`, from the array index a batch system gives each task. `N` is always explicit: a batch
//! system's task count is not the shard count when only failed shards are resubmitted.
//! Input: a [`Plan`] and a [`Shard`]. Output: `shard-IIIII-of-NNNNN.parquet` in the sweep's output
//! folder, written through a temporary file and a rename, tagged with the sweep's hash and with the
//! content hash of every input its runs read ([`shard_inputs`]: traces, power and engine profiles,
//! region files, profile CSVs, catalogs, files or built-in copies, and the digest of simwatt's own
//! sources). A shard whose inputs
//! changed since it was written is stale: `sweep run` runs it again and `sweep merge` refuses it, naming
//! the files that changed.

use crate::config::data::Origin;
use crate::config::Scenario;
use crate::digest::{sha256_hex, SOURCE_DIGEST};
use crate::drivers::sweep::spec::{Plan, RunSpec};
use crate::drivers::sweep::table::{self, RunRecord, META_HASH, META_INPUTS, META_SHARD};
use crate::drivers::{simulate, Caches};
use crate::error::{Error, Result};
use crate::predictor::profile::TableCache;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A shard as written on the command line: `I/N`, or `auto/N` (index from the environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto { count: u32 },
}

impl std::str::FromStr for ShardArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected I/N (e.g. 3/8) or auto/N"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: the shard count `{n}` is not a whole number"))?;
        if count == 0 {
            return Err(format!("`{s}`: the shard count must be at least 1"));
        }
        if i.trim() == "auto" {
            return Ok(ShardArg::Auto { count });
        }
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: the shard index `{i}` is not a whole number or `auto`"))?;
        if index >= count {
            return Err(format!(
                "`{s}`: the shard index must be below the shard count (shards are numbered from 0)"
            ));
        }
        Ok(ShardArg::Fixed(Shard { index, count }))
    }
}

/// Environment variables that hold a task's array index, and the index of the first task.
pub const ARRAY_INDEX_VARS: [(&str, u32); 7] = [
    ("SLURM_ARRAY_TASK_ID", 0),
    ("JOB_COMPLETION_INDEX", 0),      // Kubernetes Indexed Job
    ("PBS_ARRAY_INDEX", 0),           // PBS Pro
    ("AWS_BATCH_JOB_ARRAY_INDEX", 0), // AWS Batch
    ("BATCH_TASK_INDEX", 0),          // Google Cloud Batch
    ("SGE_TASK_ID", 1),               // Grid Engine: 1-based
    ("LSB_JOBINDEX", 1),              // LSF: 1-based
];

impl ShardArg {
    /// The shard, reading the array index from `env` for `auto/N`.
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let count = match self {
            ShardArg::Fixed(s) => return Ok(s),
            ShardArg::Auto { count } => count,
        };
        let bad = |var: &str, value: &str, message: String| Error::Invalid {
            path: PathBuf::from("--shard"),
            field: var.to_string(),
            value: value.to_string(),
            message,
        };
        for (var, first) in ARRAY_INDEX_VARS {
            let Some(value) = env(var) else { continue };
            // Grid Engine sets SGE_TASK_ID=undefined outside array jobs.
            if value.trim().is_empty() || value.trim() == "undefined" {
                continue;
            }
            let raw: u64 = value
                .trim()
                .parse()
                .map_err(|_| bad(var, &value, "an array index must be a whole number".into()))?;
            if raw < first as u64 {
                return Err(bad(
                    var,
                    &value,
                    format!("is {first}-based, so it cannot be below {first}"),
                ));
            }
            let index = raw - first as u64;
            if index >= count as u64 {
                return Err(bad(
                    var,
                    &value,
                    format!(
                        "gives shard {index}, but --shard auto/{count} has shards 0 to {}; submit the array as 0-{}",
                        count - 1,
                        count - 1
                    ),
                ));
            }
            return Ok(Shard {
                index: index as u32,
                count,
            });
        }
        let names: Vec<&str> = ARRAY_INDEX_VARS.iter().map(|(v, _)| *v).collect();
        Err(Error::Invalid {
            path: PathBuf::from("--shard"),
            field: "auto".into(),
            value: format!("auto/{count}"),
            message: format!(
                "no array index in the environment (looked for {}); outside a batch array give the index, e.g. --shard 0/{count}",
                names.join(", ")
            ),
        })
    }
}

impl Shard {
    /// The whole sweep as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The runs of this shard, in run order.
    pub fn runs<'a>(&self, plan: &'a Plan) -> Vec<&'a RunSpec> {
        plan.runs
            .iter()
            .filter(|r| r.index % self.count as usize == self.index as usize)
            .collect()
    }

    /// The shard's file name, `shard-00003-of-00008.parquet`.
    pub fn file_name(&self) -> String {
        format!("shard-{:05}-of-{:05}.parquet", self.index, self.count)
    }

    pub fn path(&self, out: &Path) -> PathBuf {
        out.join(self.file_name())
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a shard file on disk says about a shard.
#[derive(Debug, PartialEq, Eq)]
pub enum ShardState {
    Missing,
    /// Written by this sweep from the inputs as they are now.
    Done,
    /// Written by this sweep, but from other inputs: the files that changed (path, or `simwatt source`
    /// when simwatt itself changed), at most a few named.
    Stale {
        changed: Vec<String>,
    },
    /// A file that cannot be this sweep's result for this shard: truncated or corrupt (a task killed
    /// while copying it, a full disk), or holding runs that are not this shard's (a file renamed or
    /// copied over another). `sweep merge` lists it for rerun and `sweep run` replaces it. A readable
    /// file of another sweep is not this: it is refused, never overwritten.
    Unreadable {
        reason: String,
    },
}

/// Key of the digest of simwatt's own sources in [`shard_inputs`].
const SOURCE_KEY: &str = "simwatt source";

/// Every input the runs of `shard` read, by name (a file's path, a catalog's origin, or
/// `simwatt source`), with its SHA-256. Runs whose config is rejected (`skip_invalid`) read nothing.
/// File hashes are kept in `caches.tables` while a file's length and modification time stay the same.
pub fn shard_inputs(
    plan: &Plan,
    caches: &Caches,
    shard: Shard,
) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    files.insert(SOURCE_KEY.to_string(), SOURCE_DIGEST.to_string());
    for spec in shard.runs(plan) {
        let Ok(s) = plan.scenario(&caches.catalogs, spec)? else {
            continue;
        };
        for (_, origin) in simulate::input_files(&s) {
            let key = origin.name().display().to_string();
            if let std::collections::btree_map::Entry::Vacant(e) = files.entry(key) {
                e.insert(match &origin {
                    Origin::File(p) => caches.tables.file_sha(p)?,
                    Origin::BuiltIn(_) => origin.sha256()?,
                });
            }
        }
        for (origin, text) in [
            (&s.catalog.models_origin, &s.catalog.models_text),
            (&s.catalog.devices_origin, &s.catalog.devices_text),
        ] {
            if !files.contains_key(origin) {
                files.insert(origin.clone(), sha256_hex(text.as_bytes()));
            }
        }
    }
    Ok(files)
}

/// The inputs map as written into a shard file's metadata.
fn inputs_text(inputs: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(inputs).map_err(|e| Error::Internal(e.to_string()))
}

/// The names whose hash differs between what a shard file recorded and `now` (added and removed ones
/// too), `simwatt source` first.
fn changed_inputs(
    recorded: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut changed: Vec<String> = recorded
        .keys()
        .chain(now.keys())
        .filter(|k| recorded.get(*k) != now.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(i) = changed.iter().position(|k| k == SOURCE_KEY) {
        let k = changed.remove(i);
        changed.insert(0, k);
    }
    changed
}

/// Whether `shard` of `plan` is done in `out`, and from the inputs as they are now. A file written by
/// another sweep (another hash) is an error: it must not be mixed in, nor silently replaced. A file
/// that cannot be read, or holds runs other than the shard's, is [`ShardState::Unreadable`].
pub fn state(plan: &Plan, caches: &Caches, shard: Shard, out: &Path) -> Result<ShardState> {
    let now = shard_inputs(plan, caches, shard)?;
    state_with(plan, shard, out, &now)
}

fn state_with(
    plan: &Plan,
    shard: Shard,
    out: &Path,
    now: &BTreeMap<String, String>,
) -> Result<ShardState> {
    let path = shard.path(out);
    if !path.exists() {
        return Ok(ShardState::Missing);
    }
    let meta = match table::read_metadata(&path) {
        Ok(meta) => meta,
        Err(e) => {
            return Ok(ShardState::Unreadable {
                reason: unreadable_reason(&e),
            })
        }
    };
    match meta.get(META_HASH) {
        Some(h) if *h == plan.hash => {}
        other => {
            return Err(Error::Output {
                path,
                message: format!(
                    "was written by another sweep (hash {}, this sweep's is {}): the sweep file or its base config changed since; delete the output folder's shard files or choose another --out",
                    other.map(|h| &h[..h.len().min(12)]).unwrap_or("none"),
                    plan.short_hash()
                ),
            })
        }
    }
    // The footer can be whole while a column chunk is not, and a file can be renamed: read the runs.
    let got = match table::read_records(&path) {
        Ok(got) => got,
        Err(e) => {
            return Ok(ShardState::Unreadable {
                reason: unreadable_reason(&e),
            })
        }
    };
    let want = shard.runs(plan);
    if !holds_runs(&got, &want) {
        return Ok(ShardState::Unreadable {
            reason: format!(
                "holds {} runs that are not the {} runs of shard {shard}{}",
                got.len(),
                want.len(),
                meta.get(META_SHARD)
                    .filter(|s| **s != shard.to_string())
                    .map(|s| format!(" (it was written as shard {s})"))
                    .unwrap_or_default()
            ),
        });
    }
    let recorded: BTreeMap<String, String> = match meta.get(META_INPUTS) {
        Some(text) => serde_json::from_str(text).map_err(|e| Error::Output {
            path: path.clone(),
            message: format!("its metadata `{META_INPUTS}` is not a JSON object of hashes: {e}"),
        })?,
        None => {
            return Ok(ShardState::Stale {
                changed: vec!["(the file records no input hashes)".into()],
            })
        }
    };
    let changed = changed_inputs(&recorded, now);
    Ok(if changed.is_empty() {
        ShardState::Done
    } else {
        ShardState::Stale { changed }
    })
}

/// Whether `got` (a shard file's records) are exactly the runs `want`, in order.
pub fn holds_runs(got: &[RunRecord], want: &[&RunSpec]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.run == w.index as u64 && g.run_id == w.id && g.seed == w.seed)
}

/// Why a shard file cannot be read, without its path (the message names it).
fn unreadable_reason(e: &Error) -> String {
    match e {
        Error::Output { message, .. } => message.clone(),
        Error::Io { err, .. } => err.to_string(),
        other => other.to_string(),
    }
}

/// Up to three changed inputs, for a message: `a, b, c and 4 more`.
pub fn changed_list(changed: &[String]) -> String {
    let mut s = changed
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if changed.len() > 3 {
        s.push_str(&format!(" and {} more", changed.len() - 3));
    }
    s
}

/// Simulates one run into its record, resolving its config against `caches.catalogs` and taking its
/// execution-time tables from `caches.tables`.
pub fn run_one(plan: &Plan, caches: &Caches, spec: &RunSpec) -> Result<RunRecord> {
    let params_json = table::params_json(plan, &spec.values);
    let record = |status: &str, error: Option<String>, summary_json: Option<String>| RunRecord {
        run: spec.index as u64,
        run_id: spec.id.clone(),
        replicate: spec.replicate,
        seed: spec.seed,
        params_json: params_json.clone(),
        status: status.into(),
        error,
        summary_json,
    };
    let scenario = match plan.scenario(&caches.catalogs, spec)? {
        Ok(s) => s,
        Err(e) if plan.skip_invalid => return Ok(record("invalid", Some(e.to_string()), None)),
        Err(e) => {
            return Err(Error::Run {
                run: plan.describe(spec),
                error: Box::new(e),
            })
        }
    };
    let summary = simulate::simulate_summary(scenario, &caches.tables).map_err(|e| Error::Run {
        run: plan.describe(spec),
        error: Box::new(e),
    })?;
    let summary = serde_json::to_string(&summary).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(record("ok", None, Some(summary)))
}

/// Fits (or loads) into `tables` the execution-time tables of every distinct predictor among
/// `scenarios`, each once, distinct ones side by side on `pool`; the runs that follow then take them
/// from `tables`.
pub fn warm_predictors(
    scenarios: impl IntoIterator<Item = Result<Scenario>>,
    tables: &TableCache,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    let mut distinct = Vec::new();
    for s in scenarios {
        let s = s?;
        // A prefill pool of its own hardware has a predictor of its own.
        let pool = s.prefill_pool.as_deref().cloned();
        for s in std::iter::once(s).chain(pool) {
            let key = format!(
                "{}|{}|{}|{}|{}",
                s.device_name,
                s.model_name,
                s.hardware.tensor_parallel,
                s.hardware.data_parallel,
                serde_json::to_string(&s.predictor).unwrap_or_default()
            );
            if seen.insert(key) {
                distinct.push(s);
            }
        }
    }
    pool.install(|| {
        distinct.par_iter().try_for_each(|s| {
            off_pool(|| simulate::build_predictor(s, tables).map(|_| ())).and_then(|r| r)
        })
    })
}

/// Runs `f` on a fresh thread that is not a rayon worker, and waits for it.
///
/// A run reads CSV files through polars, which runs them on its own rayon pool. A worker of another
/// pool that calls into polars' pool does not just wait: rayon keeps it busy with its own pool's jobs
/// meanwhile, so it starts another run, which reads a CSV and starts another, until the stack
/// overflows (a 1,000-run sweep did). A plain thread blocks instead. Spawning one per run costs
/// microseconds against milliseconds of simulation.
pub fn off_pool<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn_scoped(s, f)
            .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?
            .join()
            .map_err(|_| Error::Internal("a run's thread panicked".into()))
    })
}

/// A pool of `jobs` threads (at least one).
pub fn thread_pool(jobs: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::Internal(format!("cannot start {jobs} threads: {e}")))
}

/// Runs `specs` on `jobs` threads (results in run order), sharing `caches`; the tables every run needs
/// are fitted or loaded first. `tick` is called after each run.
pub fn run_specs(
    plan: &Plan,
    caches: &Caches,
    specs: &[&RunSpec],
    jobs: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<RunRecord>> {
    let pool = thread_pool(jobs)?;
    // Runs whose config is rejected (skip_invalid) have no predictor to warm.
    let scenarios = specs
        .iter()
        .filter_map(|spec| match plan.scenario(&caches.catalogs, spec) {
            Ok(Ok(s)) => Some(Ok(s)),
            Ok(Err(_)) => None,
            Err(e) => Some(Err(e)),
        });
    warm_predictors(scenarios, &caches.tables, &pool)?;
    pool.install(|| {
        specs
            .par_iter()
            .map(|spec| {
                let r = off_pool(|| run_one(plan, caches, spec)).and_then(|r| r);
                tick();
                r
            })
            .collect::<Result<Vec<_>>>()
    })
}

/// What [`run_shard`] did.
#[derive(Debug)]
pub struct ShardRun {
    /// The shard file.
    pub path: PathBuf,
    /// The state the shard was in before: `Done` means nothing ran.
    pub before: ShardState,
    /// Runs simulated (0 when the shard was done).
    pub runs: usize,
}

/// Runs a shard, unless it is done from the inputs as they are now, and writes its file (replacing a
/// stale or unreadable one).
pub fn run_shard(
    plan: &Plan,
    caches: &Caches,
    shard: Shard,
    out: &Path,
    jobs: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<ShardRun> {
    let inputs = shard_inputs(plan, caches, shard)?;
    let path = shard.path(out);
    let before = state_with(plan, shard, out, &inputs)?;
    if before == ShardState::Done {
        return Ok(ShardRun {
            path,
            before,
            runs: 0,
        });
    }
    let specs = shard.runs(plan);
    let records = run_specs(plan, caches, &specs, jobs, tick)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut df = table::records_frame(&records)?;
    table::write_parquet_atomic(
        &path,
        &mut df,
        &[
            (META_HASH, plan.hash.clone()),
            (META_SHARD, shard.to_string()),
            (META_INPUTS, inputs_text(&inputs)?),
            ("simwatt.version", env!("CARGO_PKG_VERSION").to_string()),
            ("simwatt.sweep", plan.path.display().to_string()),
        ],
    )?;
    Ok(ShardRun {
        path,
        before,
        runs: records.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shard_arguments_parse_and_check_their_range() {
        assert_eq!(
            "3/8".parse::<ShardArg>(),
            Ok(ShardArg::Fixed(Shard { index: 3, count: 8 }))
        );
        assert_eq!(
            "auto/8".parse::<ShardArg>(),
            Ok(ShardArg::Auto { count: 8 })
        );
        assert!("8/8".parse::<ShardArg>().unwrap_err().contains("below"));
        assert!("1/0"
            .parse::<ShardArg>()
            .unwrap_err()
            .contains("at least 1"));
        assert!("3".parse::<ShardArg>().unwrap_err().contains("I/N"));
        assert!("x/2".parse::<ShardArg>().unwrap_err().contains("`x`"));
    }

    #[test]
    fn auto_reads_each_batch_systems_array_index() {
        let auto = ShardArg::Auto { count: 8 };
        let idx = |vars: &[(&str, &str)]| auto.resolve(env(vars)).map(|s| s.index);
        assert_eq!(
            idx(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "2")
            ])
            .unwrap(),
            5
        );
        assert_eq!(idx(&[("JOB_COMPLETION_INDEX", "0")]).unwrap(), 0);
        assert_eq!(idx(&[("PBS_ARRAY_INDEX", "7")]).unwrap(), 7);
        assert_eq!(idx(&[("AWS_BATCH_JOB_ARRAY_INDEX", "2")]).unwrap(), 2);
        assert_eq!(idx(&[("SGE_TASK_ID", "1")]).unwrap(), 0);
        assert_eq!(
            idx(&[("SGE_TASK_ID", "undefined"), ("LSB_JOBINDEX", "8")]).unwrap(),
            7
        );
        let e = idx(&[("SLURM_ARRAY_TASK_ID", "8")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID") && e.contains("0-7"),
            "{e}"
        );
        let e = idx(&[("SGE_TASK_ID", "0")]).unwrap_err().to_string();
        assert!(e.contains("1-based"), "{e}");
        let e = idx(&[]).unwrap_err().to_string();
        assert!(
            e.contains("no array index") && e.contains("--shard 0/8"),
            "{e}"
        );
        let e = idx(&[("SLURM_ARRAY_TASK_ID", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`SLURM_ARRAY_TASK_ID` = x"), "{e}");
    }
}
