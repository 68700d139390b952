//! Evaluation: reconstruction metrics (loss, MSE, BCE, PSNR) of a model on a data set, and
//! `aekit eval` on a run directory.

use crate::data::{self, Dataset};
use crate::device::DeviceChoice;
use crate::error::Result;
use crate::loss::{ReconstructionMetrics, ReconstructionTotals, psnr_db};
use crate::models::corruption::CorruptionConfig;
use crate::models::{Autoencoder, LossSettings};
use crate::run_dir::{self, WeightsChoice};
use crate::trained::TrainedModel;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Samples given as consecutive rows of `width` values, as a `[rows, width]` tensor.
pub fn rows_tensor(values: Vec<f32>, width: usize, device: &Device) -> Tensor<2> {
    let rows = values.len() / width.max(1);
    Tensor::<2>::from_data(TensorData::new(values, [rows, width]), device)
}

/// `data` in consecutive batches of at most `batch` samples: each batch's sample range and
/// its samples as a tensor on `device`.
pub fn batches<'a>(
    data: &'a Dataset,
    batch: usize,
    device: &'a Device,
) -> impl Iterator<Item = (std::ops::Range<usize>, Tensor<2>)> + 'a {
    let n = data.shape.len();
    (0..data.len()).step_by(batch.max(1)).map(move |start| {
        let end = (start + batch.max(1)).min(data.len());
        let x = rows_tensor(data.values[start * n..end * n].to_vec(), n, device);
        (start..end, x)
    })
}

/// Reconstruction metrics of `model` (on a plain device) over all of `data`.
pub fn evaluate(
    model: &Autoencoder,
    data: &Dataset,
    device: &Device,
    batch: usize,
) -> ReconstructionMetrics {
    let mut totals = ReconstructionTotals::default();
    let output = model.output_activation();
    for (range, x) in batches(data, batch, device) {
        let logits = model.forward(x.clone()).logits;
        let target = match data.target_rows(range.start, range.end) {
            Some((rows, width)) => rows_tensor(rows, width, device),
            None => x,
        };
        totals.add_batch(logits, target, output);
    }
    totals.metrics()
}

/// The seed of the random draws of a validation pass.
pub const VALIDATION_SEED: u64 = 0x5A11_DA7E;

/// The mean training loss of `model` (on a plain device) over `data`, and the means of its
/// parts by name (empty when the loss is the reconstruction alone). No corruption applied.
pub fn validation_loss(
    model: &Autoencoder,
    data: &Dataset,
    device: &Device,
    batch: usize,
    settings: &LossSettings,
) -> (f64, Vec<(String, f64)>) {
    // The network loss of a model without heads: its own loss parts, nothing added.
    let settings = crate::models::heads::NetworkSettings {
        loss: settings,
        reconstruction_weight: 1.0,
        specs: &[],
        freeze_encoder: false,
        epoch: None,
    };
    let no_heads = crate::models::heads::Heads { heads: Vec::new() };
    let (loss, terms, _) = crate::models::heads::validate_network(
        (model, &no_heads),
        (data, &[]),
        device,
        batch,
        &settings,
    );
    (loss, terms)
}

