//! Readers of measured data: GPU power logs (nvidia-smi, per-window energies), the power logs of edge
//! and desktop devices (tegrastats, INA3221, Intel Power Gadget, PDUs, SmartWatts), request logs and
//! the published benchmark tables that `validate` and `fit power` compare simwatt against.
//!
//! Input: files as the measuring tools wrote them. Output: plain typed rows and time series. It may not
//! run a simulation or import a driver.

pub mod edge_logs;
pub mod logs;
pub mod manifest;
pub mod mlenergy_v3;
pub mod run;
