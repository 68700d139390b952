//! Feature scaling for tables (`[data] scale`): columns whose values differ in scale by
//! orders of magnitude make a reconstruction loss care only about the largest ones, so each
//! column is standardised (or min-max scaled) with statistics fitted on the training rows
//! only. The fitted scaler is stored in the run (`scaler.json`) and applied by every command
//! that reads data for it; outputs are mapped back to the original units for metrics and
//! files.

use super::Dataset;
use serde::{Deserialize, Serialize};

/// How table columns are scaled.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// Values as they are.
    #[default]
    None,
    /// Each column to mean 0 and standard deviation 1 (a constant column to 0).
    Standard,
    /// Each column to [0, 1] over the training rows (a constant column to 0).
    Minmax,
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Scale::None),
            "standard" => Ok(Scale::Standard),
            "minmax" => Ok(Scale::Minmax),
            other => Err(format!(
                "`{other}`: expected `none`, `standard` or `minmax`"
            )),
        }
    }
}

/// A fitted per-column affine map: `scaled = (value - offset) / spread`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureScaler {
    /// How it was fitted.
    pub kind: Scale,
    /// Per column: subtracted first (the mean, or the minimum).
    pub offset: Vec<f32>,
    /// Per column: divided by next (the standard deviation, or the range; 1 for a constant
    /// column).
    pub spread: Vec<f32>,
}

impl FeatureScaler {
    /// Fits `kind` to the columns of `data` (its rows of `shape.len()` values); `None` for
    /// [`Scale::None`].
    pub fn fit(data: &Dataset, kind: Scale) -> Option<Self> {
        let width = data.shape.len();
        let n = data.len().max(1) as f64;
        let column = |j: usize| data.values.iter().skip(j).step_by(width.max(1)).copied();
        let (offset, spread): (Vec<f32>, Vec<f32>) = match kind {
            Scale::None => return None,
            Scale::Standard => (0..width)
                .map(|j| {
                    let mean = column(j).map(f64::from).sum::<f64>() / n;
                    let var = column(j)
                        .map(|v| (f64::from(v) - mean).powi(2))
                        .sum::<f64>()
                        / n;
                    (mean as f32, nonzero(var.sqrt()))
                })
                .unzip(),
            Scale::Minmax => (0..width)
                .map(|j| {
                    let (lo, hi) = column(j)
                        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                            (lo.min(v), hi.max(v))
                        });
                    let lo = if lo.is_finite() { lo } else { 0.0 };
                    (lo, nonzero(f64::from(hi - lo)))
                })
                .unzip(),
        };
        Some(Self {
            kind,
            offset,
            spread,
        })
    }

    /// Scales rows of values in place.
    pub fn apply(&self, values: &mut [f32]) {
        let width = self.offset.len().max(1);
        for row in values.chunks_mut(width) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&self.spread) {
                *v = (*v - o) / s;
            }
        }
    }

    /// Maps scaled rows back to the original units in place.
    pub fn invert(&self, values: &mut [f32]) {
        let width = self.offset.len().max(1);
        for row in values.chunks_mut(width) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&self.spread) {
                *v = *v * s + o;
            }
        }
    }
}

/// A spread that can be divided by: a constant column keeps spread 1.
fn nonzero(spread: f64) -> f32 {
    if spread > 1e-12 && spread.is_finite() {
        spread as f32
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleShape;

    fn table(values: Vec<f32>, width: usize) -> Dataset {
        Dataset::unlabelled("t", SampleShape::features(width), values)
    }

    #[test]
    fn standard_and_minmax_scaling_fit_the_training_rows_and_invert() {
        let data = table(vec![1.0, 100.0, 5.0, 3.0, 300.0, 5.0], 3);
        let standard = FeatureScaler::fit(&data, Scale::Standard).unwrap();
        assert_eq!(standard.offset, vec![2.0, 200.0, 5.0]);
        assert_eq!(
            standard.spread,
            vec![1.0, 100.0, 1.0],
            "a constant column keeps spread 1"
        );
        let mut values = data.values.clone();
        standard.apply(&mut values);
        assert_eq!(values, vec![-1.0, -1.0, 0.0, 1.0, 1.0, 0.0]);
        standard.invert(&mut values);
        assert_eq!(values, data.values);
        let minmax = FeatureScaler::fit(&data, Scale::Minmax).unwrap();
        let mut values = data.values.clone();
        minmax.apply(&mut values);
        assert_eq!(values, vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
        assert!(FeatureScaler::fit(&data, Scale::None).is_none());
    }
}
