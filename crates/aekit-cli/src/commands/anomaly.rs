//! `aekit anomaly fit` and `aekit anomaly score`: fit a detector on normal data and store it
//! in the run; score new samples into a CSV, with metrics when they are labelled and
//! pictures that explain what was flagged.

use super::RunArgs;
use aekit::apps::anomaly::{self, AnomalyDetector, ScoreKind, ScoreSettings, ThresholdRule, Truth};
use aekit::data::classes::ClassRef;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `aekit anomaly ...`.
#[derive(Subcommand)]
pub enum AnomalyCommand {
    /// Score normal data (the run's training samples unless --data), store the score
    /// distribution, the threshold and the settings in the run (anomaly.json).
    #[command(
        after_help = "Scores (--score): loss (the model's own per-sample loss; a VAE's negative ELBO, \
                      also `elbo`), mse, l1, bce, iw (a VAE's importance-weighted NLL, --iw K), \
                      mahalanobis (the code's distance under a Gaussian of the training codes), \
                      combined (loss + mahalanobis, each standardised on the training scores).\n\
                      Thresholds: contamination:0.05 (the top 5 % of training scores), quantile:0.99, \
                      auto (3 robust deviations above the median log-score).\n\nExamples:\n  \
                      aekit anomaly fit runs/anomaly-conv-3\n  \
                      aekit anomaly fit runs/anomaly-vae-3 --score iw --iw 50 --threshold quantile:0.99\n  \
                      aekit anomaly fit runs/table --data normal-rows.csv --score mse --force"
    )]
    Fit(FitArgs),
    /// Score samples: per sample the score, the flag and two probabilities into a CSV; with
    /// labels, AUROC, average precision, F1 and the confusion counts.
    #[command(
        after_help = "Which samples are anomalies, for the metrics: by default the classes the run did \
                      not train on (its data.train_classes / exclude_classes); or --anomaly-classes.\n\n\
                      Examples:\n  \
                      aekit anomaly score runs/anomaly-conv-3 --input ../shared/data/mnist --out scores.csv --explain why/\n  \
                      aekit anomaly score runs/table --input new-rows.csv --out scores.csv --anomaly-classes 1"
    )]
    Score(ScoreArgs),
}

