//! simwatt: a discrete-event simulator of LLM inference serving, with energy as a first-class output.
//!
//! Data flow: [`config`] (YAML -> validated [`config::Scenario`]) -> [`workload`] (all requests before the
//! loop) -> [`sim`] (event loop) over [`cluster`] (routers, batching policies, KV cache) priced by
//! [`predictor`] through the serving [`engine`] -> [`metrics`] -> [`output`]; [`report`] (plots, trace,
//! summary.md) reads the written run folder back through [`runfolder`]. [`drivers::simulate`] is the `simulate`
//! driver; [`drivers::sweep`] (grids of runs, sharded over batch arrays) and [`drivers::search`] (capacity
//! under an SLO) drive it many times.
//! [`drivers::validate`] replays measured runs and reports simwatt's error; [`measure`] (the power sampler
//! and the load generator, driven by [`drivers::measure`]) makes such runs on a real server.

pub mod accounting;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod csvio;
pub mod digest;
pub mod drivers;
pub mod engine;
pub mod error;
pub mod input;
pub mod measure;
pub mod measured;
pub mod metrics;
pub mod microgrid;
pub mod output;
pub mod plots;
pub mod power;
pub mod precision;
pub mod predictor;
pub mod pv;
pub mod report;
pub mod rng;
pub mod runfolder;
pub mod sim;
pub mod trace;
pub mod units;
pub mod workload;
