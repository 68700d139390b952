//! Principal component analysis: the linear baseline every autoencoder is compared with at the
//! same code size (a linear autoencoder trained with MSE spans the same subspace).
//!
//! The covariance matrix is one symmetric rank-n update; its top `k` eigenvectors come from an
//! exact self-adjoint eigendecomposition (`faer`), which replaced an orthogonal iteration
//! whose error grew past the data's rank and that took minutes at K = 784.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::batches;
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
    let (mean, covariance) = covariance(data);
    let (components, variances) = top_eigenvectors(&covariance, k)?;
    let components = Tensor::<2>::from_data(TensorData::new(components, [d, k]), device);
    Ok(Pca {
        mean: Tensor::<2>::from_data(TensorData::new(mean, [1, d]), device),
        components,
        variances,
    })
}

/// The mean sample and the lower triangle of the sample covariance of `data`: one
/// symmetric rank-n update of the centred samples (half the work of a full matrix product,
/// as NumPy's `X.T @ X` and so scikit-learn's covariance solver do), in f32 on every core
/// (faer's own triangular product measured slower here than the `gemm` strips).
fn covariance(data: &Dataset) -> (Vec<f32>, faer::Mat<f32>) {
    let (n, d) = (data.len(), data.shape.len());
    let mut mean = vec![0f64; d];
    for row in data.values.chunks(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / n as f64) as f32).collect();
    let mut centred = data.values.clone();
    for row in centred.chunks_mut(d) {
        for (v, m) in row.iter_mut().zip(&mean) {
            *v -= m;
        }
    }
    let scale = 1.0 / (n - 1) as f32;
    let gram = crate::kernels::matmul::gram_lower(&centred, [n, d]);
    let covariance = faer::Mat::<f32>::from_fn(d, d, |i, j| gram[i * d + j] * scale);
    (mean, covariance)
}

/// The `k` eigenvectors of the symmetric `d x d` matrix `covariance` (its lower triangle) with the largest
/// eigenvalues, as the columns of a row-major `d x k` matrix, and those eigenvalues: an
/// exact self-adjoint eigendecomposition (faer, in f64), so that every `k` up to `d` is
/// exact, past the data's rank included.
fn top_eigenvectors(covariance: &faer::Mat<f32>, k: usize) -> Result<(Vec<f32>, Vec<f64>)> {
    let d = covariance.nrows();
    // Only the lower triangle is filled (and read).
    let matrix = faer::Mat::<f64>::from_fn(d, d, |i, j| {
        if j <= i {
            f64::from(covariance[(i, j)])
        } else {
            0.0
        }
    });
    let eigen = matrix
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::Input(format!("PCA: the eigendecomposition failed ({e:?})")))?;
    let (vectors, values) = (eigen.U(), eigen.S().column_vector());
    // Eigenvalues come in non-decreasing order: the largest are the last columns.
    let mut components = vec![0f32; d * k];
    let mut variances = Vec::with_capacity(k);
    for c in 0..k {
        let column = d - 1 - c;
        variances.push(values[column].max(0.0));
        for i in 0..d {
            components[i * k + c] = vectors[(i, column)] as f32;
        }
    }
    Ok((components, variances))
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

    /// Reconstructions of `data`'s samples, row-major like its values.
    pub fn reconstruct(&self, data: &Dataset, device: &Device) -> Vec<f32> {
        let mut out = Vec::with_capacity(data.values.len());
        for (_, x) in batches(data, 1000, device) {
            let reconstruction = self.decode(self.encode(x));
            out.extend(
                reconstruction
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap_or_default(),
            );
        }
        out
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

    /// Reconstruction MSE per value of scikit-learn 1.9.1's `PCA(k, svd_solver="full")`
    /// fitted to and applied on the data below, for k = 1..64 (computed once in float64 and
    /// checked in).
    const SKLEARN_MSE: [f64; 64] = [
        1.942340e-01,
        1.834667e-01,
        1.732912e-01,
        1.632093e-01,
        1.533575e-01,
        1.435703e-01,
        1.338789e-01,
        1.242186e-01,
        1.145631e-01,
        1.049838e-01,
        9.547378e-02,
        8.646000e-02,
        7.934496e-02,
        7.248933e-02,
        6.575845e-02,
        5.906293e-02,
        5.240332e-02,
        4.643545e-02,
        4.165775e-02,
        3.693516e-02,
        3.233992e-02,
        2.778496e-02,
        2.338441e-02,
        1.906636e-02,
        1.653646e-02,
        1.403734e-02,
        1.164836e-02,
        9.462270e-03,
        7.544812e-03,
        5.866405e-03,
        4.572351e-03,
        3.336516e-03,
        2.488630e-03,
        1.753690e-03,
        1.068520e-03,
        7.855159e-04,
        6.271894e-04,
        4.763438e-04,
        3.591023e-04,
        2.461081e-04,
        1.487332e-04,
        8.072093e-05,
        5.165494e-05,
        3.455590e-05,
        2.376199e-05,
        1.312416e-05,
        1.020309e-05,
        7.503026e-06,
        4.934135e-06,
        3.138230e-06,
        1.519148e-06,
        9.903171e-07,
        6.238522e-07,
        3.060782e-07,
        1.100708e-07,
        5.992066e-08,
        2.588372e-08,
        1.494879e-08,
        8.612944e-09,
        3.375755e-09,
        5.627258e-31,
        5.658593e-31,
        5.662756e-31,
        5.666924e-31,
    ];

    #[test]
    fn pca_is_exact_at_every_k_even_past_the_datas_rank() {
        // 200 samples of 8x8 values, three pixels constant: rank 61.
        let (n, d) = (200, 64);
        let values: Vec<f32> = (0..n * d)
            .map(|index| {
                let (i, j) = ((index / d) as f32, index % d);
                if [0, 7, 56].contains(&j) {
                    0.5
                } else {
                    (0.37f32 * i * (j as f32 + 1.0)).sin() * ((j % 5) as f32 + 1.0) / 5.0
                }
            })
            .collect();
        let data = Dataset::unlabelled("8x8", SampleShape::features(d), values);
        let device = Device::flex();
        for (k, &expected) in (1..=d).zip(&SKLEARN_MSE) {
            let mse = fit(&data, k, &device).unwrap().metrics(&data, &device).mse;
            // Relative 1e-4, with a floor for f32 arithmetic past the rank (the old
            // orthogonal iteration gave 0.011-0.030 there).
            assert!(
                (mse - expected).abs() <= 1e-4 * expected + 1e-9,
                "k = {k}: {mse:e} vs scikit-learn's {expected:e}"
            );
        }
    }
}
