//! Merging shards: check that every shard of a sweep is there, readable, belongs to it and was run from
//! the inputs as they are now (not stale), then write one table.
//!
//! Input: a [`Plan`], the shard count and the output folder holding `shard-*-of-*.parquet`. Output:
//! `results.parquet` and `results.csv` (one row per run, see [`super::table`]), or an error listing the
//! missing, stale and unreadable shards in the form `sbatch --array=` takes (`3,5,17-20`), so that exactly those can be
//! resubmitted.

use crate::drivers::sweep::shard::{self, Shard, ShardState};
use crate::drivers::sweep::spec::Plan;
use crate::drivers::sweep::table::{self, META_HASH};
use crate::drivers::Caches;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The merged table's files, in the output folder.
pub const RESULTS_PARQUET: &str = "results.parquet";
pub const RESULTS_CSV: &str = "results.csv";

/// Shard indices as Slurm's `--array` list: ascending, runs of consecutive ids as `a-b`.
pub fn array_list(ids: &[u32]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        parts.push(if ids[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", ids[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// The shard count of the shard files in `out`, when they agree on one.
pub fn infer_count(out: &Path) -> Result<u32> {
    let mut counts = std::collections::BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(out) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(rest) = name.strip_prefix("shard-") {
                if let Some((_, n)) = rest
                    .strip_suffix(".parquet")
                    .and_then(|r| r.split_once("-of-"))
                {
                    if let Ok(n) = n.parse::<u32>() {
                        counts.insert(n);
                    }
                }
            }
        }
    }
    match counts.len() {
        1 => Ok(*counts.iter().next().unwrap_or(&1)),
        0 => Err(Error::Output {
            path: out.to_path_buf(),
            message: "no shard files (shard-IIIII-of-NNNNN.parquet) here: run `simwatt sweep run` first, or pass --shards N to list the missing shards".into(),
        }),
        _ => Err(Error::Output {
            path: out.to_path_buf(),
            message: format!(
                "holds shard files of several shard counts ({}); pass --shards N",
                counts.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// The shards of `count` not done in `out`: missing ones, stale ones (run from inputs that have
/// changed since) with the inputs that changed, and unreadable ones (truncated, corrupt, or holding
/// another shard's runs) with the reason. An error if a file there belongs to another sweep.
pub fn missing(
    plan: &Plan,
    caches: &Caches,
    count: u32,
    out: &Path,
) -> Result<Vec<(u32, ShardState)>> {
    let mut missing = Vec::new();
    for index in 0..count {
        let st = shard::state(plan, caches, Shard { index, count }, out)?;
        if st != ShardState::Done {
            missing.push((index, st));
        }
    }
    Ok(missing)
}

/// Checks that the sweep's `count` shards are all in `out` and current, and writes the merged table
/// there. `resubmit` is the sbatch script to name in the message listing shards to run again.
pub fn merge(
    plan: &Plan,
    caches: &Caches,
    count: u32,
    out: &Path,
    resubmit: Option<&Path>,
) -> Result<(PathBuf, PathBuf)> {
    if count == 0 {
        return Err(Error::invalid(
            "--shards",
            "shards",
            0,
            "must be at least 1",
        ));
    }
    let gone = missing(plan, caches, count, out)?;
    if !gone.is_empty() {
        let ids: Vec<u32> = gone.iter().map(|(i, _)| *i).collect();
        let list = array_list(&ids);
        let script = resubmit
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<the sweep's sbatch script>".into());
        let others = if gone.len() > 1 {
            ", and so on for each"
        } else {
            ""
        };
        let absent = gone
            .iter()
            .filter(|(_, s)| *s == ShardState::Missing)
            .count();
        let unreadable = gone
            .iter()
            .filter(|(_, s)| matches!(s, ShardState::Unreadable { .. }))
            .count();
        let mut stale_text = String::new();
        for (i, st) in gone
            .iter()
            .filter(|(_, s)| *s != ShardState::Missing)
            .take(3)
        {
            match st {
                ShardState::Stale { changed } => stale_text.push_str(&format!(
                    "\n  shard {i} is stale: run before {} changed",
                    shard::changed_list(changed)
                )),
                ShardState::Unreadable { reason } => stale_text.push_str(&format!(
                    "\n  shard {i} is unreadable: {}: {reason}",
                    Shard { index: *i, count }.path(out).display()
                )),
                ShardState::Missing | ShardState::Done => {}
            }
        }
        return Err(Error::Output {
            path: out.to_path_buf(),
            message: format!(
                "{} of {count} shards {}: {list}{stale_text}\n  Slurm:   sbatch --array={list} {script}\n  locally: simwatt sweep run --config {} --shard {}/{count} --out {}{others}",
                gone.len(),
                if absent == gone.len() {
                    "missing".to_string()
                } else {
                    format!(
                        "to run ({absent} missing, {} stale{})",
                        gone.len() - absent - unreadable,
                        if unreadable > 0 {
                            format!(", {unreadable} unreadable")
                        } else {
                            String::new()
                        }
                    )
                },
                plan.path.display(),
                ids[0],
                out.display()
            ),
        });
    }
    let mut records = Vec::with_capacity(plan.runs.len());
    for index in 0..count {
        let shard = Shard { index, count };
        let path = shard.path(out);
        let got = table::read_records(&path)?;
        let want = shard.runs(plan);
        if !shard::holds_runs(&got, &want) {
            return Err(Error::Output {
                path,
                message: format!(
                    "holds {} runs that are not the {} runs of shard {shard} of this sweep; delete it and rerun the shard",
                    got.len(),
                    want.len()
                ),
            });
        }
        records.extend(got);
    }
    records.sort_by_key(|r| r.run);
    let mut df = table::results_frame(plan, &records)?;
    let parquet = out.join(RESULTS_PARQUET);
    let csv = out.join(RESULTS_CSV);
    table::write_parquet_atomic(
        &parquet,
        &mut df,
        &[
            (META_HASH, plan.hash.clone()),
            ("simwatt.version", env!("CARGO_PKG_VERSION").to_string()),
        ],
    )?;
    table::write_csv_atomic(&csv, &mut df)?;
    Ok((parquet, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shards_read_as_an_sbatch_array_list() {
        assert_eq!(array_list(&[5]), "5");
        assert_eq!(array_list(&[3, 17, 5, 18, 19, 20, 4]), "3-5,17-20");
        assert_eq!(array_list(&[0, 2, 4]), "0,2,4");
        assert_eq!(array_list(&[]), "");
    }
}
