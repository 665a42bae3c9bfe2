//! What each command of the `convkit` binary runs, so that the binary only parses
//! arguments: every training command describes its run as a [`RunSpec`] (made by
//! one of the [`presets`]) and hands it to the one [`pipeline`]; the other commands read
//! a run folder back.

pub mod chapter8;
pub mod evaluate;
pub mod export;
pub mod features;
pub mod image_splits;
pub mod imagenet_predict;
pub mod lr_find;
pub mod pipeline;
pub mod predict;
pub mod presets;
mod process_run_dir;
pub mod run_dir;
pub mod run_spec;
pub mod transfer;

pub use chapter8::{run_chapter8, Chapter8Job, Chapter8Report};
pub use evaluate::{evaluate_run, report_run};
pub use export::export_run;
pub use image_splits::Storage;
pub use imagenet_predict::{predict_imagenet, ImagenetPrediction};
pub use lr_find::{find_learning_rate, LrFindJob, LrFindReport};
pub use pipeline::{resume, run, RunOptions, RunReport};
pub use predict::{collect_images, predict_images, predict_images_with, Prediction};
pub use run_dir::RunDir;
pub use run_spec::{RunKind, RunSpec};
