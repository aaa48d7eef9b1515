//! The `sweep` driver: grids of simulation runs from a sweep file, run on local threads (rayon) or as
//! the shards of a batch array (Slurm, Kubernetes, GNU parallel, ...), then merged into one table.
//!
//! [`spec`] expands a sweep file into a [`Plan`] of runs with stable ids and seeds; [`shard`] runs a
//! shard's share and writes its Parquet file; [`merge`] checks completeness and writes the table
//! ([`table`] defines its columns); [`emit`] writes job scripts. A run's seed depends only on the sweep
//! and its id, never on the shard count or the order of execution, so a serial, a threaded and a
//! sharded sweep give identical tables. Nothing below this driver knows about sweeps.

pub mod emit;
pub mod merge;
pub mod shard;
pub mod spec;
pub mod table;

use crate::catalog::Catalogs;
use crate::drivers::Caches;
use crate::error::{Error, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
pub use shard::{Shard, ShardArg, ShardState};
pub use spec::Plan;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `simwatt sweep ...`
#[derive(Debug, Args)]
pub struct SweepCmd {
    #[command(subcommand)]
    pub verb: SweepVerb,
}

// One value per process, parsed from the command line: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SweepVerb {
    /// List the runs of a sweep (ids, seeds, values, shards) after checking every run's config.
    Plan(PlanArgs),
    /// Run a sweep, or one shard of it, on local threads and write the shard's Parquet file.
    Run(RunArgs),
    /// Check that every shard is done and write the merged table (results.parquet and results.csv).
    Merge(MergeArgs),
    /// Write job scripts: a Slurm array plus merge job, a Kubernetes Indexed Job, or a GNU parallel line.
    Emit(EmitArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Sweep file (YAML). See experiments/sweep-example.yaml and docs/sweeps.md.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Also show which of N shards each run belongs to.
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
}

// Doc comments here are --help text, where <name> stands for a value, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Sweep file (YAML).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Run only shard I of N (runs whose index mod N is I). `auto/N` reads I from the batch system's
    /// array index (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, PBS_ARRAY_INDEX, SGE_TASK_ID - 1,
    /// AWS_BATCH_JOB_ARRAY_INDEX, ...). Without it the whole sweep runs and is merged at once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardArg>,
    /// Threads, 1 to 1024 [default: the CPUs available].
    #[arg(long, short = 'j', value_name = "J")]
    pub jobs: Option<usize>,
    /// Output folder for shard files and the merged table [default: runs/<sweep name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress bar or messages (the bar is also off when stderr is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

// Doc comments here are --help text, where <name> stands for a value, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Sweep file (YAML).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Output folder holding the shard files [default: runs/<sweep name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Shard count [default: the one of the shard files present].
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// The sbatch script to name in the resubmission hint when shards are missing.
    #[arg(long, value_name = "FILE")]
    pub resubmit_script: Option<PathBuf>,
}

/// Where the shards will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitTarget {
    /// sweep.sbatch (array), merge.sbatch (afterany) and submit.sh.
    Slurm,
    /// sweep-job.yaml (Indexed Job) and merge-job.yaml.
    K8s,
    /// One GNU parallel line, printed.
    Shell,
}

// Doc comments here are --help text, where <name> stands for a value, not an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Args)]
pub struct EmitArgs {
    #[arg(value_enum)]
    pub target: EmitTarget,
    /// Sweep file (YAML).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Number of shards (array tasks); each runs about runs/N runs.
    #[arg(long, value_name = "N")]
    pub shards: u32,
    /// The sweep's output folder [default: runs/<sweep name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Folder to write the scripts to [default: <out>/slurm or <out>/k8s].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The simwatt executable the jobs run [default: this one; `simwatt` for k8s].
    #[arg(long, value_name = "PATH")]
    pub simwatt: Option<String>,
    /// Most shards running at once.
    #[arg(long, value_name = "P")]
    pub max_parallel: Option<u32>,
    /// CPUs (threads) per shard.
    #[arg(long, default_value_t = 1, value_name = "C")]
    pub cpus_per_task: u32,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm time limit per shard, e.g. 01:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// Slurm account.
    #[arg(long)]
    pub account: Option<String>,
    /// Kubernetes: container image with simwatt on its PATH and its data; the repository's
    /// Containerfile builds the default (podman build -t simwatt:<version> .), which the cluster
    /// must be able to pull: push it to a registry and name it here.
    #[arg(long, default_value = concat!("simwatt:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Kubernetes: PersistentVolumeClaim holding the sweep files and the outputs, mounted at
    /// --workdir. --config and --out are then paths relative to the claim's root; an absolute path
    /// is refused, as the pod cannot see this machine's files.
    #[arg(long, default_value = "simwatt-work", conflicts_with = "host_path")]
    pub pvc: String,
    /// Kubernetes: mount this folder of the node (hostPath) instead of a claim, e.g. on a one-node
    /// kind or minikube cluster that sees this machine's folder at the same path. --config and --out
    /// may then be absolute paths under it.
    #[arg(long, value_name = "DIR")]
    pub host_path: Option<PathBuf>,
    /// Kubernetes: where the volume is mounted inside the pod and the jobs run.
    #[arg(long, default_value = "/work", value_name = "DIR")]
    pub workdir: PathBuf,
}

