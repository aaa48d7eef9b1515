//! Regressions of one operation's time against one feature: a seeded random forest (smartcore's
//! `RandomForestRegressor`, as Vidur's scikit-learn forests) with hyperparameters chosen by k-fold
//! cross-validation, and a quadratic least-squares model (smartcore's `LinearRegression` on [x, x^2]) as
//! the alternative. Errors are mean absolute percentage error (MAPE, %) and max absolute error.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::linear_regression::{LinearRegression, LinearRegressionParameters};

/// Forest hyperparameters searched by cross-validation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
}

/// The grid searched (kept small: one feature and a few hundred rows per operation).
pub const FOREST_GRID: [ForestParams; 6] = [
    ForestParams {
        n_trees: 32,
        max_depth: 8,
        min_samples_leaf: 1,
    },
    ForestParams {
        n_trees: 32,
        max_depth: 16,
        min_samples_leaf: 1,
    },
    ForestParams {
        n_trees: 32,
        max_depth: 16,
        min_samples_leaf: 2,
    },
    ForestParams {
        n_trees: 64,
        max_depth: 8,
        min_samples_leaf: 1,
    },
    ForestParams {
        n_trees: 64,
        max_depth: 16,
        min_samples_leaf: 1,
    },
    ForestParams {
        n_trees: 64,
        max_depth: 16,
        min_samples_leaf: 2,
    },
];

/// Folds of the cross-validation.
pub const CV_FOLDS: usize = 5;

fn matrix(x: &[f64]) -> Result<DenseMatrix<f64>> {
    let rows: Vec<Vec<f64>> = x.iter().map(|v| vec![*v]).collect();
    DenseMatrix::from_2d_vec(&rows).map_err(|e| Error::Internal(format!("matrix: {e}")))
}

fn poly_matrix(x: &[f64]) -> Result<DenseMatrix<f64>> {
    let rows: Vec<Vec<f64>> = x.iter().map(|v| vec![*v, v * v]).collect();
    DenseMatrix::from_2d_vec(&rows).map_err(|e| Error::Internal(format!("matrix: {e}")))
}

/// A fitted seeded random forest over one feature.
pub struct Forest {
    model: RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>,
}

impl Forest {
    pub fn fit(x: &[f64], y: &[f64], p: ForestParams, seed: u64) -> Result<Self> {
        let params = RandomForestRegressorParameters::default()
            .with_n_trees(p.n_trees)
            .with_max_depth(p.max_depth)
            .with_min_samples_leaf(p.min_samples_leaf)
            .with_min_samples_split(2)
            .with_seed(seed);
        let model = RandomForestRegressor::fit(&matrix(x)?, &y.to_vec(), params)
            .map_err(|e| Error::Internal(format!("forest fit: {e}")))?;
        Ok(Forest { model })
    }

    pub fn predict(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.model
            .predict(&matrix(x)?)
            .map_err(|e| Error::Internal(format!("forest predict: {e}")))
    }
}

/// A fitted quadratic y = c0 + c1 x + c2 x^2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quadratic {
    pub c: [f64; 3],
}

impl Quadratic {
    pub fn fit(x: &[f64], y: &[f64]) -> Result<Self> {
        // Scale x to about [0, 1] so the normal equations are well conditioned.
        let scale = x.iter().cloned().fold(1.0, f64::max);
        let xs: Vec<f64> = x.iter().map(|v| v / scale).collect();
        let m = LinearRegression::fit(
            &poly_matrix(&xs)?,
            &y.to_vec(),
            LinearRegressionParameters::default(),
        )
        .map_err(|e| Error::Internal(format!("linear fit: {e}")))?;
        let b = m.intercept();
        let w = m.coefficients();
        use smartcore::linalg::basic::arrays::Array;
        let (w1, w2) = (*w.get((0, 0)), *w.get((1, 0)));
        Ok(Quadratic {
            c: [*b, w1 / scale, w2 / (scale * scale)],
        })
    }

    pub fn eval(&self, x: f64) -> f64 {
        self.c[0] + self.c[1] * x + self.c[2] * x * x
    }
}

