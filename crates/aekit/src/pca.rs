//! Principal component analysis: the linear baseline every autoencoder is compared with at the
//! same code size (a linear autoencoder trained with MSE spans the same subspace).
//!
//! The top `k` eigenvectors of the covariance matrix are found by orthogonal (subspace)
//! iteration with Burn matmuls; only the `k x k` orthonormalisation runs in plain Rust.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{batches, rows_tensor};
use crate::loss::{ReconstructionMetrics, ReconstructionTotals};
use crate::models::Activation;
use burn::tensor::{Device, Tensor, TensorData};

/// A fitted PCA: the data mean and `k` orthonormal principal directions.
#[derive(Debug, Clone)]
pub struct Pca {
    /// Mean sample, `[1, d]`.
    pub mean: Tensor<2>,
    /// Principal directions as columns, `[d, k]`, by decreasing variance.
    pub components: Tensor<2>,
    /// Variance along each direction.
    pub variances: Vec<f64>,
}

/// Fits a `k`-component PCA to `data`.
pub fn fit(data: &Dataset, k: usize, device: &Device) -> Result<Pca> {
    let d = data.shape.len();
    if k == 0 || k > d {
        return Err(Error::config(
            "--components",
            format!("must be between 1 and {d}, not {k}"),
        ));
    }
    if data.len() < 2 {
        return Err(Error::data(&data.name, "PCA needs at least two samples"));
    }
    let x = rows_tensor(data.values.clone(), d, device);
    let mean = x.clone().mean_dim(0);
    let centred = x - mean.clone();
    let covariance = centred
        .clone()
        .transpose()
        .matmul(centred)
        .div_scalar((data.len() - 1) as f64);
    // Orthogonal iteration from a fixed start: Q <- orth(C Q) until the subspace settles.
    let mut q = orthonormalise(
        (0..d * k)
            .map(|i| (((i * 7919 + 13) % 1009) as f32 / 1009.0) - 0.5)
            .collect(),
        d,
        k,
    );
    for _ in 0..300 {
        let next = covariance.clone().matmul(Tensor::<2>::from_data(
            TensorData::new(q.clone(), [d, k]),
            device,
        ));
        let next = orthonormalise(
            next.into_data().try_to_vec::<f32>().unwrap_or_default(),
            d,
            k,
        );
        let change: f32 = q
            .iter()
            .zip(&next)
            .map(|(a, b)| (a.abs() - b.abs()).abs())
            .fold(0.0, f32::max);
        q = next;
        if change < 1e-6 {
            break;
        }
    }
    let components = Tensor::<2>::from_data(TensorData::new(q, [d, k]), device);
    let projected = covariance.matmul(components.clone()) * components.clone();
    let variances = projected
        .sum_dim(0)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    Ok(Pca {
        mean,
        components,
        variances: variances.into_iter().map(f64::from).collect(),
    })
}

/// Gram-Schmidt on the `k` columns of a row-major `d x k` matrix (twice, for stability).
fn orthonormalise(mut m: Vec<f32>, d: usize, k: usize) -> Vec<f32> {
    for _ in 0..2 {
        for j in 0..k {
            for p in 0..j {
                let dot: f64 = (0..d)
                    .map(|i| m[i * k + j] as f64 * m[i * k + p] as f64)
                    .sum();
                for i in 0..d {
                    m[i * k + j] -= (dot * m[i * k + p] as f64) as f32;
                }
            }
            let norm = (0..d)
                .map(|i| (m[i * k + j] as f64).powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-20);
            for i in 0..d {
                m[i * k + j] = (m[i * k + j] as f64 / norm) as f32;
            }
        }
    }
    m
}

impl Pca {
    /// Codes of a batch `[batch, d]` -> `[batch, k]`.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        (x - self.mean.clone()).matmul(self.components.clone())
    }

    /// Reconstructions from codes.
    pub fn decode(&self, code: Tensor<2>) -> Tensor<2> {
        code.matmul(self.components.clone().transpose()) + self.mean.clone()
    }

    /// Reconstruction metrics over `data` (BCE on reconstructions clipped into (0, 1)).
    pub fn metrics(&self, data: &Dataset, device: &Device) -> ReconstructionMetrics {
        let mut totals = ReconstructionTotals::default();
        for (_, x) in batches(data, 1000, device) {
            let reconstruction = self.decode(self.encode(x.clone()));
            totals.add_batch(reconstruction, x, Activation::Linear);
        }
        totals.metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleShape;

    #[test]
    fn recovers_the_directions_of_a_known_covariance() {
        let device = Device::flex();
        // Points spread along (1, 1, 0) with variance 4 and along (0, 0, 1) with variance 1.
        let mut values = Vec::new();
        for i in 0..400 {
            let a = ((i % 20) as f32 - 9.5) * 0.6;
            let b = ((i / 20) as f32 - 9.5) * 0.15;
            values.extend_from_slice(&[a / 2f32.sqrt(), a / 2f32.sqrt(), b]);
        }
        let data = Dataset::unlabelled("toy", SampleShape::features(3), values);
        let pca = fit(&data, 2, &device).unwrap();
        let c = pca
            .components
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let first = [c[0], c[2], c[4]];
        assert!(
            (first[0].abs() - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3
                && (first[1].abs() - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3
                && first[2].abs() < 1e-3,
            "{first:?}"
        );
        assert!(pca.variances[0] > pca.variances[1]);
        // Two components span the data: reconstruction is exact.
        assert!(pca.metrics(&data, &device).mse < 1e-8);
        let one = fit(&data, 1, &device).unwrap();
        let expected = pca.variances[1] * (data.len() - 1) as f64 / data.len() as f64 / 3.0;
        assert!(
            (one.metrics(&data, &device).mse - expected).abs() < 1e-4,
            "{}",
            one.metrics(&data, &device).mse
        );
    }
}
