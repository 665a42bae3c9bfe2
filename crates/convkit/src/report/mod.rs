//! Reports people look at: plots of training runs, grids of augmented images.

pub mod augmentation_grid;
pub mod curves;

pub use augmentation_grid::augmentation_grid;
pub use curves::plot_training_curves;
