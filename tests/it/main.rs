//! simwatt's integration tests: one binary, one module per concern.

mod bad_input;
mod cli;
mod common;
mod energy;
mod latency;
mod policies;
mod power;
mod report;
mod validate;
