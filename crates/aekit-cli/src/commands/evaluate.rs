//! `aekit eval`, `aekit reconstruct` and `aekit pca`: how well a run (or the PCA baseline)
//! reconstructs data.

use super::{Compute, RunArgs};
use aekit::eval::{EvalOptions, evaluate_trained};
use aekit::models::corruption::CorruptionConfig;
use aekit::reconstruct::{ReconstructOptions, reconstruct};
use clap::Args;
use std::path::PathBuf;

/// `aekit eval`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit eval runs/mnist-dense                                # its validation split\n  aekit eval runs/mnist-dense --data ../shared/data/mnist    # that data's test split\n  aekit eval runs/denoising --noise gaussian:0.5 --seed 1    # PSNR/SSIM of noisy vs denoised\n  aekit eval runs/vae --iw-samples 1000 --iw-limit 1000     # importance-weighted NLL"
)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Evaluate on these samples (a data folder or file; its test split if it has one)
    /// instead of the run's validation split.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// For VAEs: also estimate -log p(x) by importance sampling with this many samples.
    #[arg(long, value_name = "K")]
    iw_samples: Option<usize>,
    /// Data samples the importance-weighted estimate uses (it costs K decoder passes each).
    #[arg(long, default_value_t = 10000, requires = "iw_samples")]
    iw_limit: usize,
    /// Corrupt the samples (gaussian:SIGMA, masking:P or salt-and-pepper:P) and report PSNR
    /// and SSIM of the noisy inputs and of their reconstructions against the clean samples.
    #[arg(long, value_name = "NOISE")]
    noise: Option<CorruptionConfig>,
    /// With --noise: also draw clean / noisy / denoised rows of the first 10 samples here.
    #[arg(long, value_name = "PNG", requires = "noise")]
    picture: Option<PathBuf>,
    /// Replace --picture if it exists.
    #[arg(long)]
    force: bool,
    /// Seed of the noise and of a VAE's draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `aekit eval`.
pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    if let Some(picture) = &args.picture {
        aekit::apps::check_extension(picture, &["png"])?;
        aekit::apps::check_output(picture, args.force)?;
    }
    let options = EvalOptions {
        data: args.data.clone(),
        resize: args.resize,
        iw: args.iw_samples.map(|k| (k, args.iw_limit)),
        noise: args.noise.clone(),
        seed: args.seed,
        weights: args.run.weights,
        device: args.run.device(),
    };
    let model = args.run.open()?;
    let report = evaluate_trained(&model, &options)?;
    println!("{report}");
    for head in &report.heads {
        if let aekit::models::heads::HeadMetrics::Class {
            name,
            class_names,
            confusion,
            accuracy,
            ..
        } = head
        {
            let suffix = match &args.data {
                None => String::new(),
                Some(path) => format!(
                    "-{}",
                    path.file_stem().unwrap_or_default().to_string_lossy()
                ),
            };
            let picture = model
                .run()
                .path()
                .join(format!("confusion-{name}{suffix}.png"));
            let title = format!(
                "head {name}: accuracy {:.2}% on {}",
                100.0 * accuracy,
                report.data
            );
            aekit::plots::confusion_matrix(&picture, &title, class_names, confusion)?;
            println!("wrote {}", picture.display());
        }
    }
    if let (Some(picture), Some(noise)) = (&args.picture, &args.noise) {
        let data = match &args.data {
            Some(path) => model.load_data(path, args.resize)?,
            None => model.validation_data()?,
        };
        aekit::apps::denoise::noise_picture(&model, &data, noise, args.seed, 10, picture)?;
        println!(
            "wrote {} (clean, noisy and denoised rows)",
            picture.display()
        );
    }
    Ok(())
}

