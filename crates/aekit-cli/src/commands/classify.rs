//! `aekit classify`: a classifier on the encoder of a trained run (encoder reuse), trained
//! into a run of its own and evaluated on the validation split.

use super::Compute;
use aekit::apps::classify::{ClassifierOptions, EncoderUse, classifier_config};
use aekit::eval::{EvalOptions, evaluate_run};
use aekit::models::heads::HeadMetrics;
use aekit::train::{self, TrainOptions};
use clap::Args;
use std::path::PathBuf;

/// `aekit classify`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit classify runs/mnist-dense --label-fraction 0.01            # frozen encoder\n  aekit classify runs/mnist-dense --label-fraction 0.01 --fine-tune\n  aekit classify runs/mnist-dense --label-fraction 0.01 --from-scratch   # the baseline"
)]
pub struct ClassifyArgs {
    /// The trained run whose encoder the classifier reuses.
    run: PathBuf,
    /// Train on this fraction of the training labels (seeded, spread over the classes).
    #[arg(long)]
    label_fraction: Option<f64>,
    /// Train the encoder with the head (default: frozen, only the head learns).
    #[arg(long, conflicts_with = "from_scratch")]
    fine_tune: bool,
    /// The same architecture from random weights, for comparison.
    #[arg(long)]
    from_scratch: bool,
    /// Hidden layer sizes of the head, e.g. `--hidden 64` (default: a linear classifier).
    #[arg(long, value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Training epochs (default: the run's own).
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed of the labels drawn with --label-fraction.
    #[arg(long, default_value_t = 0)]
    label_seed: u64,
    /// Override a value of the classifier's config, e.g. `--set train.learning_rate=1e-4`
    /// (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Replace the classifier's run directory if it exists.
    #[arg(long)]
    force: bool,
    /// Print nothing but errors and the result.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    compute: Compute,
}

/// Runs `aekit classify`.
pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    args.compute.setup()?;
    let encoder = match (args.fine_tune, args.from_scratch) {
        (true, _) => EncoderUse::FineTuned,
        (_, true) => EncoderUse::FromScratch,
        _ => EncoderUse::Frozen,
    };
    let config = classifier_config(
        &args.run,
        &ClassifierOptions {
            encoder,
            label_fraction: args.label_fraction,
            hidden: args.hidden.clone(),
            epochs: args.epochs,
            label_seed: args.label_seed,
            overrides: args.set.clone(),
        },
    )?;
    let options = TrainOptions {
        force: args.force,
        device: args.compute.device,
        quiet: args.quiet,
        ..Default::default()
    };
    let outcome = train::train(&config, &options)?;
    let report = evaluate_run(
        outcome.run.path(),
        &EvalOptions {
            device: args.compute.device,
            ..Default::default()
        },
    )?;
    for head in &report.heads {
        if let HeadMetrics::Class {
            accuracy, samples, ..
        } = head
        {
            println!(
                "{}: {} encoder, accuracy {:.2}% on the {} ({samples} samples)",
                outcome.run.path().display(),
                encoder.suffix(),
                100.0 * accuracy,
                report.data
            );
        }
    }
    Ok(())
}
