//! Sweep files: a base config plus axes, expanded into a deterministic plan of runs.
//!
//! Input: a YAML sweep file (see docs/sweeps.md). Output: a [`Plan`], the list of runs with stable ids,
//! their seeds and the config overrides each applies, plus a hash of the whole plan that tags every
//! output of the sweep. Everything is checked before any run starts: unknown keys, empty or
//! zero-step ranges, a sweep larger than its `max_runs`, axes of unequal length under `zip`, and every
//! run's config (a typo in an axis key is always an error; a combination the config rejects, such as a
//! model that does not fit, is an error unless `skip_invalid: true` records it in the table instead).

use crate::catalog::Catalogs;
use crate::config::{self, RawConfig, Scenario};
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::rng;
use serde::Deserialize;
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

/// The YAML of a sweep file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    /// Name used for job names and the default output folder (default: the file's stem).
    #[serde(default)]
    name: Option<String>,
    /// The base config: a path (relative to the sweep file) or an inline mapping.
    base: Value,
    /// Fixed overrides applied to the base before the axes: `dotted.key: value`.
    #[serde(default)]
    set: Mapping,
    /// The axes: `dotted.key: [values]` or `dotted.key: {from, to, step | factor | count}`.
    axes: Mapping,
    #[serde(default)]
    combine: Combine,
    #[serde(default = "one")]
    replicates: u32,
    #[serde(default)]
    seeds: SeedMode,
    #[serde(default = "default_max_runs")]
    max_runs: u64,
    #[serde(default)]
    skip_invalid: bool,
}

fn one() -> u32 {
    1
}

/// Default ceiling on the number of runs of one sweep; a sweep file may raise it.
pub const DEFAULT_MAX_RUNS: u64 = 10_000;

fn default_max_runs() -> u64 {
    DEFAULT_MAX_RUNS
}

/// How the axes combine into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Every combination of the axes' values (the first axis varies slowest).
    #[default]
    Product,
    /// The axes side by side: the i-th point takes the i-th value of every axis (equal lengths).
    Zip,
}

/// Where each run's seed comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedMode {
    /// Replicate k of every point gets the same seed, derived from the base seed and k: configurations
    /// are compared on the same requests (common random numbers).
    #[default]
    Shared,
    /// Every run gets its own seed, derived from the base seed and its run id.
    PerRun,
}

impl SeedMode {
    pub fn name(self) -> &'static str {
        match self {
            SeedMode::Shared => "shared",
            SeedMode::PerRun => "per_run",
        }
    }
}

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Position in the plan (0-based); shard `i` of `n` holds the runs with `index % n == i`.
    pub index: usize,
    /// Stable id: a hash of the point's axis values plus the replicate, e.g. `3f9a1c0e7b2d-r0`. It does
    /// not change when other values are added to an axis, nor with the shard count.
    pub id: String,
    /// Index of the point (combination of axis values), shared by its replicates.
    pub point: usize,
    pub replicate: u32,
    pub seed: u64,
    /// One value per axis, in the order of [`Plan::axes`].
    pub values: Vec<Value>,
}

/// A validated sweep, expanded into runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The sweep file (named in errors, and the `source` of every run's scenario).
    pub path: PathBuf,
    pub name: String,
    /// The base config tree with the sweep's `set` applied.
    pub base: Value,
    /// The base config's seed, from which run seeds derive.
    pub base_seed: u64,
    /// Axis keys, in the order written.
    pub axes: Vec<String>,
    pub combine: Combine,
    pub replicates: u32,
    pub seeds: SeedMode,
    pub skip_invalid: bool,
    pub runs: Vec<RunSpec>,
    /// SHA-256 (hex) of the simwatt version, the base config and every run's id, seed and overrides.
    pub hash: String,
}

fn field(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::Field {
        path: path.to_path_buf(),
        field: field.to_string(),
        message: message.into(),
    }
}

/// A value as one short line (YAML flow style for collections).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}")),
    }
}

/// The `key=value` override that sets `key` to `v`, in the form [`config::apply_override`] reads.
pub fn override_expr(key: &str, v: &Value) -> String {
    let text = serde_yaml::to_string(v).unwrap_or_default();
    format!("{key}={}", text.trim_end())
}

