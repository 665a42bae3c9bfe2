//! `convkit augment-preview`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use convkit::data::image_folder::{load_image, ImageFolder, ImageOptions, SplitFolders};
use convkit::report::augmentation_grid;

use super::augment_args::AugmentArgs;

/// Draw one image augmented nine times as a 3x3 grid (the chapter's figure 8.10).
///
/// Without augmentation flags, the chapter's: horizontal flip, rotation 0.1, zoom 0.2.
///
/// Examples:
///   convkit augment-preview --data cats_vs_dogs --out grid.png
///   convkit augment-preview --data dog.jpg --rotation 0.25 --fill-mode constant
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AugmentPreviewArgs {
    /// An image, or a folder of class sub-folders (its first training image is used).
    #[arg(long, value_name = "PATH")]
    data: PathBuf,

    /// Which image of the folder (0 = the first).
    #[arg(long, default_value_t = 0, value_name = "N")]
    index: usize,

    /// Images are resized to SIZE x SIZE first.
    #[arg(long, default_value_t = 180, value_name = "SIZE")]
    image_size: u32,

    #[command(flatten)]
    augment: AugmentArgs,

    /// Seed of the random draws.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// The PNG to write.
    #[arg(long, default_value = "augmented.png", value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: AugmentPreviewArgs) -> anyhow::Result<()> {
    let image = if args.data.is_dir() {
        let folder = ImageFolder::scan(&SplitFolders::detect(&args.data).train)?;
        folder
            .files
            .get(args.index)
            .map(|(path, _)| path.clone())
            .with_context(|| {
                format!(
                    "{} holds only {} images",
                    args.data.display(),
                    folder.files.len()
                )
            })?
    } else {
        args.data.clone()
    };
    let options = ImageOptions {
        size: (args.image_size, args.image_size),
        ..ImageOptions::default()
    };
    let pixels = load_image(&image, &options)?;
    let mut layers = args.augment.layers()?;
    if layers.is_empty() {
        layers = convkit::models::chapter_augmentation();
    }
    augmentation_grid(
        &pixels,
        args.image_size,
        args.image_size,
        &layers,
        args.seed,
        &args.out,
    )?;
    println!(
        "{} augmented 9 times: {}",
        image.display(),
        args.out.display()
    );
    Ok(())
}
