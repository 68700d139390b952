//! The one-class anomaly benchmark behind `aekit bench anomaly`: for each digit, train on
//! that digit's training images only, score the whole test split, and measure how well the
//! scores put the other nine digits above it (AUROC). The autoencoder families run from
//! their shipped configs (`configs/anomaly-<family>.toml`), every score kind that applies
//! to them; the two classic baselines are computed by aekit itself: PCA reconstruction
//! error at the same code size and the distance to the k-th nearest training image.
//!
//! Runs are kept and reused as `bench quality`'s are.

use aekit::apps::anomaly::{self, ScoreKind, ScoreSettings, ThresholdRule};
use aekit::config::RunConfig;
use aekit::data::classes::{ClassFilter, ClassRef};
use aekit::data::{self, Dataset};
use aekit::device::{self, DeviceChoice};
use aekit::error::{Error, Result};
use aekit::run_dir::WeightsChoice;
use aekit::stats::detection;
use aekit::trained::TrainedModel;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The autoencoder families with a shipped anomaly config, and the baselines.
pub const FAMILIES: &[&str] = &["dense", "conv", "vae", "pca", "knn"];

/// What the benchmark runs.
#[derive(Debug, Clone)]
pub struct AnomalyOptions {
    /// The folder holding `anomaly-<family>.toml`.
    pub configs_dir: PathBuf,
    /// The folder the benchmark's runs go into.
    pub runs_dir: PathBuf,
    /// The MNIST folder, in place of the configs' `data.path`.
    pub data: Option<PathBuf>,
    /// Families and baselines, from [`FAMILIES`].
    pub families: Vec<String>,
    /// The normal classes, one experiment each.
    pub classes: Vec<u32>,
    /// Train at most this many epochs per run (a quick look; the report says so).
    pub max_epochs: Option<usize>,
    /// Principal components of the PCA baseline.
    pub pca_components: usize,
    /// The k of the nearest-neighbour baseline.
    pub knn_k: usize,
    /// Importance samples of the VAE's `iw` score (0: leave it out).
    pub iw_samples: usize,
    /// Where the tensors live.
    pub device: DeviceChoice,
    /// No training progress output.
    pub quiet: bool,
}

/// One line of the table: a method and its AUROC per normal class.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    /// The family or baseline, and the score (`conv · mse`).
    pub method: String,
    /// AUROC (in %) per class of [`AnomalyOptions::classes`], in order.
    pub auroc: Vec<f64>,
}

impl AnomalyRow {
    /// The mean AUROC over the classes.
    pub fn mean(&self) -> f64 {
        self.auroc.iter().sum::<f64>() / self.auroc.len().max(1) as f64
    }
}

/// Runs the benchmark; `on_class` is called after each normal class with the rows so far.
pub fn run(
    options: &AnomalyOptions,
    mut on_class: impl FnMut(u32, &[AnomalyRow]),
) -> Result<Vec<AnomalyRow>> {
    if let Some(unknown) = options
        .families
        .iter()
        .find(|f| !FAMILIES.contains(&f.as_str()))
    {
        return Err(Error::config(
            "--families",
            format!("`{unknown}`: choose from {}", FAMILIES.join(", ")),
        ));
    }
    if options.classes.is_empty() {
        return Err(Error::config("--classes", "names no class"));
    }
    let plain = device::plain_device(options.device)?;
    let mut rows: Vec<AnomalyRow> = Vec::new();
    let record = |rows: &mut Vec<AnomalyRow>, method: String, auc: f64| match rows
        .iter_mut()
        .find(|r| r.method == method)
    {
        Some(row) => row.auroc.push(100.0 * auc),
        None => rows.push(AnomalyRow {
            method,
            auroc: vec![100.0 * auc],
        }),
    };
    for &class in &options.classes {
        let mut raw: Option<(Dataset, Dataset)> = None;
        for family in &options.families {
            match family.as_str() {
                "pca" | "knn" => {
                    if raw.is_none() {
                        raw = Some(raw_digits(options, class)?);
                    }
                    let (train, test) = raw.as_ref().expect("loaded above");
                    let scores = if family == "pca" {
                        let fitted = aekit::pca::fit(train, options.pca_components, &plain)?;
                        let outputs = fitted.reconstruct(test, &plain);
                        mse_per_sample(&test.values, &outputs, test.shape.len())
                    } else {
                        aekit::stats::knn::kth_neighbour_distance(
                            &train.values,
                            &test.values,
                            test.shape.len(),
                            options.knn_k,
                        )
                    };
                    let name = if family == "pca" {
                        format!("PCA-{} · mse", options.pca_components)
                    } else {
                        format!("{}-NN distance", options.knn_k)
                    };
                    record(&mut rows, name, auroc(&scores, test, class)?);
                }
                family => {
                    for (kind, auc) in family_aurocs(options, family, class)? {
                        record(&mut rows, format!("{family} · {kind}"), auc);
                    }
                }
            }
        }
        on_class(class, &rows);
    }
    Ok(rows)
}

