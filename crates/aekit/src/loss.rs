//! Reconstruction losses (what training minimises) and reconstruction metrics (what
//! evaluation reports). Every loss is a mean per element, so figures compare directly with
//! Keras's and PyTorch's defaults.

mod fused;

use crate::models::Activation;
use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;
use serde::{Deserialize, Serialize};

/// A reconstruction loss, chosen by name in `[train] loss = "..."`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ReconstructionLoss {
    /// Binary cross-entropy, computed from the output layer's logits so it never takes the
    /// log of 0 (needs a sigmoid output).
    #[default]
    Bce,
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    L1,
}

impl ReconstructionLoss {
    /// The config name of the loss.
    pub fn name(self) -> &'static str {
        match self {
            ReconstructionLoss::Bce => "bce",
            ReconstructionLoss::Mse => "mse",
            ReconstructionLoss::L1 => "l1",
        }
    }

    /// Checks that the loss suits the model's output activation.
    pub fn check_output(self, output: Activation) -> Result<(), String> {
        if self == ReconstructionLoss::Bce && output != Activation::Sigmoid {
            return Err(format!(
                "train.loss = \"bce\" needs model.output_activation = \"sigmoid\" (it is \"{}\"); \
                 use \"mse\" or \"l1\" for other outputs",
                output.name()
            ));
        }
        Ok(())
    }

    /// The loss of a batch, averaged over every element: a one-element tensor.
    ///
    /// `logits` are the output layer's values before `output` (its activation) is applied.
    pub fn compute(self, logits: Tensor<2>, target: Tensor<2>, output: Activation) -> Tensor<1> {
        match self {
            ReconstructionLoss::Bce => bce_with_logits_mean(logits, target),
            ReconstructionLoss::Mse => {
                let diff = output.forward(logits) - target;
                (diff.clone() * diff).mean()
            }
            ReconstructionLoss::L1 => (output.forward(logits) - target).abs().mean(),
        }
    }
}

/// Element-wise binary cross-entropy of `sigmoid(logits)` against `target`:
/// `-(t log s + (1 - t) log(1 - s)) = (1 - t) x - log_sigmoid(x)`, stable for any `x`.
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<D> {
    let complement = target.neg().add_scalar(1.0);
    complement * logits.clone() - log_sigmoid(logits)
}

/// The mean over every element of [`bce_with_logits`]: one fused operation with a
/// closed-form gradient (`(sigmoid(x) - t) / N`) on the `flex` backend, the composition of
/// tensor operations elsewhere.
pub fn bce_with_logits_mean<const D: usize>(logits: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    fused::try_bce_with_logits_mean(&logits, &target)
        .unwrap_or_else(|| bce_with_logits(logits, target).mean())
}

/// Each sample's mean per-pixel softmax cross-entropy, `[batch]`: `logits` hold `classes`
/// planes of logits per sample (`[batch, classes * pixels]`, class-major as conv outputs
/// are), `one_hot` the target class of every pixel in the same layout.
pub fn pixel_cross_entropy(logits: Tensor<2>, one_hot: Tensor<2>, classes: usize) -> Tensor<1> {
    let [batch, values] = logits.dims();
    let pixels = values / classes;
    let log_probabilities =
        burn::tensor::activation::log_softmax(logits.reshape([batch, classes, pixels]), 1);
    (log_probabilities * one_hot.reshape([batch, classes, pixels]))
        .sum_dim(1)
        .mean_dim(2)
        .reshape([batch])
        .neg()
}

/// Sums of reconstruction errors over samples, accumulated batch by batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionTotals {
    /// Samples seen.
    pub samples: usize,
    /// Values per sample.
    pub values_per_sample: usize,
    /// Sum of squared errors over all values.
    pub squared_error: f64,
    /// Sum of absolute errors over all values.
    pub absolute_error: f64,
    /// Sum of binary cross-entropy over all values.
    pub bce: f64,
    /// Sum over samples of each sample's PSNR in dB (peak value 1).
    pub psnr: f64,
}

/// Per-element means computed from [`ReconstructionTotals`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionMetrics {
    /// Number of samples evaluated.
    pub samples: usize,
    /// Mean squared error per value.
    pub mse: f64,
    /// Mean absolute error per value.
    pub l1: f64,
    /// Mean binary cross-entropy per value.
    pub bce: f64,
    /// Mean squared error summed over a sample's values, averaged over samples.
    pub squared_error_per_sample: f64,
    /// Mean over samples of the per-sample PSNR in dB (peak 1; capped at 100 dB).
    pub psnr: f64,
}

impl ReconstructionTotals {
    /// Adds one batch: `logits` before `output` is applied, and the targets.
    pub fn add_batch(&mut self, logits: Tensor<2>, target: Tensor<2>, output: Activation) {
        let [batch, values] = target.dims();
        let bce_sum = match output {
            Activation::Sigmoid => {
                bce_with_logits_mean(logits.clone(), target.clone()).into_scalar::<f32>() as f64
                    * (batch * values) as f64
            }
            // Like Keras: clip the output away from 0 and 1 before taking logs.
            _ => {
                let eps = 1e-7;
                let p = output.forward(logits.clone()).clamp(eps, 1.0 - eps);
                let t = target.clone();
                (t.clone() * p.clone().log()
                    + t.neg().add_scalar(1.0) * p.neg().add_scalar(1.0).log())
                .neg()
                .sum()
                .into_scalar::<f32>() as f64
            }
        };
        let reconstruction = output.forward(logits);
        let diff = reconstruction - target;
        let squared = (diff.clone() * diff.clone()).sum_dim(1);
        let squared = squared.into_data().try_to_vec::<f32>().unwrap_or_default();
        self.squared_error += squared.iter().map(|&v| v as f64).sum::<f64>();
        self.psnr += squared
            .iter()
            .map(|&sse| psnr_db(sse as f64 / values as f64))
            .sum::<f64>();
        self.absolute_error += diff.abs().sum().into_scalar::<f32>() as f64;
        self.bce += bce_sum;
        self.samples += batch;
        self.values_per_sample = values;
    }