/// `aekit reconstruct`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit reconstruct runs/mnist-dense --input ../shared/data/mnist --out recon.png\n  aekit reconstruct runs/quickstart --input shapes --out recon.png\n  aekit reconstruct runs/mnist-dense --input digit.png --out digit-recon.png --resize"
)]
pub struct ReconstructArgs {
    #[command(flatten)]
    run: RunArgs,
    /// An image, a folder of images, or a data set (`shapes` for the built-in one).
    #[arg(long)]
    input: PathBuf,
    /// The PNG file to write.
    #[arg(long)]
    out: PathBuf,
    /// How many samples to draw (at random, spread over the classes).
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Seed of the samples drawn.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// Overwrite `--out` if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit reconstruct`.
pub fn reconstruct_command(args: ReconstructArgs) -> anyhow::Result<()> {
    args.run.compute.setup()?;
    let options = ReconstructOptions {
        count: args.count,
        force: args.force,
        resize: args.resize,
        weights: args.run.weights,
        device: args.run.device(),
        seed: args.seed,
    };
    let drawn = reconstruct(&args.run.run, &args.input, &args.out, &options)?;
    println!(
        "wrote {} ({drawn} originals above their reconstructions)",
        args.out.display()
    );
    Ok(())
}

/// `aekit pca`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit pca ../shared/data/mnist --components 30\n  aekit pca shapes --components 16"
)]
pub struct PcaArgs {
    /// A data folder or file, or `shapes`.
    data: PathBuf,
    /// Number of principal components (the code size to compare with).
    #[arg(long, default_value_t = 32)]
    components: usize,
    #[command(flatten)]
    table: super::TableArgs,
    /// Tables: scale each column before fitting (`none`, `standard` or `minmax`), fitted on
    /// the training rows as `[data] scale` is; the errors are still in the table's own units.
    #[arg(long, default_value = "none")]
    scale: aekit::data::scaling::Scale,
    #[command(flatten)]
    compute: Compute,
}

/// Runs `aekit pca`.
pub fn pca(args: PcaArgs) -> anyhow::Result<()> {
    args.compute.setup()?;
    let device = aekit::device::plain_device(args.compute.device)?;
    let (mut train, mut test) =
        aekit::data::config::load_dataset_path(&args.data, false, &args.table.options())?;
    if train.shape.is_image() && args.scale != aekit::data::scaling::Scale::None {
        anyhow::bail!(
            "--scale: {} holds images; scaling is for table columns",
            args.data.display()
        );
    }
    let scaler = aekit::data::scaling::FeatureScaler::fit(&train, args.scale);
    if let Some(scaler) = &scaler {
        for data in std::iter::once(&mut train).chain(test.as_mut()) {
            scaler.apply(&mut data.values);
        }
    }
    let components = args.components;
    let started = std::time::Instant::now();
    let pca = aekit::pca::fit(&train, components, &device)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let split = if test.is_some() { "test" } else { "training" };
    let scored = test.as_ref().unwrap_or(&train);
    println!(
        "PCA with {components} components, fitted on {} training samples in {fit_seconds:.2} s, on the {split} split ({} samples):",
        train.len(),
        scored.len()
    );
    if !scored.shape.is_image() {
        // Table rows: metrics in the table's own units (BCE and PSNR assume values in [0, 1]).
        let mut outputs = pca.reconstruct(scored, &device);
        let mut clean = scored.values.clone();
        if let Some(scaler) = &scaler {
            scaler.invert(&mut outputs);
            scaler.invert(&mut clean);
        }
        let m = aekit::eval::TableMetrics::between(&clean, &outputs, scored.shape.len());
        println!("{m}");
        return Ok(());
    }
    let m = pca.metrics(scored, &device);
    println!(
        "MSE:      {:.6} per value, {:.4} per sample",
        m.mse, m.squared_error_per_sample
    );
    println!(
        "BCE:      {:.6} per value (reconstructions clipped into (0, 1))",
        m.bce
    );
    println!("PSNR:     {:.2} dB", m.psnr);
    Ok(())
}
