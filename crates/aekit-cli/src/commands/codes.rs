//! `aekit encode` and `aekit decode`: codes to files and back.

use super::RunArgs;
use aekit::apps::{self, codes};
use aekit::data::config::Split;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// `aekit encode`.
#[derive(Args)]
#[command(
    after_help = "Writes one code per sample: .npy (float32 [samples, code], read by numpy.load) with a\nsidecar <name>.index.csv of id,label,class,path, or .csv with id,label,class,path,z0,z1,...\n\nExamples:\n  aekit encode runs/mnist-dense --input ../shared/data/mnist --out codes.npy\n  aekit encode runs/mnist-dense --input ../shared/data/mnist --split test --out test-codes.csv\n  aekit encode runs/conv --input my-digits/ --resize --out codes.npy"
)]
pub struct EncodeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The data to encode: a data folder or file, an image, or `shapes`.
    #[arg(long)]
    input: PathBuf,
    /// Which split of a source that has two: `all` (training then test), `train` or `test`.
    #[arg(long, default_value = "all")]
    split: Split,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// The codes file to write (.npy or .csv).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit encode`.
pub fn encode(args: EncodeArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["npy", "csv"])?;
    apps::check_output(&args.out, args.force)?;
    let model = args.run.open()?;
    let data = model.load_split(&args.input, args.split, args.resize)?;
    let bar = super::spinner(&format!("encoding {} samples", data.len()));
    let started = Instant::now();
    let codes = codes::encode_dataset(&model, &data)?;
    let seconds = started.elapsed().as_secs_f64();
    let files = codes::write_codes(&args.out, &codes, args.force)?;
    bar.finish_and_clear();
    println!(
        "encoded {} samples into codes of {} values in {seconds:.2} s ({:.0} samples/s); wrote {}",
        codes.len(),
        codes.width,
        codes.len() as f64 / seconds.max(1e-9),
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    Ok(())
}

/// `aekit decode`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit decode runs/mnist-dense --codes codes.npy --out grid.png          # the first 100 as a grid\n  aekit decode runs/mnist-dense --codes codes.csv --out decoded/          # one PNG per code\n  aekit decode runs/table-ae --codes codes.npy --out rows.csv             # table rows"
)]
pub struct DecodeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// A codes file (.npy or .csv, as `aekit encode` writes).
    #[arg(long)]
    codes: PathBuf,
    /// A .png grid, a folder (one PNG per code), or for table models a .csv file.
    #[arg(long)]
    out: PathBuf,
    /// Codes per row of a grid.
    #[arg(long, default_value_t = 10)]
    columns: usize,
    /// At most this many codes in a grid.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit decode`.
pub fn decode(args: DecodeArgs) -> anyhow::Result<()> {
    let model = args.run.open()?;
    let (rows, values) = codes::read_codes(&args.codes, model.code_len())?;
    let shape = model.sample_shape();
    let extension = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("png") => {
            apps::check_output(&args.out, args.force)?;
            let shown = rows.min(args.limit.max(1));
            let outputs = model.decode(&values[..shown * model.code_len()])?;
            let per_row = args.columns.max(1) * shape.len();
            let grid: Vec<&[f32]> = outputs.chunks(per_row).collect();
            aekit::plots::image_grid(&args.out, shape, &grid, args.columns.max(1))?;
            println!(
                "wrote {} ({shown} of {rows} codes decoded)",
                args.out.display()
            );
        }
        Some("csv") => {
            apps::check_output(&args.out, args.force)?;
            let mut outputs = model.decode(&values)?;
            // Rows go out in the data's own units.
            if let Some(scaler) = model.scaler() {
                scaler.invert(&mut outputs);
            }
            let mut text = (0..shape.len())
                .map(|j| format!("x{j}"))
                .collect::<Vec<_>>()
                .join(",");
            text.push('\n');
            for row in outputs.chunks(shape.len()) {
                text.push_str(
                    &row.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                );
                text.push('\n');
            }
            aekit::run_dir::write_atomic(&args.out, text.as_bytes())?;
            println!("wrote {} ({rows} decoded rows)", args.out.display());
        }
        Some(other) => anyhow::bail!(
            "{}: the output must be a .png grid, a .csv file or a folder, not .{other}",
            args.out.display()
        ),
        None => {
            if !shape.is_image() {
                anyhow::bail!(
                    "{}: this model decodes table rows; write them to a .csv file",
                    args.out.display()
                );
            }
            std::fs::create_dir_all(&args.out)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
            let outputs = model.decode(&values)?;
            let paths: Vec<PathBuf> = (0..rows)
                .map(|i| args.out.join(format!("decoded-{i:05}.png")))
                .collect();
            for path in &paths {
                apps::check_output(path, args.force)?;
            }
            for (path, sample) in paths.iter().zip(outputs.chunks(shape.len())) {
                aekit::plots::save_sample_png(path, shape, sample)?;
            }
            println!("wrote {rows} images into {}", args.out.display());
        }
    }
    Ok(())
}