/// Applies `key: v` to a config tree through [`config::apply_override`], naming the sweep file and
/// `context` (e.g. `axes.scheduler.policy`) in an error.
fn set_key(tree: &mut Value, key: &str, v: &Value, path: &Path, context: &str) -> Result<()> {
    config::apply_override(tree, &override_expr(key, v)).map_err(|e| {
        field(
            path,
            context,
            match e {
                Error::Override { message, .. } => message,
                other => other.to_string(),
            },
        )
    })
}

/// A number from a range field, remembering whether it was written as an integer.
#[derive(Debug, Clone, Copy)]
struct Num {
    value: f64,
    int: Option<i64>,
}

fn num(path: &Path, at: &str, v: &Value) -> Result<Num> {
    match v {
        Value::Number(n) => Ok(Num {
            value: n.as_f64().unwrap_or(f64::NAN),
            int: n.as_i64(),
        }),
        other => Err(field(
            path,
            at,
            format!("expected a number, got {}", value_text(other)),
        )),
    }
}

/// Rounds to 12 significant digits, so that 0.1 + 2 x 0.1 is written 0.3.
fn tidy(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// Expands one axis into its values. `limit` bounds the number of values before any is built.
fn expand_axis(path: &Path, key: &str, spec: &Value, limit: u64) -> Result<Vec<Value>> {
    let at = format!("axes.{key}");
    let values = match spec {
        Value::Sequence(vs) => vs.clone(),
        Value::Mapping(m) => expand_range(path, &at, m, limit)?,
        other => {
            return Err(field(
                path,
                &at,
                format!(
                "expected a list of values or a range {{from, to, step | factor | count}}, got {}",
                value_text(other)
            ),
            ))
        }
    };
    if values.is_empty() {
        return Err(field(path, &at, "the axis has no values"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for v in &values {
        let text = serde_json::to_string(v).unwrap_or_else(|_| value_text(v));
        if !seen.insert(text) {
            return Err(Error::invalid(
                path,
                &at,
                value_text(v),
                "appears twice on the axis; every value must be distinct",
            ));
        }
    }
    Ok(values)
}

/// A range axis (`{from, to, step | factor | count, scale}`) expanded into its values, at most `limit`.
fn expand_range(path: &Path, at: &str, m: &Mapping, limit: u64) -> Result<Vec<Value>> {
    let mut from = None;
    let mut to = None;
    let mut step = None;
    let mut factor = None;
    let mut count = None;
    let mut scale = None;
    for (k, v) in m {
        let name = k.as_str().unwrap_or("");
        let here = format!("{at}.{name}");
        match name {
            "from" => from = Some(num(path, &here, v)?),
            "to" => to = Some(num(path, &here, v)?),
            "step" => step = Some(num(path, &here, v)?),
            "factor" => factor = Some(num(path, &here, v)?),
            "count" => count = Some(num(path, &here, v)?),
            "scale" => scale = Some(v.as_str().unwrap_or("").to_string()),
            _ => return Err(field(
                path,
                &format!("{at}.{}", value_text(k)),
                "unknown field, expected one of `from`, `to`, `step`, `factor`, `count`, `scale`",
            )),
        }
    }
    let need = |n: Option<Num>, name: &str| {
        n.ok_or_else(|| {
            field(
                path,
                &format!("{at}.{name}"),
                "missing: a range needs `from` and `to`",
            )
        })
    };
    let (from, to) = (need(from, "from")?, need(to, "to")?);
    for (name, n) in [("from", from), ("to", to)] {
        if !n.value.is_finite() {
            return Err(Error::invalid(
                path,
                format!("{at}.{name}"),
                n.value,
                "must be finite",
            ));
        }
    }
    let not_count = |scale: &Option<String>| match scale {
        Some(_) => Err(field(
            path,
            &format!("{at}.scale"),
            "applies to `count` ranges only",
        )),
        None => Ok(()),
    };
    match (step, factor, count) {
        (Some(step), None, None) => {
            not_count(&scale)?;
            step_range(path, at, from, to, step, limit)
        }
        (None, Some(factor), None) => {
            not_count(&scale)?;
            factor_range(path, at, from, to, factor, limit)
        }
        (None, None, Some(count)) => count_range(path, at, from, to, count, scale.as_deref(), limit),
        _ => Err(field(
            path,
            at,
            "a range needs exactly one of `step` (linear), `factor` (geometric) or `count` (with `scale: linear | log`)",
        )),
    }
}

/// The error of a range with more values than the sweep's `max_runs`.
fn too_many_values(path: &Path, at: &str, n: f64, limit: u64) -> Error {
    Error::invalid(
        path,
        at,
        format!("{n} values"),
        format!("more values than the sweep's max_runs = {limit}"),
    )
}

/// A linear range: `from`, `from + step`, ... up to `to`.
fn step_range(
    path: &Path,
    at: &str,
    from: Num,
    to: Num,
    step: Num,
    limit: u64,
) -> Result<Vec<Value>> {
    let shown = |name: &str, n: Num| (format!("{at}.{name}"), n.value);
    let too_many = |n: f64| too_many_values(path, at, n, limit);
    let (f, v) = shown("step", step);
    if step.value == 0.0 || !step.value.is_finite() {
        return Err(Error::invalid(
            path,
            f,
            v,
            "the step must be a finite number other than 0",
        ));
    }
    let span = to.value - from.value;
    if span * step.value < 0.0 {
        return Err(Error::invalid(
            path,
            at,
            format!(
                "{{from: {}, to: {}, step: {}}}",
                from.value, to.value, step.value
            ),
            "the range is empty: the step goes away from `to`",
        ));
    }
    let n = (span / step.value + 1e-9).floor() + 1.0;
    if n > limit as f64 {
        return Err(too_many(n));
    }
    let n = n as i64;
    Ok(match (from.int, step.int, to.int) {
        (Some(a), Some(s), Some(_)) => (0..n).map(|k| Value::from(a + k * s)).collect(),
        _ => (0..n)
            .map(|k| Value::from(tidy(from.value + k as f64 * step.value)))
            .collect(),
    })
}

/// A geometric range: `from`, `from x factor`, ... up to `to`.
fn factor_range(
    path: &Path,
    at: &str,
    from: Num,
    to: Num,
    factor: Num,
    limit: u64,
) -> Result<Vec<Value>> {
    let shown = |name: &str, n: Num| (format!("{at}.{name}"), n.value);
    let too_many = |n: f64| too_many_values(path, at, n, limit);
    let (f, v) = shown("factor", factor);
    if !(factor.value.is_finite() && factor.value > 0.0 && factor.value != 1.0) {
        return Err(Error::invalid(
            path,
            f,
            v,
            "the factor must be a finite number > 0 other than 1",
        ));
    }
    if !(from.value > 0.0 && to.value > 0.0) {
        return Err(Error::invalid(
            path,
            format!("{at}.from"),
            from.value,
            "a geometric range needs `from` and `to` > 0",
        ));
    }
    let ratio = (to.value / from.value).ln() / factor.value.ln();
    if ratio < -1e-9 {
        return Err(Error::invalid(
            path,
            at,
            format!(
                "{{from: {}, to: {}, factor: {}}}",
                from.value, to.value, factor.value
            ),
            "the range is empty: the factor goes away from `to`",
        ));
    }
    let n = (ratio + 1e-9).floor() + 1.0;
    if n > limit as f64 {
        return Err(too_many(n));
    }
    let n = n as u32;
    Ok(match (from.int, factor.int, to.int) {
        (Some(a), Some(f), Some(_)) => {
            let mut out = Vec::new();
            let mut x = a;
            for _ in 0..n {
                out.push(Value::from(x));
                x = x.saturating_mul(f);
            }
            out
        }
        _ => (0..n)
            .map(|k| Value::from(tidy(from.value * factor.value.powi(k as i32))))
            .collect(),
    })
}

/// `count` values from `from` to `to`, evenly spaced on a linear or log `scale`.
fn count_range(
    path: &Path,
    at: &str,
    from: Num,
    to: Num,
    count: Num,
    scale: Option<&str>,
    limit: u64,
) -> Result<Vec<Value>> {
    let shown = |name: &str, n: Num| (format!("{at}.{name}"), n.value);
    let too_many = |n: f64| too_many_values(path, at, n, limit);
    let (f, v) = shown("count", count);
    let n = match count.int {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(Error::invalid(path, f, v, "must be a whole number >= 1")),
    };
    if n > limit {
        return Err(too_many(n as f64));
    }
    let log = match scale {
        None | Some("linear") => false,
        Some("log") => true,
        Some(other) => {
            return Err(Error::invalid(
                path,
                format!("{at}.scale"),
                other,
                "expected `linear` or `log`",
            ))
        }
    };
    if log && !(from.value > 0.0 && to.value > 0.0) {
        return Err(Error::invalid(
            path,
            format!("{at}.from"),
            from.value,
            "a log-scale range needs `from` and `to` > 0",
        ));
    }
    let at_k = |k: u64| {
        if n == 1 {
            return from.value;
        }
        let t = k as f64 / (n - 1) as f64;
        if log {
            (from.value.ln() + t * (to.value.ln() - from.value.ln())).exp()
        } else {
            from.value + t * (to.value - from.value)
        }
    };
    if from.int.is_some() && to.int.is_some() {
        // Integer ends give integer values, rounded to the nearest.
        let ints: Vec<i64> = (0..n).map(|k| at_k(k).round() as i64).collect();
        if ints.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                path,
                f,
                v,
                "rounding to whole numbers gives the same value twice; use fewer values or non-integer ends",
            ));
        }
        Ok(ints.into_iter().map(Value::from).collect())
    } else {
        Ok((0..n).map(|k| Value::from(tidy(at_k(k)))).collect())
    }
}

/// The run id of a point (its axis values) and a replicate.
fn run_id(axes: &[String], values: &[Value], replicate: u32) -> String {
    let mut pairs: Vec<String> = axes
        .iter()
        .zip(values)
        .map(|(k, v)| {
            format!(
                "{k}={}",
                serde_json::to_string(v).unwrap_or_else(|_| value_text(v))
            )
        })
        .collect();
    pairs.sort();
    let h = sha256_hex(pairs.join("\n").as_bytes());
    format!("{}-r{replicate}", &h[..12])
}

impl Plan {
    /// Reads, expands and checks a sweep file (every run's config is parsed and resolved against
    /// `catalogs`).
    pub fn load(path: &Path, catalogs: &Catalogs) -> Result<Plan> {
        let plan = Plan::expand(path)?;
        plan.check_runs(catalogs)?;
        Ok(plan)
    }

    /// Reads and expands a sweep file without resolving the runs' configs.
    pub fn expand(path: &Path) -> Result<Plan> {
        let file = Self::read_file(path)?;
        let name = Self::name_of(path, &file)?;
        if file.replicates == 0 {
            return Err(Error::invalid(path, "replicates", 0, "must be at least 1"));
        }
        if file.max_runs == 0 {
            return Err(Error::invalid(path, "max_runs", 0, "must be at least 1"));
        }

        let (base, base_seed) = Self::base_of(path, &file)?;
        let (axes, columns) = Self::axes_of(path, &file)?;
        let points = Self::points_of(path, &file, &axes, &columns)?;
        let runs = Self::runs_of(path, &file, &axes, points, base_seed)?;
        let mut plan = Plan {
            path: path.to_path_buf(),
            name,
            base,
            base_seed,
            axes,
            combine: file.combine,
            replicates: file.replicates,
            seeds: file.seeds,
            skip_invalid: file.skip_invalid,
            runs,
            hash: String::new(),
        };
        plan.hash = plan.compute_hash();
        Ok(plan)
    }

    /// The sweep file, parsed; an error names the field that does not parse.
    fn read_file(path: &Path) -> Result<SweepFile> {
        let text = crate::input::read_text(path)?;
        crate::input::check_yaml_depth(path, &text)?;
        serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(&text)).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            if at == "." || at.is_empty() {
                Error::Yaml {
                    path: path.to_path_buf(),
                    message: inner.to_string(),
                }
            } else {
                field(path, &at, inner.to_string())
            }
        })
    }

    /// The sweep's name: `name`, else the file's stem.
    fn name_of(path: &Path, file: &SweepFile) -> Result<String> {
        Ok(match &file.name {
            Some(n) if n.trim().is_empty() => return Err(field(path, "name", "must not be empty")),
            Some(n) => n.clone(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "sweep".into()),
        })
    }

    /// The base config with `set` applied, and its seed (42 when it sets none).
    fn base_of(path: &Path, file: &SweepFile) -> Result<(Value, u64)> {
        let mut base = match &file.base {
            Value::String(p) => {
                let rel = Path::new(p);
                let full = if rel.is_absolute() {
                    rel.to_path_buf()
                } else {
                    path.parent().unwrap_or(Path::new("")).join(rel)
                };
                if !full.is_file() {
                    return Err(Error::invalid(
                        path,
                        "base",
                        p,
                        format!(
                            "no such config file ({} is relative to the sweep file)",
                            full.display()
                        ),
                    ));
                }
                config::load_tree(&full, &[])?
            }
            Value::Mapping(m) => Value::Mapping(m.clone()),
            other => {
                return Err(Error::invalid(
                    path,
                    "base",
                    value_text(other),
                    "expected a config file name or an inline config mapping",
                ))
            }
        };
        for (k, v) in &file.set {
            let key = k.as_str().ok_or_else(|| {
                field(
                    path,
                    "set",
                    format!("keys must be dotted names, got {}", value_text(k)),
                )
            })?;
            set_key(&mut base, key, v, path, &format!("set.{key}"))?;
        }
        let base_seed = match base.get("seed") {
            None | Some(Value::Null) => 42,
            Some(v) => v.as_u64().ok_or_else(|| {
                Error::invalid(
                    path,
                    "base.seed",
                    value_text(v),
                    "must be a whole number >= 0",
                )
            })?,
        };
        Ok((base, base_seed))
    }

    /// The axes' keys and each axis's values, checked: dotted keys, no axis inside another, no `seed`
    /// axis with replicates.
    fn axes_of(path: &Path, file: &SweepFile) -> Result<(Vec<String>, Vec<Vec<Value>>)> {
        if file.axes.is_empty() {
            return Err(field(path, "axes", "no axes: a sweep needs at least one"));
        }
        let mut axes = Vec::new();
        let mut columns = Vec::new();
        for (k, spec) in &file.axes {
            let key = k
                .as_str()
                .ok_or_else(|| {
                    field(
                        path,
                        "axes",
                        format!("keys must be dotted names, got {}", value_text(k)),
                    )
                })?
                .to_string();
            if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
                return Err(field(
                    path,
                    &format!("axes.{key}"),
                    "the key must be dotted names, e.g. scheduler.max_num_seqs",
                ));
            }
            for other in &axes {
                let (a, b): (&String, &String) = (other, &key);
                if b.starts_with(&format!("{a}.")) || a.starts_with(&format!("{b}.")) {
                    return Err(field(
                        path,
                        &format!("axes.{key}"),
                        format!("overlaps axis `{other}`: one would overwrite the other"),
                    ));
                }
            }
            columns.push(expand_axis(path, &key, spec, file.max_runs)?);
            axes.push(key);
        }
        if axes.iter().any(|a| a == "seed") && file.replicates > 1 {
            return Err(Error::invalid(
                path,
                "replicates",
                file.replicates,
                "with a `seed` axis the replicates would repeat the same seeds; use one or the other",
            ));
        }
        Ok((axes, columns))
    }

    /// The points of the sweep: the axes' values combined (`product` or `zip`), at most `max_runs` runs.
    fn points_of(
        path: &Path,
        file: &SweepFile,
        axes: &[String],
        columns: &[Vec<Value>],
    ) -> Result<Vec<Vec<Value>>> {
        Ok(match file.combine {
            Combine::Product => {
                let n = columns
                    .iter()
                    .try_fold(1u64, |acc, c| acc.checked_mul(c.len() as u64))
                    .unwrap_or(u64::MAX);
                check_size(path, file, n, axes, columns)?;
                let mut out: Vec<Vec<Value>> = vec![Vec::new()];
                for col in columns {
                    let mut next = Vec::with_capacity(out.len() * col.len());
                    for p in &out {
                        for v in col {
                            let mut q = p.clone();
                            q.push(v.clone());
                            next.push(q);
                        }
                    }
                    out = next;
                }
                out
            }
            Combine::Zip => {
                let n = columns[0].len();
                if let Some((i, c)) = columns.iter().enumerate().find(|(_, c)| c.len() != n) {
                    return Err(Error::invalid(
                        path,
                        format!("axes.{}", axes[i]),
                        format!("{} values", c.len()),
                        format!(
                            "`combine: zip` needs axes of equal length, and axes.{} has {n}",
                            axes[0]
                        ),
                    ));
                }
                check_size(path, file, n as u64, axes, columns)?;
                (0..n)
                    .map(|i| columns.iter().map(|c| c[i].clone()).collect())
                    .collect()
            }
        })
    }

    /// The runs: each point's replicates, with their ids and seeds.
    fn runs_of(
        path: &Path,
        file: &SweepFile,
        axes: &[String],
        points: Vec<Vec<Value>>,
        base_seed: u64,
    ) -> Result<Vec<RunSpec>> {
        let mut runs = Vec::with_capacity(points.len() * file.replicates as usize);
        let seed_axis = axes.iter().any(|a| a == "seed");
        for (p, values) in points.into_iter().enumerate() {
            for r in 0..file.replicates {
                let id = run_id(axes, &values, r);
                let seed = if seed_axis {
                    let i = axes.iter().position(|a| a == "seed").unwrap_or(0);
                    values[i].as_u64().ok_or_else(|| {
                        Error::invalid(
                            path,
                            "axes.seed",
                            value_text(&values[i]),
                            "seeds must be whole numbers >= 0",
                        )
                    })?
                } else {
                    // 53 bits, so a seed survives JSON readers and spreadsheets unchanged.
                    let full = match file.seeds {
                        SeedMode::Shared => rng::derive_seed(base_seed, &format!("replicate-{r}")),
                        SeedMode::PerRun => rng::derive_seed(base_seed, &id),
                    };
                    full >> 11
                };
                runs.push(RunSpec {
                    index: runs.len(),
                    id,
                    point: p,
                    replicate: r,
                    seed,
                    values: values.clone(),
                });
            }
        }
        Ok(runs)
    }

    fn compute_hash(&self) -> String {
        let mut text = format!(
            "simwatt {}\nskip_invalid {}\nbase\n{}\nruns\n",
            env!("CARGO_PKG_VERSION"),
            self.skip_invalid,
            serde_yaml::to_string(&self.base).unwrap_or_default()
        );
        for r in &self.runs {
            text.push_str(&format!("{} {} {}", r.index, r.id, r.seed));
            for (k, v) in self.axes.iter().zip(&r.values) {
                text.push_str(&format!(
                    " {k}={}",
                    serde_json::to_string(v).unwrap_or_else(|_| value_text(v))
                ));
            }
            text.push('\n');
        }
        sha256_hex(text.as_bytes())
    }

    /// The first 12 hex digits of the hash, for messages.
    pub fn short_hash(&self) -> &str {
        &self.hash[..12]
    }

    /// Number of points (runs / replicates).
    pub fn points(&self) -> usize {
        self.runs.len() / self.replicates as usize
    }

    /// The `key=value` overrides of a run, axes first, then its seed.
    pub fn overrides(&self, run: &RunSpec) -> Vec<String> {
        let mut out: Vec<String> = self
            .axes
            .iter()
            .zip(&run.values)
            .map(|(k, v)| override_expr(k, v))
            .collect();
        if !self.axes.iter().any(|a| a == "seed") {
            out.push(format!("seed={}", run.seed));
        }
        out
    }

    /// A short description of a run for messages: `run 5 [3f9a1c0e7b2d-r0] (scheduler.policy=orca)`.
    pub fn describe(&self, run: &RunSpec) -> String {
        let vals: Vec<String> = self
            .axes
            .iter()
            .zip(&run.values)
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect();
        format!("run {} [{}] ({})", run.index, run.id, vals.join(", "))
    }

    /// The config tree of a run: the base, the run's axis values and its seed.
    pub fn tree(&self, run: &RunSpec) -> Result<Value> {
        let mut tree = self.base.clone();
        for (k, v) in self.axes.iter().zip(&run.values) {
            set_key(&mut tree, k, v, &self.path, &format!("axes.{k}"))?;
        }
        if !self.axes.iter().any(|a| a == "seed") {
            set_key(
                &mut tree,
                "seed",
                &Value::from(run.seed),
                &self.path,
                "seed",
            )?;
        }
        Ok(tree)
    }

    /// The parsed config of a run. A parse error (unknown key, wrong type) names the run.
    pub fn raw(&self, run: &RunSpec) -> Result<RawConfig> {
        config::parse_tree(&self.path, self.tree(run)?).map_err(|e| match e {
            Error::Field {
                path,
                field,
                message,
            } => Error::Field {
                path,
                field,
                message: format!("{message} (in {})", self.describe(run)),
            },
            other => other,
        })
    }

    /// The scenario of a run, resolved against `catalogs`: `Ok(Err(message))` when the config rejects
    /// this combination (it does not fit, TP does not divide the heads, ...).
    pub fn scenario(
        &self,
        catalogs: &Catalogs,
        run: &RunSpec,
    ) -> Result<std::result::Result<Scenario, Error>> {
        let raw = self.raw(run)?;
        Ok(Scenario::resolve(catalogs, &self.path, raw))
    }

    /// Parses and resolves every run: returns, per run, the reason it is invalid (or `None`). Fails
    /// on any parse error, and on any invalid run unless the sweep has `skip_invalid: true`.
    pub fn check_runs(&self, catalogs: &Catalogs) -> Result<Vec<Option<String>>> {
        let mut reasons = Vec::with_capacity(self.runs.len());
        for run in &self.runs {
            reasons.push(self.scenario(catalogs, run)?.err().map(|e| e.to_string()));
        }
        let bad: Vec<(usize, &String)> = reasons
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|m| (i, m)))
            .collect();
        if !bad.is_empty() && !self.skip_invalid {
            let mut msg = format!(
                "{} of {} runs have a config simwatt rejects (set `skip_invalid: true` to record them in the table as invalid instead):",
                bad.len(),
                self.runs.len()
            );
            for (i, m) in bad.iter().take(5) {
                msg.push_str(&format!("\n  {}: {m}", self.describe(&self.runs[*i])));
            }
            if bad.len() > 5 {
                msg.push_str(&format!("\n  ... and {} more", bad.len() - 5));
            }
            return Err(field(&self.path, "axes", msg));
        }
        Ok(reasons)
    }
}

