//! Anomaly detection: what is normal reconstructs well, what is not has a high error.
//!
//! A detector is fitted on normal data (by default the run's own training samples, which
//! `[data] train_classes` can restrict to one class): it scores them, keeps their score
//! distribution and a threshold, and is stored in the run (`anomaly.json`). Scoring new
//! samples gives each a score, a flag, and two probabilities (PyOD's `linear` min-max form
//! and Kriegel et al.'s Gaussian `unify` form, both against the training scores). With
//! labels, the scores are judged by AUROC, average precision and the confusion counts at
//! the threshold; per-value errors explain what was flagged (pixel maps, feature shares).
//!
//! Scores: the model's own per-sample loss (a VAE's negative ELBO), MSE, L1, BCE, a VAE's
//! importance-weighted negative log-likelihood, the Mahalanobis distance of the code under a
//! Gaussian fitted to the training codes, or the sum of the loss and the Mahalanobis
//! distance, each standardised on the training scores.

use crate::data::Dataset;
use crate::data::classes::{ClassFilter, ClassRef};
use crate::error::{Error, Result};
use crate::loss::ReconstructionLoss;
use crate::run_dir::{self, RunDir};
use crate::stats::detection::{self, Confusion};
use crate::stats::gaussian::CodeGaussian;
use crate::stats::normal::erf;
use crate::trained::TrainedModel;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file a fitted detector is stored in, inside the run directory.
pub const DETECTOR_FILE: &str = "anomaly.json";

/// Points of the stored training-score quantile function (every 0.1 %).
const QUANTILE_POINTS: usize = 1001;

/// How a sample is scored (higher = more anomalous).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreKind {
    /// The model's own per-sample loss: its reconstruction loss, for a VAE the negative ELBO.
    Loss,
    /// Mean squared error of the reconstruction.
    Mse,
    /// Mean absolute error of the reconstruction.
    L1,
    /// Binary cross-entropy of the reconstruction (values in [0, 1]).
    Bce,
    /// A VAE's importance-weighted estimate of `-log p(x)`.
    Iw,
    /// The Mahalanobis distance of the code under a Gaussian fitted to the training codes.
    Mahalanobis,
    /// The loss and the Mahalanobis distance, each standardised on the training scores,
    /// summed.
    Combined,
}

impl std::str::FromStr for ScoreKind {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        Ok(match text {
            "loss" | "elbo" => ScoreKind::Loss,
            "mse" => ScoreKind::Mse,
            "l1" => ScoreKind::L1,
            "bce" => ScoreKind::Bce,
            "iw" => ScoreKind::Iw,
            "mahalanobis" => ScoreKind::Mahalanobis,
            "combined" => ScoreKind::Combined,
            other => {
                return Err(format!(
                    "`{other}`: expected loss (elbo for a VAE), mse, l1, bce, iw, mahalanobis or \
                     combined"
                ));
            }
        })
    }
}

impl std::fmt::Display for ScoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScoreKind::Loss => "loss",
            ScoreKind::Mse => "mse",
            ScoreKind::L1 => "l1",
            ScoreKind::Bce => "bce",
            ScoreKind::Iw => "iw",
            ScoreKind::Mahalanobis => "mahalanobis",
            ScoreKind::Combined => "combined",
        })
    }
}

/// The score and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreSettings {
    /// Which score.
    pub kind: ScoreKind,
    /// Importance samples per sample for [`ScoreKind::Iw`].
    pub iw_samples: usize,
    /// Seed of a VAE's draws (the same seed gives the same scores).
    pub seed: u64,
}

impl Default for ScoreSettings {
    fn default() -> Self {
        Self {
            kind: ScoreKind::Loss,
            iw_samples: 100,
            seed: 0,
        }
    }
}

/// How the threshold is set from the training scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdRule {
    /// The expected fraction of anomalies among the training samples: the threshold is the
    /// training scores' `1 - c` quantile (PyOD's `contamination`).
    Contamination(f64),
    /// The training scores' `q` quantile.
    Quantile(f64),
    /// Three robust standard deviations (1.4826 MAD) above the median of the logarithm of
    /// the training scores (of the scores themselves when some are not positive):
    /// reconstruction errors are skewed, their logarithm close to normal.
    Auto,
}

