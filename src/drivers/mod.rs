//! Drivers: one module per verb that runs the model end to end (simulate, sweep, capacity search,
//! validate, fit latency, fit power).
//!
//! Input: what the CLI parsed. Output: run folders, tables and reports on disk, and in-memory outcomes
//! for other drivers. Drivers wire the layers below (config, workload, sim, predictor, power,
//! accounting, metrics/output, report/plots) together; nothing below imports a driver.

pub mod fit_latency;
pub mod fit_power;
pub mod search;
pub mod simulate;
pub mod sweep;
pub mod validate;