/// What `aekit eval` reports and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// The run evaluated.
    pub run: PathBuf,
    /// Which samples: `validation` (the run's own validation split) or a path.
    pub data: String,
    /// The weight file evaluated.
    #[serde(default)]
    pub weights: String,
    /// The training loss's name.
    pub loss_name: String,
    /// The training loss's value on these samples (its full objective: for a VAE the
    /// negative ELBO with the final KL weight), as the validation pass computes it.
    pub loss: f64,
    /// All metrics.
    pub metrics: ReconstructionMetrics,
    /// Statistics of the code on these samples.
    pub code: CodeStats,
    /// For denoising models: how much cleaner the reconstructions of corrupted inputs are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denoising: Option<DenoisingReport>,
    /// For table rows: reconstruction error in the data's original units (the metrics that
    /// mean something for unbounded values; BCE and PSNR assume values in [0, 1]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableMetrics>,
    /// With `--noise`: PSNR and SSIM of noisy inputs and their reconstructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::apps::denoise::NoiseReport>,
    /// For VAEs with `--iw-samples k`: the importance-weighted estimate of `-log p(x)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iw_nll: Option<ImportanceWeightedNll>,
    /// For models with heads: each head's accuracy and confusion matrix, or MAE and RMSE,
    /// on these samples (heads whose target the samples lack are left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heads: Vec<crate::models::heads::HeadMetrics>,
    /// For image-to-image models: the outputs against the targets (PSNR and SSIM beside the
    /// input's, or pixel accuracy and IoU for segmentation). The reconstruction metrics
    /// above are then the outputs against the targets too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<crate::apps::image_to_image::PairMetrics>,
}

/// Reconstruction error of table rows, in the original units of the data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TableMetrics {
    /// Mean squared error per value.
    pub mse: f64,
    /// Mean absolute error per value.
    pub mae: f64,
    /// Coefficient of determination, the mean over columns of each column's
    /// `1 - SSE / SST` (scikit-learn's `r2_score` default), so that every column counts
    /// alike whatever its units; constant columns are left out.
    pub r2: f64,
    /// `1 - SSE / SST` over all values: the fraction of the table's total variance the
    /// reconstructions explain, dominated by the columns of largest spread.
    pub explained_variance: f64,
}

/// [`TableMetrics`] of the model's reconstructions of `data` (model-space rows, scaled as
/// the run scales its data), both mapped back to the original units first.
pub fn table_metrics(model: &TrainedModel, data: &Dataset) -> Result<TableMetrics> {
    let mut clean = data.values.clone();
    let mut outputs = model.reconstruct(&data.values)?;
    if let Some(scaler) = model.scaler() {
        scaler.invert(&mut clean);
        scaler.invert(&mut outputs);
    }
    Ok(TableMetrics::between(&clean, &outputs, data.shape.len()))
}

impl TableMetrics {
    /// The metrics of the rows `outputs` as reconstructions of `clean` (row-major, `width`
    /// values a row, in the units to report).
    pub fn between(clean: &[f32], outputs: &[f32], width: usize) -> TableMetrics {
        let width = width.max(1);
        let rows = (clean.len() / width).max(1) as f64;
        let mut means = vec![0.0f64; width];
        for row in clean.chunks(width) {
            for (m, &v) in means.iter_mut().zip(row) {
                *m += f64::from(v) / rows;
            }
        }
        let (mut sse, mut sst) = (vec![0.0f64; width], vec![0.0f64; width]);
        let mut sae = 0.0f64;
        for (i, (&x, &y)) in clean.iter().zip(outputs).enumerate() {
            let d = f64::from(x) - f64::from(y);
            sse[i % width] += d * d;
            sae += d.abs();
            sst[i % width] += (f64::from(x) - means[i % width]).powi(2);
        }
        let count = clean.len().max(1) as f64;
        let per_column: Vec<f64> = sse
            .iter()
            .zip(&sst)
            .filter(|(_, t)| **t > 0.0)
            .map(|(e, t)| 1.0 - e / t)
            .collect();
        let (total_sse, total_sst) = (sse.iter().sum::<f64>(), sst.iter().sum::<f64>());
        TableMetrics {
            mse: total_sse / count,
            mae: sae / count,
            r2: if per_column.is_empty() {
                f64::NAN
            } else {
                per_column.iter().sum::<f64>() / per_column.len() as f64
            },
            explained_variance: if total_sst > 0.0 {
                1.0 - total_sse / total_sst
            } else {
                f64::NAN
            },
        }
    }
}