impl std::str::FromStr for ThresholdRule {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        if text == "auto" {
            return Ok(ThresholdRule::Auto);
        }
        let (name, value) = text.split_once(':').ok_or_else(|| {
            format!("`{text}`: expected contamination:FRACTION, quantile:Q or auto")
        })?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: `{value}` is not a number"))?;
        if !(value > 0.0 && value < 1.0) {
            return Err(format!(
                "`{text}`: the {name} must lie strictly between 0 and 1"
            ));
        }
        match name {
            "contamination" => Ok(ThresholdRule::Contamination(value)),
            "quantile" => Ok(ThresholdRule::Quantile(value)),
            other => Err(format!(
                "`{other}`: expected contamination:FRACTION, quantile:Q or auto"
            )),
        }
    }
}

impl std::fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdRule::Contamination(c) => write!(f, "contamination:{c}"),
            ThresholdRule::Quantile(q) => write!(f, "quantile:{q}"),
            ThresholdRule::Auto => f.write_str("auto"),
        }
    }
}

/// The distribution of the training (normal) scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDistribution {
    /// Samples scored.
    pub count: usize,
    /// Smallest score.
    pub min: f64,
    /// Largest score.
    pub max: f64,
    /// Mean score.
    pub mean: f64,
    /// Standard deviation of the scores.
    pub std: f64,
    /// The quantile function at 0, 0.001, ..., 1 (the sorted scores, interpolated).
    pub quantiles: Vec<f64>,
}

impl ScoreDistribution {
    /// The distribution of `scores` (at least one, all finite).
    pub fn of(scores: &[f64]) -> ScoreDistribution {
        let mut sorted = scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
        let quantiles = (0..QUANTILE_POINTS)
            .map(|i| sorted_quantile(&sorted, i as f64 / (QUANTILE_POINTS - 1) as f64))
            .collect();
        ScoreDistribution {
            count: sorted.len(),
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
            mean,
            std: var.sqrt(),
            quantiles,
        }
    }

    /// The fraction of training scores at or below `score` (0 to 1), from the stored
    /// quantile function.
    pub fn percentile(&self, score: f64) -> f64 {
        let q = &self.quantiles;
        if q.is_empty() || score < q[0] {
            return 0.0;
        }
        if score >= q[q.len() - 1] {
            return 1.0;
        }
        let above = q.partition_point(|&v| v <= score);
        let (lo, hi) = (q[above - 1], q[above]);
        let step = 1.0 / (q.len() - 1) as f64;
        let within = if hi > lo {
            (score - lo) / (hi - lo)
        } else {
            1.0
        };
        ((above - 1) as f64 + within) * step
    }
}

/// The `q` quantile of sorted values, linearly interpolated (NumPy's default).
fn sorted_quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
}

/// Mean and standard deviation that put a score on the training scores' scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Standardise {
    /// Mean of the training scores.
    pub mean: f64,
    /// Their standard deviation (1 when they do not vary).
    pub std: f64,
}

impl Standardise {
    fn of(scores: &[f64]) -> Standardise {
        let d = ScoreDistribution::of(scores);
        Standardise {
            mean: d.mean,
            std: if d.std > 0.0 { d.std } else { 1.0 },
        }
    }

    fn apply(&self, score: f64) -> f64 {
        (score - self.mean) / self.std
    }
}

/// A fitted detector, as stored in the run's `anomaly.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetector {
    /// The score and its settings.
    pub score: ScoreSettings,
    /// The rule the threshold came from (`contamination:0.05`, `quantile:0.99`, `auto`).
    pub threshold_rule: String,
    /// Samples scoring above it are flagged.
    pub threshold: f64,
    /// What it was fitted on.
    pub fitted_on: String,
    /// Which of the run's weights (`best` or `final`).
    pub weights: String,
    /// The training scores' distribution.
    pub training: ScoreDistribution,
    /// The Gaussian of the training codes (Mahalanobis and combined scores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_gaussian: Option<CodeGaussian>,
    /// Combined scores: how the loss and the Mahalanobis distance are standardised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combine: Option<[Standardise; 2]>,
}

