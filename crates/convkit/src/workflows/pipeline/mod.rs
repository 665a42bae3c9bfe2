//! One pipeline for every training run: [`run()`] a [`RunSpec`](super::run_spec::RunSpec), or
//! [`resume`] one from its run folder. Its stages: load the data, build the model,
//! fit it with the run's callbacks, evaluate the kept checkpoint, and write
//! [`RunReport`] to `metrics.json`.
//!
//! ```no_run
//! use convkit::workflows::{pipeline, presets, RunOptions};
//!
//! # fn main() -> convkit::Result<()> {
//! let mut spec = presets::train("data/cats_vs_dogs".into(), "runs/aug".into());
//! spec.model.augmentation = convkit::models::chapter_augmentation();
//! spec.model.dropout = Some(0.5);
//! spec.fit.epochs = 100;
//! let options = RunOptions { device: tch::Device::Cpu, progress: true };
//! let report = pipeline::run(&spec, &options)?;
//! println!("{:?}", report.best_validation);
//! // Killed or stopped? The same run continues from its folder:
//! let report = pipeline::resume(std::path::Path::new("runs/aug"), &options)?;
//! # Ok(()) }
//! ```

pub(crate) mod build;
pub(crate) mod load;
mod run;
pub mod run_report;

pub use run::{resume, run, RunOptions};
pub use run_report::RunReport;