/// Mean absolute percentage error (%) of `pred` against `truth` (rows with truth 0 are skipped).
pub fn mape(pred: &[f64], truth: &[f64]) -> f64 {
    let (sum, n) = pred
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t != 0.0)
        .fold((0.0, 0usize), |(s, n), (p, t)| {
            (s + ((p - t) / t).abs(), n + 1)
        });
    if n == 0 {
        0.0
    } else {
        100.0 * sum / n as f64
    }
}

/// Largest absolute error.
pub fn max_abs_err(pred: &[f64], truth: &[f64]) -> f64 {
    pred.iter()
        .zip(truth)
        .map(|(p, t)| (p - t).abs())
        .fold(0.0, f64::max)
}

/// Deterministic split of row indices: every `k`-th row (offset by `fold`) is held out.
pub fn fold_split(n: usize, k: usize, fold: usize) -> (Vec<usize>, Vec<usize>) {
    (0..n).partition(|i| i % k != fold)
}

fn pick(v: &[f64], idx: &[usize]) -> Vec<f64> {
    idx.iter().map(|&i| v[i]).collect()
}

/// Chooses forest hyperparameters by k-fold cross-validated MAPE over [`FOREST_GRID`] (ties: the
/// earlier, smaller setting). Returns the choice and its CV MAPE.
/// Cross-validated MAPE of the quadratic on (x, y), with the folds [`select_forest`] uses.
pub fn quadratic_cv_mape(x: &[f64], y: &[f64]) -> Result<f64> {
    let mut pred_all = Vec::new();
    let mut truth_all = Vec::new();
    for fold in 0..CV_FOLDS {
        let (tr, te) = fold_split(x.len(), CV_FOLDS, fold);
        let q = Quadratic::fit(&pick(x, &tr), &pick(y, &tr))?;
        pred_all.extend(te.iter().map(|&i| q.eval(x[i])));
        truth_all.extend(pick(y, &te));
    }
    Ok(mape(&pred_all, &truth_all))
}

pub fn select_forest(x: &[f64], y: &[f64], seed: u64) -> Result<(ForestParams, f64)> {
    let mut best: Option<(ForestParams, f64)> = None;
    for p in FOREST_GRID {
        let mut pred_all = Vec::new();
        let mut truth_all = Vec::new();
        for fold in 0..CV_FOLDS {
            let (tr, te) = fold_split(x.len(), CV_FOLDS, fold);
            let f = Forest::fit(&pick(x, &tr), &pick(y, &tr), p, seed)?;
            pred_all.extend(f.predict(&pick(x, &te))?);
            truth_all.extend(pick(y, &te));
        }
        let e = mape(&pred_all, &truth_all);
        if best.is_none_or(|(_, b)| e < b) {
            best = Some((p, e));
        }
    }
    best.ok_or_else(|| Error::Internal("empty forest grid".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic_recovers_exact_coefficients() {
        let x: Vec<f64> = (1..50).map(|i| i as f64 * 10.0).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 + 0.5 * v + 0.001 * v * v).collect();
        let q = Quadratic::fit(&x, &y).unwrap();
        assert!((q.c[0] - 2.0).abs() < 1e-6, "{:?}", q.c);
        assert!((q.c[1] - 0.5).abs() < 1e-8);
        assert!((q.c[2] - 0.001).abs() < 1e-10);
    }

    #[test]
    fn forest_is_deterministic_for_a_seed_and_fits_a_step() {
        let x: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|v| if *v < 100.0 { 1.0 } else { 3.0 })
            .collect();
        let p = FOREST_GRID[0];
        let a = Forest::fit(&x, &y, p, 7)
            .unwrap()
            .predict(&[10.0, 150.0])
            .unwrap();
        let b = Forest::fit(&x, &y, p, 7)
            .unwrap()
            .predict(&[10.0, 150.0])
            .unwrap();
        assert_eq!(a, b);
        assert!(
            (a[0] - 1.0).abs() < 0.05 && (a[1] - 3.0).abs() < 0.05,
            "{a:?}"
        );
    }

    #[test]
    fn error_measures() {
        assert!((mape(&[1.1, 0.9], &[1.0, 1.0]) - 10.0).abs() < 1e-9);
        assert_eq!(max_abs_err(&[1.0, 5.0], &[1.5, 4.0]), 1.0);
        let (tr, te) = fold_split(10, 5, 1);
        assert_eq!(te, vec![1, 6]);
        assert_eq!(tr.len(), 8);
    }
}
