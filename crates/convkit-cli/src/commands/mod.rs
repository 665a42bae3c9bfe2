//! One module per subcommand: its arguments and the call into the library.

pub mod evaluate;
pub mod mnist;
pub mod summary;