/// What scoring decides about each sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The scores.
    pub scores: Vec<f64>,
    /// Score above the threshold.
    pub flags: Vec<bool>,
    /// `(score - min) / (max - min)` over the training scores, clipped to [0, 1].
    pub probability_linear: Vec<f64>,
    /// `erf((score - mean) / (std sqrt 2))` over the training scores, clipped to [0, 1].
    pub probability_unify: Vec<f64>,
    /// The fraction of training scores at or below the score.
    pub percentile: Vec<f64>,
}

/// Fits a detector to normal samples `data` (prepared for `model`); returns it and the
/// training scores it was fitted to.
pub fn fit(
    model: &TrainedModel,
    data: &Dataset,
    settings: ScoreSettings,
    rule: ThresholdRule,
) -> Result<(AnomalyDetector, Vec<f64>)> {
    check_settings(model, settings)?;
    if data.len() < 2 {
        return Err(Error::data(
            &data.name,
            "fitting a detector needs at least two normal samples",
        ));
    }
    let needs_codes = matches!(settings.kind, ScoreKind::Mahalanobis | ScoreKind::Combined);
    let code_gaussian = if needs_codes {
        Some(CodeGaussian::fit(
            &model.encode(&data.values)?,
            model.code_len(),
        )?)
    } else {
        None
    };
    let mut detector = AnomalyDetector {
        score: settings,
        threshold_rule: rule.to_string(),
        threshold: f64::INFINITY,
        fitted_on: data.name.clone(),
        weights: model
            .weights_path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        training: ScoreDistribution::of(&[]),
        code_gaussian,
        combine: None,
    };
    let scores = if settings.kind == ScoreKind::Combined {
        let [loss, code] = detector.score_parts(model, data)?;
        let combine = [Standardise::of(&loss), Standardise::of(&code)];
        detector.combine = Some(combine);
        combined(&loss, &code, combine)
    } else {
        detector.scores(model, data)?
    };
    check_finite(&scores, data)?;
    detector.training = ScoreDistribution::of(&scores);
    detector.threshold = threshold(&scores, rule);
    Ok((detector, scores))
}

/// The combined score: the loss and the Mahalanobis distance, each standardised.
fn combined(loss: &[f64], code: &[f64], [a, b]: [Standardise; 2]) -> Vec<f64> {
    loss.iter()
        .zip(code)
        .map(|(&l, &c)| a.apply(l) + b.apply(c))
        .collect()
}

/// The threshold `rule` sets on training scores.
pub fn threshold(scores: &[f64], rule: ThresholdRule) -> f64 {
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    match rule {
        ThresholdRule::Contamination(c) => sorted_quantile(&sorted, 1.0 - c),
        ThresholdRule::Quantile(q) => sorted_quantile(&sorted, q),
        ThresholdRule::Auto => {
            let positive = sorted.first().is_some_and(|&s| s > 0.0);
            let values: Vec<f64> = if positive {
                sorted.iter().map(|s| s.ln()).collect()
            } else {
                sorted.clone()
            };
            let median = sorted_quantile(&values, 0.5);
            let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
            deviations.sort_by(f64::total_cmp);
            let spread = 1.4826 * sorted_quantile(&deviations, 0.5);
            let cut = median + 3.0 * spread;
            if positive { cut.exp() } else { cut }
        }
    }
}

fn check_settings(model: &TrainedModel, settings: ScoreSettings) -> Result<()> {
    if settings.kind == ScoreKind::Iw && !model.is_variational() {
        return Err(Error::Unsupported(format!(
            "--score iw needs a variational model (kind = \"vae\"); this run's model is `{}`",
            model.kind()
        )));
    }
    if settings.kind == ScoreKind::Iw && settings.iw_samples == 0 {
        return Err(Error::Input("--iw must be at least 1".into()));
    }
    Ok(())
}

fn check_finite(scores: &[f64], data: &Dataset) -> Result<()> {
    match scores.iter().position(|s| !s.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::data(
            data.paths.get(i).unwrap_or(&PathBuf::from(&data.name)),
            format!(
                "sample {i} scores {}: the model's output is not finite for it",
                scores[i]
            ),
        )),
    }
}

