//! The chapter's six workflows as run descriptions, with the book's figure for each (and
//! the `--quick` smoke test's small versions of them).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::models::chapter_augmentation;
use crate::models::BackboneArch;
use crate::report::chapter8_page::BookFigure;
use crate::runtime::Precision;
use crate::workflows::presets;
use crate::workflows::run_spec::{Checkpoint, ModelSource, Recipe, RunSpec, Unfreeze};
use crate::workflows::transfer::TransferMode;

/// The workflows' names, in the order they run; each is also its run folder's name.
pub const WORKFLOW_NAMES: [&str; 6] = [
    "mnist",
    "scratch",
    "augmentation",
    "vgg16-features",
    "vgg16-frozen",
    "vgg16-finetune",
];

/// `--quick`: MNIST training images (before the validation split).
pub const QUICK_MNIST_IMAGES: usize = 6000;
/// `--quick`: cats-vs-dogs training images per class.
pub const QUICK_TRAIN_PER_CLASS: usize = 100;
/// `--quick`: cats-vs-dogs validation images per class.
pub const QUICK_VALIDATION_PER_CLASS: usize = 50;
/// `--quick`: image side of the from-scratch runs (the small convnet's last convolution
/// still has a 3x3 input: 90 -> 88 -> 44 -> 42 -> 21 -> 19 -> 9 -> 7 -> 3 -> 1).
pub const QUICK_SCRATCH_SIZE: u32 = 90;
/// `--quick`: image side of the VGG16 runs (features 2x2x512).
pub const QUICK_VGG16_SIZE: u32 = 64;

/// How a workflow's run is described.
#[derive(Clone, Debug)]
pub enum WorkflowRun {
    /// A run of its own.
    Run(Box<RunSpec>),
    /// Fine-tuning of the run in `source`, described once that run is finished.
    Finetune {
        /// The run it continues.
        source: PathBuf,
        /// The fine-tuning run's folder.
        out_dir: PathBuf,
        /// Epochs; `None`: the recipe's.
        epochs: Option<usize>,
        /// The precision; `None` keeps the source run's.
        precision: Option<Precision>,
        /// How it is fitted.
        recipe: Recipe,
    },
}

impl WorkflowRun {
    /// The run description (for fine-tuning, read from the finished source run).
    pub fn spec(&self) -> Result<RunSpec> {
        match self {
            WorkflowRun::Run(spec) => Ok((**spec).clone()),
            WorkflowRun::Finetune {
                source,
                out_dir,
                epochs,
                precision,
                recipe,
            } => {
                let spec = presets::finetune(source, block5(), out_dir.clone())?;
                Ok(finetune_settings(spec, *epochs, *precision, *recipe))
            }
        }
    }
}

/// The chapter's fine-tuning trains VGG16's block5.
fn block5() -> Unfreeze {
    Unfreeze {
        layers: vec!["block5".into()],
        last: None,
    }
}

/// The chapter's settings of a fine-tuning run: `recipe`'s, with `epochs` and `precision`
/// when given.
fn finetune_settings(
    mut spec: RunSpec,
    epochs: Option<usize>,
    precision: Option<Precision>,
    recipe: Recipe,
) -> RunSpec {
    presets::apply_recipe(&mut spec, recipe);
    if let Some(epochs) = epochs {
        spec.fit.epochs = epochs;
    }
    if let Some(precision) = precision {
        spec.fit.precision = Some(precision);
    }
    spec
}

/// One workflow of the chapter.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// Its name, and its run folder's.
    pub name: &'static str,
    /// Its title on the page.
    pub title: &'static str,
    /// What it does, for the page.
    pub description: String,
    /// What the book reports.
    pub book: BookFigure,
    /// Epochs it trains for.
    pub epochs: usize,
    /// Which epoch's model it keeps.
    pub checkpoint: Checkpoint,
    /// Its run.
    pub run: WorkflowRun,
}

impl Workflow {
    /// Its run folder under `out`.
    pub fn run_dir(&self, out: &Path) -> PathBuf {
        out.join(self.name)
    }