/// The default output folder of a sweep: `runs/<name>`.
pub fn default_out(plan: &Plan) -> PathBuf {
    PathBuf::from("runs").join(&plan.name)
}

/// Threads to use when --jobs is not given.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The most threads `--jobs` may ask for. Each run also starts a thread of its own while it runs, so
/// tens of thousands would exhaust the process's threads and memory and hang rather than fail.
pub const MAX_JOBS: usize = 1024;

/// The thread count `--jobs` asks for (the CPUs available when it is not given): 0 and more than
/// [`MAX_JOBS`] are errors naming the flag.
pub fn jobs(flag: Option<usize>) -> Result<usize> {
    match flag {
        None => Ok(default_jobs().clamp(1, MAX_JOBS)),
        Some(0) => Err(Error::invalid(
            "--jobs",
            "jobs",
            0,
            "must be at least 1 (leave it out to use every CPU available)",
        )),
        Some(j) if j > MAX_JOBS => Err(Error::invalid(
            "--jobs",
            "jobs",
            j,
            format!(
                "at most {MAX_JOBS} threads; this machine has {} CPUs available",
                default_jobs()
            ),
        )),
        Some(j) => Ok(j),
    }
}

fn progress_bar(total: u64, label: String, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {label} [{{bar:40}}] {{pos}}/{{len}} runs (ETA {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb
}

/// Runs `simwatt sweep ...`.
pub fn main(cmd: SweepCmd) -> Result<()> {
    match cmd.verb {
        SweepVerb::Plan(a) => plan_cmd(a),
        SweepVerb::Run(a) => run_cmd(a),
        SweepVerb::Merge(a) => merge_cmd(a),
        SweepVerb::Emit(a) => emit_cmd(a),
    }
}

fn plan_cmd(a: PlanArgs) -> Result<()> {
    let plan = Plan::expand(&a.config)?;
    let invalid = plan.check_runs(&Catalogs::new()?)?;
    if a.shards == Some(0) {
        return Err(Error::invalid(
            "--shards",
            "shards",
            0,
            "must be at least 1",
        ));
    }
    let mut text = format!(
        "# sweep {} ({}): {} runs = {} points x {} replicates ({}, seeds {}), base seed {}, hash {}\n",
        plan.name,
        plan.path.display(),
        plan.runs.len(),
        plan.points(),
        plan.replicates,
        match plan.combine {
            spec::Combine::Product => "product",
            spec::Combine::Zip => "zip",
        },
        plan.seeds.name(),
        plan.base_seed,
        plan.short_hash()
    );
    let bad = invalid.iter().filter(|r| r.is_some()).count();
    if bad > 0 {
        text.push_str(&format!(
            "# {bad} runs are invalid and will be recorded as such (skip_invalid: true)\n"
        ));
    }
    if let Some(n) = a.shards {
        let per = plan.runs.len().div_ceil(n as usize);
        text.push_str(&format!(
            "# {n} shards of up to {per} runs; run r is in shard r mod {n}\n"
        ));
    }
    let mut header = vec!["run", "run_id", "replicate", "seed"];
    if a.shards.is_some() {
        header.push("shard");
    }
    header.extend(plan.axes.iter().map(|s| s.as_str()));
    header.push("status");
    text.push_str(&header.join("\t"));
    text.push('\n');
    for (run, reason) in plan.runs.iter().zip(&invalid) {
        let mut row = vec![
            run.index.to_string(),
            run.id.clone(),
            run.replicate.to_string(),
            run.seed.to_string(),
        ];
        if let Some(n) = a.shards {
            row.push((run.index % n as usize).to_string());
        }
        row.extend(run.values.iter().map(spec::value_text));
        row.push(if reason.is_some() { "invalid" } else { "ok" }.into());
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    print!("{text}");
    Ok(())
}

fn run_cmd(a: RunArgs) -> Result<()> {
    let jobs = jobs(a.jobs)?;
    let caches = Caches::new()?;
    let plan = Plan::load(&a.config, &caches.catalogs)?;
    let shard = match a.shard {
        None => Shard::ALL,
        Some(arg) => arg.resolve(|k| std::env::var(k).ok())?,
    };
    let out = a.out.unwrap_or_else(|| default_out(&plan));
    let runs = shard.runs(&plan).len();
    let pb = progress_bar(
        runs as u64,
        format!("sweep {} shard {shard}", plan.name),
        a.quiet,
    );
    let t0 = Instant::now();
    let done = shard::run_shard(&plan, &caches, shard, &out, jobs, &|| pb.inc(1))?;
    pb.finish_and_clear();
    if let ShardState::Stale { changed } = &done.before {
        // Said even with --quiet: results are being replaced.
        eprintln!(
            "shard {shard}: {} was run before {} changed; ran it again",
            done.path.display(),
            shard::changed_list(changed)
        );
    }
    if let ShardState::Unreadable { reason } = &done.before {
        eprintln!(
            "shard {shard}: {} could not be used ({reason}); ran the shard again and replaced it",
            done.path.display()
        );
    }
    if !a.quiet {
        if done.before == ShardState::Done {
            eprintln!(
                "shard {shard}: already done from the current inputs ({}); nothing to run",
                done.path.display()
            );
        } else {
            eprintln!(
                "shard {shard}: {} runs in {:.2} s on {jobs} threads -> {}",
                done.runs,
                t0.elapsed().as_secs_f64(),
                done.path.display()
            );
        }
    }
    if shard.count == 1 {
        let (parquet, csv) = merge::merge(&plan, &caches, 1, &out, None)?;
        if !a.quiet {
            eprintln!("results: {} and {}", csv.display(), parquet.display());
        }
    }
    Ok(())
}

fn merge_cmd(a: MergeArgs) -> Result<()> {
    let caches = Caches::new()?;
    let plan = Plan::load(&a.config, &caches.catalogs)?;
    let out = a.out.unwrap_or_else(|| default_out(&plan));
    let count = match a.shards {
        Some(n) => n,
        None => merge::infer_count(&out)?,
    };
    let (parquet, csv) = merge::merge(&plan, &caches, count, &out, a.resubmit_script.as_deref())?;
    eprintln!(
        "merged {count} shards, {} runs: {} and {}",
        plan.runs.len(),
        csv.display(),
        parquet.display()
    );
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(p, e))
}

fn emit_cmd(a: EmitArgs) -> Result<()> {
    let plan = Plan::load(&a.config, &Catalogs::new()?)?;
    if a.shards == 0 || a.shards as usize > plan.runs.len() {
        return Err(Error::invalid(
            "--shards",
            "shards",
            a.shards,
            format!("must be between 1 and the sweep's {} runs", plan.runs.len()),
        ));
    }
    if a.cpus_per_task == 0 {
        return Err(Error::invalid(
            "--cpus-per-task",
            "cpus-per-task",
            0,
            "must be at least 1",
        ));
    }
    if a.max_parallel == Some(0) {
        return Err(Error::invalid(
            "--max-parallel",
            "max-parallel",
            0,
            "must be at least 1 (leave it out for no limit)",
        ));
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(&plan));
    let this_exe = || {
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "simwatt".into())
    };
    let sub = match a.target {
        EmitTarget::Slurm => "slurm",
        EmitTarget::K8s => "k8s",
        EmitTarget::Shell => "shell",
    };
    let dir = absolute(&a.dir.clone().unwrap_or_else(|| out.join(sub)))?;
    let mut o = emit::EmitOptions {
        shards: a.shards,
        config: absolute(&a.config)?,
        out: absolute(&out)?,
        workdir: absolute(Path::new("."))?,
        dir: dir.clone(),
        simwatt: a.simwatt.clone().unwrap_or_else(this_exe),
        max_parallel: a.max_parallel,
        cpus_per_task: a.cpus_per_task,
        partition: a.partition.clone(),
        time: a.time.clone(),
        account: a.account.clone(),
        image: a.image.clone(),
        volume: match &a.host_path {
            Some(p) => emit::PodVolume::HostPath(absolute(p)?),
            None => emit::PodVolume::Claim(a.pvc.clone()),
        },
    };
    let files = match a.target {
        EmitTarget::Shell => {
            emit::check_options(&o, "shell")?;
            println!("{}", emit::shell(&plan, &o));
            return Ok(());
        }
        EmitTarget::Slurm => {
            emit::check_options(&o, "slurm")?;
            emit::slurm(&plan, &o)
        }
        EmitTarget::K8s => {
            // Inside the pod: the paths on the mounted volume. A relative path names a file under a
            // claim's root, but under a node folder it is this machine's path from here.
            let given = |p: &Path| match o.volume {
                emit::PodVolume::HostPath(_) => absolute(p),
                emit::PodVolume::Claim(_) => Ok(p.to_path_buf()),
            };
            o.config = emit::pod_path("--config", &given(&a.config)?, &a.workdir, &o.volume)?;
            o.out = emit::pod_path("--out", &given(&out)?, &a.workdir, &o.volume)?;
            o.workdir = a.workdir.clone();
            o.simwatt = a.simwatt.clone().unwrap_or_else(|| "simwatt".into());
            emit::k8s(&plan, &o)
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    if a.target == EmitTarget::Slurm {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    }
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        #[cfg(unix)]
        if name.ends_with(".sh") || name.ends_with(".sbatch") {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        println!("{}", path.display());
    }
    match a.target {
        EmitTarget::Slurm => eprintln!(
            "submit with: bash {}   ({} shards of {} runs)",
            dir.join("submit.sh").display(),
            a.shards,
            plan.runs.len()
        ),
        EmitTarget::K8s => eprintln!(
            "submit with: kubectl apply -f {}; after it completes: kubectl apply -f {}",
            dir.join("sweep-job.yaml").display(),
            dir.join("merge-job.yaml").display()
        ),
        EmitTarget::Shell => {}
    }
    Ok(())
}
