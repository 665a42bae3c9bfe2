//! Reports people look at: plots of training runs.

pub mod curves;

pub use curves::plot_training_curves;
