//! `aekit denoise`: a model's cleaned-up versions of noisy images, written as files.

use super::RunArgs;
use aekit::apps::denoise;
use clap::Args;
use std::path::PathBuf;

/// `aekit denoise`.
#[derive(Args)]
#[command(
    after_help = "Writes one PNG per input image into --out, named after the input file.\n\nExamples:\n  aekit denoise runs/denoising --input noisy-scans/ --out clean/\n  aekit denoise runs/conv-denoising --input photo.png --resize --out clean/"
)]
pub struct DenoiseArgs {
    #[command(flatten)]
    run: RunArgs,
    /// An image or a folder of images (or a data set).
    #[arg(long)]
    input: PathBuf,
    /// The folder to write into (made if missing).
    #[arg(long)]
    out: PathBuf,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// Replace existing files in --out.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit denoise`.
pub fn run(args: DenoiseArgs) -> anyhow::Result<()> {
    if args.out.is_file() {
        anyhow::bail!(
            "{}: --out must be a folder, and this is a file",
            args.out.display()
        );
    }
    let model = args.run.open()?;
    let data = model.load_data(&args.input, args.resize)?;
    let written = denoise::denoise_to_folder(&model, &data, &args.out, args.force)?;
    println!(
        "wrote {} denoised images into {}",
        written.len(),
        args.out.display()
    );
    Ok(())
}
