//! Datasets: reading them from disk, finding them, fetching them, batching them.
//!
//! - [`idx`]: IDX files, the format of MNIST and Fashion-MNIST, plain or gzipped.
//! - [`mnist`]: finding, downloading, reading and checking the four MNIST files.
//! - [`download`]: fetching a file and checking its sha256 before it lands.
//! - [`image_dataset`]: the one interface that training and evaluation read data through.
//! - [`dataset`]: labelled images in memory as tensors; [`batches`]: iterating them.
//! - [`subset`]: a view of some samples of any dataset.
//! - [`sharding`]: which samples each process of a data-parallel run reads.
//! - [`data_folder`]: where a data folder named on the command line is found.
//! - [`image_folder`]: folders of class sub-folders of JPEG/PNG/... images, decoded in parallel.
//! - [`disk_dataset`]: the same images decoded once into a memory-mapped file on disk, for
//!   splits larger than memory: [`cache_file`] (its layout), [`cache_key`] (what it was built
//!   from), [`cache_lock`] (one builder at a time), [`prefetch`] (batches gathered ahead).

pub mod batches;
pub mod cache_file;
pub mod cache_key;
pub mod cache_lock;
pub mod data_folder;
pub mod dataset;
pub mod disk_dataset;
pub mod download;
pub mod idx;
pub mod image_dataset;
pub mod image_folder;
pub mod image_integrity;
pub mod mnist;
pub mod prefetch;
pub mod sharding;
pub mod subset;

pub use batches::{shuffled_order, Batch, Batches};
pub use data_folder::locate_data_folder;
pub use dataset::Dataset;
pub use disk_dataset::DiskDataset;
pub use image_dataset::ImageDataset;
pub use sharding::{evaluation_shard, shard_order};
pub use subset::Subset;
