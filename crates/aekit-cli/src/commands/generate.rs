//! `aekit sample`, `aekit interpolate` and `aekit manifold`: new samples from a trained model.

use super::RunArgs;
use aekit::apps::generate::{CodeSource, Plane};
use aekit::apps::{self, generate};
use aekit::trained::TrainedModel;
use clap::Args;
use std::path::{Path, PathBuf};

/// The code distribution of a model: a VAE's prior, else a Gaussian fitted to the codes of
/// its training split.
fn distribution(model: &TrainedModel) -> anyhow::Result<(CodeSource, generate::CodeGaussian)> {
    if model.is_variational() {
        return Ok(generate::code_distribution(model, None)?);
    }
    let train = aekit::data::load_splits(&model.config().data)?.train;
    Ok(generate::code_distribution(model, Some(&train))?)
}

/// `aekit sample`.
#[derive(Args)]
#[command(
    after_help = "A VAE's codes come from its prior N(0, I); other models have no prior, so codes come from\na Gaussian fitted to their training codes (the command says which).\n\nExamples:\n  aekit sample runs/vae-2d --n 64 --seed 1 --out samples.png\n  aekit sample runs/mnist-dense --n 32 --out samples.png"
)]
pub struct SampleArgs {
    #[command(flatten)]
    run: RunArgs,
    /// How many samples.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Samples per row of the grid.
    #[arg(long, default_value_t = 8)]
    columns: usize,
    /// Seed of the codes drawn.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The PNG grid to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

fn check_images(model: &TrainedModel, what: &str) -> anyhow::Result<()> {
    if !model.sample_shape().is_image() {
        anyhow::bail!(
            "{what} draws images, but this model's samples are table rows ({}); use `aekit \
             decode` to write decoded rows to a CSV file",
            model.sample_shape()
        );
    }
    Ok(())
}

fn write_grid(
    model: &TrainedModel,
    values: &[f32],
    columns: usize,
    out: &Path,
) -> anyhow::Result<()> {
    let shape = model.sample_shape();
    let rows: Vec<&[f32]> = values.chunks(columns.max(1) * shape.len()).collect();
    aekit::plots::image_grid(out, shape, &rows, columns.max(1))?;
    Ok(())
}

/// Runs `aekit sample`.
pub fn sample(args: SampleArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["png"])?;
    apps::check_output(&args.out, args.force)?;
    let model = args.run.open()?;
    check_images(&model, "`sample`")?;
    if args.n == 0 {
        anyhow::bail!("--n must be at least 1");
    }
    let (source, gaussian) = distribution(&model)?;
    let images = generate::sample(&model, &gaussian, args.n, args.seed)?;
    write_grid(&model, &images, args.columns, &args.out)?;
    println!(
        "wrote {} ({} samples decoded from codes drawn from {source})",
        args.out.display(),
        args.n
    );
    Ok(())
}

/// `aekit interpolate`.
#[derive(Args)]
#[command(
    after_help = "A and B are image files, or indices of samples of --data (default: the run's validation split).\n\nExamples:\n  aekit interpolate runs/vae-2d --from 0 --to 1 --steps 10 --out strip.png\n  aekit interpolate runs/vae --from 3 --to 8 --spherical --out strip.png\n  aekit interpolate runs/mnist-dense --from a.png --to b.png --resize --out strip.png"
)]
pub struct InterpolateArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The first end: an image file or a sample index.
    #[arg(long)]
    from: String,
    /// The other end: an image file or a sample index.
    #[arg(long)]
    to: String,
    /// Where sample indices point (default: the run's validation split).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Outputs along the way, both ends included.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Walk a great circle instead of a straight line (for a VAE's Gaussian codes).
    #[arg(long)]
    spherical: bool,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// The PNG strip to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

/// One end of an interpolation: an image file, or an index into the data.
fn end_point(model: &TrainedModel, args: &InterpolateArgs, end: &str) -> anyhow::Result<Vec<f32>> {
    if let Ok(index) = end.parse::<usize>() {
        let data = match &args.data {
            Some(path) => model.load_data(path, args.resize)?,
            None => model.validation_data()?,
        };
        if index >= data.len() {
            anyhow::bail!(
                "sample index {index} is past the end of {} ({} samples)",
                data.name,
                data.len()
            );
        }
        return Ok(data.sample(index).to_vec());
    }
    let path = Path::new(end);
    if !path.is_file() {
        anyhow::bail!("{end}: neither a sample index nor an image file");
    }
    Ok(model.load_data(path, args.resize)?.sample(0).to_vec())
}

/// Runs `aekit interpolate`.
pub fn interpolate(args: InterpolateArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["png"])?;
    apps::check_output(&args.out, args.force)?;
    let model = args.run.open()?;
    check_images(&model, "`interpolate`")?;
    let a = end_point(&model, &args, &args.from)?;
    let b = end_point(&model, &args, &args.to)?;
    let path = if args.spherical {
        generate::Path::Spherical
    } else {
        generate::Path::Linear
    };
    let images = generate::interpolate(&model, &a, &b, args.steps, path)?;
    write_grid(&model, &images, args.steps, &args.out)?;
    println!(
        "wrote {} ({} steps, {} in the code space)",
        args.out.display(),
        args.steps,
        if args.spherical {
            "spherical"
        } else {
            "linear"
        }
    );
    Ok(())
}

/// `aekit manifold`.
#[derive(Args)]
#[command(
    after_help = "Codes on a grid x grid lattice at the normal quantiles of linspace(0.05, 0.95), decoded. A 2-D\ncode spans the grid itself; larger codes span two chosen dimensions (--dims) or the plane of\nthe validation codes' two principal components (the default).\n\nExamples:\n  aekit manifold runs/vae-2d --grid 20 --out manifold.png\n  aekit manifold runs/vae --dims 0,1 --out manifold.png\n  aekit manifold runs/conv-vae --out manifold.png          # the codes' principal plane"
)]
pub struct ManifoldArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Outputs per side.
    #[arg(long, default_value_t = 20)]
    grid: usize,
    /// Two code dimensions to span (e.g. `0,1`); the others stay at the distribution's mean.
    #[arg(long, value_delimiter = ',')]
    dims: Option<Vec<usize>>,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit manifold`.
pub fn manifold(args: ManifoldArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["png"])?;
    apps::check_output(&args.out, args.force)?;
    let model = args.run.open()?;
    check_images(&model, "`manifold`")?;
    let (source, gaussian) = distribution(&model)?;
    let (plane, codes) = match (&args.dims, model.code_len()) {
        (Some(dims), _) => match dims[..] {
            [i, j] => (Plane::Dimensions(i, j), None),
            _ => anyhow::bail!("--dims takes two code dimensions, e.g. `--dims 0,1`"),
        },
        (None, 2) => (Plane::Dimensions(0, 1), None),
        (None, _) => {
            let data = model.validation_data()?.take(10_000);
            (
                Plane::PrincipalComponents,
                Some(model.encode(&data.values)?),
            )
        }
    };
    let images = generate::manifold(&model, &gaussian, &plane, args.grid, codes.as_deref())?;
    write_grid(&model, &images, args.grid, &args.out)?;
    let plane_name = match plane {
        Plane::Dimensions(i, j) => format!("code dimensions {i} and {j}"),
        Plane::PrincipalComponents => "the validation codes' first two principal components".into(),
    };
    println!(
        "wrote {} ({g}x{g} decoded codes spanning {plane_name}, in standard deviations of {source})",
        args.out.display(),
        g = args.grid
    );
    Ok(())
}