    /// The means.
    pub fn metrics(&self) -> ReconstructionMetrics {
        let n = self.samples.max(1) as f64;
        let elements = n * self.values_per_sample.max(1) as f64;
        ReconstructionMetrics {
            samples: self.samples,
            mse: self.squared_error / elements,
            l1: self.absolute_error / elements,
            bce: self.bce / elements,
            squared_error_per_sample: self.squared_error / n,
            psnr: self.psnr / n,
        }
    }
}

impl ReconstructionMetrics {
    /// The value of the training loss `loss` among these metrics.
    pub fn loss(&self, loss: ReconstructionLoss) -> f64 {
        match loss {
            ReconstructionLoss::Bce => self.bce,
            ReconstructionLoss::Mse => self.mse,
            ReconstructionLoss::L1 => self.l1,
        }
    }
}

/// PSNR in dB of a mean squared error for values in [0, 1], capped at 100 dB for exact copies.
pub fn psnr_db(mse: f64) -> f64 {
    if mse <= 1e-10 {
        100.0
    } else {
        -10.0 * mse.log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn tensor(values: &[f32], device: &Device) -> Tensor<2> {
        Tensor::<1>::from_floats(values, device).reshape([1, values.len()])
    }

    #[test]
    fn bce_from_logits_matches_hand_computation() {
        let device = Device::flex();
        let x = [-3.0f32, 0.0, 2.0, 40.0];
        let t = [0.0f32, 0.5, 1.0, 0.0];
        let got = ReconstructionLoss::Bce
            .compute(
                tensor(&x, &device),
                tensor(&t, &device),
                Activation::Sigmoid,
            )
            .into_scalar::<f32>() as f64;
        let expected: f64 = x
            .iter()
            .zip(t)
            .map(|(&x, t)| {
                let (x, t) = (x as f64, t as f64);
                // log(1 - s) computed as -x - ln(1 + e^-x), exact for large x.
                let log_s = -(1.0 + (-x).exp()).ln();
                let log_1ms = -x + log_s;
                -(t * log_s + (1.0 - t) * log_1ms)
            })
            .sum::<f64>()
            / 4.0;
        assert!(
            (got - expected).abs() < 1e-5,
            "got {got}, expected {expected}"
        );
        assert!(got.is_finite());
    }

    #[test]
    fn mse_and_l1_match_hand_computation() {
        let device = Device::flex();
        let out = [0.0f32, 0.5, 1.0];
        let t = [1.0f32, 0.5, 0.0];
        let mse = ReconstructionLoss::Mse
            .compute(
                tensor(&out, &device),
                tensor(&t, &device),
                Activation::Linear,
            )
            .into_scalar::<f32>();
        assert!((mse - 2.0 / 3.0).abs() < 1e-6);
        let l1 = ReconstructionLoss::L1
            .compute(
                tensor(&out, &device),
                tensor(&t, &device),
                Activation::Linear,
            )
            .into_scalar::<f32>();
        assert!((l1 - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn totals_give_per_element_means_and_psnr() {
        let device = Device::flex();
        let mut totals = ReconstructionTotals::default();
        // Linear output 0.5 everywhere against targets 0 and 1: squared error 0.25 each.
        totals.add_batch(
            Tensor::<2>::from_floats([[0.5, 0.5], [0.5, 0.5]], &device),
            Tensor::<2>::from_floats([[0.0, 1.0], [1.0, 1.0]], &device),
            Activation::Linear,
        );
        let m = totals.metrics();
        assert_eq!(m.samples, 2);
        assert!((m.mse - 0.25).abs() < 1e-9);
        assert!((m.squared_error_per_sample - 0.5).abs() < 1e-9);
        assert!((m.psnr - psnr_db(0.25)).abs() < 1e-9);
        assert!((m.bce - 2f64.ln()).abs() < 1e-5, "bce {}", m.bce);
    }

    #[test]
    fn pixel_cross_entropy_matches_hand_computation() {
        let device = Default::default();
        // One sample, two classes, two pixels: logits (class-major) [[0, 2], [1, 0]];
        // pixel 0 is class 1, pixel 1 class 0.
        let logits = tensor(&[0.0, 2.0, 1.0, 0.0], &device);
        let one_hot = tensor(&[0.0, 1.0, 1.0, 0.0], &device);
        let loss = pixel_cross_entropy(logits, one_hot, 2).into_scalar::<f32>() as f64;
        let pixel0 = -(1f64.exp() / (1.0 + 1f64.exp())).ln();
        let pixel1 = -(2f64.exp() / (2f64.exp() + 1.0)).ln();
        assert!((loss - (pixel0 + pixel1) / 2.0).abs() < 1e-5, "{loss}");
    }

    #[test]
    fn bce_needs_a_sigmoid_output() {
        assert!(
            ReconstructionLoss::Bce
                .check_output(Activation::Sigmoid)
                .is_ok()
        );
        let message = ReconstructionLoss::Bce
            .check_output(Activation::Linear)
            .unwrap_err();
        assert!(message.contains("output_activation"));
    }
}
