//! Energy plots of a run: GPU power over time, energy per replica, energy per token against batch size,
//! and carbon, cost and water per region.
//!
//! Input: a [`RunFolder`](crate::runfolder::RunFolder): `power.parquet` (power segments), `batches.parquet` (`energy_j` of each batch
//! stage) and `summary.json` (`regions`). Output: the figures below, each made only when the run has its
//! inputs (a run without a power profile has no `power.parquet`, NaN `energy_j` and no regions, so it gets
//! none of them):
//! - [`PowerTimeline`] (`power_timeline`): per-GPU power of each (replica, stage) group over time;
//! - [`EnergyByReplica`] (`energy_by_replica`): prefill, decode and idle energy of each replica;
//! - [`EnergyPerToken`] (`energy_per_token`): each batch's energy per token against its size;
//! - [`RegionChart`] (`regions`): carbon, cost and water of the run in each configured region.
//!
//! One file per figure under `energy/`; `style` and `tables` hold what they share.

mod by_replica;
mod per_token;
mod power_timeline;
mod regions;
mod style;
mod tables;

pub use by_replica::{energy_by_replica, EnergyByReplica};
pub use per_token::{energy_per_token, EnergyPerToken, SizeStat, TokenSeries};
pub use power_timeline::{power_timeline, PowerColumn, PowerPanel, PowerTimeline};
pub use regions::{region_chart, RegionChart, RegionRow};
pub(crate) use style::text_at;
