//! Job scripts for running a sweep's shards on a batch system: a Slurm array plus an `afterany` merge
//! job, a Kubernetes Indexed Job, or a GNU parallel line. simwatt links no engine library; these are
//! text, written by pure functions from the plan and the options.
//!
//! Input: a [`Plan`] and [`EmitOptions`]. Output: `(file name, contents)` pairs (or one line for GNU
//! parallel). Every script runs `simwatt sweep run --shard auto/N` (or `{}/N`) with the shard count
//! written in, so a resubmission of some shards still partitions the sweep the same way.
//!
//! A Kubernetes pod sees no file of the machine the jobs are emitted on: the sweep file and the output
//! folder live on a volume (a PersistentVolumeClaim, or a node's folder by `hostPath`) mounted at the
//! pod's working folder, and the jobs name them by their paths inside the pod ([`pod_path`] maps a
//! path given on the command line, and refuses one the pod cannot see). The image is the one the
//! repository's `Containerfile` builds.

use crate::drivers::sweep::merge::RESULTS_PARQUET;
use crate::drivers::sweep::spec::Plan;
use crate::error::{Error, Result};
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// Where and how the shards run.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    pub shards: u32,
    /// The sweep file, as the scripts will name it.
    pub config: PathBuf,
    /// The sweep's output folder, as the scripts will name it.
    pub out: PathBuf,
    /// The folder the jobs run in (relative paths in configs resolve against it).
    pub workdir: PathBuf,
    /// The folder the scripts are written to (Slurm logs go to its `logs/`).
    pub dir: PathBuf,
    /// The simwatt executable the jobs run.
    pub simwatt: String,
    /// Most shards running at once (Slurm `%P`, Kubernetes `parallelism`, GNU parallel `--jobs`).
    pub max_parallel: Option<u32>,
    /// CPUs (rayon threads) per shard.
    pub cpus_per_task: u32,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub account: Option<String>,
    /// Container image (Kubernetes).
    pub image: String,
    /// The volume mounted at `workdir` (Kubernetes).
    pub volume: PodVolume,
}

/// The volume a Kubernetes pod mounts at its working folder, holding the sweep file and the outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodVolume {
    /// A PersistentVolumeClaim, by name.
    Claim(String),
    /// A folder of the node the pod runs on (`hostPath`), e.g. on a one-node kind or minikube cluster
    /// whose node mounts this machine's folder at the same path.
    HostPath(PathBuf),
}

impl PodVolume {
    fn describe(&self) -> String {
        match self {
            PodVolume::Claim(c) => format!("the PersistentVolumeClaim `{c}`"),
            PodVolume::HostPath(p) => format!("the node's folder {} (hostPath)", p.display()),
        }
    }

    fn spec(&self) -> Value {
        match self {
            PodVolume::Claim(c) => map(vec![
                ("name", Value::from(VOLUME)),
                (
                    "persistentVolumeClaim",
                    map(vec![("claimName", Value::from(c.as_str()))]),
                ),
            ]),
            PodVolume::HostPath(p) => map(vec![
                ("name", Value::from(VOLUME)),
                (
                    "hostPath",
                    map(vec![
                        ("path", Value::from(p.display().to_string())),
                        ("type", Value::from("Directory")),
                    ]),
                ),
            ]),
        }
    }
}

/// The name of the pod's one volume.
const VOLUME: &str = "work";

/// The path inside the pod of `p`, given as `flag` on the command line: a relative path lies under the
/// volume's root, mounted at `mount`; an absolute path under a `hostPath` volume's folder is moved to
/// the mount (the caller makes a relative path absolute first when it means this machine's folder).
/// Any other absolute path is a file of this machine that the pod cannot see, and is refused with an
/// error naming the flag and the path (even one that happens to lie under `mount` here: whether the
/// user meant the pod's path or this machine's cannot be told).
pub fn pod_path(flag: &str, p: &Path, mount: &Path, volume: &PodVolume) -> Result<PathBuf> {
    if !mount.is_absolute() {
        return Err(Error::invalid(
            "--workdir",
            "workdir",
            mount.display(),
            "must be an absolute path inside the pod (where the volume is mounted), e.g. /work",
        ));
    }
    if p.is_relative() {
        return Ok(mount.join(p));
    }
    if let PodVolume::HostPath(host) = volume {
        if let Ok(rest) = p.strip_prefix(host) {
            return Ok(mount.join(rest));
        }
    }
    Err(Error::invalid(
        flag,
        flag.trim_start_matches('-'),
        p.display(),
        format!(
            "a path on this machine, which the pod cannot see: the pod sees only {}, mounted at {}; \
             give a path relative to the volume's root (e.g. runs/<name>){}",
            volume.describe(),
            mount.display(),
            match volume {
                PodVolume::HostPath(h) => format!(" or one under {}", h.display()),
                PodVolume::Claim(_) => String::new(),
            }
        ),
    ))
}