    /// Whether it needs VGG16's weights.
    pub fn uses_vgg16(&self) -> bool {
        match &self.run {
            WorkflowRun::Run(spec) => spec.model.base().is_some(),
            WorkflowRun::Finetune { .. } => true,
        }
    }

    /// Whether it is the MNIST workflow (test split, last epoch kept).
    pub fn is_mnist(&self) -> bool {
        self.name == "mnist"
    }
}

/// The book's figure (chapter8.md): `text` on `split`, after `epochs`.
fn book(
    split: &str,
    accuracy: f64,
    accuracy_to: Option<f64>,
    text: &str,
    epochs: usize,
) -> BookFigure {
    BookFigure {
        split: split.into(),
        accuracy,
        accuracy_to,
        text: text.into(),
        epochs,
    }
}

/// What the chapter's workflows are made for: where they write, from which data, in
/// which precision, with which recipe.
#[derive(Clone, Debug)]
pub struct ChapterOptions<'a> {
    /// The folder holding the six run folders.
    pub out_dir: &'a Path,
    /// The smoke test's small versions.
    pub quick: bool,
    /// The folder MNIST is read from (`None`: searched for as `convkit mnist` does).
    pub mnist_dir: Option<PathBuf>,
    /// The cats-vs-dogs folder.
    pub cats: &'a Path,
    /// The precision to train in; `None`: `auto` for new runs (bf16 where the hardware has
    /// bf16 units), the source run's own for fine-tuning (as the commands do).
    pub precision: Option<Precision>,
    /// How every workflow is fitted: the book's settings, or convkit's fast ones.
    pub recipe: Recipe,
}

