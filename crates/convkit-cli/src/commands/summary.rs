//! `convkit summary MODEL`.

use clap::Args;
use convkit::models::Summary;

/// Print a model's layers, output shapes and parameter counts (Keras' summary).
///
/// Example: `convkit summary mnist` shows the chapter's MNIST convnet, 104,202 parameters.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SummaryArgs {
    /// The model: mnist.
    #[arg(value_name = "MODEL")]
    model: String,
}

pub fn run(args: SummaryArgs) -> anyhow::Result<()> {
    let spec = convkit::models::by_name(&args.model)?;
    println!("{}", Summary::of(&spec)?);
    Ok(())
}