impl AnomalyDetector {
    /// The scores of `data`'s samples (prepared for `model`).
    pub fn scores(&self, model: &TrainedModel, data: &Dataset) -> Result<Vec<f64>> {
        check_settings(model, self.score)?;
        let scores = match self.score.kind {
            ScoreKind::Mahalanobis => self.mahalanobis(model, data)?,
            ScoreKind::Combined => {
                let [loss, code] = self.score_parts(model, data)?;
                let combine = self.combine.ok_or_else(|| {
                    Error::Input("a combined detector without its standardisation".into())
                })?;
                combined(&loss, &code, combine)
            }
            kind => reconstruction_scores(model, &data.values, kind, self.score)?,
        };
        Ok(scores)
    }

    /// The two parts of a combined score: the loss and the Mahalanobis distance.
    fn score_parts(&self, model: &TrainedModel, data: &Dataset) -> Result<[Vec<f64>; 2]> {
        Ok([
            reconstruction_scores(model, &data.values, ScoreKind::Loss, self.score)?,
            self.mahalanobis(model, data)?,
        ])
    }

    fn mahalanobis(&self, model: &TrainedModel, data: &Dataset) -> Result<Vec<f64>> {
        let gaussian = self.code_gaussian.as_ref().ok_or_else(|| {
            Error::Input("a code-space detector without its code Gaussian".into())
        })?;
        if gaussian.mean.len() != model.code_len() {
            return Err(Error::Input(format!(
                "the detector's codes have {} values, the model's {}: fit it again",
                gaussian.mean.len(),
                model.code_len()
            )));
        }
        Ok(gaussian.mahalanobis(&model.encode(&data.values)?))
    }

    /// Flags and probabilities for `scores`.
    pub fn judge(&self, scores: Vec<f64>) -> Judgement {
        let t = &self.training;
        let range = t.max - t.min;
        let std = if t.std > 0.0 { t.std } else { 1.0 };
        Judgement {
            flags: scores.iter().map(|&s| s > self.threshold).collect(),
            probability_linear: scores
                .iter()
                .map(|&s| {
                    if range > 0.0 {
                        ((s - t.min) / range).clamp(0.0, 1.0)
                    } else {
                        f64::from(u8::from(s > t.max))
                    }
                })
                .collect(),
            probability_unify: scores
                .iter()
                .map(|&s| erf((s - t.mean) / (std * std::f64::consts::SQRT_2)).clamp(0.0, 1.0))
                .collect(),
            percentile: scores.iter().map(|&s| t.percentile(s)).collect(),
            scores,
        }
    }

    /// The detector's file in `run`.
    pub fn path(run: &RunDir) -> PathBuf {
        run.path().join(DETECTOR_FILE)
    }

    /// Writes the detector into `run` (atomically).
    pub fn save(&self, run: &RunDir) -> Result<()> {
        run_dir::write_json(&Self::path(run), self)
    }

    /// Reads the detector of `run`; a clear message when it has not been fitted.
    pub fn load(run: &RunDir) -> Result<AnomalyDetector> {
        let path = Self::path(run);
        if !path.exists() {
            return Err(Error::data(
                run.path(),
                format!(
                    "has no anomaly detector ({DETECTOR_FILE}); fit one first: `aekit anomaly \
                     fit {}`",
                    run.path().display()
                ),
            ));
        }
        run_dir::read_json(&path)
    }
}

/// Reconstruction-based scores of `values` (prepared for `model`).
fn reconstruction_scores(
    model: &TrainedModel,
    values: &[f32],
    kind: ScoreKind,
    settings: ScoreSettings,
) -> Result<Vec<f64>> {
    match kind {
        ScoreKind::Loss => model.sample_scores(values, settings.seed),
        ScoreKind::Iw => model.importance_weighted_nll(values, settings.iw_samples, settings.seed),
        ScoreKind::Mse => model.reconstruction_errors(values, ReconstructionLoss::Mse),
        ScoreKind::L1 => model.reconstruction_errors(values, ReconstructionLoss::L1),
        ScoreKind::Bce => model.reconstruction_errors(values, ReconstructionLoss::Bce),
        ScoreKind::Mahalanobis | ScoreKind::Combined => Err(Error::Input(format!(
            "{kind} is not a reconstruction score"
        ))),
    }
}

