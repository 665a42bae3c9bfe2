//! The flags that say how a model is fitted, shared by `mnist`, `train` and `finetune`.

use clap::Args;
use convkit::train::{Ema, Mixup, Optimizer, ProgressiveResizing, Schedule, OPTIMIZER_NAMES};
use convkit::workflows::presets::apply_recipe;
use convkit::workflows::run_spec::{Checkpoint, Recipe, RunSpec};

/// How the model is fitted: a recipe, and flags that override it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Fitting (a recipe, and flags that override it)")]
pub struct FitArgs {
    /// book: the chapter's settings (RMSprop at a constant rate for the chapter's epochs).
    /// fast: convkit's settings that reach the chapter's accuracy in a fraction of the
    /// epochs: AdamW with weight decay, a one-cycle schedule, label smoothing and (from
    /// scratch) a moving average of the weights, with epochs and rates measured for each
    /// of the chapter's rows (BENCHMARKS.md); the mini-xception adds mixup 0.2 and
    /// progressive resizing from 5/8 of --image-size (80 at 128). The model, augmentation
    /// and dropout flags are never changed by a recipe; the flags below override it.
    #[arg(long, default_value_t = Recipe::Book, value_parser = super::parse_setting::<Recipe>)]
    pub recipe: Recipe,

    /// Passes over the training images (default: the recipe's).
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,

    /// rmsprop (Keras' form), adam, adamw (decoupled weight decay, default 0.01) or sgd
    /// (Nesterov momentum 0.9, learning rate 0.01). Default: the recipe's.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(OPTIMIZER_NAMES))]
    pub optimizer: Option<String>,

    /// The learning rate (the peak of a schedule); --lr works too. Default: the recipe's,
    /// or the optimizer's own when --optimizer changes it. `convkit lr-find` suggests one.
    #[arg(long, visible_alias = "lr", value_name = "LR")]
    pub learning_rate: Option<f64>,

    /// Weight decay of kernels and dense weights (not of biases or batch norm): added to the
    /// gradient for rmsprop, adam and sgd, decoupled for adamw.
    #[arg(long, value_name = "RATE")]
    pub weight_decay: Option<f64>,

    /// How the learning rate moves over the run, step by step: constant; warmup-cosine (a
    /// linear rise over --warmup-epochs, then a half cosine to 0); one-cycle (fastai's:
    /// a cosine rise over the first quarter of the steps from a 25th of the rate, then a
    /// cosine fall to almost 0). Drawn in curves.png.
    #[arg(long, value_name = "NAME", value_parser = ["constant", "warmup-cosine", "one-cycle"])]
    pub schedule: Option<String>,

    /// Epochs of warmup of the warmup-cosine schedule.
    #[arg(
        long,
        value_name = "EPOCHS",
        default_value_t = 1.0,
        requires = "schedule"
    )]
    pub warmup_epochs: f64,

    /// Label smoothing of the training loss (0.1: targets 0.95/0.05 for two classes);
    /// validation losses stay plain.
    #[arg(long, value_name = "AMOUNT")]
    pub label_smoothing: Option<f64>,

    /// Keep a moving average of the weights with this decay (0.999: over about the last
    /// 1,000 steps); it is validated, checkpointed, evaluated and exported in place of the
    /// raw weights. 0 turns it off.
    #[arg(long, value_name = "DECAY")]
    pub ema: Option<f64>,

    /// Mixup: train on blends of two images, lambda * a + (1 - lambda) * b, with the loss
    /// blended the same way, lambda drawn per batch from Beta(ALPHA, ALPHA) (0.2: light
    /// blends, 1: any). A regularizer for small datasets that overfit. The training loss
    /// and accuracy it reports are those of the blends, below what the model scores on
    /// whole images. 0 turns it off.
    #[arg(long, value_name = "ALPHA")]
    pub mixup: Option<f64>,

    /// Progressive resizing: the first epochs train on smaller images, SIZE pixels high in
    /// epoch 1, growing linearly to the full --image-size over the first --resizing-ramp
    /// of the epochs, then at full size; validation is always at full size. Cheaper early
    /// epochs, for a model that takes any image size (mini-xception, --base mobilenet_v2
    /// or efficientnet_lite0; not the chapter's Flatten convnets). 0 turns it off.
    #[arg(long, value_name = "SIZE")]
    pub progressive_resizing: Option<i64>,

    /// Fraction of the epochs over which progressive resizing (--progressive-resizing, or
    /// the mini-xception's fast recipe) grows the images [default: 0.5].
    #[arg(long, value_name = "FRACTION")]
    pub resizing_ramp: Option<f64>,

    /// Which epoch's model the run keeps, evaluates and predicts with: lowest-val-loss
    /// (best.safetensors, the chapter's ModelCheckpoint; the book recipe's) or last
    /// (model.safetensors; the fast recipe's, whose schedule ends at a rate near 0, and
    /// MNIST's). Feature extraction (--mode features) always keeps its lowest validation loss.
    #[arg(long, value_name = "EPOCH", value_parser = ["lowest-val-loss", "last"])]
    pub keep: Option<String>,
}

