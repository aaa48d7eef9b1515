//! Drivers: one module per verb that runs the model end to end (simulate, sweep, capacity search,
//! validate, fit latency, fit power, fit engine, measure, the edge/cloud split).
//!
//! Input: what the CLI parsed. Output: run folders, tables and reports on disk, and in-memory outcomes
//! for other drivers. Drivers wire the layers below (config, workload, sim, predictor, power,
//! accounting, metrics/output, report/plots) together; nothing below imports a driver. A verb makes one
//! [`Caches`] (parsed catalogs, fitted tables) and hands it to every run it makes. [`embed`] runs
//! simulate, sweep and validate in process for an embedding program (the Python bindings).

pub mod embed;
pub mod fit_engine;
pub mod fit_latency;
pub mod fit_power;
pub mod measure;
pub mod search;
pub mod simulate;
pub mod split;
pub mod sweep;
pub mod validate;

use crate::catalog::Catalogs;
use crate::error::{Error, Result};
use crate::predictor::profile::TableCache;

/// Pretty JSON ending with a newline: how every JSON file of a run folder or report is written.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// What every run of one command shares, made once by the verb's driver and passed down by reference:
/// the parsed built-in catalogs and the fitted execution-time tables.
#[derive(Debug)]
pub struct Caches {
    pub catalogs: Catalogs,
    pub tables: TableCache,
}

impl Caches {
    /// The built-in catalogs, parsed, and an empty table cache over the default on-disk cache folder.
    pub fn new() -> Result<Self> {
        Ok(Caches {
            catalogs: Catalogs::new()?,
            tables: TableCache::default(),
        })
    }

    /// The same, the table cache taking profile files' hashes from its index
    /// ([`TableCache::with_hash_index`]): for a command that runs once and checks them
    /// ([`TableCache::verify`]) before it writes what it found.
    pub fn with_hash_index(self) -> Self {
        Caches {
            tables: self.tables.with_hash_index(),
            ..self
        }
    }
}
