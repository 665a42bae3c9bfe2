//! convkit: convolutional networks for image classification, on libtorch.
//!
//! The library behind the `convkit` command. A model is described as a
//! [`models::Sequential`] (serialisable, with shapes and parameter counts known before
//! anything is built), built into a [`Model`] (its whole API in `model.rs`), trained with
//! [`train::fit()`], measured with [`train::evaluate()`] and used with [`Model::predict`]:
//!
//! ```no_run
//! use convkit::{data::mnist, models, train::{self, FitConfig, ProgressBars}, Model};
//!
//! # fn main() -> convkit::Result<()> {
//! let (train, test) = mnist::load_mnist_datasets(&mnist::locate_mnist(None)?)?;
//! let mut model = Model::new(&models::mnist_convnet(), convkit::device::parse_device("auto")?, 1)?;
//! let config = FitConfig { epochs: 5, batch_size: 64, ..FitConfig::default() };
//! train::fit(&mut model, &train, None, &config, &mut [&mut ProgressBars::new()])?;
//! println!("test accuracy: {:.4}", train::evaluate(&model, &test, 1000)?.accuracy);
//! # Ok(()) }
//! ```
//!
//! Modules follow the chapter's ideas: [`data`] (files, datasets, batches), [`augment`]
//! (random image layers), [`nn`] (layers, losses), [`models`] (the sequential description,
//! its layer registry, the chapter's recipes), [`train`] (fit loop, optimizers, callbacks,
//! history, the learning-rate finder), [`report`] (plots, metrics, reports), [`workflows`] (what each CLI command
//! runs), [`distributed`] (data-parallel training across processes).
//!
//! Layers: a module uses only modules on its own floor or below, never one above. From the
//! bottom: [`error`]; the low utilities ([`atomic_file`], [`json_file`], [`progress_bar`],
//! [`names`], [`cache`], [`device`], [`runtime`], [`weights`], [`distributed`]); then
//! [`nn`], [`augment`], [`data`], [`models`], [`model`], [`train`], [`report`] (about
//! trained runs, so above `train`), [`export`] and, at the top, [`workflows`].
#![deny(missing_docs)]

pub mod atomic_file;
pub mod augment;
pub mod cache;
pub mod data;
pub mod device;
pub mod distributed;
pub mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod json_file;
pub mod model;
pub mod models;
pub mod names;
pub mod nn;
pub mod progress_bar;
pub mod report;
pub mod runtime;
pub mod train;
pub mod weights;
pub mod workflows;

pub use error::{Error, Result};
pub use model::Model;
pub use tch;