/// Argument id -> setting path, for the fitting flags.
pub const FIT_SETTING_PATHS: &[(&str, &str)] = &[
    ("recipe", "recipe"),
    ("epochs", "fit.epochs"),
    ("optimizer", "fit.optimizer"),
    ("learning_rate", "fit.optimizer"),
    ("weight_decay", "fit.optimizer"),
    ("schedule", "fit.schedule"),
    ("warmup_epochs", "fit.schedule"),
    ("label_smoothing", "fit.label_smoothing"),
    ("ema", "fit.ema"),
    ("mixup", "fit.mixup"),
    ("progressive_resizing", "fit.progressive_resizing"),
    ("resizing_ramp", "fit.progressive_resizing"),
    ("keep", "output.checkpoint"),
];

impl FitArgs {
    /// Applies the recipe to `spec` (already holding its model and augmentation), then the
    /// flags given.
    pub fn apply(&self, spec: &mut RunSpec) -> anyhow::Result<()> {
        apply_recipe(spec, self.recipe);
        let fit = &mut spec.fit;
        if let Some(epochs) = self.epochs {
            fit.epochs = epochs;
        }
        if let Some(name) = &self.optimizer {
            if name != fit.optimizer.name() {
                fit.optimizer = Optimizer::from_name(name)?;
            }
        }
        if let Some(rate) = self.learning_rate {
            fit.optimizer = fit.optimizer.with_learning_rate(rate);
        }
        if let Some(rate) = self.weight_decay {
            fit.optimizer = fit.optimizer.with_weight_decay(rate);
        }
        if let Some(name) = &self.schedule {
            fit.schedule = match name.as_str() {
                "constant" => Schedule::Constant,
                "warmup-cosine" => Schedule::warmup_cosine(self.warmup_epochs),
                _ => Schedule::one_cycle(),
            };
        }
        if let Some(amount) = self.label_smoothing {
            fit.label_smoothing = amount;
        }
        if let Some(decay) = self.ema {
            fit.ema = (decay != 0.0).then_some(Ema { decay });
        }
        if let Some(alpha) = self.mixup {
            fit.mixup = (alpha != 0.0).then_some(Mixup { alpha });
        }
        if let Some(start_size) = self.progressive_resizing {
            fit.progressive_resizing =
                (start_size != 0).then_some(ProgressiveResizing::from(start_size));
        }
        if let Some(ramp) = self.resizing_ramp {
            match &mut fit.progressive_resizing {
                Some(resizing) => resizing.ramp = ramp,
                None => anyhow::bail!(
                    "--resizing-ramp needs progressive resizing: give --progressive-resizing SIZE \
                     (of the recipes, only the mini-xception's fast one resizes)"
                ),
            }
        }
        fit.check()?;
        if let Some(keep) = &self.keep {
            spec.output.checkpoint = match keep.as_str() {
                "last" => Checkpoint::Last,
                _ => Checkpoint::LowestValidationLoss,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use convkit::models::ScratchModel;
    use convkit::workflows::presets;
    use convkit::workflows::run_spec::ModelSource;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        fit: FitArgs,
    }

    /// The fitting settings `flags` give a mini-Xception (or the chapter's convnet) at
    /// 128x128 with the chapter's augmentation.
    fn fitted(mini_xception: bool, flags: &[&str]) -> anyhow::Result<RunSpec> {
        let mut spec = presets::train("data".into(), "runs/t".into());
        if mini_xception {
            spec.model.source = ModelSource::Scratch {
                architecture: ScratchModel::MiniXception,
            };
        }
        spec.model.augmentation = convkit::models::chapter_augmentation();
        let mut decoding = spec.data.decoding();
        decoding.image_size = 128;
        spec.data.decoding = Some(decoding);
        let args = Flags::try_parse_from(std::iter::once("train").chain(flags.iter().copied()))?;
        args.fit.apply(&mut spec)?;
        Ok(spec)
    }

    /// The ramp changes the recipe's resizing or the one given, is refused where nothing
    /// resizes, and 0 turns the recipe's mixup and resizing off.
    #[test]
    fn flags_override_the_recipes_mixup_and_resizing() {
        let resizing = |spec: RunSpec| {
            spec.fit
                .progressive_resizing
                .map(|r| (r.start_size, r.ramp))
        };
        let fast = fitted(true, &["--recipe", "fast"]).unwrap();
        assert_eq!(fast.fit.mixup, Some(Mixup { alpha: 0.2 }));
        assert_eq!(resizing(fast), Some((80, 0.5)));
        let ramp = fitted(true, &["--recipe", "fast", "--resizing-ramp", "0.25"]).unwrap();
        assert_eq!(resizing(ramp), Some((80, 0.25)));
        let start = fitted(true, &["--recipe", "fast", "--progressive-resizing", "64"]).unwrap();
        assert_eq!(resizing(start), Some((64, 0.5)));
        let off = fitted(
            true,
            &[
                "--recipe",
                "fast",
                "--mixup",
                "0",
                "--progressive-resizing",
                "0",
            ],
        )
        .unwrap();
        assert!(off.fit.mixup.is_none() && off.fit.progressive_resizing.is_none());
        let err = fitted(false, &["--recipe", "fast", "--resizing-ramp", "0.3"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--resizing-ramp needs progressive resizing"),
            "{err}"
        );
        let given = fitted(
            false,
            &["--progressive-resizing", "96", "--resizing-ramp", "0.3"],
        );
        assert_eq!(resizing(given.unwrap()), Some((96, 0.3)));
    }
}