#[derive(Args)]
pub struct FitArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Normal samples to fit on (default: the run's own training samples, class filter
    /// included).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The score: loss, elbo, mse, l1, bce, iw, mahalanobis or combined.
    #[arg(long, default_value = "loss")]
    score: ScoreKind,
    /// Importance samples per sample for --score iw.
    #[arg(long, default_value_t = 100)]
    iw: usize,
    /// The threshold: contamination:FRACTION, quantile:Q or auto.
    #[arg(long, default_value = "contamination:0.05")]
    threshold: ThresholdRule,
    /// Seed of a VAE's draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// Replace the run's existing detector.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The samples to score: a data set (its test split), an image folder or file, a CSV.
    #[arg(long)]
    input: PathBuf,
    /// The CSV of scores to write.
    #[arg(long)]
    out: PathBuf,
    /// A folder for the explanations: error maps of the most anomalous images (or each row's
    /// per-feature shares of the error for a table), score histograms, the most and least
    /// anomalous images, the metrics as JSON.
    #[arg(long)]
    explain: Option<PathBuf>,
    /// Images per row of the explanation pictures.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// The anomalous classes, by label or name, comma-separated (default: the classes the
    /// run did not train on).
    #[arg(long, value_delimiter = ',')]
    anomaly_classes: Vec<String>,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit anomaly ...`.
pub fn run(command: AnomalyCommand) -> anyhow::Result<()> {
    match command {
        AnomalyCommand::Fit(args) => fit(args),
        AnomalyCommand::Score(args) => score(args),
    }
}

fn fit(args: FitArgs) -> anyhow::Result<()> {
    let model = args.run.open()?;
    let path = AnomalyDetector::path(model.run());
    if path.exists() && !args.force {
        anyhow::bail!(
            "{}: the run already has a detector; pass --force to fit a new one in its place",
            path.display()
        );
    }
    let data = match &args.data {
        Some(data) => model.load_split(data, aekit::data::config::Split::Train, args.resize)?,
        None => model.training_data()?,
    };
    let settings = ScoreSettings {
        kind: args.score,
        iw_samples: args.iw,
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    let (detector, training_scores) = anomaly::fit(&model, &data, settings, args.threshold)?;
    let seconds = started.elapsed().as_secs_f64();
    detector.save(model.run())?;
    let t = &detector.training;
    let flagged = detector.judge(training_scores).flags;
    println!(
        "fitted a {} detector on {} normal samples ({}) in {seconds:.2} s",
        detector.score.kind, t.count, detector.fitted_on
    );
    println!(
        "training scores: min {:.6}, mean {:.6}, std {:.6}, max {:.6}",
        t.min, t.mean, t.std, t.max
    );
    println!(
        "threshold ({}): {:.6}, flags {:.2} % of the training samples",
        detector.threshold_rule,
        detector.threshold,
        100.0 * flagged.iter().filter(|&&f| f).count() as f64 / flagged.len().max(1) as f64
    );
    println!("wrote {}", path.display());
    Ok(())
}

fn score(args: ScoreArgs) -> anyhow::Result<()> {
    aekit::apps::check_extension(&args.out, &["csv"])?;
    aekit::apps::check_output(&args.out, args.force)?;
    if args.top == 0 {
        anyhow::bail!("--top must be at least 1");
    }
    let model = args.run.open()?;
    let detector = AnomalyDetector::load(model.run())?;
    let data = model.load_data(&args.input, args.resize)?;
    let truth = if args.anomaly_classes.is_empty() {
        Truth::NotTrainedOn
    } else {
        Truth::Classes(args.anomaly_classes.iter().map(|c| class_ref(c)).collect())
    };
    // Metrics need labels; asked for explicitly on unlabelled data, that is an error.
    let anomalous = match anomaly::anomalous(&model, &data, &truth) {
        Ok(anomalous) => Some(anomalous),
        Err(error) if args.anomaly_classes.is_empty() => {
            eprintln!("no metrics: {error}");
            None
        }
        Err(error) => return Err(error.into()),
    };
    let started = std::time::Instant::now();
    let scores = detector.scores(&model, &data)?;
    let seconds = started.elapsed().as_secs_f64();
    let judgement = detector.judge(scores);
    let is_table = !data.shape.is_image();
    // Per-value errors only where they are used: tables' feature shares, explanations.
    let (outputs, errors) = if is_table || args.explain.is_some() {
        anomaly::value_errors(&model, &data.values)?
    } else {
        (Vec::new(), Vec::new())
    };
    let csv = anomaly::scores_csv(&data, &judgement, is_table.then_some(&errors[..]));
    aekit::run_dir::write_atomic(&args.out, csv.as_bytes())?;
    let flagged = judgement.flags.iter().filter(|&&f| f).count();
    println!(
        "scored {} samples ({}) in {seconds:.2} s ({:.0} samples/s); {flagged} flagged above \
         the threshold {:.6}",
        data.len(),
        detector.score.kind,
        data.len() as f64 / seconds.max(1e-9),
        detector.threshold
    );
    let report = anomalous.as_ref().map(|a| anomaly::report(&judgement, a));
    if let Some(report) = &report {
        println!("{report}");
    }
    println!("wrote {}", args.out.display());
    if let Some(dir) = &args.explain {
        explain(
            dir,
            &args,
            &data,
            &judgement,
            &outputs,
            &errors,
            anomalous.as_deref(),
            &detector,
        )?;
        if let Some(report) = &report {
            let path = dir.join("report.json");
            aekit::run_dir::write_json(&path, report)?;
        }
        println!("explanations in {}", dir.display());
    }
    Ok(())
}

/// A class named on the command line: a number is a label, anything else a class name.
fn class_ref(text: &str) -> ClassRef {
    match text.trim().parse::<u32>() {
        Ok(label) => ClassRef::Label(label),
        Err(_) => ClassRef::Name(text.trim().to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn explain(
    dir: &std::path::Path,
    args: &ScoreArgs,
    data: &aekit::data::Dataset,
    judgement: &anomaly::Judgement,
    outputs: &[f32],
    errors: &[f32],
    anomalous: Option<&[bool]>,
    detector: &AnomalyDetector,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot make the folder: {e}", dir.display()))?;
    let file = |name: &str| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        aekit::apps::check_output(&path, args.force)?;
        Ok(path)
    };
    let (most, least) = anomaly::extremes(&judgement.scores, args.top);
    if data.shape.is_image() {
        anomaly::error_map_picture(&file("error-maps.png")?, data, outputs, errors, &most)?;
        let rows = [gather(data, &most), gather(data, &least)];
        aekit::plots::image_grid(
            &file("most-and-least.png")?,
            data.shape,
            &[&rows[0], &rows[1]],
            args.top,
        )?;
    } else {
        let text = anomaly::contributions_csv(errors, data.shape.len());
        aekit::run_dir::write_atomic(&file("contributions.csv")?, text.as_bytes())?;
    }
    let name = detector.score.kind.to_string();
    let histogram = file("histogram.png")?;
    match anomalous {
        Some(anomalous) => {
            let pick = |want: bool| -> Vec<f64> {
                judgement
                    .scores
                    .iter()
                    .zip(anomalous)
                    .filter(|(_, a)| **a == want)
                    .map(|(s, _)| *s)
                    .collect()
            };
            let (normal, odd) = (pick(false), pick(true));
            aekit::plots::score_histograms(
                &histogram,
                &[("normal", &normal), ("anomalous", &odd)],
                detector.threshold,
                &name,
            )?;
        }
        None => aekit::plots::score_histograms(
            &histogram,
            &[("scored", &judgement.scores)],
            detector.threshold,
            &name,
        )?,
    }
    Ok(())
}

fn gather(data: &aekit::data::Dataset, indices: &[usize]) -> Vec<f32> {
    indices
        .iter()
        .flat_map(|&i| data.sample(i).iter().copied())
        .collect()
}
