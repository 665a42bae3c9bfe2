//! What each command of the `convkit` binary runs, one function per command, so that the
//! binary only parses arguments.

pub mod evaluate;
pub mod mnist;
pub mod run_dir;

pub use evaluate::evaluate_run;
pub use mnist::{run_mnist, MnistJob, MnistReport};
pub use run_dir::RunDir;