impl std::fmt::Display for TableMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "MSE:      {:.6} per value (original units)", self.mse)?;
        writeln!(f, "MAE:      {:.6} per value (original units)", self.mae)?;
        writeln!(f, "R^2:      {:.4} (mean over columns)", self.r2)?;
        write!(
            f,
            "explained variance: {:.4} (all values; BCE and PSNR are left out: they assume \
             values in [0, 1])",
            self.explained_variance
        )
    }
}

/// The importance-weighted estimate of the negative log-likelihood (nats per sample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImportanceWeightedNll {
    /// Importance samples per data sample.
    pub k: usize,
    /// Data samples it was computed on.
    pub samples: usize,
    /// Mean estimate of `-log p(x)` in nats.
    pub nll: f64,
}

/// Statistics of a model's code over a data set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CodeStats {
    /// Code units.
    pub units: usize,
    /// Mean code value over samples and units.
    pub mean_activation: f64,
    /// Fraction of (sample, unit) code values whose magnitude exceeds 1e-3 ("active").
    pub active_fraction: f64,
    /// Mean over samples of the encoder Jacobian's squared Frobenius norm `||J_f(x)||_F^2`
    /// (exact for one-layer encoders, else estimated), on at most 1000 samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jacobian_norm: Option<f64>,
}

/// PSNR of corrupted inputs and of the model's reconstructions of them, against the clean
/// samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DenoisingReport {
    /// Mean per-sample PSNR of the corrupted inputs (dB).
    pub noisy_psnr: f64,
    /// Mean per-sample PSNR of the reconstructions of the corrupted inputs (dB).
    pub denoised_psnr: f64,
}