/// The squared error of every value of every sample (prepared for `model`): per-pixel error
/// maps for images, per-feature contributions for tables (in the model's units, so that a
/// standardised table's columns count alike).
pub fn value_errors(model: &TrainedModel, values: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    let outputs = model.reconstruct(values)?;
    let errors = values
        .iter()
        .zip(&outputs)
        .map(|(x, y)| (x - y) * (x - y))
        .collect();
    Ok((outputs, errors))
}

/// Which samples are the anomalies, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// The classes the run did not train on (its `train_classes`/`exclude_classes`).
    NotTrainedOn,
    /// These classes.
    Classes(Vec<ClassRef>),
}

/// Whether each sample of `data` is an anomaly under `truth`; an error for unlabelled data,
/// or for [`Truth::NotTrainedOn`] when the run trained on every class.
pub fn anomalous(model: &TrainedModel, data: &Dataset, truth: &Truth) -> Result<Vec<bool>> {
    let source = Path::new(&data.name);
    let Some(labels) = &data.labels else {
        return Err(Error::data(
            source,
            "has no labels, so there is nothing to measure the scores against (metrics need \
             labelled data: class sub-folders, an IDX label file or a label column)",
        ));
    };
    let normal = match truth {
        Truth::NotTrainedOn => {
            let filter = model.config().data.class_filter().ok_or_else(|| {
                Error::Input(
                    "the run trained on every class, so no class is anomalous by the one-class \
                     protocol; name the anomalous ones with --anomaly-classes"
                        .into(),
                )
            })?;
            filter
                .kept_labels(data)
                .map_err(|message| Error::data(source, message))?
        }
        Truth::Classes(classes) => {
            ClassFilter::Exclude(classes)
                .kept_labels(data)
                .map_err(|message| {
                    Error::data(
                        source,
                        message.replace("`data.exclude_classes`", "--anomaly-classes"),
                    )
                })?
        }
    };
    Ok(labels.iter().map(|&l| !normal[l as usize]).collect())
}

/// How well the scores separate the anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    /// Samples scored.
    pub samples: usize,
    /// Of which anomalies.
    pub anomalies: usize,
    /// Area under the ROC curve (`None` when only one class occurs).
    pub auroc: Option<f64>,
    /// Average precision (`None` without anomalies).
    pub average_precision: Option<f64>,
    /// Flags against the truth.
    pub confusion: Confusion,
    /// Precision at the threshold.
    pub precision: f64,
    /// Recall at the threshold.
    pub recall: f64,
    /// F1 at the threshold.
    pub f1: f64,
}

/// The report of `judgement` against `anomalous`.
pub fn report(judgement: &Judgement, anomalous: &[bool]) -> DetectionReport {
    let confusion = Confusion::count(&judgement.flags, anomalous);
    DetectionReport {
        samples: anomalous.len(),
        anomalies: anomalous.iter().filter(|&&a| a).count(),
        auroc: detection::auroc(&judgement.scores, anomalous),
        average_precision: detection::average_precision(&judgement.scores, anomalous),
        confusion,
        precision: confusion.precision(),
        recall: confusion.recall(),
        f1: confusion.f1(),
    }
}

impl std::fmt::Display for DetectionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "samples:  {} ({} anomalous, {} normal)",
            self.samples,
            self.anomalies,
            self.samples - self.anomalies
        )?;
        match self.auroc {
            Some(auc) => writeln!(f, "AUROC:    {:.2}", 100.0 * auc)?,
            None => writeln!(
                f,
                "AUROC:    undefined: only {} samples occur",
                if self.anomalies == 0 {
                    "normal"
                } else {
                    "anomalous"
                }
            )?,
        }
        match self.average_precision {
            Some(ap) => writeln!(f, "AP:       {:.2}", 100.0 * ap)?,
            None => writeln!(f, "AP:       undefined: no anomalies occur")?,
        }
        let c = &self.confusion;
        writeln!(
            f,
            "at the threshold: precision {:.3}, recall {:.3}, F1 {:.3}",
            self.precision, self.recall, self.f1
        )?;
        write!(
            f,
            "flagged: {} anomalies and {} normal; not flagged: {} normal and {} anomalies",
            c.true_positives, c.false_positives, c.true_negatives, c.false_negatives
        )
    }
}

