//! Generation: new samples decoded from codes drawn from a VAE's prior (or, for other
//! families, from a Gaussian fitted to the training codes, which the result says),
//! interpolations between two inputs' codes (linear, or spherical for a VAE's Gaussian
//! codes), and the manifold: a grid of codes decoded into one picture (through the inverse
//! normal CDF, as the Keras VAE example does).

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::stats::normal::{inverse_normal_cdf, lerp, slerp};
use crate::trained::TrainedModel;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// Where sampled codes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeSource {
    /// The VAE's prior, N(0, I).
    Prior,
    /// A Gaussian (mean and full covariance) fitted to codes of the training data: a
    /// non-variational model has no prior of its own.
    FittedGaussian,
}

impl std::fmt::Display for CodeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CodeSource::Prior => "the prior N(0, I)",
            CodeSource::FittedGaussian => "a Gaussian fitted to the training codes",
        })
    }
}

/// A Gaussian over codes: its mean and the lower Cholesky factor of its covariance.
#[derive(Debug, Clone, PartialEq)]
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

/// The distribution `sample` draws codes from: a VAE's prior, or a Gaussian fitted to the
/// codes of `training` (at most 10,000 of its samples).
pub fn code_distribution(
    model: &TrainedModel,
    training: Option<&Dataset>,
) -> Result<(CodeSource, CodeGaussian)> {
    if model.is_variational() {
        return Ok((CodeSource::Prior, CodeGaussian::standard(model.code_len())));
    }
    let training = training.ok_or_else(|| {
        Error::Unsupported(format!(
            "a `{}` model has no prior: sampling needs its training data to fit a Gaussian to \
             the codes",
            model.kind()
        ))
    })?;
    let codes = model.encode(&training.take(10_000).values)?;
    Ok((
        CodeSource::FittedGaussian,
        CodeGaussian::fit(&codes, model.code_len())?,
    ))
}

/// `n` new samples decoded from codes drawn from `distribution` with seed `seed`.
pub fn sample(
    model: &TrainedModel,
    distribution: &CodeGaussian,
    n: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    model.decode(&distribution.draw(n, &mut rng))
}

/// How to walk between two codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Path {
    /// A straight line.
    #[default]
    Linear,
    /// A great circle (for a VAE's Gaussian codes, whose mass lies on a shell).
    Spherical,
}

/// `steps` outputs decoded from codes from `a`'s code to `b`'s (both ends included).
pub fn interpolate(
    model: &TrainedModel,
    a: &[f32],
    b: &[f32],
    steps: usize,
    path: Path,
) -> Result<Vec<f32>> {
    if steps < 2 {
        return Err(Error::Input(format!(
            "an interpolation needs at least 2 steps, not {steps}"
        )));
    }
    let za = model.encode(a)?;
    let zb = model.encode(b)?;
    let mut codes = Vec::with_capacity(steps * za.len());
    for i in 0..steps {
        let t = i as f32 / (steps - 1) as f32;
        codes.extend(match path {
            Path::Linear => lerp(&za, &zb, t),
            Path::Spherical => slerp(&za, &zb, t),
        });
    }
    model.decode(&codes)
}

/// The plane a manifold picture spans.
#[derive(Debug, Clone, PartialEq)]
pub enum Plane {
    /// Two code dimensions (the others at the distribution's mean).
    Dimensions(usize, usize),
    /// The plane of the codes' two principal components through their mean.
    PrincipalComponents,
}

/// A `grid x grid` manifold: codes on a plane at the normal quantiles of
/// `linspace(0.05, 0.95, grid)` (standard deviations along each axis), decoded; row-major,
/// the first axis across, the second down (as the Keras VAE example lays it out).
pub fn manifold(
    model: &TrainedModel,
    distribution: &CodeGaussian,
    plane: &Plane,
    grid: usize,
    codes_for_pca: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let d = model.code_len();
    if grid < 2 {
        return Err(Error::Input(format!(
            "--grid must be at least 2, not {grid}"
        )));
    }
    let (origin, u, v) = plane_axes(model, distribution, plane, codes_for_pca)?;
    let quantile = |i: usize| inverse_normal_cdf(0.05 + 0.9 * i as f64 / (grid - 1) as f64);
    let mut codes = Vec::with_capacity(grid * grid * d);
    for row in 0..grid {
        // Top row is the largest value of the second axis, as in a plot.
        let b = quantile(grid - 1 - row);
        for col in 0..grid {
            let a = quantile(col);
            codes.extend((0..d).map(|k| (origin[k] + a * u[k] + b * v[k]) as f32));
        }
    }
    model.decode(&codes)
}

/// The origin and two axis vectors (one standard deviation long) of a manifold's plane.
fn plane_axes(
    model: &TrainedModel,
    distribution: &CodeGaussian,
    plane: &Plane,
    codes_for_pca: Option<&[f32]>,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let d = model.code_len();
    match plane {
        Plane::Dimensions(i, j) => {
            if *i >= d || *j >= d || i == j {
                return Err(Error::Input(format!(
                    "--dims {i},{j}: need two different code dimensions below {d} (the code has \
                     {d} values)"
                )));
            }
            // One standard deviation along each chosen axis (the Cholesky factor's row norms).
            let sd = |k: usize| {
                distribution.cholesky[k * d..(k + 1) * d]
                    .iter()
                    .map(|x| x * x)
                    .sum::<f64>()
                    .sqrt()
            };
            let mut u = vec![0.0; d];
            let mut v = vec![0.0; d];
            u[*i] = sd(*i);
            v[*j] = sd(*j);
            Ok((distribution.mean.clone(), u, v))
        }
        Plane::PrincipalComponents => {
            let codes = codes_for_pca.ok_or_else(|| {
                Error::Input("the principal-component plane needs codes of the data".into())
            })?;
            let data = Dataset::unlabelled(
                "codes",
                crate::data::SampleShape::features(d),
                codes.to_vec(),
            );
            let pca = crate::pca::fit(&data, 2, model.device())?;
            let mean: Vec<f64> = to_f64(pca.mean);
            let components = to_f64(pca.components);
            let axis = |c: usize| -> Vec<f64> {
                let sd = pca.variances[c].max(0.0).sqrt();
                (0..d).map(|k| components[k * 2 + c] * sd).collect()
            };
            Ok((mean, axis(0), axis(1)))
        }
    }
}

fn to_f64(t: burn::tensor::Tensor<2>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