/// Code statistics of `model` over `data`.
pub fn code_stats(model: &Autoencoder, data: &Dataset, device: &Device, batch: usize) -> CodeStats {
    let (mut sum, mut active, mut count, mut units) = (0.0f64, 0usize, 0usize, 0usize);
    for (range, x) in batches(data, batch, device) {
        let code = model
            .encode(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        units = code.len() / range.len().max(1);
        sum += code.iter().map(|&v| v as f64).sum::<f64>();
        active += code.iter().filter(|v| v.abs() > 1e-3).count();
        count += code.len();
    }
    let jacobian_norm = {
        let subset = data.take(1000);
        let x = rows_tensor(subset.values, data.shape.len(), device);
        model
            .jacobian_norm(x)
            .map(|t| t.into_scalar::<f32>() as f64)
    };
    CodeStats {
        units,
        mean_activation: sum / count.max(1) as f64,
        active_fraction: active as f64 / count.max(1) as f64,
        jacobian_norm,
    }
}

/// PSNR before and after denoising `data` corrupted by `corruption` (seeded, so repeatable).
pub fn denoising_report(
    model: &Autoencoder,
    data: &Dataset,
    corruption: &CorruptionConfig,
    device: &Device,
    batch: usize,
) -> DenoisingReport {
    let n = data.shape.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (mut noisy_psnr, mut denoised_psnr) = (0.0, 0.0);
    let per_sample = |a: &[f32], b: &[f32]| -> f64 {
        let mse = a
            .iter()
            .zip(b)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            / n as f64;
        psnr_db(mse)
    };
    for start in (0..data.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(data.len());
        let clean = &data.values[start * n..end * n];
        let noisy = corruption.corrupted(clean, &mut rng);
        let x = rows_tensor(noisy.clone(), n, device);
        let denoised = model
            .reconstruct_in_row_blocks(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        for i in 0..end - start {
            let range = i * n..(i + 1) * n;
            noisy_psnr += per_sample(&noisy[range.clone()], &clean[range.clone()]);
            denoised_psnr += per_sample(&denoised[range.clone()], &clean[range]);
        }
    }
    let count = data.len().max(1) as f64;
    DenoisingReport {
        noisy_psnr: noisy_psnr / count,
        denoised_psnr: denoised_psnr / count,
    }
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.metrics;
        writeln!(f, "run:      {}", self.run.display())?;
        writeln!(f, "data:     {} ({} samples)", self.data, m.samples)?;
        writeln!(f, "weights:  {}", self.weights)?;
        writeln!(f, "loss:     {:.6} ({})", self.loss, self.loss_name)?;
        if let Some(t) = &self.table {
            write!(f, "{t}")?;
        } else if let Some(pairs @ crate::apps::image_to_image::PairMetrics::Segmentation { .. }) =
            &self.pairs
        {
            write!(f, "{pairs}")?;
        } else {
            writeln!(
                f,
                "MSE:      {:.6} per value, {:.4} per sample",
                m.mse, m.squared_error_per_sample
            )?;
            writeln!(f, "BCE:      {:.6} per value", m.bce)?;
            write!(f, "PSNR:     {:.2} dB", m.psnr)?;
            if let Some(pairs) = &self.pairs {
                write!(f, "\n{pairs}")?;
            }
        }
        let c = &self.code;
        write!(
            f,
            "\ncode:     {} units, mean activation {:.4}, {:.1}% active",
            c.units,
            c.mean_activation,
            100.0 * c.active_fraction
        )?;
        if let Some(j) = c.jacobian_norm {
            write!(f, "\nJacobian: mean ||J_f(x)||_F^2 = {j:.4}")?;
        }
        if let Some(iw) = &self.iw_nll {
            write!(
                f,
                "\nIW NLL:   {:.2} nats (k = {}, {} samples)",
                iw.nll, iw.k, iw.samples
            )?;
        }
        if let Some(n) = &self.noise {
            write!(f, "\n{n}")?;
        }
        for head in &self.heads {
            match head {
                crate::models::heads::HeadMetrics::Class {
                    name,
                    samples,
                    accuracy,
                    ..
                } => write!(
                    f,
                    "\nhead {name}: accuracy {:.2}% ({samples} samples)",
                    100.0 * accuracy
                )?,
                crate::models::heads::HeadMetrics::Regression {
                    name,
                    samples,
                    mae,
                    rmse,
                } => write!(
                    f,
                    "\nhead {name}: MAE {mae:.4}, RMSE {rmse:.4} ({samples} samples)"
                )?,
            }
        }
        if let Some(d) = &self.denoising {
            write!(
                f,
                "\ndenoising: corrupted inputs {:.2} dB -> reconstructions {:.2} dB (+{:.2} dB)",
                d.noisy_psnr,
                d.denoised_psnr,
                d.denoised_psnr - d.noisy_psnr
            )?;
        }
        Ok(())
    }
}

/// What `aekit eval` is asked to do beyond the run's own validation split.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Evaluate on these samples (their test split when they have one).
    pub data: Option<PathBuf>,
    /// Resize images of another size to the model's (else they are refused).
    pub resize: bool,
    /// For VAEs: the importance-weighted NLL with `k` samples on at most `limit` samples.
    pub iw: Option<(usize, usize)>,
    /// Also corrupt the samples with this noise and report PSNR and SSIM of the noisy
    /// inputs and of their reconstructions against the clean samples.
    pub noise: Option<CorruptionConfig>,
    /// Seed of every random draw (noise, a VAE's codes).
    pub seed: u64,
    /// Which weights to evaluate.
    pub weights: WeightsChoice,
    /// Where to compute.
    pub device: DeviceChoice,
}

/// Evaluates a run's model on its validation split, or on the samples at `options.data`,
/// and writes the report into the run directory: `eval.json` for the validation split,
/// `eval-<data name>.json` for other data (so no report replaces another's).
pub fn evaluate_run(run_path: &Path, options: &EvalOptions) -> Result<EvalReport> {
    let trained = TrainedModel::open(run_path, options.device, options.weights)?;
    evaluate_trained(&trained, options)
}

