//! `aekit`: the command-line tool over the aekit library. This file only parses arguments
//! and dispatches to the command groups in `commands/`, one file each; all logic lives in
//! the library.

mod commands;

use clap::{Parser, Subcommand};
use commands::{
    anomaly, bench, classify, codes, compress, config, data, denoise, evaluate, generate, maps,
    report, search, train,
};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "aekit",
    version,
    about = "Build, train, evaluate and apply autoencoders",
    after_help = "Examples:\n  aekit train configs/quickstart.toml\n  aekit train configs/mnist-dense.toml --set train.epochs=5\n  aekit eval runs/quickstart\n  aekit reconstruct runs/quickstart --input shapes --out recon.png\n  aekit latent-map runs/quickstart --data shapes --out map.png\n  aekit report runs/quickstart --out report.html\n  aekit data info ../shared/data/mnist"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a config into its run directory (runs/<name>/).
    Train(train::TrainArgs),
    /// Evaluate a trained run: loss, MSE, BCE, PSNR; with --noise PSNR/SSIM of denoising
    /// (written to RUN_DIR/eval.json, or eval-<data>.json for other data).
    Eval(evaluate::EvalArgs),
    /// Train a classifier on a trained run's encoder (frozen, fine-tuned, or the same
    /// architecture from scratch) and report its test accuracy.
    Classify(classify::ClassifyArgs),
    /// Write originals above their reconstructions into a PNG.
    Reconstruct(evaluate::ReconstructArgs),
    /// Write the codes of a data set to a .npy or .csv file.
    Encode(codes::EncodeArgs),
    /// Decode codes from a .npy or .csv file into images or rows.
    Decode(codes::DecodeArgs),
    /// A 2-D map (t-SNE, PCA, or the code itself) of a data set's codes beside its inputs'.
    LatentMap(maps::LatentMapArgs),
    /// k-means on the codes beside k-means on the raw inputs: NMI, ARI, accuracy.
    Cluster(maps::ClusterArgs),
    /// New samples: from a VAE's prior, or a Gaussian fitted to other models' codes.
    Sample(generate::SampleArgs),
    /// Decoded codes along the way from one input's code to another's.
    Interpolate(generate::InterpolateArgs),
    /// A grid of decoded codes spanning a plane of the code space.
    Manifold(generate::ManifoldArgs),
    /// Clean noisy images with a (denoising) model, one PNG per input.
    Denoise(denoise::DenoiseArgs),
    /// Which code units fire for a few inputs, as an image.
    Activations(maps::ActivationsArgs),
    /// One self-contained HTML page about a run.
    Report(report::ReportArgs),
    /// The PCA baseline: fit on a data set's training split, report reconstruction on its
    /// test split (or the training split when it has none).
    Pca(evaluate::PcaArgs),
    /// Compress images into .aez files with a trained codec (kind = "codec").
    Compress(compress::CompressArgs),
    /// Decompress .aez files into PNGs with the codec that made them.
    Decompress(compress::DecompressArgs),
    /// An index of a data set's codes, for `aekit similar`.
    Index(search::IndexArgs),
    /// The nearest neighbours of a query among an index's codes, as a picture or JSON.
    Similar(search::SimilarArgs),
    /// Anomaly detection: fit a detector on normal data, score new samples.
    Anomaly {
        #[command(subcommand)]
        command: anomaly::AnomalyCommand,
    },
    /// The reference of every config key; check a config without training.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Fetch or describe data sets.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Benchmarks: the reference configs' quality beside PCA, and training/inference speed
    /// (`bench/speed.py` runs the whole speed suite against PyTorch).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    aekit::device::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    restore_default_sigpipe();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if matches!(
                error.downcast_ref::<aekit::Error>(),
                Some(aekit::Error::Interrupted(_))
            ) {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `aekit ... | head` ends quietly when `head` closes the pipe, as other Unix tools do:
/// Rust ignores SIGPIPE, which turns every later `println!` into a panic.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default at start-up, before any thread
    // exists, has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => evaluate::eval(args),
        Command::Classify(args) => classify::run(args),
        Command::Reconstruct(args) => evaluate::reconstruct_command(args),
        Command::Encode(args) => codes::encode(args),
        Command::Decode(args) => codes::decode(args),
        Command::LatentMap(args) => maps::latent_map(args),
        Command::Cluster(args) => maps::cluster_command(args),
        Command::Sample(args) => generate::sample(args),
        Command::Interpolate(args) => generate::interpolate(args),
        Command::Manifold(args) => generate::manifold(args),
        Command::Denoise(args) => denoise::run(args),
        Command::Activations(args) => maps::activations_command(args),
        Command::Report(args) => report::run(args),
        Command::Pca(args) => evaluate::pca(args),
        Command::Compress(args) => compress::compress(args),
        Command::Decompress(args) => compress::decompress(args),
        Command::Index(args) => search::index(args),
        Command::Similar(args) => search::similar(args),
        Command::Anomaly { command } => anomaly::run(command),
        Command::Config { command } => config::run(command),
        Command::Data { command } => data::run(command),
        Command::Bench { command } => bench::run(command),
    }
}