/// The scores as CSV: per sample its index, id (file path, else index), label (class name,
/// when labelled), score, flag, both probabilities and the training percentile; for tables
/// also the features with the largest shares of the squared error (`f3:0.61;f0:0.20`).
pub fn scores_csv(data: &Dataset, judgement: &Judgement, feature_errors: Option<&[f32]>) -> String {
    let mut text = String::from("index,id,label,score,flagged,p_linear,p_unify,percentile");
    if feature_errors.is_some() {
        text.push_str(",top_features");
    }
    text.push('\n');
    let width = data.shape.len().max(1);
    for i in 0..judgement.scores.len() {
        let id = data
            .paths
            .get(i)
            .map(|p| csv_field(&p.display().to_string()))
            .unwrap_or_else(|| i.to_string());
        let label = data
            .labels
            .as_ref()
            .map(|labels| {
                let l = labels[i] as usize;
                csv_field(data.class_names.get(l).map_or(&l.to_string(), |n| n))
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "{i},{id},{label},{},{},{:.6},{:.6},{:.6}",
            judgement.scores[i],
            u8::from(judgement.flags[i]),
            judgement.probability_linear[i],
            judgement.probability_unify[i],
            judgement.percentile[i]
        ));
        if let Some(errors) = feature_errors {
            text.push(',');
            text.push_str(&top_features(&errors[i * width..(i + 1) * width], 3));
        }
        text.push('\n');
    }
    text
}

/// The `count` features with the largest shares of a row's squared error, `f3:0.61;...`.
fn top_features(errors: &[f32], count: usize) -> String {
    let total: f32 = errors.iter().sum();
    let mut order: Vec<usize> = (0..errors.len()).collect();
    order.sort_by(|&a, &b| errors[b].total_cmp(&errors[a]));
    order
        .iter()
        .take(count)
        .map(|&j| format!("f{j}:{:.2}", errors[j] / total.max(f32::MIN_POSITIVE)))
        .collect::<Vec<_>>()
        .join(";")
}

/// Per sample, each feature's share of its squared error, as CSV (`index,f0,f1,...`).
pub fn contributions_csv(errors: &[f32], width: usize) -> String {
    let mut text = String::from("index");
    for j in 0..width {
        text.push_str(&format!(",f{j}"));
    }
    text.push('\n');
    for (i, row) in errors.chunks(width.max(1)).enumerate() {
        let total: f32 = row.iter().sum::<f32>().max(f32::MIN_POSITIVE);
        text.push_str(&i.to_string());
        for v in row {
            text.push_str(&format!(",{:.5}", v / total));
        }
        text.push('\n');
    }
    text
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The indices of the `count` highest and the `count` lowest scores.
pub fn extremes(scores: &[f64], count: usize) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let most = order.iter().take(count).copied().collect();
    let least = order.iter().rev().take(count).copied().collect();
    (most, least)
}