/// The six workflows with the chapter's settings (or the smoke test's).
pub fn chapter_workflows(options: &ChapterOptions<'_>) -> Vec<Workflow> {
    let out = options.out_dir;
    let q = options.quick;
    let precision = options.precision.unwrap_or(Precision::Auto);
    let mut mnist = presets::mnist(out.join("mnist"));
    if let crate::workflows::run_spec::DataSource::Mnist { dir, limit } = &mut mnist.data.source {
        *dir = options.mnist_dir.clone();
        *limit = q.then_some(QUICK_MNIST_IMAGES);
    }
    mnist.fit.epochs = if q { 1 } else { 5 };
    mnist.fit.precision = Some(precision);
    let train = |name: &str, image_size: u32, epochs: usize| {
        let mut spec = presets::train(options.cats.to_owned(), out.join(name));
        if let Some(decoding) = spec.data.decoding.as_mut() {
            decoding.image_size = image_size;
        }
        spec.fit.epochs = epochs;
        spec.fit.precision = Some(precision);
        spec
    };
    let scratch_size = if q { QUICK_SCRATCH_SIZE } else { 180 };
    let vgg_size = if q { QUICK_VGG16_SIZE } else { 180 };
    let mut scratch = train("scratch", scratch_size, if q { 2 } else { 30 });
    let mut augmentation = train("augmentation", scratch_size, if q { 2 } else { 100 });
    augmentation.model.augmentation = chapter_augmentation();
    augmentation.model.dropout = Some(0.5);
    let vgg16 = |mode: TransferMode| ModelSource::Pretrained {
        base: BackboneArch::Vgg16,
        head: None,
        mode,
        weights: None,
        features_cache: None,
        unfreeze: Unfreeze::default(),
    };
    let mut features = train("vgg16-features", vgg_size, if q { 2 } else { 20 });
    features.model.source = vgg16(TransferMode::Features);
    let mut frozen = train("vgg16-frozen", vgg_size, if q { 2 } else { 50 });
    frozen.model.source = vgg16(TransferMode::Frozen);
    frozen.model.augmentation = chapter_augmentation();
    let fast = options.recipe == Recipe::Fast;
    for spec in [
        &mut mnist,
        &mut scratch,
        &mut augmentation,
        &mut features,
        &mut frozen,
    ] {
        let epochs = spec.fit.epochs;
        presets::apply_recipe(spec, options.recipe);
        if q {
            spec.fit.epochs = epochs;
        }
    }
    let finetune_epochs = match (q, fast) {
        (true, _) => Some(1),
        (false, false) => Some(30),
        (false, true) => None,
    };
    // What fine-tuning will be once vgg16-frozen is done (its description needs that run).
    let finetune_preview = finetune_settings(
        presets::finetune_of(
            frozen.clone(),
            out.join("vgg16-frozen").join("best.safetensors"),
            block5(),
            out.join("vgg16-finetune"),
        ),
        finetune_epochs,
        options.precision,
        options.recipe,
    );
    let side = |spec: &RunSpec| spec.data.decoding().image_size;
    vec![
        Workflow {
            name: "mnist",
            title: "MNIST convnet",
            description: format!(
                "Conv2D 32/64/128 with max pooling, Flatten, Dense 10 softmax; {}, \
                 batches of {}, epochs: {}{}; measured on the 10,000 test images (the \
                 previous chapter's dense network: 97.8%).",
                fitting(&mnist),
                mnist.fit.batch_size,
                mnist.fit.epochs,
                if q {
                    format!(" on the first {QUICK_MNIST_IMAGES} training images")
                } else {
                    String::new()
                }
            ),
            book: book("test", 0.991, None, "99.1% test", 5),
            epochs: mnist.fit.epochs,
            checkpoint: mnist.output.checkpoint,
            run: WorkflowRun::Run(Box::new(mnist)),
        },
        Workflow {
            name: "scratch",
            title: "Cats vs dogs from scratch",
            description: format!(
                "The small convnet (five 3x3 convolutions, max pooling, Dense 1 sigmoid) on \
                 {s}x{s} images, {}, {}{}.",
                fitting(&scratch),
                epochs_phrase(scratch.fit.epochs),
                // Which epoch is kept, and why, the page says beside every row; the book's
                // choice here has a reason of its own.
                if scratch.output.checkpoint == Checkpoint::Last {
                    ""
                } else {
                    "; the epoch with the lowest validation loss is kept (the book's \
                     overfits within about 10 epochs)"
                },
                s = side(&scratch)
            ),
            book: book(
                "validation",
                0.70,
                None,
                "about 70% validation, 69.5% test",
                30,
            ),
            epochs: scratch.fit.epochs,
            checkpoint: scratch.output.checkpoint,
            run: WorkflowRun::Run(Box::new(scratch)),
        },
        Workflow {
            name: "augmentation",
            title: "Cats vs dogs with augmentation and dropout",
            description: format!(
                "The same convnet with RandomFlip(horizontal), RandomRotation(0.1), \
                 RandomZoom(0.2) in front and Dropout(0.5) before the classifier, on \
                 {s}x{s} images, {}, {}.",
                fitting(&augmentation),
                epochs_phrase(augmentation.fit.epochs),
                s = side(&augmentation)
            ),
            book: book(
                "test",
                0.835,
                None,
                "about 83.5% test (3rd ed.: 83.9%)",
                100,
            ),
            epochs: augmentation.fit.epochs,
            checkpoint: augmentation.output.checkpoint,
            run: WorkflowRun::Run(Box::new(augmentation)),
        },
        Workflow {
            name: "vgg16-features",
            title: "VGG16 feature extraction",
            description: format!(
                "The ImageNet VGG16 base runs once per {s}x{s} image (features cached), and \
                 Flatten, Dense 256, Dropout 0.5, Dense 1 trains on the features for {} \
                 ({}).",
                epochs_phrase(features.fit.epochs),
                fitting(&features),
                s = side(&features)
            ),
            book: book("validation", 0.97, None, "about 97% validation", 20),
            epochs: features.fit.epochs,
            checkpoint: features.output.checkpoint,
            run: WorkflowRun::Run(Box::new(features)),
        },
        Workflow {
            name: "vgg16-frozen",
            title: "VGG16 frozen base with augmentation, end to end",
            description: format!(
                "Augmentation, VGG16's preprocessing, the frozen base (0 trainable tensors) \
                 and the same head, trained end to end on {s}x{s} images for {} ({}).",
                epochs_phrase(frozen.fit.epochs),
                fitting(&frozen),
                s = side(&frozen)
            ),
            book: book(
                "validation and test",
                0.975,
                Some(0.98),
                "about 97.5-98%",
                50,
            ),
            epochs: frozen.fit.epochs,
            checkpoint: frozen.output.checkpoint,
            run: WorkflowRun::Run(Box::new(frozen)),
        },
        Workflow {
            name: "vgg16-finetune",
            title: "VGG16 fine-tuning of block5",
            description: if fast {
                format!(
                    "vgg16-frozen's best model with block5_conv1..3 unfrozen, {}, {}, \
                     with its augmentation.",
                    fitting(&finetune_preview),
                    epochs_phrase(finetune_preview.fit.epochs)
                )
            } else {
                format!(
                    "vgg16-frozen's best model with block5_conv1..3 unfrozen, RMSprop at \
                     learning rate 1e-5, {}, with its augmentation.",
                    epochs_phrase(finetune_preview.fit.epochs)
                )
            },
            book: book("test", 0.985, None, "about 98.5% test", 30),
            epochs: finetune_preview.fit.epochs,
            checkpoint: finetune_preview.output.checkpoint,
            run: WorkflowRun::Finetune {
                source: out.join("vgg16-frozen"),
                out_dir: out.join("vgg16-finetune"),
                epochs: finetune_epochs,
                precision: options.precision,
                recipe: options.recipe,
            },
        },
    ]
}

