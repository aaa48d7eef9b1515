//! The `fit latency` driver: fit (or load) the execution-time tables of (device, model, TP) pairs and
//! report each operation's held-out error, forest against quadratic, with the fit time.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::predictor::profile::{fit_tables, FitReport, FitSettings, ProfileSources, TableCache};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One pair to fit.
#[derive(Debug, Clone)]
pub struct FitTarget {
    pub gpu: String,
    pub model: String,
    pub tp: u32,
}

/// Every (device, model, TP) with a compute profile under `dir`, in a stable order.
pub fn shipped_targets(catalog: &Catalog, dir: &Path) -> Result<Vec<FitTarget>> {
    let mut out = Vec::new();
    for gpu in catalog.device_names() {
        let (_, d) = catalog.device(gpu).expect("listed device exists");
        let Some(pd) = &d.profile_dir else { continue };
        for model in catalog.model_names() {
            let mlp = dir.join("compute").join(pd).join(model).join("mlp.csv");
            if !mlp.exists() {
                continue;
            }
            let t = crate::csvio::CsvTable::read(&mlp)?;
            let mut tps: Vec<u32> = t
                .f64_column("num_tensor_parallel_workers")?
                .into_iter()
                .map(|v| v as u32)
                .collect();
            tps.sort_unstable();
            tps.dedup();
            for tp in tps {
                out.push(FitTarget {
                    gpu: gpu.to_string(),
                    model: model.to_string(),
                    tp,
                });
            }
        }
    }
    Ok(out)
}

/// The profile files of a target.
fn sources(
    catalog: &Catalog,
    dir: &Path,
    t: &FitTarget,
) -> Result<(String, String, ProfileSources)> {
    let (gpu, device) = catalog.device(&t.gpu).ok_or_else(|| Error::Output {
        path: PathBuf::from("--gpu"),
        message: format!("`{}` is not in the device catalog", t.gpu),
    })?;
    let (model, _) = catalog.model(&t.model).ok_or_else(|| Error::Output {
        path: PathBuf::from("--model"),
        message: format!("`{}` is not in the model catalog", t.model),
    })?;
    let src = ProfileSources::locate(
        dir,
        device.profile_dir.as_deref(),
        device.network_profile.as_deref(),
        model,
        t.tp,
    )
    .ok_or_else(|| Error::Output {
        path: dir.to_path_buf(),
        message: format!(
            "no compute profile of {model} on {gpu} (looked for compute/<device>/<model>/mlp.csv)"
        ),
    })?;
    Ok((gpu.to_string(), model.to_string(), src))
}

/// The extrapolation study of a target, as markdown.
pub fn extrapolation_markdown(
    catalog: &Catalog,
    dir: &Path,
    t: &FitTarget,
    seed: u64,
) -> Result<String> {
    let (gpu, model, src) = sources(catalog, dir, t)?;
    let rows = crate::predictor::profile::extrapolation_study(&src, t.tp, seed)?;
    let mut m = String::new();
    let _ = writeln!(m, "### {model} on {gpu}, TP {}\n", t.tp);
    let _ = writeln!(
        m,
        "| operation | fitted up to (tokens) | held-back rows | flat forest MAPE % | linear tail MAPE % |\n|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            m,
            "| {} | {:.0} | {} | {:.1} | {:.1} |",
            r.op, r.train_max_tokens, r.test_rows, r.flat_forest_mape_pct, r.tail_mape_pct
        );
    }
    Ok(m)
}

/// Fits one target, or takes its tables from `tables`.
pub fn fit_one(
    catalog: &Catalog,
    tables: &TableCache,
    dir: &Path,
    t: &FitTarget,
    seed: u64,
    use_cache: bool,
) -> Result<FitReport> {
    let (gpu, model, src) = sources(catalog, dir, t)?;
    let settings = FitSettings {
        gpu,
        model,
        tensor_parallel: t.tp,
        seed,
    };
    let (_, device) = catalog
        .device(&t.gpu)
        .ok_or_else(|| Error::Internal("target device vanished from the catalog".into()))?;
    let calibration = src.attention_calibration_device(catalog, device)?;
    Ok(fit_tables(tables, &src, &settings, calibration, use_cache)?.report)
}

/// The markdown table of one fit.
pub fn report_markdown(r: &FitReport) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "### {} on {}, TP {}\n\n{} in {:.2} s.\n",
        r.model,
        r.gpu,
        r.tensor_parallel,
        if r.from_cache {
            "Loaded from the cache"
        } else {
            "Fitted"
        },
        r.fit_seconds
    );
    let _ = writeln!(
        m,
        "| operation | rows | feature max | forest (trees, depth, min leaf) | forest CV MAPE % | forest test MAPE % | forest test max err (ms) | quadratic CV MAPE % | quadratic test MAPE % | quadratic test max err (ms) | tabulated |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|---|");
    for o in &r.ops {
        let _ = writeln!(
            m,
            "| {} | {} | {:.0} | {}, {}, {} | {:.2} | {:.2} | {:.4} | {:.2} | {:.2} | {:.4} | {} |",
            o.op,
            o.rows,
            if o.feature.starts_with("ln") {
                o.feature_max.exp()
            } else {
                o.feature_max
            },
            o.forest_params.n_trees,
            o.forest_params.max_depth,
            o.forest_params.min_samples_leaf,
            o.forest_cv_mape_pct,
            o.forest_test_mape_pct,
            o.forest_test_max_err_ms,
            o.quadratic_cv_mape_pct,
            o.quadratic_test_mape_pct,
            o.quadratic_test_max_err_ms,
            o.model
        );
    }
    let a = &r.attention;
    let _ = writeln!(
        m,
        "| attention prefill (calibrated roofline) | {} | - | - | {:.2} (5-fold CV) | - | {:.4} | - | - | - | roofline |",
        a.prefill_rows, a.prefill_cv_mape_pct, a.prefill_cv_max_err_ms
    );
    let _ = writeln!(
        m,
        "| attention decode (calibrated roofline) | {} | - | - | {:.2} (5-fold CV) | - | {:.4} | - | - | - | roofline |",
        a.decode_rows, a.decode_cv_mape_pct, a.decode_cv_max_err_ms
    );
    m
}
