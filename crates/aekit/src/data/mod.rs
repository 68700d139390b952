//! Data sets: what a sample is, where samples come from, and how they are split.
//!
//! Every source (IDX files, image folders, CSV tables, the built-in generated shapes) loads
//! into the same in-memory [`Dataset`]: samples as rows of `f32` values (pixels scaled to
//! [0, 1]), an optional label per sample, and the shape of one sample. Training, evaluation
//! and the applications only ever see a [`Dataset`].

pub mod classes;
pub mod config;
pub mod fetch;
pub mod generated;
pub mod idx;
pub mod images;
pub mod info;
pub mod pairs;
pub mod scaling;
pub mod shapes;
pub mod table;
pub mod targets;

pub use config::{Binarize, DataConfig, DataKind, Validation};

use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// The shape of one sample: `channels x height x width` for images, `1 x 1 x features` for
/// table rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleShape {
    /// Colour channels (1 grey, 3 RGB; 1 for tables).
    pub channels: usize,
    /// Image height in pixels (1 for tables).
    pub height: usize,
    /// Image width in pixels (number of features for tables).
    pub width: usize,
}

impl SampleShape {
    /// A `channels x height x width` image shape.
    pub fn image(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// The shape of a table row with `features` columns.
    pub fn features(features: usize) -> Self {
        Self::image(1, 1, features)
    }

    /// Number of values in one sample.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether a sample holds no values at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether samples of this shape are images (more than one row of pixels).
    pub fn is_image(&self) -> bool {
        self.height > 1
    }
}

impl std::fmt::Display for SampleShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_image() {
            write!(f, "{}x{}x{}", self.channels, self.height, self.width)
        } else {
            write!(f, "{} features", self.width)
        }
    }
}

/// Samples held in memory, row-major: sample `i` is `values[i*len .. (i+1)*len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// A short name saying where the samples came from (for messages and reports).
    pub name: String,
    /// The shape of every sample.
    pub shape: SampleShape,
    /// All sample values, one sample after another.
    pub values: Vec<f32>,
    /// One label per sample, when the source has labels.
    pub labels: Option<Vec<u32>>,
    /// Names of the label values (index = label), when known.
    pub class_names: Vec<String>,
    /// The file each sample was read from, one per sample, for samples read from image
    /// files; empty for other sources.
    pub paths: Vec<std::path::PathBuf>,
    /// Named per-sample targets beyond the labels (a rotated image's angle, the columns of
    /// a targets CSV), each one value per sample with `NaN` for missing.
    pub targets: Vec<targets::TargetColumn>,
    /// For image-to-image data (`[data] target`): each sample's target image or class map.
    pub paired: Option<pairs::PairedTargets>,
    /// With `[data] rotate_every_use`: the samples before their rotation, from which every
    /// training use draws a fresh angle (`values` hold the fixed, seeded rotation).
    pub unrotated: Option<Vec<f32>>,
}

impl Dataset {
    /// Unlabelled samples held in memory (codes, generated rows): no classes, no files.
    pub fn unlabelled(name: impl Into<String>, shape: SampleShape, values: Vec<f32>) -> Self {
        Dataset {
            name: name.into(),
            shape,
            values,
            labels: None,
            class_names: Vec::new(),
            paths: Vec::new(),
            targets: Vec::new(),
            paired: None,
            unrotated: None,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        let n = self.shape.len();
        self.values.len().checked_div(n).unwrap_or(0)
    }

    /// Whether the data set has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values of sample `index`.
    pub fn sample(&self, index: usize) -> &[f32] {
        let n = self.shape.len();
        &self.values[index * n..(index + 1) * n]
    }

    /// The loss targets of samples `start..end` of an image-to-image data set (images, or
    /// class maps one-hot per pixel), and their width per sample; `None` when the targets
    /// are the inputs themselves.
    pub fn target_rows(&self, start: usize, end: usize) -> Option<(Vec<f32>, usize)> {
        self.paired
            .as_ref()
            .map(|p| (p.loss_rows(start..end), p.output_shape().len()))
    }

    /// The loss targets of the samples at `indices` (see [`Dataset::target_rows`]).
    pub fn gather_target_rows(&self, indices: &[usize]) -> Option<Vec<f32>> {
        self.paired
            .as_ref()
            .map(|p| p.loss_rows(indices.iter().copied()))
    }

    /// For segmentation data, the number of pixel classes.
    pub fn pixel_class_count(&self) -> Option<usize> {
        self.paired
            .as_ref()
            .filter(|p| p.is_segmentation())
            .map(|p| p.classes.len())
    }

    /// A new data set holding the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut values = Vec::with_capacity(indices.len() * self.shape.len());
        for &i in indices {
            values.extend_from_slice(self.sample(i));
        }
        Dataset {
            name: self.name.clone(),
            shape: self.shape,
            values,
            labels: self
                .labels
                .as_ref()
                .map(|labels| indices.iter().map(|&i| labels[i]).collect()),
            class_names: self.class_names.clone(),
            paths: if self.paths.len() == self.len() {
                indices.iter().map(|&i| self.paths[i].clone()).collect()
            } else {
                Vec::new()
            },
            targets: self
                .targets
                .iter()
                .map(|column| targets::TargetColumn {
                    name: column.name.clone(),
                    values: indices.iter().map(|&i| column.values[i]).collect(),
                })
                .collect(),
            paired: self.paired.as_ref().map(|p| p.subset(indices)),
            unrotated: self.unrotated.as_ref().map(|source| {
                let len = self.shape.len();
                indices
                    .iter()
                    .flat_map(|&i| source[i * len..(i + 1) * len].iter().copied())
                    .collect()
            }),
        }
    }

