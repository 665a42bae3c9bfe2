//! Every sample's class probabilities and loss: what reports that look at single images
//! (confusion matrices, the worst images) are made of.

use tch::{Device, Kind};

use super::tta::Tta;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::nn::Activation;

/// What a model gives for each sample of a dataset, in the dataset's order.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplePredictions {
    /// Each sample's probability per class, in class order. A sigmoid's single output `p`
    /// is the probability of class 1, so it becomes `[1 - p, p]`.
    pub probabilities: Vec<Vec<f64>>,
    /// Each sample's loss, computed on the logits as in training and [`train::evaluate`](crate::train::evaluate()).
    pub losses: Vec<f64>,
    /// Each sample's true class.
    pub labels: Vec<usize>,
    /// The test-time augmentation the probabilities and losses come from.
    pub tta: Tta,
}

impl SamplePredictions {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The predicted class of sample `i`: the most probable, the lowest index on a tie (as
    /// the model's accuracy counts it).
    pub fn predicted(&self, i: usize) -> usize {
        first_max(&self.probabilities[i])
    }

    /// The probability of the predicted class of sample `i`.
    pub fn confidence(&self, i: usize) -> f64 {
        self.probabilities[i][self.predicted(i)]
    }

    /// Fraction of samples whose predicted class is the true one.
    pub fn accuracy(&self) -> f64 {
        let correct = (0..self.len())
            .filter(|&i| self.predicted(i) == self.labels[i])
            .count();
        correct as f64 / self.len().max(1) as f64
    }

    /// Mean loss per sample.
    pub fn mean_loss(&self) -> f64 {
        self.losses.iter().sum::<f64>() / self.len().max(1) as f64
    }
}

/// The index of the largest value, the first one on a tie.
fn first_max(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// Every sample's class probabilities and loss on `data`, at inference (no dropout, no
/// augmentation, libtorch's inference mode), in batches of `batch_size`, in the model's
/// precision. Their mean loss and accuracy are [`train::evaluate`](crate::train::evaluate())'s.
pub fn predict_samples(
    model: &Model,
    data: &Dataset,
    batch_size: usize,
) -> Result<SamplePredictions> {
    predict_samples_with(model, data, batch_size, Tta::None)
}

/// [`predict_samples`] with test-time augmentation `tta`: each sample's probabilities are
/// averaged over its views, and its loss is the cross-entropy of that average (see
/// [`Tta::logits`]). Their mean loss and accuracy are
/// [`train::evaluate_with`](crate::train::evaluate_with)'s with the same `tta`.
pub fn predict_samples_with(
    model: &Model,
    data: &Dataset,
    batch_size: usize,
    tta: Tta,
) -> Result<SamplePredictions> {
    tta.check(model)?;
    if data.is_empty() {
        return Err(Error::InvalidConfig(
            "cannot predict on an empty dataset".into(),
        ));
    }
    model.check_input(data)?;
    let loss = model.loss()?;
    let activation = model.spec().output_activation();
    let _guard = crate::runtime::InferenceMode::new();
    let device = model.device();
    let mut result = SamplePredictions {
        probabilities: Vec::with_capacity(data.len()),
        losses: Vec::with_capacity(data.len()),
        labels: Vec::with_capacity(data.len()),
        tta,
    };
    for batch in data.batches(batch_size, None) {
        let (images, labels) = (
            batch.images.to_device(device),
            batch.labels.to_device(device),
        );
        let logits = tta.logits(model, &images)?;
        let losses = loss.per_sample(&logits, &labels);
        let probabilities = activation.apply(&logits);
        let to_cpu = |t: tch::Tensor| t.to_kind(Kind::Double).to_device(Device::Cpu);
        result
            .losses
            .extend(Vec::<f64>::try_from(to_cpu(losses).view([-1]))?);
        let rows = Vec::<Vec<f64>>::try_from(to_cpu(probabilities))?;
        result
            .probabilities
            .extend(rows.into_iter().map(|row| match activation {
                Activation::Sigmoid => vec![1.0 - row[0], row[0]],
                _ => row,
            }));
        result.labels.extend(
            Vec::<i64>::try_from(batch.labels.view([-1]))?
                .into_iter()
                .map(|l| l as usize),
        );
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models;
    use tch::Tensor;

    #[test]
    fn the_first_maximum_wins_a_tie() {
        assert_eq!(first_max(&[0.5, 0.5]), 0);
        assert_eq!(first_max(&[0.1, 0.7, 0.2]), 1);
    }

    #[test]
    fn sample_predictions_agree_with_evaluate() {
        let model = Model::new(&models::mnist_convnet(), Device::Cpu, 3).unwrap();
        let images = Tensor::randint(256, [37, 1, 28, 28], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(10, [37], (Kind::Int64, Device::Cpu));
        let classes = (0..10).map(|i| i.to_string()).collect();
        let data = Dataset::new(images, labels, classes).unwrap();
        let samples = crate::train::predict_samples(&model, &data, 16).unwrap();
        let evaluation = crate::train::evaluate(&model, &data, 16).unwrap();
        assert_eq!(samples.len(), 37);
        assert!((samples.mean_loss() - evaluation.loss).abs() < 1e-5);
        assert!((samples.accuracy() - evaluation.accuracy).abs() < 1e-12);
        for row in &samples.probabilities {
            assert_eq!(row.len(), 10);
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        }
    }

    /// A model that computes the same for an image and its mirror: global average pooling
    /// of 1x1 convolutions sees no left or right.
    fn flip_invariant_model() -> Model {
        let spec = crate::models::Sequential::new("symmetric", [3, 5, 6])
            .rescaling(1.0 / 255.0)
            .conv2d(4, 1, Activation::Relu)
            .add(crate::models::LayerSpec::GlobalAveragePooling2d(
                Default::default(),
            ))
            .dense(3, Activation::Softmax);
        Model::new(&spec, Device::Cpu, 2).unwrap()
    }

    #[test]
    fn flip_tta_on_a_flip_invariant_model_gives_the_plain_figures() {
        let model = flip_invariant_model();
        tch::manual_seed(9);
        let images = Tensor::randint(256, [21, 3, 5, 6], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(3, [21], (Kind::Int64, Device::Cpu));
        let classes = (0..3).map(|i| i.to_string()).collect();
        let data = Dataset::new(images, labels, classes).unwrap();
        let plain = crate::train::evaluate(&model, &data, 8).unwrap();
        let tta = crate::train::evaluate_with(&model, &data, 8, Tta::HorizontalFlip).unwrap();
        assert_eq!((plain.tta, tta.tta), (Tta::None, Tta::HorizontalFlip));
        assert_eq!((tta.count, tta.accuracy), (plain.count, plain.accuracy));
        assert!(
            (tta.loss - plain.loss).abs() < 1e-6,
            "{tta:?} against {plain:?}"
        );
        let plain = predict_samples(&model, &data, 8).unwrap();
        let tta = predict_samples_with(&model, &data, 8, Tta::HorizontalFlip).unwrap();
        assert_eq!(tta.tta, Tta::HorizontalFlip);
        for (a, b) in plain.probabilities.iter().zip(&tta.probabilities) {
            assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6));
        }
        assert_eq!(plain.accuracy(), tta.accuracy());
    }

    #[test]
    fn flip_tta_sample_figures_agree_with_evaluate_with() {
        let spec = crate::models::Sequential::new("asymmetric", [3, 5, 6])
            .rescaling(1.0 / 255.0)
            .conv2d(4, 3, Activation::Relu)
            .flatten()
            .dense(1, Activation::Sigmoid);
        let model = Model::new(&spec, Device::Cpu, 4).unwrap();
        let images = Tensor::randint(256, [19, 3, 5, 6], (Kind::Uint8, Device::Cpu));
        let labels = Tensor::randint(2, [19], (Kind::Int64, Device::Cpu));
        let data = Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap();
        let samples = predict_samples_with(&model, &data, 8, Tta::HorizontalFlip).unwrap();
        let evaluation =
            crate::train::evaluate_with(&model, &data, 8, Tta::HorizontalFlip).unwrap();
        assert!((samples.mean_loss() - evaluation.loss).abs() < 1e-5);
        assert!((samples.accuracy() - evaluation.accuracy).abs() < 1e-12);
        let plain = crate::train::evaluate(&model, &data, 8).unwrap();
        assert!(
            (plain.loss - evaluation.loss).abs() > 1e-6,
            "the flip changed nothing"
        );
    }
}