/// The raw training images of `class` and the whole raw test split.
fn raw_digits(options: &AnomalyOptions, class: u32) -> Result<(Dataset, Dataset)> {
    let path = options
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/data/mnist"));
    let (train, test) = data::config::load_dataset_path(&path, false, &Default::default())?;
    let test = test.ok_or_else(|| Error::data(&path, "has no test split"))?;
    let keep = [ClassRef::Label(class)];
    let train = ClassFilter::Keep(&keep)
        .apply(&train)
        .map_err(|message| Error::data(&path, message))?;
    Ok((train, test))
}

/// Trains (or reuses) the family's run for `class`, and the AUROC of every score kind.
fn family_aurocs(
    options: &AnomalyOptions,
    family: &str,
    class: u32,
) -> Result<Vec<(ScoreKind, f64)>> {
    let config_path = options.configs_dir.join(format!("anomaly-{family}.toml"));
    let mut overrides = vec![
        format!(
            "runs_dir={}",
            crate::quality::toml_string(&options.runs_dir)
        ),
        format!("name=\"anomaly-{family}-{class}\""),
        format!("data.train_classes=[{class}]"),
    ];
    if let Some(data) = &options.data {
        overrides.push(format!("data.path={}", crate::quality::toml_string(data)));
    }
    let mut config = RunConfig::from_file(&config_path, &overrides)?;
    if let Some(cap) = options.max_epochs {
        config.train.epochs = config.train.epochs.min(cap);
    }
    crate::quality::train_or_reuse(&config, options.device, options.quiet)?;
    let model = TrainedModel::open(&config.run_dir(), options.device, WeightsChoice::Best)?;
    let train = model.training_data()?;
    let source = config
        .data
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from("shapes"));
    let test = model.load_data(&source, false)?;
    let mut kinds = vec![
        ScoreKind::Loss,
        ScoreKind::Mse,
        ScoreKind::Mahalanobis,
        ScoreKind::Combined,
    ];
    if model.is_variational() && options.iw_samples > 0 {
        kinds.push(ScoreKind::Iw);
    }
    kinds
        .into_iter()
        .map(|kind| {
            let settings = ScoreSettings {
                kind,
                iw_samples: options.iw_samples,
                seed: 0,
            };
            let (detector, _) =
                anomaly::fit(&model, &train, settings, ThresholdRule::Contamination(0.05))?;
            let scores = detector.scores(&model, &test)?;
            Ok((kind, auroc(&scores, &test, class)?))
        })
        .collect()
}

fn auroc(scores: &[f64], test: &Dataset, class: u32) -> Result<f64> {
    let labels = test
        .labels
        .as_ref()
        .ok_or_else(|| Error::data(&test.name, "has no labels"))?;
    let anomalous: Vec<bool> = labels.iter().map(|&l| l != class).collect();
    detection::auroc(scores, &anomalous).ok_or_else(|| {
        Error::data(
            &test.name,
            format!("the test split does not hold both class {class} and other classes"),
        )
    })
}

fn mse_per_sample(clean: &[f32], outputs: &[f32], width: usize) -> Vec<f64> {
    clean
        .chunks(width)
        .zip(outputs.chunks(width))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(a, b)| f64::from((a - b) * (a - b)))
                .sum::<f64>()
                / width as f64
        })
        .collect()
}

/// The table: one row per method, one column per normal class, the mean last; the best
/// mean in bold.
pub fn table(rows: &[AnomalyRow], classes: &[u32]) -> String {
    let best = rows.iter().map(AnomalyRow::mean).fold(f64::MIN, f64::max);
    let mut text = String::from("| method |");
    for class in classes {
        let _ = write!(text, " {class} |");
    }
    text.push_str(" mean |\n|---|");
    for _ in classes {
        text.push_str("---:|");
    }
    text.push_str("---:|\n");
    for row in rows {
        let _ = write!(text, "| {} |", row.method);
        for auc in &row.auroc {
            let _ = write!(text, " {auc:.1} |");
        }
        let mean = row.mean();
        if (mean - best).abs() < 1e-9 {
            let _ = writeln!(text, " **{mean:.2}** |");
        } else {
            let _ = writeln!(text, " {mean:.2} |");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_marks_the_best_mean() {
        let rows = [
            AnomalyRow {
                method: "a".into(),
                auroc: vec![90.0, 92.0],
            },
            AnomalyRow {
                method: "b".into(),
                auroc: vec![95.0, 97.0],
            },
        ];
        let text = table(&rows, &[3, 5]);
        assert!(text.contains("| b | 95.0 | 97.0 | **96.00** |"), "{text}");
        assert!(text.contains("| a | 90.0 | 92.0 | 91.00 |"), "{text}");
    }
}