/// A word for a POSIX shell: as it is when safe, else in single quotes.
pub fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Characters a `#SBATCH --flag=value` directive holds as they are: sbatch reads a directive up to the
/// first blank and does no shell quoting, so anything else (a newline, a blank, a quote, `#`, `$`)
/// would end the value early or start another directive.
fn directive_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:,+@=/%".contains(c))
}

/// A value shown in an error: control characters escaped, so a newline reads as `\n`.
fn shown(s: &str) -> String {
    s.escape_debug().to_string()
}

/// Text for a `#` comment line of a script: control characters escaped, so it stays one line.
fn comment(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Checks every value that goes into the Slurm scripts or the GNU parallel line (`target` is `slurm`
/// or `shell`): no control characters anywhere (paths and words are single-quoted for the shell,
/// but a newline would still break a directive or a comment line), and `#SBATCH` values (partition,
/// time, account, the logs folder) only of characters a directive holds. The error names the flag
/// and the value.
pub fn check_options(o: &EmitOptions, target: &str) -> Result<()> {
    let bad = |flag: &str, value: &str, message: &str| {
        Error::invalid(
            flag,
            flag.trim_start_matches('-'),
            format!("\"{}\"", shown(value)),
            message,
        )
    };
    let words = [
        ("--config", o.config.display().to_string()),
        ("--out", o.out.display().to_string()),
        ("--dir", o.dir.display().to_string()),
        ("the working folder", o.workdir.display().to_string()),
        ("--simwatt", o.simwatt.clone()),
    ];
    for (flag, v) in &words {
        if v.chars().any(char::is_control) {
            return Err(bad(
                flag,
                v,
                &format!("holds a control character (a newline, tab, ...), which a {target} script cannot carry safely"),
            ));
        }
    }
    if target == "slurm" {
        for (flag, v) in [
            ("--partition", &o.partition),
            ("--time", &o.time),
            ("--account", &o.account),
        ] {
            if let Some(v) = v {
                if !directive_safe(v) {
                    return Err(bad(
                        flag,
                        v,
                        "an #SBATCH directive holds only letters, digits and _-.:,+@=/%",
                    ));
                }
            }
        }
        let logs = o.dir.join("logs").display().to_string();
        if !directive_safe(&logs) {
            return Err(bad(
                "--dir",
                &o.dir.display().to_string(),
                "the logs folder under it goes into #SBATCH --output, which holds only letters, digits and _-.:,+@=/% (no blanks or quotes); choose another --dir",
            ));
        }
    }
    Ok(())
}

fn q(p: &Path) -> String {
    sh_quote(&p.display().to_string())
}

/// The sweep's name as a Kubernetes / Slurm job name: lowercase letters, digits and `-`.
pub fn job_name(plan: &Plan) -> String {
    let mut s: String = plan
        .name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(40);
    let s = s.trim_matches('-');
    if s.is_empty() {
        "simwatt-sweep".into()
    } else {
        format!("simwatt-{s}")
    }
}

fn header(plan: &Plan, o: &EmitOptions, what: &str) -> String {
    format!(
        "# {what} of the simwatt sweep `{}` ({}): {} runs in {} shards, sweep hash {}.\n# Emitted by `simwatt sweep emit` (simwatt {}).\n",
        comment(&plan.name),
        comment(&o.config.display().to_string()),
        plan.runs.len(),
        o.shards,
        plan.short_hash(),
        env!("CARGO_PKG_VERSION")
    )
}

/// `sweep.sbatch` (the shard array), `merge.sbatch` (the merge) and `submit.sh` (both, linked by an
/// `afterany` dependency).
pub fn slurm(plan: &Plan, o: &EmitOptions) -> Vec<(String, String)> {
    let n = o.shards;
    let logs = o.dir.join("logs");
    let throttle = o.max_parallel.map(|p| format!("%{p}")).unwrap_or_default();
    let mut site = String::new();
    for (flag, v) in [
        ("partition", &o.partition),
        ("time", &o.time),
        ("account", &o.account),
    ] {
        if let Some(v) = v {
            site.push_str(&format!("#SBATCH --{flag}={v}\n"));
        }
    }
    let sweep = format!(
        "#!/bin/bash\n{}#\n\
         # Submit every shard, then the merge once all have ended:  bash {submit}\n\
         # Resubmit only the shards `simwatt sweep merge` lists:     sbatch --array=LIST {script}\n\
         #   (or bash {submit} --array=LIST, which also merges again afterwards)\n\
         # A shard whose file is already written exits at once, so resubmitting it is harmless.\n\
         # The shard count ({n}) is written here: SLURM_ARRAY_TASK_COUNT counts only this submission's\n\
         # tasks, which is not the shard count when some shards are resubmitted.\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --array=0-{last}{throttle}\n\
         #SBATCH --ntasks=1\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --output={logs}/shard-%a-job-%A.out\n\
         {site}\
         set -euo pipefail\n\
         cd {workdir}\n\
         exec {simwatt} sweep run --config {config} --shard auto/{n} --out {out} --jobs \"${{SLURM_CPUS_PER_TASK:-{cpus}}}\"\n",
        header(plan, o, "Shard array"),
        submit = q(&o.dir.join("submit.sh")),
        script = q(&o.dir.join("sweep.sbatch")),
        name = job_name(plan),
        last = n - 1,
        cpus = o.cpus_per_task,
        logs = logs.display(),
        workdir = q(&o.workdir),
        simwatt = sh_quote(&o.simwatt),
        config = q(&o.config),
        out = q(&o.out),
    );
    let merge = format!(
        "#!/bin/bash\n{}#\n\
         # Writes {out_disp}/{RESULTS_PARQUET} and results.csv. submit.sh starts it after the shard array\n\
         # with --dependency=afterany, so it also runs when shards failed: it then lists them in its log\n\
         # in the form `sbatch --array=` takes, and fails.\n\
         #SBATCH --job-name={name}-merge\n\
         #SBATCH --ntasks=1\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --output={logs}/merge-job-%j.out\n\
         {site}\
         set -euo pipefail\n\
         cd {workdir}\n\
         exec {simwatt} sweep merge --config {config} --out {out} --shards {n} --resubmit-script {script}\n",
        header(plan, o, "Merge job"),
        out_disp = comment(&o.out.display().to_string()),
        name = job_name(plan),
        logs = logs.display(),
        workdir = q(&o.workdir),
        simwatt = sh_quote(&o.simwatt),
        config = q(&o.config),
        out = q(&o.out),
        script = q(&o.dir.join("sweep.sbatch")),
    );
    let submit = format!(
        "#!/bin/bash\n{}#\n\
         # Submits the shard array, then the merge job once every shard has ended (afterany: also when\n\
         # some failed). Arguments go to the shard array's sbatch, e.g. --array=3,5 to resubmit only\n\
         # shards 3 and 5. Prints the two job ids.\n\
         set -euo pipefail\n\
         mkdir -p {logs}\n\
         shards=$(sbatch --parsable \"$@\" {script})\n\
         shards=${{shards%%;*}}\n\
         merge=$(sbatch --parsable --dependency=afterany:\"$shards\" --kill-on-invalid-dep=yes {merge})\n\
         merge=${{merge%%;*}}\n\
         echo \"shards: job $shards; merge: job $merge\"\n",
        header(plan, o, "Submission"),
        logs = q(&logs),
        script = q(&o.dir.join("sweep.sbatch")),
        merge = q(&o.dir.join("merge.sbatch")),
    );
    vec![
        ("sweep.sbatch".into(), sweep),
        ("merge.sbatch".into(), merge),
        ("submit.sh".into(), submit),
    ]
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::from(k), v);
    }
    Value::Mapping(m)
}

