//! convkit
pub use tch;
