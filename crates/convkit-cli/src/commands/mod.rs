//! One module per subcommand: its arguments and the call into the library.

pub mod augment_args;
pub mod augment_preview;
pub mod evaluate;
pub mod finetune;
pub mod mnist;
pub mod predict;
pub mod summary;
pub mod train;
