//! Training: the fit loop, losses, optimizer settings, metrics, callbacks and history.

pub mod callbacks;
pub mod evaluate;
pub mod fit;
pub mod history;
pub mod loss;
pub mod metrics;
pub mod optimizer;
pub mod progress;
pub mod rmsprop;

pub use callbacks::{
    BestCheckpoint, Callback, CurvesPlot, EarlyStopping, HistoryCsv, ReduceLrOnPlateau,
};
pub use evaluate::Evaluation;
pub use fit::FitConfig;
pub use history::{EpochRecord, History};
pub use loss::Loss;
pub use optimizer::{Optimizer, OptimizerState};
pub use rmsprop::KerasRmsProp;
