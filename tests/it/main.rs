//! simwatt's integration tests: one binary, one module per concern.

mod bad_input;
mod cli;
mod common;
mod policies;
mod predictor_cache;
mod search;
mod slurm;
mod sweep;
