//! One pipeline for every training run: [`run`] a [`RunSpec`](super::run_spec::RunSpec), or
//! [`resume`] one from its run folder. Its stages: load the data, build the model,
//! fit it with the run's callbacks, evaluate the kept checkpoint, and write
//! [`RunReport`] to `metrics.json`.

mod build;
mod load;
mod run;
pub mod run_report;

pub use run::{resume, run, RunOptions};
pub use run_report::RunReport;