fn check_size(
    path: &Path,
    file: &SweepFile,
    points: u64,
    axes: &[String],
    columns: &[Vec<Value>],
) -> Result<()> {
    let runs = points.saturating_mul(file.replicates as u64);
    if runs > file.max_runs {
        let sizes: Vec<String> = axes
            .iter()
            .zip(columns)
            .map(|(a, c)| format!("{a}: {}", c.len()))
            .collect();
        return Err(Error::invalid(
            path,
            "max_runs",
            file.max_runs,
            format!(
                "the sweep has {runs} runs ({} x {} replicates; {}), more than max_runs; raise max_runs if that is intended",
                points,
                file.replicates,
                sizes.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, text).unwrap();
        Plan::expand(&p)
    }

    const BASE: &str = "base: {model: m, hardware: {gpu: a100}, scheduler: {policy: vllm}, workload: {requests: 4, arrival: {type: poisson, rate: 1.0}, lengths: {type: fixed, prompt: 8, output: 4}}}\n";

    fn values(p: &Plan, axis: usize) -> Vec<String> {
        let mut v: Vec<String> = p.runs.iter().map(|r| value_text(&r.values[axis])).collect();
        v.dedup();
        v
    }

    #[test]
    fn lists_ranges_and_log_steps_expand() {
        let p = plan(&format!(
            "{BASE}axes:\n  a: [x, y]\n  b: {{from: 1, to: 4, step: 1}}\n  c: {{from: 0.1, to: 0.3, step: 0.1}}\n  d: {{from: 16, to: 128, factor: 2}}\n  e: {{from: 1, to: 100, count: 3, scale: log}}\ncombine: zip\n"
        ));
        // zip needs equal lengths: 2, 4, 3, 4, 3.
        let e = p.unwrap_err().to_string();
        assert!(e.contains("axes.b") && e.contains("equal length"), "{e}");
        let p = plan(&format!(
            "{BASE}axes:\n  b: {{from: 1, to: 4, step: 1}}\n  c: {{from: 0.1, to: 0.3, step: 0.1}}\n  d: {{from: 16, to: 128, factor: 2}}\n  e: {{from: 1, to: 100, count: 3, scale: log}}\n  f: {{from: 4, to: 1, step: -1.5}}\n"
        ))
        .unwrap();
        let col = |i: usize| -> Vec<String> {
            let mut seen = Vec::new();
            for r in &p.runs {
                let t = value_text(&r.values[i]);
                if !seen.contains(&t) {
                    seen.push(t);
                }
            }
            seen
        };
        assert_eq!(col(0), ["1", "2", "3", "4"]);
        assert_eq!(col(1), ["0.1", "0.2", "0.3"]);
        assert_eq!(col(2), ["16", "32", "64", "128"]);
        assert_eq!(col(3), ["1", "10", "100"]);
        assert_eq!(col(4), ["4.0", "2.5", "1.0"]);
        assert_eq!(p.runs.len(), 4 * 3 * 4 * 3 * 3);
        // The first axis varies slowest.
        assert_eq!(value_text(&p.runs[0].values[0]), "1");
        assert_eq!(value_text(&p.runs[1].values[4]), "2.5");
    }

    #[test]
    fn zip_takes_axes_side_by_side_and_replicates_get_distinct_ids_and_seeds() {
        let p = plan(&format!(
            "{BASE}axes:\n  model: [a, b, c]\n  hardware.tensor_parallel: [1, 2, 4]\ncombine: zip\nreplicates: 2\n"
        ))
        .unwrap();
        assert_eq!(p.runs.len(), 6);
        assert_eq!(values(&p, 0), ["a", "b", "c"]);
        assert_eq!(value_text(&p.runs[4].values[1]), "4");
        let ids: std::collections::BTreeSet<_> = p.runs.iter().map(|r| &r.id).collect();
        assert_eq!(ids.len(), 6);
        assert_ne!(p.runs[0].seed, p.runs[1].seed);
        // Shared seeds: replicate k has the same seed at every point.
        assert_eq!(p.runs[0].seed, p.runs[2].seed);
        assert_eq!(p.runs[1].seed, p.runs[5].seed);
        assert!(p.runs[0].id.ends_with("-r0") && p.runs[1].id.ends_with("-r1"));
    }

    #[test]
    fn run_ids_and_seeds_do_not_move_when_an_axis_grows() {
        let a = plan(&format!("{BASE}axes:\n  x: [1, 2]\nseeds: per_run\n")).unwrap();
        let b = plan(&format!("{BASE}axes:\n  x: [0, 1, 2, 3]\nseeds: per_run\n")).unwrap();
        assert_eq!(a.runs[0].id, b.runs[1].id);
        assert_eq!(a.runs[1].seed, b.runs[2].seed);
        assert_ne!(a.runs[0].seed, a.runs[1].seed);
        assert_ne!(a.hash, b.hash);
        let again = plan(&format!("{BASE}axes:\n  x: [1, 2]\nseeds: per_run\n")).unwrap();
        assert_eq!(a.hash, again.hash);
    }

    #[test]
    fn bad_sweeps_are_named_errors() {
        let cases = [
            ("axes:\n  x: {from: 5, to: 1, step: 1}\n", vec!["axes.x", "empty"]),
            ("axes:\n  x: {from: 1, to: 5, step: 0}\n", vec!["axes.x.step", "0"]),
            ("axes:\n  x: {from: 1, to: 5, factor: 1}\n", vec!["axes.x.factor", "other than 1"]),
            ("axes:\n  x: []\n", vec!["axes.x", "no values"]),
            ("axes:\n  x: {from: 1, to: 5}\n", vec!["axes.x", "exactly one of"]),
            ("axes:\n  x: {from: 1, to: 5, stp: 1}\n", vec!["axes.x.stp", "unknown field"]),
            ("axes:\n  x: [1, 1]\n", vec!["axes.x", "twice"]),
            ("axes:\n  x: {from: 1, to: 1000, step: 1}\n  y: [1, 2, 3]\nmax_runs: 100\n", vec!["max_runs", "1000"]),
            ("axes:\n  x: {from: 1, to: 100, step: 1}\n  y: [1, 2]\nreplicates: 3\nmax_runs: 500\n", vec!["max_runs", "600 runs"]),
            ("axes:\n  x: [1]\nreplicate: 2\n", vec!["replicate", "unknown field"]),
            ("axes:\n  x: [1]\ncombine: cross\n", vec!["combine", "unknown variant"]),
            ("axes:\n  x: [1]\n  x.y: [2]\n", vec!["axes.x.y", "overlaps"]),
            ("axes: {}\n", vec!["axes", "at least one"]),
        ];
        for (text, needles) in cases {
            let e = plan(&format!("{BASE}{text}")).unwrap_err().to_string();
            assert!(e.contains("s.yaml"), "{e}");
            for n in needles {
                assert!(e.contains(n), "expected `{n}` in: {e}");
            }
        }
    }

    #[test]
    fn a_huge_range_is_refused_before_it_is_built() {
        let e = plan(&format!(
            "{BASE}axes:\n  x: {{from: 0, to: 1, step: 1e-15}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_runs"), "{e}");
    }
}
