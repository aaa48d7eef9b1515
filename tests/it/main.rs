//! simwatt's integration tests: one binary, one module per concern.

mod architecture;
mod bad_input;
mod bad_input_table;
mod catalog;
mod cli;
mod common;
mod energy;
mod engine;
mod fuzz;
mod latency;
mod limits;
mod moe;
mod output;
mod output_folders;
mod policies;
mod power;
mod precision;
mod predictor_cache;
mod prefix;
mod report;
mod runs_anywhere;
mod search;
mod slurm;
mod sweep;
mod traces;
mod validate;
