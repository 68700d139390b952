//! Evaluation: reconstruction metrics (loss, MSE, BCE, PSNR) of a model on a data set, and
//! `aekit eval` on a run directory.

use crate::data::{self, Dataset};
use crate::device::{self, DeviceChoice};
use crate::error::Result;
use crate::loss::{ReconstructionMetrics, ReconstructionTotals};
use crate::models::Autoencoder;
use crate::run_dir::{self, RunDir};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Reconstruction metrics of `model` (on a plain device) over all of `data`.
pub fn evaluate(
    model: &Autoencoder,
    data: &Dataset,
    device: &Device,
    batch: usize,
) -> ReconstructionMetrics {
    let mut totals = ReconstructionTotals::default();
    let n = data.shape.len();
    let output = model.output_activation();
    for start in (0..data.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(data.len());
        let values = data.values[start * n..end * n].to_vec();
        let x = Tensor::<2>::from_data(TensorData::new(values, [end - start, n]), device);
        let logits = model.forward(x.clone()).logits;
        totals.add_batch(logits, x, output);
    }
    totals.metrics()
}

/// What `aekit eval` reports and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// The run evaluated.
    pub run: PathBuf,
    /// Which samples: `validation` (the run's own validation split) or a path.
    pub data: String,
    /// The training loss's name.
    pub loss_name: String,
    /// The training loss's value on these samples.
    pub loss: f64,
    /// All metrics.
    pub metrics: ReconstructionMetrics,
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.metrics;
        writeln!(f, "run:      {}", self.run.display())?;
        writeln!(f, "data:     {} ({} samples)", self.data, m.samples)?;
        writeln!(f, "loss:     {:.6} ({})", self.loss, self.loss_name)?;
        writeln!(
            f,
            "MSE:      {:.6} per value, {:.4} per sample",
            m.mse, m.squared_error_per_sample
        )?;
        writeln!(f, "BCE:      {:.6} per value", m.bce)?;
        write!(f, "PSNR:     {:.2} dB", m.psnr)
    }
}

/// Evaluates a run's final model on its validation split, or on the samples at `data_path`
/// (the test split when the path holds one), and writes `eval.json` into the run directory.
pub fn evaluate_run(
    run_path: &Path,
    data_path: Option<&Path>,
    choice: DeviceChoice,
) -> Result<EvalReport> {
    let run = RunDir::open(run_path)?;
    let plain = device::plain_device(choice)?;
    let (config, meta, model) = run.load_model(&plain)?;
    let (data, label) = match data_path {
        None => (
            data::load_splits(&config.data)?.valid,
            "validation split".to_string(),
        ),
        Some(path) => {
            // Images are converted to the model's input shape; other sources must match it.
            let data = data::config::load_for_model(path, meta.sample_shape, false)?;
            (data, path.display().to_string())
        }
    };
    data::check_usable(&data, "evaluation")?;
    let metrics = evaluate(&model, &data, &plain, 1000);
    let report = EvalReport {
        run: run.path().to_path_buf(),
        data: label,
        loss_name: config.train.loss.name().to_string(),
        loss: metrics.loss(config.train.loss),
        metrics,
    };
    run_dir::write_json(&run.path().join("eval.json"), &report)?;
    Ok(report)
}
