//! `convkit chapter8`: the chapter's six workflows in order, each in its own run folder,
//! then one page (`chapter8.html`) and one JSON file (`chapter8.json`) that set convkit's
//! figures beside the book's. The [`recipes`] are run descriptions made by the same
//! presets as `convkit mnist`, `train` and `finetune`; the [`runner`] keeps finished runs,
//! continues interrupted ones, and rewrites the page (its model is
//! [`crate::report::chapter8_page`]) after every workflow.

pub mod quick_subset;
pub mod recipes;
pub mod runner;

pub use recipes::{
    QUICK_MNIST_IMAGES, QUICK_SCRATCH_SIZE, QUICK_TRAIN_PER_CLASS, QUICK_VALIDATION_PER_CLASS,
    QUICK_VGG16_SIZE, WORKFLOW_NAMES,
};
pub use runner::{run_chapter8, Action, Chapter8Event, Chapter8Job, Chapter8Report};
