//! Sweep tables: one record per run, the shard files that hold them, and the merged results table.
//!
//! A shard file (`shard-00003-of-00008.parquet`) holds one row per run of the shard: its index, id,
//! replicate, seed, axis values (JSON), status and the run's `summary.json` as text, and carries the
//! sweep's hash in its Parquet key-value metadata. The merged table is built from the records of all
//! runs in run order by one function, whatever the number of shards or threads, so a serial, a
//! parallel and a sharded sweep give byte-identical tables. Its columns: `run`, `run_id`,
//! `replicate`, `seed`, one column per axis (named by its dotted key), `status`, `error`, then the
//! summary flattened: top-level keys as they are (`ttft_p90_s`, `energy_j`), a nested key's path
//! joined with `_` (`requests_rejected_by_reason.kv_capacity` -> `requests_rejected_by_reason_kv_capacity`). Summary keys with `wall` in their name
//! (the simulator's own wall-clock speed) are left out: they differ from run to run.

use crate::drivers::sweep::spec::{value_text, Plan};
use crate::error::{Error, Result};
use crate::output::ParquetFile;
use polars::prelude::*;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Parquet key-value metadata key holding the sweep's hash.
pub const META_HASH: &str = "simwatt.sweep_hash";
/// Parquet key-value metadata key holding, as a JSON object, the SHA-256 of every input a shard's runs
/// read (see `shard::shard_inputs`).
pub const META_INPUTS: &str = "simwatt.inputs";
/// Parquet key-value metadata key holding `I/N` of a shard file.
pub const META_SHARD: &str = "simwatt.shard";

/// The outcome of one run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run: u64,
    pub run_id: String,
    pub replicate: u32,
    pub seed: u64,
    /// The run's axis values, as a JSON object (`{"scheduler.policy": "vllm", ...}`).
    pub params_json: String,
    /// `ok`, or `invalid` when the config rejected this combination (`skip_invalid: true`).
    pub status: String,
    pub error: Option<String>,
    /// The run's summary.json (`None` for an invalid run).
    pub summary_json: Option<String>,
}

/// The JSON object of a run's axis values.
pub fn params_json(plan: &Plan, values: &[serde_yaml::Value]) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in plan.axes.iter().zip(values) {
        m.insert(
            k.clone(),
            serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        );
    }
    serde_json::Value::Object(m).to_string()
}

fn internal(e: PolarsError) -> Error {
    Error::Internal(e.to_string())
}

/// The columns naming each run: `run`, `run_id`, `replicate`, `seed`.
fn id_columns(records: &[RunRecord]) -> Vec<Column> {
    vec![
        Column::new(
            "run".into(),
            records.iter().map(|r| r.run).collect::<Vec<u64>>(),
        ),
        Column::new(
            "run_id".into(),
            records
                .iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<&str>>(),
        ),
        Column::new(
            "replicate".into(),
            records.iter().map(|r| r.replicate).collect::<Vec<u32>>(),
        ),
        Column::new(
            "seed".into(),
            records.iter().map(|r| r.seed).collect::<Vec<u64>>(),
        ),
    ]
}

/// The columns `status` and `error`.
fn status_columns(records: &[RunRecord]) -> [Column; 2] {
    [
        Column::new(
            "status".into(),
            records
                .iter()
                .map(|r| r.status.as_str())
                .collect::<Vec<&str>>(),
        ),
        Column::new(
            "error".into(),
            records
                .iter()
                .map(|r| r.error.as_deref())
                .collect::<Vec<Option<&str>>>(),
        ),
    ]
}

/// The frame of a shard file.
pub fn records_frame(records: &[RunRecord]) -> Result<DataFrame> {
    let mut columns = id_columns(records);
    columns.push(Column::new(
        "params_json".into(),
        records
            .iter()
            .map(|r| r.params_json.as_str())
            .collect::<Vec<&str>>(),
    ));
    columns.extend(status_columns(records));
    columns.push(Column::new(
        "summary_json".into(),
        records
            .iter()
            .map(|r| r.summary_json.as_deref())
            .collect::<Vec<Option<&str>>>(),
    ));
    DataFrame::new_infer_height(columns).map_err(internal)
}

