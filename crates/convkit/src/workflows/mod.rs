//! What each command of the `convkit` binary runs, one function per command, so that the
//! binary only parses arguments.

pub mod changed_settings;
pub mod chapter8;
pub mod evaluate;
pub mod export;
pub mod features;
pub mod finetune;
pub mod image_splits;
pub mod imagenet_predict;
pub mod mnist;
pub mod predict;
mod process_run_dir;
pub mod run_dir;
pub mod train;
pub mod transfer;

pub use changed_settings::changed_settings;
pub use chapter8::{run_chapter8, Chapter8Job, Chapter8Report};
pub use evaluate::{evaluate_run, report_run};
pub use export::export_run;
pub use finetune::{finetune_job, FinetuneOptions};
pub use image_splits::Storage;
pub use imagenet_predict::{predict_imagenet, ImagenetPrediction};
pub use mnist::{resume_mnist, run_mnist, MnistJob, MnistReport};
pub use predict::{collect_images, predict_images, predict_images_with, Prediction};
pub use run_dir::RunDir;
pub use train::{resume_train, run_train, TrainJob, TrainReport};