    /// `count` samples drawn at random with `seed` (all of them if there are fewer), spread
    /// over the classes when the data has labels (one of each class in turn), so that a
    /// folder sorted by class does not give `count` examples of its first class.
    pub fn seeded_sample(&self, count: usize, seed: u64) -> Dataset {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut by_class: Vec<Vec<usize>> = match &self.labels {
            Some(labels) => {
                let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
                let mut groups = vec![Vec::new(); classes];
                for (i, &l) in labels.iter().enumerate() {
                    groups[l as usize].push(i);
                }
                groups
            }
            None => vec![(0..self.len()).collect()],
        };
        for group in &mut by_class {
            group.shuffle(&mut rng);
        }
        self.subset(&round_robin(&by_class, count))
    }

    /// The first `count` samples (all of them if there are fewer).
    pub fn take(&self, count: usize) -> Dataset {
        let indices: Vec<usize> = (0..count.min(self.len())).collect();
        self.subset(&indices)
    }

    /// Splits off a seeded random `fraction` of the samples: returns `(rest, held_out)`.
    pub fn split_fraction(&self, fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut indices: Vec<usize> = (0..self.len()).collect();
        indices.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let held = ((self.len() as f64) * fraction).round() as usize;
        let held = held.clamp(1.min(self.len()), self.len().saturating_sub(1).max(1));
        let (held_out, rest) = indices.split_at(held.min(self.len()));
        (self.subset(rest), self.subset(held_out))
    }

    /// The smallest and largest value over all samples.
    pub fn value_range(&self) -> (f32, f32) {
        self.values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// Number of samples per label value (index = label), when labelled.
    pub fn label_counts(&self) -> Option<Vec<usize>> {
        let labels = self.labels.as_ref()?;
        let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
        let mut counts = vec![0; classes];
        for &l in labels {
            counts[l as usize] += 1;
        }
        Some(counts)
    }
}

/// Up to `count` members of `groups`, one of each group in turn (the first of each, then the
/// second...), so that a pick spreads over the groups (classes) however they are sized.
pub(crate) fn round_robin(groups: &[Vec<usize>], count: usize) -> Vec<usize> {
    let count = count.min(groups.iter().map(Vec::len).sum());
    let mut picked = Vec::with_capacity(count);
    let mut round = 0;
    while picked.len() < count {
        for group in groups {
            if let Some(&i) = group.get(round)
                && picked.len() < count
            {
                picked.push(i);
            }
        }
        round += 1;
    }
    picked
}

/// The samples a run trains on and the samples it validates on.
#[derive(Debug, Clone)]
pub struct DataSplits {
    /// Training samples.
    pub train: Dataset,
    /// Validation samples (the source's test split, or a held-out fraction of training).
    pub valid: Dataset,
    /// The feature scaling fitted on the training rows (`[data] scale`), already applied to
    /// both splits.
    pub scaler: Option<scaling::FeatureScaler>,
}

/// Loads the data a config describes and splits it into training and validation samples.
pub fn load_splits(config: &DataConfig) -> Result<DataSplits> {
    config::load_splits(config)
}

/// Checks that a data set is usable for training: not empty, finite values.
pub fn check_usable(dataset: &Dataset, what: &str) -> Result<()> {
    if dataset.is_empty() {
        return Err(Error::data(
            &dataset.name,
            format!("the {what} split holds no samples"),
        ));
    }
    if let Some(bad) = dataset.values.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            &dataset.name,
            format!(
                "sample {} of the {what} split holds a value that is not a finite number",
                bad / dataset.shape.len()
            ),
        ));
    }
    Ok(())
}

/// The shared copy of MNIST that tests and benchmarks use (`../shared/data/mnist` next to
/// the workspace), when it is there; `None` (with a note on stderr) when it is not.
///
/// # Panics
///
/// When the environment variable `CI` is `true` (or `1`) and the folder is missing: on CI
/// the tests that need MNIST must fail rather than silently skip.
pub fn shared_mnist_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    let dir = dir.canonicalize().unwrap_or(dir);
    if idx::find_files(&dir).is_some_and(|files| files.test.is_some()) {
        return Some(dir);
    }
    let on_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if on_ci {
        panic!(
            "the shared MNIST copy is missing at {} (CI=true: tests that need it fail rather \
             than skip)",
            dir.display()
        );
    }
    eprintln!(
        "note: skipping a test that needs MNIST: no copy at {}",
        dir.display()
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_sample_spreads_over_the_classes() {
        let data = Dataset {
            name: "sorted".into(),
            shape: SampleShape::features(1),
            values: (0..30).map(|i| i as f32).collect(),
            labels: Some((0..30).map(|i| i / 10).collect()),
            class_names: Vec::new(),
            paths: Vec::new(),
            targets: Vec::new(),
            paired: None,
            unrotated: None,
        };
        let sample = data.seeded_sample(6, 1);
        let labels = sample.labels.clone().unwrap();
        assert_eq!(labels, vec![0, 1, 2, 0, 1, 2], "one of each class in turn");
        assert_eq!(data.seeded_sample(6, 1), sample, "seeded");
        assert_ne!(data.seeded_sample(6, 2).values, sample.values);
        assert_eq!(data.seeded_sample(100, 0).len(), 30);
    }
}
