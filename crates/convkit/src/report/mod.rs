//! Reports people look at: plots of training runs and of learning-rate sweeps, grids of
//! augmented images, evaluation reports (confusion matrix, per-class scores, the worst
//! images).

pub mod augmentation_grid;
pub mod chapter8_page;
pub mod classification_metrics;
pub mod confusion_plot;
pub mod curves;
pub mod evaluation_report;
pub mod html;
mod legend_corner;
pub mod lr_find_plot;
pub mod machine;
pub mod tensorboard;
pub mod top_losses;

pub use augmentation_grid::augmentation_grid;
pub use classification_metrics::{ClassScores, ClassificationMetrics, ConfusedPair};
pub use confusion_plot::plot_confusion_matrix;
pub use curves::{plot_training_curves, CurvesPlot};
pub use evaluation_report::{write_evaluation_report, EvaluationReport, ReportInput};
pub use lr_find_plot::plot_lr_find;
pub use machine::Machine;
pub use tensorboard::TensorBoardLog;
pub use top_losses::{plot_labelled_images, LabelledImage};
