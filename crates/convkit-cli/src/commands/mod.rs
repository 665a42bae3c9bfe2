//! One module per subcommand: its arguments and the call into the library.

pub mod augment_args;
pub mod augment_preview;
pub mod evaluate;
pub mod finetune;
pub mod mnist;
pub mod predict;
pub mod summary;
pub mod train;

/// Parses a library settings enum by its name (its `FromStr`), for clap.
pub fn parse_setting<T>(name: &str) -> Result<T, String>
where
    T: std::str::FromStr<Err = convkit::Error>,
{
    name.parse().map_err(|e: convkit::Error| e.to_string())
}