/// "1 epoch", "30 epochs".
fn epochs_phrase(epochs: usize) -> String {
    match epochs {
        1 => "1 epoch".into(),
        n => format!("{n} epochs"),
    }
}

/// How a run is fitted, in words: `RMSprop` for the book's recipe; the fast recipe's
/// optimizer, schedule and regularizers.
fn fitting(spec: &RunSpec) -> String {
    let fit = &spec.fit;
    if spec.recipe == Recipe::Book {
        return "RMSprop".into();
    }
    let mut parts = vec![format!(
        "{} at {:e} (weight decay {})",
        match fit.optimizer.name() {
            "adamw" => "AdamW",
            "adam" => "Adam",
            "sgd" => "SGD",
            _ => "RMSprop",
        },
        fit.optimizer.learning_rate(),
        fit.optimizer.weight_decay().rate
    )];
    parts.push(format!(
        "{} schedule",
        fit.schedule.name().replace('_', "-")
    ));
    if fit.label_smoothing > 0.0 {
        parts.push(format!("label smoothing {}", fit.label_smoothing));
    }
    if let Some(ema) = fit.ema {
        parts.push(format!("weight average {}", ema.decay));
    }
    if let Some(mixup) = fit.mixup {
        parts.push(format!("mixup {}", mixup.alpha));
    }
    if let Some(resizing) = fit.progressive_resizing {
        parts.push(format!(
            "progressive resizing from {} pixels",
            resizing.start_size
        ));
    }
    parts.join(", ")
}

