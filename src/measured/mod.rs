//! Readers of measured data: GPU power logs (nvidia-smi, per-window energies), request logs and the
//! published benchmark tables that `validate` and `fit power` compare simwatt against.
//!
//! Input: files as the measuring tools wrote them. Output: plain typed rows and time series. It may not
//! run a simulation or import a driver.

pub mod logs;
pub mod manifest;
pub mod mlenergy_v3;
pub mod run;