fn strs(items: &[String]) -> Value {
    Value::Sequence(items.iter().map(|s| Value::from(s.as_str())).collect())
}

fn k8s_job(plan: &Plan, o: &EmitOptions, name: &str, command: Vec<String>, indexed: bool) -> Value {
    let labels = map(vec![
        ("app.kubernetes.io/name", Value::from("simwatt")),
        ("simwatt/sweep", Value::from(job_name(plan))),
        ("simwatt/sweep-hash", Value::from(plan.short_hash())),
    ]);
    let cpus = if indexed { o.cpus_per_task } else { 1 };
    let container = map(vec![
        ("name", Value::from(if indexed { "shard" } else { "merge" })),
        ("image", Value::from(o.image.as_str())),
        ("workingDir", Value::from(o.workdir.display().to_string())),
        ("command", strs(&command)),
        (
            "resources",
            map(vec![(
                "requests",
                map(vec![("cpu", Value::from(cpus.to_string()))]),
            )]),
        ),
        (
            "volumeMounts",
            Value::Sequence(vec![map(vec![
                ("name", Value::from(VOLUME)),
                ("mountPath", Value::from(o.workdir.display().to_string())),
            ])]),
        ),
    ]);
    let pod = map(vec![
        ("metadata", map(vec![("labels", labels.clone())])),
        (
            "spec",
            map(vec![
                ("restartPolicy", Value::from("Never")),
                ("containers", Value::Sequence(vec![container])),
                ("volumes", Value::Sequence(vec![o.volume.spec()])),
            ]),
        ),
    ]);
    let mut spec = Vec::new();
    if indexed {
        spec.push(("completionMode", Value::from("Indexed")));
        spec.push(("completions", Value::from(o.shards)));
        spec.push((
            "parallelism",
            Value::from(o.max_parallel.unwrap_or(o.shards).min(o.shards)),
        ));
        spec.push(("backoffLimitPerIndex", Value::from(2)));
        spec.push(("maxFailedIndexes", Value::from(o.shards)));
    } else {
        spec.push(("backoffLimit", Value::from(0)));
    }
    spec.push(("template", pod));
    map(vec![
        ("apiVersion", Value::from("batch/v1")),
        ("kind", Value::from("Job")),
        (
            "metadata",
            map(vec![("name", Value::from(name)), ("labels", labels)]),
        ),
        ("spec", map(spec)),
    ])
}