/// A picture explaining flagged images: the samples at `indices` (row 1), their
/// reconstructions (row 2) and their per-pixel squared error as a heat map (row 3: black
/// none, through red, to yellow and white at the largest error among them).
pub fn error_map_picture(
    path: &Path,
    data: &Dataset,
    outputs: &[f32],
    errors: &[f32],
    indices: &[usize],
) -> Result<()> {
    let shape = data.shape;
    let n = shape.len();
    let (h, w) = (shape.height, shape.width);
    let pixels = h * w;
    let peak = indices
        .iter()
        .flat_map(|&i| errors[i * n..(i + 1) * n].iter().copied())
        .fold(0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    let rgb = crate::data::SampleShape::image(3, h, w);
    let as_rgb = |values: &[f32]| -> Vec<f32> {
        if shape.channels >= 3 {
            values.to_vec()
        } else {
            let mut out = Vec::with_capacity(3 * pixels);
            for _ in 0..3 {
                out.extend_from_slice(&values[..pixels]);
            }
            out
        }
    };
    let (mut originals, mut reconstructions, mut maps) = (Vec::new(), Vec::new(), Vec::new());
    for &i in indices {
        originals.extend(as_rgb(data.sample(i)));
        reconstructions.extend(as_rgb(&outputs[i * n..(i + 1) * n]));
        // The error of a pixel: summed over its channels.
        let heat: Vec<f32> = (0..pixels)
            .map(|p| {
                (0..shape.channels)
                    .map(|c| errors[i * n + c * pixels + p])
                    .sum::<f32>()
                    / peak
            })
            .collect();
        let mut map = vec![0f32; 3 * pixels];
        for (p, &t) in heat.iter().enumerate() {
            let t = t.clamp(0.0, 1.0);
            map[p] = (3.0 * t).min(1.0);
            map[pixels + p] = (3.0 * t - 1.0).clamp(0.0, 1.0);
            map[2 * pixels + p] = (3.0 * t - 2.0).clamp(0.0, 1.0);
        }
        maps.extend(map);
    }
    crate::plots::image_grid(
        path,
        rgb,
        &[&originals, &reconstructions, &maps],
        indices.len().max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_rules_parse_and_refuse_what_is_outside_zero_one() {
        assert_eq!(
            "contamination:0.05".parse::<ThresholdRule>(),
            Ok(ThresholdRule::Contamination(0.05))
        );
        assert_eq!(
            "quantile:0.99".parse::<ThresholdRule>(),
            Ok(ThresholdRule::Quantile(0.99))
        );
        assert_eq!("auto".parse::<ThresholdRule>(), Ok(ThresholdRule::Auto));
        for bad in [
            "contamination:0",
            "quantile:1",
            "quantile:-0.5",
            "quantile:x",
            "q:0.5",
            "0.5",
        ] {
            let err = bad.parse::<ThresholdRule>().unwrap_err();
            assert!(err.contains(bad.split(':').next().unwrap()), "{bad}: {err}");
        }
    }

    #[test]
    fn thresholds_and_percentiles_of_training_scores() {
        let scores: Vec<f64> = (1..=100).map(f64::from).collect();
        // NumPy: np.quantile(1..100, 0.95) = 95.05.
        let t = threshold(&scores, ThresholdRule::Contamination(0.05));
        assert!((t - 95.05).abs() < 1e-9, "{t}");
        assert!((threshold(&scores, ThresholdRule::Quantile(0.5)) - 50.5).abs() < 1e-9);
        let distribution = ScoreDistribution::of(&scores);
        assert_eq!((distribution.min, distribution.max), (1.0, 100.0));
        assert!((distribution.percentile(50.5) - 0.5).abs() < 1e-3);
        assert_eq!(distribution.percentile(0.0), 0.0);
        assert_eq!(distribution.percentile(1e9), 1.0);
        // Auto on log-normal-like scores: above the bulk, below the largest outlier.
        let mut skewed: Vec<f64> = (0..1000).map(|i| (f64::from(i) / 500.0).exp()).collect();
        skewed.push(1e4);
        let auto = threshold(&skewed, ThresholdRule::Auto);
        assert!(auto > 7.0 && auto < 1e4, "{auto}");
    }

    #[test]
    fn probabilities_follow_the_training_scores() {
        let detector = AnomalyDetector {
            score: ScoreSettings::default(),
            threshold_rule: "quantile:0.5".into(),
            threshold: 2.0,
            fitted_on: "toy".into(),
            weights: "model-best.bpk".into(),
            training: ScoreDistribution::of(&[1.0, 2.0, 3.0]),
            code_gaussian: None,
            combine: None,
        };
        let j = detector.judge(vec![0.0, 2.0, 3.0, 10.0]);
        assert_eq!(j.flags, vec![false, false, true, true]);
        assert_eq!(j.probability_linear, vec![0.0, 0.5, 1.0, 1.0]);
        // unify: erf((s - mean) / (std sqrt 2)), 0 at and below the mean.
        assert_eq!(j.probability_unify[1], 0.0);
        assert!(j.probability_unify[3] > 0.99 && j.probability_unify[2] > 0.5);
    }
}
