//! A Gaussian over codes (mean and full covariance, fitted to a model's codes): drawn from to
//! generate with a non-variational model, and the Mahalanobis distance of a code under it
//! for anomaly scores in code space.

use crate::error::{Error, Result};
use rand_distr::{Distribution, StandardNormal};

/// A Gaussian over codes: its mean and the lower Cholesky factor of its covariance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CodeGaussian {
    /// The mean code.
    pub mean: Vec<f64>,
    /// `L` with `L L^T` the covariance, row-major `[d, d]`.
    pub cholesky: Vec<f64>,
}

impl CodeGaussian {
    /// The standard normal N(0, I) in `d` dimensions.
    pub fn standard(d: usize) -> Self {
        let mut cholesky = vec![0.0; d * d];
        for i in 0..d {
            cholesky[i * d + i] = 1.0;
        }
        Self {
            mean: vec![0.0; d],
            cholesky,
        }
    }

    /// Fits mean and covariance to `codes` (`d` values each); a small ridge keeps the
    /// covariance positive definite when some code units never vary.
    pub fn fit(codes: &[f32], d: usize) -> Result<Self> {
        let n = codes.len() / d.max(1);
        if n < 2 {
            return Err(Error::Input(
                "fitting a Gaussian to codes needs at least two codes".into(),
            ));
        }
        let mut mean = vec![0.0f64; d];
        for row in codes.chunks(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64 / n as f64;
            }
        }
        let mut covariance = vec![0.0f64; d * d];
        for row in codes.chunks(d) {
            for i in 0..d {
                let a = row[i] as f64 - mean[i];
                for j in 0..=i {
                    covariance[i * d + j] += a * (row[j] as f64 - mean[j]) / (n - 1) as f64;
                }
            }
        }
        let scale = (0..d).map(|i| covariance[i * d + i]).sum::<f64>() / d as f64;
        for i in 0..d {
            covariance[i * d + i] += 1e-6 * scale.max(1e-12);
        }
        Ok(Self {
            mean,
            cholesky: cholesky_lower(&covariance, d)?,
        })
    }

    /// The Mahalanobis distance `sqrt((c - mean)^T S^-1 (c - mean))` of each code in
    /// `codes` (`d` values each): the length of `L^-1 (c - mean)`, by forward substitution.
    pub fn mahalanobis(&self, codes: &[f32]) -> Vec<f64> {
        let d = self.mean.len();
        let mut z = vec![0.0f64; d];
        codes
            .chunks(d.max(1))
            .map(|code| {
                for i in 0..d {
                    let row = &self.cholesky[i * d..i * d + i];
                    let dot: f64 = row.iter().zip(&z).map(|(l, v)| l * v).sum();
                    z[i] = (f64::from(code[i]) - self.mean[i] - dot) / self.cholesky[i * d + i];
                }
                z.iter().map(|v| v * v).sum::<f64>().sqrt()
            })
            .collect()
    }

    /// Draws `n` codes.
    pub fn draw(&self, n: usize, rng: &mut rand::rngs::StdRng) -> Vec<f32> {
        let d = self.mean.len();
        let mut out = Vec::with_capacity(n * d);
        let mut eps = vec![0.0f64; d];
        for _ in 0..n {
            for e in eps.iter_mut() {
                *e = StandardNormal.sample(rng);
            }
            for i in 0..d {
                let row = &self.cholesky[i * d..i * d + i + 1];
                let z = self.mean[i] + row.iter().zip(&eps).map(|(l, e)| l * e).sum::<f64>();
                out.push(z as f32);
            }
        }
        out
    }
}

/// The Cholesky factor of a symmetric positive-definite matrix whose lower triangle is given.
fn cholesky_lower(a: &[f64], d: usize) -> Result<Vec<f64>> {
    let mut l = vec![0.0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                let diagonal = a[i * d + i] - dot;
                if diagonal <= 0.0 || !diagonal.is_finite() {
                    return Err(Error::Input(
                        "the codes' covariance is not positive definite".into(),
                    ));
                }
                l[i * d + i] = diagonal.sqrt();
            } else {
                l[i * d + j] = (a[i * d + j] - dot) / l[j * d + j];
            }
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_fitted_gaussian_reproduces_the_codes_moments() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        // Codes with mean (1, -2) and covariance [[4, 1.2], [1.2, 1]].
        let truth = CodeGaussian {
            mean: vec![1.0, -2.0],
            cholesky: cholesky_lower(&[4.0, 0.0, 1.2, 1.0], 2).unwrap(),
        };
        let codes = truth.draw(50_000, &mut rng);
        let fitted = CodeGaussian::fit(&codes, 2).unwrap();
        assert!((fitted.mean[0] - 1.0).abs() < 0.05 && (fitted.mean[1] + 2.0).abs() < 0.05);
        let l = &fitted.cholesky;
        let cov = [l[0] * l[0], l[2] * l[0], l[2] * l[2] + l[3] * l[3]];
        assert!((cov[0] - 4.0).abs() < 0.1, "{cov:?}");
        assert!((cov[1] - 1.2).abs() < 0.05, "{cov:?}");
        assert!((cov[2] - 1.0).abs() < 0.05, "{cov:?}");
        assert!(CodeGaussian::fit(&[1.0, 2.0], 2).is_err());
    }

    #[test]
    fn mahalanobis_distance_of_a_known_gaussian() {
        // Codes spread with standard deviation 2 along the first unit and 0.5 along the
        // second: the point (2, 0) and the point (0, 0.5) are both one deviation away.
        let mut codes = Vec::new();
        for i in 0..400 {
            let a = if i % 2 == 0 { 2.0 } else { -2.0 };
            let b = if (i / 2) % 2 == 0 { 0.5 } else { -0.5 };
            codes.extend_from_slice(&[a, b]);
        }
        let gaussian = CodeGaussian::fit(&codes, 2).unwrap();
        let d = gaussian.mahalanobis(&[2.0, 0.0, 0.0, 0.5, 0.0, 0.0]);
        assert!(
            (d[0] - 1.0).abs() < 0.01 && (d[1] - 1.0).abs() < 0.01,
            "{d:?}"
        );
        assert!(d[2].abs() < 1e-6, "{d:?}");
    }
}