/// [`evaluate_run`] for a run already open (its `weights` and `device` options are the ones
/// it was opened with).
pub fn evaluate_trained(trained: &TrainedModel, options: &EvalOptions) -> Result<EvalReport> {
    let (data, label) = match &options.data {
        None => (trained.validation_data()?, "validation split".to_string()),
        Some(path) => (
            trained.load_data(path, options.resize)?,
            path.display().to_string(),
        ),
    };
    data::check_usable(&data, "evaluation")?;
    let model = trained.model();
    let plain = trained.device();
    let config = trained.config();
    let metrics = evaluate(model, &data, plain, 1000);
    let iw_nll = match options.iw {
        None => None,
        Some((k, limit)) => {
            let subset = data.take(limit);
            let nll = trained.importance_weighted_nll(&subset.values, k, options.seed)?;
            Some(ImportanceWeightedNll {
                k,
                samples: subset.len(),
                nll: nll.iter().sum::<f64>() / subset.len().max(1) as f64,
            })
        }
    };
    let noise = match &options.noise {
        Some(noise) => Some(crate::apps::denoise::noise_report(
            trained,
            &data,
            noise,
            options.seed,
        )?),
        None => None,
    };
    let report = EvalReport {
        run: trained.run().path().to_path_buf(),
        data: label,
        weights: trained.weights_path().display().to_string(),
        loss_name: loss_name(config),
        loss: trained.validation_loss(&data),
        metrics,
        table: if data.shape.is_image() {
            None
        } else {
            Some(table_metrics(trained, &data)?)
        },
        code: code_stats(model, &data, plain, 1000),
        denoising: config
            .model
            .corruption()
            .map(|c| denoising_report(model, &data, c, plain, 1000)),
        noise,
        iw_nll,
        heads: trained.head_metrics(&data)?,
        pairs: crate::apps::image_to_image::pair_metrics(trained, &data)?,
    };
    let name = match &options.data {
        None => "eval.json".to_string(),
        Some(path) => format!("eval-{}.json", report_name(path)),
    };
    run_dir::write_json(&trained.run().path().join(name), &report)?;
    Ok(report)
}

/// What the training loss is called in reports and plots: a VAE's is its negative ELBO.
pub fn loss_name(config: &crate::config::RunConfig) -> String {
    if let Ok(Some(source)) = config.data.pair_source()
        && source.is_segmentation()
    {
        return "per-pixel cross-entropy".into();
    }
    if !config.model.heads().is_empty() {
        return format!(
            "total loss ({} reconstruction x {} + the heads' weighted losses)",
            config.train.loss.name(),
            config.model.reconstruction_weight()
        );
    }
    match &config.model {
        crate::models::ModelConfig::Vae(_) => format!(
            "negative ELBO, nats per sample ({} likelihood)",
            config.train.loss.name()
        ),
        _ => format!("{} loss", config.train.loss.name()),
    }
}

/// A file-name-safe name for a data path: its last component(s), other characters as `_`.
fn report_name(path: &Path) -> String {
    let text: String = path
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("-");
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_r2_averages_the_columns_and_explained_variance_pools_them() {
        // Column 0 (spread 1) reconstructed exactly, column 1 (spread 100) by its mean;
        // column 2 is constant and left out of R^2.
        let clean = [0.0, 100.0, 5.0, 2.0, 300.0, 5.0];
        let outputs = [0.0, 200.0, 5.0, 2.0, 200.0, 5.0];
        let m = TableMetrics::between(&clean, &outputs, 3);
        assert!((m.mse - 20_000.0 / 6.0).abs() < 1e-9, "{m:?}");
        assert!((m.mae - 200.0 / 6.0).abs() < 1e-9, "{m:?}");
        assert!((m.r2 - 0.5).abs() < 1e-12, "(1 + 0) / 2: {m:?}");
        // SST = 2 + 20000, SSE = 20000.
        assert!(
            (m.explained_variance - 2.0 / 20_002.0).abs() < 1e-12,
            "{m:?}"
        );
    }
}
