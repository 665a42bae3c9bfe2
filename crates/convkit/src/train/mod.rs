//! Training: the fit loop, optimizer settings, metrics, callbacks and history, and the
//! learning-rate finder.

pub mod adam;
pub mod best_checkpoint;
pub mod callbacks;
mod data_parallel;
pub mod early_stopping;
pub mod ema;
pub mod evaluate;
pub mod evaluation;
pub mod fit;
pub mod history;
pub mod interrupt;
pub mod lr_finder;
pub mod lr_suggestions;
pub mod metrics;
pub mod mixup;
pub mod monitor;
pub mod optimizer;
pub mod progress;
pub mod progressive_resizing;
pub mod reduce_lr_on_plateau;
pub mod rmsprop;
pub mod sample_predictions;
pub mod schedule;
pub mod sgd;
pub mod training_state;
pub mod tta;
pub mod weight_decay;

pub use adam::KerasAdam;
pub use best_checkpoint::{BestCheckpoint, SaveCheckpoint, SaveModel};
pub use callbacks::{BatchEnd, Callback, CallbackSettings, HistoryCsv, LatestModel, TrainControl};
pub use early_stopping::{EarlyStopping, EarlyStoppingSettings};
pub use ema::Ema;
pub use evaluate::{evaluate, evaluate_with};
pub use evaluation::Evaluation;
pub use fit::{fit, FitConfig};
pub use history::{EpochRecord, History};
pub use lr_finder::{lr_find, LrFindEnd, LrFindSettings, LrFindStep, LrSweep};
pub use lr_suggestions::{Suggestion, Suggestions};
pub use mixup::Mixup;
pub use monitor::{Monitor, MonitorMode};
pub use optimizer::{Optimizer, OptimizerSnapshot, OptimizerState, OPTIMIZER_NAMES};
pub use progress::ProgressBars;
pub use progressive_resizing::ProgressiveResizing;
pub use reduce_lr_on_plateau::{ReduceLrOnPlateau, ReduceLrOnPlateauSettings};
pub use rmsprop::KerasRmsProp;
pub use sample_predictions::{predict_samples, predict_samples_with, SamplePredictions};
pub use schedule::Schedule;
pub use sgd::Sgd;
pub use training_state::{CallbackStates, SavedState, StateDir, TrainingState};
pub use tta::Tta;
pub use weight_decay::WeightDecay;

#[cfg(test)]
pub(crate) mod test_support {
    use super::{Callback, EpochRecord, History, TrainControl};
    use crate::model::Model;

    /// A history whose epochs have these validation losses (and as accuracies).
    pub fn with_val_losses(losses: &[f64]) -> History {
        let epochs = losses
            .iter()
            .enumerate()
            .map(|(i, &v)| EpochRecord {
                epoch: i + 1,
                loss: v,
                accuracy: 0.5,
                val_loss: Some(v),
                val_accuracy: Some(v),
                learning_rate: 1e-3,
                seconds: 1.0,
                images_per_second: 1.0,
                train_image_size: None,
            })
            .collect();
        History { epochs }
    }

    /// Every variable of `model` as (name, values), sorted by name: for comparing two
    /// models bit for bit.
    pub fn weights(model: &Model) -> Vec<(String, Vec<f32>)> {
        let mut vars: Vec<_> = model
            .var_store()
            .variables()
            .into_iter()
            .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Feeds epochs 1 to `upto` of `history` to `callback`, as the loop would.
    pub fn feed(
        callback: &mut dyn Callback,
        model: &Model,
        history: &History,
        upto: usize,
    ) -> TrainControl {
        let mut control = TrainControl::new(1e-3);
        for epoch in 1..=upto {
            let seen = History {
                epochs: history.epochs[..epoch].to_vec(),
            };
            callback.on_epoch_end(model, &seen, &mut control).unwrap();
        }
        control
    }
}

#[cfg(test)]
mod tests {
    use super::FitConfig;
    use crate::data::Dataset;
    use crate::model::Model;
    use crate::models::Sequential;
    use crate::nn::{Activation, BatchNormalizationSpec};
    use tch::{Device, Kind, Tensor};

    #[test]
    fn fit_moves_the_moving_statistics_of_a_model() {
        let spec = Sequential::new("bn", [3, 8, 8])
            .rescaling(1.0 / 255.0)
            .conv2d(4, 3, Activation::Linear)
            .add(BatchNormalizationSpec::default())
            .flatten()
            .dense(2, Activation::Softmax);
        let mut model = Model::new(&spec, Device::Cpu, 0).unwrap();
        let images = Tensor::randint(256, [64, 3, 8, 8], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(2, [64], (Kind::Int64, Device::Cpu));
        let data = Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap();
        let config = FitConfig {
            epochs: 2,
            batch_size: 8,
            ..FitConfig::default()
        };
        crate::train::fit(&mut model, &data, Some(&data), &config, &mut []).unwrap();
        let vars = model.var_store().variables();
        let mean = vars["batch_normalization.running_mean"]
            .abs()
            .sum(Kind::Float)
            .double_value(&[]);
        assert!(mean > 0.0, "the moving mean never moved");
    }
}