/// Notes shown under the page's header: what the figures are, and what they are not.
pub fn notes(quick: bool, quick_cats: &Path, recipe: Recipe, flip_tta: bool) -> Vec<String> {
    let mut notes = vec![
        "convkit's figure for MNIST is on its 10,000 test images. For cats vs dogs it is on \
         the data's test split when it has one, else on its validation split: the data \
         shipped with convkit has none (2,000 training and 1,000 validation images), so \
         the cats-vs-dogs figures here are validation accuracy of the kept checkpoint, \
         beside the book's test figures where the book gives only those."
            .to_owned(),
        "Wall time counts loading, training and evaluation over the invocations that worked \
         on the workflow; training images per second counts training steps only (for \
         vgg16-features: the head trained on the cached features)."
            .to_owned(),
    ];
    if recipe == Recipe::Fast {
        notes.push(
            "Fitted with convkit's fast recipe (--recipe fast): the chapter's models, \
             augmentation and dropout, trained with AdamW, a one-cycle learning-rate schedule, \
             label smoothing and (from scratch) a moving average of the weights, for far fewer \
             epochs than the book; each workflow's settings say which. The book's figure \
             beside each result is for the book's recipe and epochs."
                .to_owned(),
        );
    }
    if flip_tta {
        notes.push(
            "With flip TTA (--tta): each cats-vs-dogs workflow's kept model is measured a \
             second time on the same images, each image and its mirror image classified and \
             their class probabilities averaged (test-time augmentation). The first figure is \
             the plain one; MNIST is not measured so, since a mirror changes digits."
                .to_owned(),
        );
    }
    if quick {
        notes.push(format!(
            "Quick run: MNIST for 1 epoch on its first {QUICK_MNIST_IMAGES} training images; \
             cats vs dogs on {QUICK_TRAIN_PER_CLASS} training and {QUICK_VALIDATION_PER_CLASS} \
             validation images per class (links in {}), {QUICK_SCRATCH_SIZE}x\
             {QUICK_SCRATCH_SIZE} images from scratch and {QUICK_VGG16_SIZE}x\
             {QUICK_VGG16_SIZE} through VGG16, 1-2 epochs each. It checks that the whole \
             path works; its accuracies say nothing about the chapter.",
            quick_cats.display()
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::run_spec::DataSource;

    fn options(quick: bool) -> ChapterOptions<'static> {
        ChapterOptions {
            out_dir: Path::new(if quick {
                "runs/chapter8-quick"
            } else {
                "runs/chapter8"
            }),
            quick,
            mnist_dir: None,
            cats: Path::new("cats"),
            precision: None,
            recipe: Recipe::Book,
        }
    }

    #[test]
    fn the_recipes_are_the_chapters_and_the_quick_ones_are_small() {
        let full = chapter_workflows(&options(false));
        let names: Vec<&str> = full.iter().map(|s| s.name).collect();
        assert_eq!(names, WORKFLOW_NAMES);
        let epochs: Vec<usize> = full.iter().map(|s| s.epochs).collect();
        assert_eq!(epochs, [5, 30, 100, 20, 50, 30]);
        let WorkflowRun::Run(aug) = &full[2].run else {
            panic!("augmentation trains")
        };
        assert_eq!(aug.model.augmentation, chapter_augmentation());
        assert_eq!(
            (aug.model.dropout, aug.data.decoding().image_size),
            (Some(0.5), 180)
        );
        let WorkflowRun::Run(features) = &full[3].run else {
            panic!("features train")
        };
        assert!(features.model.uses_cached_features());
        let WorkflowRun::Finetune { source, .. } = &full[5].run else {
            panic!("the last one fine-tunes")
        };
        assert_eq!(source, &PathBuf::from("runs/chapter8/vgg16-frozen"));
        let quick = chapter_workflows(&options(true));
        assert!(quick.iter().all(|s| s.epochs <= 2));
        let WorkflowRun::Run(mnist) = &quick[0].run else {
            panic!("MNIST first")
        };
        assert_eq!(
            mnist.data.source,
            DataSource::Mnist {
                dir: None,
                limit: Some(QUICK_MNIST_IMAGES)
            }
        );
        assert_eq!(mnist.output.dir, PathBuf::from("runs/chapter8-quick/mnist"));
    }

    #[test]
    fn the_quick_image_sizes_fit_the_small_convnet() {
        use crate::models::ScratchModel;
        let spec = ScratchModel::SmallConvnet.build(&crate::models::ScratchOptions {
            image_size: QUICK_SCRATCH_SIZE as i64,
            classes: 2,
            dropout: Some(0.5),
            augmentation: chapter_augmentation(),
        });
        assert_eq!(spec.output_shape().unwrap(), [1]);
    }
}