/// Writes `df` to `path` as Parquet with key-value metadata, through a temporary file in the same
/// folder renamed into place, so that a reader never sees half a file.
pub fn write_parquet_atomic(
    path: &Path,
    df: &mut DataFrame,
    meta: &[(&str, String)],
) -> Result<()> {
    let tmp = temp_beside(path);
    let meta: Vec<(String, String)> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let result = (|| {
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let frame_err = |e: PolarsError| Error::Output {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut w = ParquetFile::new(std::io::BufWriter::new(f), df.schema()).map_err(frame_err)?;
        df.rechunk_mut();
        w.write(df).map_err(frame_err)?;
        w.finish(&meta)
            .map_err(frame_err)?
            .flush()
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `df` to `path` as CSV, atomically as [`write_parquet_atomic`].
pub fn write_csv_atomic(path: &Path, df: &mut DataFrame) -> Result<()> {
    let tmp = temp_beside(path);
    let result = (|| {
        crate::output::write_csv(&tmp, df)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The key-value metadata of a Parquet file.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ParquetReader::new(f);
    let meta = reader.get_metadata().map_err(|e| Error::Output {
        path: path.to_path_buf(),
        message: format!("not a readable Parquet file: {e}"),
    })?;
    Ok(meta
        .key_value_metadata()
        .iter()
        .flatten()
        .filter_map(|kv| kv.value.clone().map(|v| (kv.key.clone(), v)))
        .collect())
}

/// Reads the records of a shard file.
pub fn read_records(path: &Path) -> Result<Vec<RunRecord>> {
    let bad = |message: String| Error::Output {
        path: path.to_path_buf(),
        message,
    };
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let df = ParquetReader::new(f)
        .finish()
        .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
    let col = |name: &str| {
        df.column(name)
            .map_err(|_| bad(format!("not a simwatt shard file: no column `{name}`")))
    };
    let u64s = |name: &str| -> Result<Vec<Option<u64>>> {
        Ok(col(name)?
            .cast(&DataType::UInt64)
            .map_err(|e| bad(e.to_string()))?
            .u64()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .collect())
    };
    let strs = |name: &str| -> Result<Vec<Option<String>>> {
        Ok(col(name)?
            .str()
            .map_err(|e| bad(format!("column `{name}`: {e}")))?
            .iter()
            .map(|s| s.map(str::to_string))
            .collect())
    };
    let (run, replicate, seed) = (u64s("run")?, u64s("replicate")?, u64s("seed")?);
    let (id, params, status) = (strs("run_id")?, strs("params_json")?, strs("status")?);
    let (error, summary) = (strs("error")?, strs("summary_json")?);
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let missing = |c: &str| bad(format!("column `{c}`, row {}: empty", i + 1));
        out.push(RunRecord {
            run: run[i].ok_or_else(|| missing("run"))?,
            run_id: id[i].clone().ok_or_else(|| missing("run_id"))?,
            replicate: replicate[i].ok_or_else(|| missing("replicate"))? as u32,
            seed: seed[i].ok_or_else(|| missing("seed"))?,
            params_json: params[i].clone().ok_or_else(|| missing("params_json"))?,
            status: status[i].clone().ok_or_else(|| missing("status"))?,
            error: error[i].clone(),
            summary_json: summary[i].clone(),
        });
    }
    Ok(out)
}

/// A JSON value with object keys in document order (serde_json's own map sorts them).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(String),
    List(String),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> std::result::Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Node, E> {
                Ok(Node::UInt(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Node, E> {
                Ok(if v >= 0 {
                    Node::UInt(v as u64)
                } else {
                    Node::Int(v)
                })
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = a.next_element::<serde_json::Value>()? {
                    items.push(v);
                }
                Ok(Node::List(serde_json::Value::Array(items).to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Node>()? {
                    entries.push((k, v));
                }
                Ok(Node::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// One column of a flattened summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Flat {
    /// Column name: the key path joined with `_` (`requests_rejected_by_reason_kv_capacity`).
    pub name: String,
    /// The top-level summary key it came from (`requests_rejected_by_reason`).
    pub top: String,
    pub value: Node,
}

/// A summary flattened into columns.
#[derive(Debug, Clone, Default)]
pub struct Flattened {
    /// The columns, in summary order.
    pub columns: Vec<Flat>,
    /// The top-level keys, in summary order (also those whose object had no entries).
    pub tops: Vec<String>,
    /// Key paths that held an object: a `null` at such a path in another run adds no column of its
    /// own.
    pub objects: BTreeSet<String>,
}

/// Flattens a summary (JSON text) into columns.
pub fn flatten_summary(json: &str) -> Result<Flattened> {
    let node: Node = serde_json::from_str(json)
        .map_err(|e| Error::Internal(format!("a run summary is not valid JSON: {e}")))?;
    fn walk(name: &str, top: &str, node: Node, out: &mut Flattened) {
        match node {
            Node::Object(entries) => {
                if !name.is_empty() {
                    out.objects.insert(name.to_string());
                }
                for (k, v) in entries {
                    if k.contains("wall") {
                        continue;
                    }
                    if name.is_empty() {
                        out.tops.push(k.clone());
                        walk(&k, &k, v, out);
                    } else {
                        walk(&format!("{name}_{k}"), top, v, out);
                    }
                }
            }
            value => out.columns.push(Flat {
                name: name.to_string(),
                top: top.to_string(),
                value,
            }),
        }
    }
    let mut out = Flattened::default();
    walk("", "", node, &mut out);
    Ok(out)
}

/// A column of values of mixed JSON kinds, typed as narrowly as its values allow.
pub fn typed_column(name: &str, cells: &[Option<Node>]) -> Column {
    let present = || cells.iter().flatten();
    let all = |f: fn(&Node) -> bool| present().all(f);
    let name: PlSmallStr = name.into();
    if present().next().is_none() {
        return Column::new(
            name,
            cells.iter().map(|_| None).collect::<Vec<Option<f64>>>(),
        );
    }
    if all(|n| matches!(n, Node::UInt(_))) {
        let v: Vec<Option<u64>> = cells
            .iter()
            .map(|c| match c {
                Some(Node::UInt(u)) => Some(*u),
                _ => None,
            })
            .collect();
        return Column::new(name, v);
    }
    if all(|n| matches!(n, Node::UInt(_) | Node::Int(_))) {
        let v: Vec<Option<i64>> = cells
            .iter()
            .map(|c| match c {
                Some(Node::UInt(u)) => Some(*u as i64),
                Some(Node::Int(i)) => Some(*i),
                _ => None,
            })
            .collect();
        return Column::new(name, v);
    }
    if all(|n| matches!(n, Node::UInt(_) | Node::Int(_) | Node::Float(_))) {
        let v: Vec<Option<f64>> = cells
            .iter()
            .map(|c| match c {
                Some(Node::UInt(u)) => Some(*u as f64),
                Some(Node::Int(i)) => Some(*i as f64),
                Some(Node::Float(f)) => Some(*f),
                _ => None,
            })
            .collect();
        return Column::new(name, v);
    }
    if all(|n| matches!(n, Node::Bool(_))) {
        let v: Vec<Option<bool>> = cells
            .iter()
            .map(|c| match c {
                Some(Node::Bool(b)) => Some(*b),
                _ => None,
            })
            .collect();
        return Column::new(name, v);
    }
    let v: Vec<Option<String>> = cells
        .iter()
        .map(|c| {
            c.as_ref().and_then(|n| match n {
                Node::Null => None,
                Node::Bool(b) => Some(b.to_string()),
                Node::UInt(u) => Some(u.to_string()),
                Node::Int(i) => Some(i.to_string()),
                Node::Float(f) => Some(f.to_string()),
                Node::Str(s) | Node::List(s) => Some(s.clone()),
                Node::Object(_) => Some("{...}".into()),
            })
        })
        .collect();
    Column::new(name, v)
}

/// A YAML axis value as a cell.
pub fn axis_cell(v: &serde_yaml::Value) -> Node {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Node::Null,
        Y::Bool(b) => Node::Bool(*b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Node::UInt(u)
            } else if let Some(i) = n.as_i64() {
                Node::Int(i)
            } else {
                Node::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Y::String(s) => Node::Str(s.clone()),
        other => Node::Str(value_text(other)),
    }
}

/// The results table of a sweep: one row per record (records in run order), parameters and
/// flattened summary metrics.
pub fn results_frame(plan: &Plan, records: &[RunRecord]) -> Result<DataFrame> {
    let mut columns = id_columns(records);
    for (i, axis) in plan.axes.iter().enumerate() {
        let cells: Vec<Option<Node>> = records
            .iter()
            .map(|r| {
                plan.runs
                    .get(r.run as usize)
                    .map(|spec| axis_cell(&spec.values[i]))
            })
            .collect();
        columns.push(typed_column(axis, &cells));
    }
    columns.extend(status_columns(records));

    // Metric columns: grouped by top-level summary key (in summary order), sorted by name within a
    // group, so the order does not depend on which runs came first.
    let mut rows: Vec<BTreeMap<String, Node>> = Vec::with_capacity(records.len());
    let mut group_of: BTreeMap<String, String> = BTreeMap::new();
    let mut top_order: Vec<String> = Vec::new();
    let mut objects = BTreeSet::new();
    for r in records {
        let mut row = BTreeMap::new();
        if let Some(json) = &r.summary_json {
            let flat = flatten_summary(json)?;
            objects.extend(flat.objects);
            for top in flat.tops {
                if !top_order.contains(&top) {
                    top_order.push(top);
                }
            }
            for f in flat.columns {
                group_of.insert(f.name.clone(), f.top);
                row.insert(f.name, f.value);
            }
        }
        rows.push(row);
    }
    let mut names: Vec<&String> = group_of.keys().filter(|n| !objects.contains(*n)).collect();
    names.sort_by_key(|n| {
        let top = &group_of[*n];
        (
            top_order
                .iter()
                .position(|t| t == top)
                .unwrap_or(usize::MAX),
            (*n).clone(),
        )
    });
    let taken: BTreeSet<String> = columns.iter().map(|c| c.name().to_string()).collect();
    for name in names {
        if name == "seed" {
            continue; // the run's seed, already a column
        }
        let cells: Vec<Option<Node>> = rows.iter().map(|r| r.get(name).cloned()).collect();
        let col_name = if taken.contains(name) {
            format!("{name}_resolved")
        } else {
            name.clone()
        };
        columns.push(typed_column(&col_name, &cells));
    }
    DataFrame::new_infer_height(columns).map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_keeps_summary_order_and_joins_with_underscores() {
        let flat = flatten_summary(
            r#"{"b": 1, "x_s": {"mean": 0.5, "p90": 1.0}, "a": null, "sim_wall_s": 0.1, "m": {"z": 2, "k": 3}, "e": {}}"#,
        )
        .unwrap();
        let (cols, objects) = (&flat.columns, &flat.objects);
        assert_eq!(flat.tops, ["b", "x_s", "a", "m", "e"]);
        let names: Vec<&str> = cols.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b", "x_s_mean", "x_s_p90", "a", "m_z", "m_k"]);
        assert!(objects.contains("x_s") && objects.contains("m"));
        assert_eq!(cols[1].value, Node::Float(0.5));
        assert_eq!(cols[1].top, "x_s");
        assert_eq!(cols[0].value, Node::UInt(1));
    }

    #[test]
    fn typed_columns_take_the_narrowest_type() {
        let c = typed_column("x", &[Some(Node::UInt(1)), None, Some(Node::Float(2.5))]);
        assert_eq!(c.dtype(), &DataType::Float64);
        let c = typed_column("x", &[Some(Node::UInt(1)), Some(Node::UInt(3))]);
        assert_eq!(c.dtype(), &DataType::UInt64);
        let c = typed_column("x", &[Some(Node::Str("a".into())), Some(Node::UInt(3))]);
        assert_eq!(c.dtype(), &DataType::String);
        let c = typed_column("x", &[None, None]);
        assert_eq!(c.dtype(), &DataType::Float64);
    }
}
