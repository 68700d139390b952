//! `aekit compress` and `aekit decompress`: images to `.aez` files with a trained codec, and
//! back.

use super::RunArgs;
use aekit::apps::compress::{Codec, Picture};
use aekit::apps::{self};
use aekit::codec::container::Compressed;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `aekit compress`.
#[derive(Args)]
#[command(
    after_help = "Any size is accepted (padded to the codec's multiple and cropped back on decompression).\nA folder is compressed file by file into --out, a folder.\n\nExamples:\n  aekit compress runs/codec digit.png --out digit.aez\n  aekit compress runs/codec photos/ --out compressed/"
)]
pub struct CompressArgs {
    #[command(flatten)]
    run: RunArgs,
    /// An image file, or a folder of them.
    input: PathBuf,
    /// The .aez file (or, for a folder, the folder) to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing outputs.
    #[arg(long)]
    force: bool,
}

/// `aekit decompress`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit decompress runs/codec digit.aez --out digit.png\n  aekit decompress runs/codec compressed/ --out restored/"
)]
pub struct DecompressArgs {
    #[command(flatten)]
    run: RunArgs,
    /// A .aez file, or a folder of them.
    input: PathBuf,
    /// The PNG file (or, for a folder, the folder) to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing outputs.
    #[arg(long)]
    force: bool,
}

/// The (input, output) pairs of a file or a folder of files with one of `extensions`.
fn pairs(
    input: &Path,
    out: &Path,
    extensions: &[&str],
    out_extension: &str,
    force: bool,
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    if input.is_dir() {
        if !out.is_dir() {
            anyhow::bail!(
                "{}: for a folder of inputs, --out must be an existing folder",
                out.display()
            );
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(input)
            .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            anyhow::bail!(
                "{}: no .{} files in the folder",
                input.display(),
                extensions.join("/.")
            );
        }
        let pairs: Vec<(PathBuf, PathBuf)> = files
            .into_iter()
            .map(|f| {
                let name = f.file_stem().unwrap_or_default().to_os_string();
                let target = out.join(name).with_extension(out_extension);
                (f, target)
            })
            .collect();
        for (_, target) in &pairs {
            apps::check_output(target, force)?;
        }
        Ok(pairs)
    } else {
        apps::check_extension(out, &[out_extension])?;
        apps::check_output(out, force)?;
        Ok(vec![(input.to_path_buf(), out.to_path_buf())])
    }
}

/// Runs `aekit compress`.
pub fn compress(args: CompressArgs) -> anyhow::Result<()> {
    let model = args.run.open()?;
    let codec = Codec::open(&model, true)?;
    let pairs = pairs(
        &args.input,
        &args.out,
        &["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"],
        "aez",
        args.force,
    )?;
    let started = Instant::now();
    let (mut pixels, mut bytes) = (0usize, 0usize);
    for (input, output) in &pairs {
        let picture = Picture::load(input)?;
        let file = codec.compress(&picture, input)?.to_bytes()?;
        aekit::run_dir::write_atomic(output, &file)?;
        pixels += picture.width * picture.height;
        bytes += file.len();
        if pairs.len() == 1 {
            println!(
                "{} ({}x{}, {} channel{}) -> {}: {} bytes, {:.3} bits per pixel",
                input.display(),
                picture.width,
                picture.height,
                picture.channels,
                if picture.channels == 1 { "" } else { "s" },
                output.display(),
                file.len(),
                8.0 * file.len() as f64 / (picture.width * picture.height) as f64
            );
        }
    }
    if pairs.len() > 1 {
        println!(
            "compressed {} images into {}: {bytes} bytes, {:.3} bits per pixel, {:.0} images/s",
            pairs.len(),
            args.out.display(),
            8.0 * bytes as f64 / pixels.max(1) as f64,
            pairs.len() as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}

/// Runs `aekit decompress`.
pub fn decompress(args: DecompressArgs) -> anyhow::Result<()> {
    let model = args.run.open()?;
    let codec = Codec::open(&model, false)?;
    let pairs = pairs(&args.input, &args.out, &["aez"], "png", args.force)?;
    let started = Instant::now();
    for (input, output) in &pairs {
        let file = Compressed::load(input)?;
        let picture = codec.decompress(&file, input)?;
        picture.save_png(output)?;
        if pairs.len() == 1 {
            println!(
                "{} -> {} ({}x{})",
                input.display(),
                output.display(),
                picture.width,
                picture.height
            );
        }
    }
    if pairs.len() > 1 {
        println!(
            "decompressed {} files into {} ({:.0} images/s)",
            pairs.len(),
            args.out.display(),
            pairs.len() as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