/// `sweep-job.yaml` (an Indexed Job, one completion index per shard) and `merge-job.yaml`. The options'
/// `config` and `out` are paths inside the pod (see [`pod_path`]).
pub fn k8s(plan: &Plan, o: &EmitOptions) -> Vec<(String, String)> {
    let name = job_name(plan);
    let cfg = o.config.display().to_string();
    let out = o.out.display().to_string();
    let run: Vec<String> = [
        &o.simwatt,
        "sweep",
        "run",
        "--config",
        &cfg,
        "--shard",
        &format!("auto/{}", o.shards),
        "--out",
        &out,
        "--jobs",
        &o.cpus_per_task.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let merge: Vec<String> = [
        &o.simwatt,
        "sweep",
        "merge",
        "--config",
        &cfg,
        "--out",
        &out,
        "--shards",
        &o.shards.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let yaml = |v: &Value| serde_yaml::to_string(v).unwrap_or_default();
    let sweep = format!(
        "{}#\n\
         # Each pod runs shard $JOB_COMPLETION_INDEX of {n} (`--shard auto/{n}`) in the image {image}\n\
         # (built by the Containerfile of simwatt's repository: podman build -t {image} .).\n\
         # Shard files and the merged table go to {out} inside the pod:\n\
         # on {volume}, mounted at {wd}, which must hold the sweep file and its base config.\n\
         # A failed index is retried twice, and the other indexes go on.\n\
         #   kubectl apply -f sweep-job.yaml\n\
         #   kubectl wait --for=condition=complete --timeout=24h job/{name}   # or condition=failed\n\
         #   kubectl apply -f merge-job.yaml\n\
         # If the merge lists missing shards: kubectl delete job {name}, then apply this file again;\n\
         # shards already written exit at once, so only the missing ones do work.\n{}",
        header(plan, o, "Kubernetes Indexed Job"),
        yaml(&k8s_job(plan, o, &name, run, true)),
        n = o.shards,
        image = o.image,
        volume = o.volume.describe(),
        wd = o.workdir.display(),
    );
    let merge_job = format!(
        "{}#\n# Run after sweep-job.yaml has finished: writes {out}/{RESULTS_PARQUET} and results.csv, or\n# fails listing the missing shards.\n{}",
        header(plan, o, "Kubernetes merge Job"),
        yaml(&k8s_job(plan, o, &format!("{name}-merge"), merge, false)),
    );
    vec![
        ("sweep-job.yaml".into(), sweep),
        ("merge-job.yaml".into(), merge_job),
    ]
}

/// One shell line running every shard with GNU parallel, then the merge.
pub fn shell(_plan: &Plan, o: &EmitOptions) -> String {
    let n = o.shards;
    let jobs = o
        .max_parallel
        .map(|p| format!("--jobs {p} "))
        .unwrap_or_default();
    let simwatt = sh_quote(&o.simwatt);
    let config = q(&o.config);
    let out = q(&o.out);
    format!(
        "mkdir -p {out} && parallel {jobs}--joblog {out}/parallel.joblog {simwatt} sweep run --config {config} --shard {{}}/{n} --out {out} --jobs {cpus} --quiet ::: $(seq 0 {last}) && {simwatt} sweep merge --config {config} --out {out} --shards {n}",
        cpus = o.cpus_per_task,
        last = n - 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(sh_quote("/a/b-c_d.yaml"), "/a/b-c_d.yaml");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
        assert_eq!(sh_quote(""), "''");
    }
}
