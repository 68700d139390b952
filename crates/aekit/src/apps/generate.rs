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

pub use crate::stats::gaussian::CodeGaussian;

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
