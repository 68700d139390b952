//! The `[data]` table of a run's config, and the loading it drives: finding out what kind of
//! source a path is, loading it, and splitting it into training and validation samples.
//!
//! Also the loaders the other commands use on a bare path: [`load_dataset_path`] (for
//! `aekit eval --data PATH` and `aekit data info`) and [`load_for_model`] (for
//! `aekit reconstruct --input PATH`, which converts images to the model's input shape).

use super::images::{self, ImageOptions};
use super::table::{self, TableOptions};
use super::{DataSplits, Dataset, SampleShape, idx, shapes};
use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};

/// The fraction of training samples held out for validation when `validation = "auto"` and
/// the source has no test split.
pub const AUTO_VALIDATION_FRACTION: f64 = 0.1;

/// The name under which the source of a config error in this table is reported.
const SOURCE: &str = "[data]";

/// Where a run's samples come from and how they are split (the `[data]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// What kind of source `path` is; `auto` finds out from the path.
    pub kind: DataKind,
    /// The data folder or file (not needed for `shapes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Which samples validate the model.
    pub validation: Validation,
    /// Seed of the held-out split and of the generated shapes.
    pub seed: u64,
    /// Use only the first N training samples (after the validation split), for quick runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Use only the first N validation samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_limit: Option<usize>,
    /// Images: resize every image to `[height, width]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[usize; 2]>,
    /// Images: load them grey (one channel) or RGB (three channels).
    pub color: Color,
    /// Images: a file in an image folder that is not an image is an error rather than skipped
    /// with a warning.
    pub strict: bool,
    /// CSV: the column (by header name) holding the labels; the other columns are the
    /// features. Without it every column is a feature and the samples are unlabelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// CSV: whether the first row names the columns.
    pub has_header: bool,
    /// Shapes: the number of training samples (the test split holds a fifth as many).
    pub samples: usize,
    /// Shapes: the side of the square images in pixels.
    pub size: usize,
    /// `dynamic`: every time a training sample is used, each value `v` in [0, 1] is replaced
    /// by a draw from Bernoulli(v) (and the validation split once, with a fixed seed), as in
    /// the VAE literature's "dynamically binarised MNIST". `none` (default): values as loaded.
    pub binarize: Binarize,
    /// Tables: scale each column, fitted on the training rows: `none` (default), `standard`
    /// (mean 0, standard deviation 1) or `minmax` (to [0, 1]). Stored in the run and applied
    /// by every command that reads data for it.
    pub scale: super::scaling::Scale,
    /// Train (and validate) only on these classes, by label (`[3]`) or class name
    /// (`["circle"]`): the one-class protocol of anomaly detection. Commands that read the
    /// test split for the run (`anomaly score`, `eval`) still see every class.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub train_classes: Vec<super::classes::ClassRef>,
    /// Train (and validate) on every class but these (by label or class name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_classes: Vec<super::classes::ClassRef>,
    /// Images: rotate each one by a random angle drawn uniformly from `[low, high]` degrees
    /// (seeded by `seed`, each split its own draws); the angle becomes the target
    /// `"angle"` (the multi-output example: a digit's class and its rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate: Option<[f64; 2]>,
    /// With `rotate`: every time a training sample is used, it is rotated from its
    /// unrotated image by a fresh angle drawn from the range (seeded by `train.seed`, the
    /// epoch and the step), and its `"angle"` target is that angle: augmentation that shows
    /// each image at many angles instead of one. Validation keeps its fixed, seeded angles,
    /// and so does the training split wherever else it is read (`aekit eval --split train`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rotate_every_use: bool,
    /// A CSV of per-sample targets for heads: a header `id,<name>...`, one row per training
    /// sample, empty cells for missing values. `id` is the file name (or path relative to
    /// the data folder) of image files, else the sample's position in the source (0, 1, ...).
    /// A relative path is taken from the working directory, as `path` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets_csv: Option<PathBuf>,
    /// Images: learn a target other than the input (image-to-image). `"colourise"` (grey in,
    /// coloured out: hue by class, or by row when unlabelled), `"upscale:2"` / `"upscale:4"`
    /// (super-resolution: the input is the image shrunk by area averaging and brought back
    /// by bicubic interpolation), `"inpaint"` (random boxes filled with grey), `"segment"`
    /// (a class per pixel: background, or the sample's class where the image is brighter
    /// than 0.5), `"folder:PATH"` (target images with the input files' names) or
    /// `"masks:PATH"` (grey PNG masks whose values are class indices). Dense and conv
    /// models only; segmentation trains with per-pixel softmax cross-entropy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// With `target = "masks:PATH"`: the number of classes; a mask pixel at or above it is
    /// an error (default: the largest class in the masks plus one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_classes: Option<usize>,
    /// With `target = "folder:PATH"`: read the target images as `grey` or `rgb` (default:
    /// the inputs' colour; `rgb` for grey inputs and colour targets, as in colourising).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_color: Option<Color>,
}

/// Whether samples are binarised.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Binarize {
    /// Values as loaded.
    #[default]
    None,
    /// A fresh Bernoulli draw per value at every use (the validation split drawn once).
    Dynamic,
}

/// Replaces each value `v` (clamped to [0, 1]) by 1 with probability `v`, else 0.
pub fn binarize_in_place(values: &mut [f32], rng: &mut rand::rngs::StdRng) {
    use rand::Rng;
    for v in values {
        *v = if rng.random::<f32>() < v.clamp(0.0, 1.0) {
            1.0
        } else {
            0.0
        };
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            kind: DataKind::Auto,
            path: None,
            validation: Validation::Auto,
            seed: 0,
            limit: None,
            valid_limit: None,
            image_size: None,
            color: Color::Grey,
            strict: false,
            label_column: None,
            has_header: true,
            samples: 6000,
            size: 28,
            binarize: Binarize::None,
            scale: super::scaling::Scale::None,
            train_classes: Vec::new(),
            exclude_classes: Vec::new(),
            rotate: None,
            rotate_every_use: false,
            targets_csv: None,
            target: None,
            target_classes: None,
            target_color: None,
        }
    }
}

impl DataConfig {
    /// How targets read from files are taken (`target_classes`, `target_color`).
    pub fn target_files(&self) -> super::pairs::TargetFiles {
        super::pairs::TargetFiles {
            classes: self.target_classes,
            color: self.target_color,
        }
    }

    /// Where the image-to-image targets come from (`data.target`), parsed.
    pub fn pair_source(&self) -> std::result::Result<Option<super::pairs::PairSource>, String> {
        self.target
            .as_deref()
            .map(|text| {
                text.parse()
                    .map_err(|e: String| format!("`data.target`: {e}"))
            })
            .transpose()
    }

    /// The class filter `train_classes` or `exclude_classes` asks for, if any.
    pub fn class_filter(&self) -> Option<super::classes::ClassFilter<'_>> {
        use super::classes::ClassFilter;
        if !self.train_classes.is_empty() {
            Some(ClassFilter::Keep(&self.train_classes))
        } else if !self.exclude_classes.is_empty() {
            Some(ClassFilter::Exclude(&self.exclude_classes))
        } else {
            None
        }
    }
}

/// What kind of source a data path is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// Find out from the path: a folder holding the IDX files is `idx`, another folder is
    /// `images`, a `.csv` file is `csv`, an image file is `images`, `shapes` is `shapes`.
    #[default]
    Auto,
    /// A folder holding the IDX files of MNIST or Fashion-MNIST (train and t10k).
    #[serde(alias = "mnist", alias = "fashion-mnist")]
    Idx,
    /// A folder of PNG/JPEG images, optionally one sub-folder per class (or one image file).
    Images,
    /// A CSV table: one sample per row.
    Csv,
    /// The built-in generated shapes (circles, squares, triangles, crosses).
    Shapes,
}

impl std::fmt::Display for DataKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataKind::Auto => "auto",
            DataKind::Idx => "idx",
            DataKind::Images => "images",
            DataKind::Csv => "csv",
            DataKind::Shapes => "shapes",
        })
    }
}

/// How images are converted: to one grey channel or to three RGB channels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Color {
    /// One channel: the luma of the image.
    #[default]
    #[serde(alias = "gray")]
    Grey,
    /// Three channels: red, green, blue.
    Rgb,
}

impl Color {
    /// Number of channels a sample of this colour has.
    pub fn channels(self) -> usize {
        match self {
            Color::Grey => 1,
            Color::Rgb => 3,
        }
    }
}

/// Which samples validate the model: `"test"`, `"auto"` or a fraction such as `0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Validation {
    /// The source's test split; an error if it has none.
    Test,
    /// The source's test split if it has one, else a held-out
    /// [`AUTO_VALIDATION_FRACTION`] of the training samples.
    #[default]
    Auto,
    /// A seeded random fraction (strictly between 0 and 1) of the training samples.
    Fraction(f64),
}

impl Validation {
    /// Checks that a fraction lies strictly between 0 and 1.
    pub fn check(self) -> std::result::Result<(), String> {
        match self {
            Validation::Fraction(f) if !(f > 0.0 && f < 1.0) => Err(format!(
                "`data.validation` must be \"test\", \"auto\" or a fraction strictly between 0 \
                 and 1, not {f}"
            )),
            _ => Ok(()),
        }
    }
}

impl schemars::JsonSchema for Validation {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Validation".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "oneOf": [
                { "const": "test", "description": "The source's test split; an error if it has none." },
                { "const": "auto", "description": "The source's test split if it has one, else a held-out 0.1 of the training samples." },
                { "type": "number", "description": "A seeded random fraction (strictly between 0 and 1) of the training samples." }
            ]
        })
    }
}

impl Serialize for Validation {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Validation::Test => serializer.serialize_str("test"),
            Validation::Auto => serializer.serialize_str("auto"),
            Validation::Fraction(f) => serializer.serialize_f64(*f),
        }
    }
}

impl<'de> Deserialize<'de> for Validation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        // A visitor rather than `#[serde(untagged)]`, so that a bad value gets a message
        // naming the key and the allowed values instead of "did not match any variant".
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Validation;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"test\", \"auto\" or a fraction between 0 and 1")
            }

            fn visit_str<E: serde::de::Error>(
                self,
                value: &str,
            ) -> std::result::Result<Validation, E> {
                match value {
                    "test" => Ok(Validation::Test),
                    "auto" => Ok(Validation::Auto),
                    other => match other.parse::<f64>() {
                        Ok(f) => self.visit_f64(f),
                        Err(_) => Err(E::custom(format!(
                            "`data.validation` must be \"test\", \"auto\" or a fraction strictly \
                             between 0 and 1, not \"{other}\""
                        ))),
                    },
                }
            }

            fn visit_f64<E: serde::de::Error>(
                self,
                value: f64,
            ) -> std::result::Result<Validation, E> {
                let validation = Validation::Fraction(value);
                validation.check().map_err(E::custom)?;
                Ok(validation)
            }

            fn visit_i64<E: serde::de::Error>(
                self,
                value: i64,
            ) -> std::result::Result<Validation, E> {
                self.visit_f64(value as f64)
            }

            fn visit_u64<E: serde::de::Error>(
                self,
                value: u64,
            ) -> std::result::Result<Validation, E> {
                self.visit_f64(value as f64)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl DataConfig {
    /// Checks the settings that types alone cannot (ranges, combinations); the message names
    /// the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.validation.check()?;
        if self.limit == Some(0) {
            return Err("`data.limit` must be at least 1".into());
        }
        if self.valid_limit == Some(0) {
            return Err("`data.valid_limit` must be at least 1".into());
        }
        if let Some([height, width]) = self.image_size
            && (!(1..=MAX_SIDE).contains(&height) || !(1..=MAX_SIDE).contains(&width))
        {
            return Err(format!(
                "`data.image_size` must be [height, width] with sides from 1 to {MAX_SIDE}, \
                 not [{height}, {width}]"
            ));
        }
        if let Some([low, high]) = self.rotate
            && !(low.is_finite() && high.is_finite() && low <= high && high - low <= 360.0)
        {
            return Err(format!(
                "`data.rotate` must be [low, high] degrees with low <= high, at most 360 apart, \
                 not [{low}, {high}]"
            ));
        }
        if self.rotate_every_use && self.rotate.is_none() {
            return Err(
                "`data.rotate_every_use` redraws the angles of `data.rotate`, which is not given"
                    .into(),
            );
        }
        if let Some(source) = self.pair_source()? {
            if self.binarize == Binarize::Dynamic {
                return Err(format!(
                    "`data.binarize = \"dynamic\"` redraws the inputs, which `data.target = \
                     \"{source}\"` pairs with fixed targets; leave one of them out"
                ));
            }
            if self.rotate.is_some() {
                return Err(
                    "`data.rotate` and `data.target` cannot both be given: the rotation would \
                     not reach the targets"
                        .into(),
                );
            }
        }
        if self.target_classes == Some(0) || self.target_classes == Some(1) {
            return Err("`data.target_classes` must be at least 2".into());
        }
        if !self.train_classes.is_empty() && !self.exclude_classes.is_empty() {
            return Err(
                "`data.train_classes` and `data.exclude_classes` cannot both be given: keep \
                 some classes or exclude some"
                    .into(),
            );
        }
        if self.label_column.is_some() && !self.has_header {
            return Err(
                "`data.label_column` names a column of the header, but `data.has_header` is false"
                    .into(),
            );
        }
        if self.kind == DataKind::Shapes {
            if self.samples == 0 {
                return Err("`data.samples` must be at least 1".into());
            }
            if !(shapes::MIN_SIZE..=MAX_SIDE).contains(&self.size) {
                return Err(format!(
                    "`data.size` must be from {} to {MAX_SIDE}, not {}",
                    shapes::MIN_SIZE,
                    self.size
                ));
            }
        } else if self.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err("`data.path` is empty".into());
        }
        Ok(())
    }
}

/// The largest image side accepted (a guard against typos allocating gigabytes).
const MAX_SIDE: usize = 4096;

/// Loads the data a config describes and splits it into training and validation samples.
///
/// The validation split is taken first and `limit`/`valid_limit` applied after it, so that
/// the validation samples do not change when only `limit` does (runs stay comparable).
pub fn load_splits(config: &DataConfig) -> Result<DataSplits> {
    config
        .validate()
        .map_err(|message| Error::config(SOURCE, message))?;
    let (_, train, test) = load_source(config)?;
    let (train, valid) = match (config.validation, test) {
        (Validation::Test | Validation::Auto, Some(test)) => (train, test),
        (Validation::Test, None) => {
            return Err(Error::config(
                SOURCE,
                format!(
                    "`data.validation = \"test\"`, but {} has no test split; use \"auto\" or a \
                     fraction such as 0.1",
                    train.name
                ),
            ));
        }
        (Validation::Auto, None) => hold_out(&train, AUTO_VALIDATION_FRACTION, config.seed)?,
        (Validation::Fraction(fraction), _) => hold_out(&train, fraction, config.seed)?,
    };
    // Validation keeps the same classes as training, so that early stopping and the best
    // weights are chosen on normal samples only (never on the anomalies of a test split).
    let (train, valid) = match config.class_filter() {
        None => (train, valid),
        Some(filter) => {
            let train = filter
                .apply(&train)
                .map_err(|message| Error::config(SOURCE, message))?;
            let valid = filter
                .apply(&valid)
                .map_err(|message| Error::config(SOURCE, message))?;
            for (split, data) in [("training", &train), ("validation", &valid)] {
                if data.is_empty() {
                    return Err(Error::config(
                        SOURCE,
                        format!(
                            "`{}` leaves no {split} samples in {}",
                            filter.key(),
                            data.name
                        ),
                    ));
                }
            }
            (train, valid)
        }
    };
    let train = match config.limit {
        Some(limit) if limit < train.len() => train.take(limit),
        _ => train,
    };
    let mut valid = match config.valid_limit {
        Some(limit) if limit < valid.len() => valid.take(limit),
        _ => valid,
    };
    if config.binarize == Binarize::Dynamic {
        // Drawn once, with a seed of its own, so every evaluation sees the same binary set.
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed ^ 0xB1_4A_21_5E);
        binarize_in_place(&mut valid.values, &mut rng);
    }
    let scaler = scaler_for(config, &train)?;
    let (mut train, mut valid) = (train, valid);
    if let Some(scaler) = &scaler {
        scaler.apply(&mut train.values);
        scaler.apply(&mut valid.values);
    }
    Ok(DataSplits {
        train,
        valid,
        scaler,
    })
}

/// The scaler `data.scale` asks for, fitted on the training rows; an error for images.
fn scaler_for(
    config: &DataConfig,
    train: &Dataset,
) -> Result<Option<super::scaling::FeatureScaler>> {
    if config.scale == super::scaling::Scale::None {
        return Ok(None);
    }
    if train.shape.is_image() {
        return Err(Error::config(
            SOURCE,
            format!(
                "`data.scale` scales table columns, but {} holds images ({}); pixels are \
                 already scaled to [0, 1]",
                train.name, train.shape
            ),
        ));
    }
    Ok(super::scaling::FeatureScaler::fit(train, config.scale))
}

/// Splits a seeded random `fraction` off `train`: returns `(train, valid)`.
fn hold_out(train: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    if train.len() < 2 {
        return Err(Error::data(
            &train.name,
            format!(
                "holds {} sample(s); at least 2 are needed to hold some out for validation",
                train.len()
            ),
        ));
    }
    Ok(train.split_fraction(fraction, seed))
}

/// Loads the source a config names: returns the kind it turned out to be, the training
/// samples and the test samples when the source has a test split.
pub fn load_source(config: &DataConfig) -> Result<(DataKind, Dataset, Option<Dataset>)> {
    let kind = match (config.kind, &config.path) {
        (DataKind::Shapes, _) => DataKind::Shapes,
        (kind, None) => {
            return Err(Error::config(
                SOURCE,
                format!(
                    "`data.path` is not set; data of kind `{kind}` is read from a file or folder \
                     (only kind = \"shapes\" needs no path)"
                ),
            ));
        }
        (DataKind::Auto, Some(path)) => detect_kind(path)?,
        (kind, Some(_)) => kind,
    };
    let path = config.path.as_deref().unwrap_or(Path::new("shapes"));
    let (train, test) = match kind {
        DataKind::Shapes => {
            let (train, test) = shapes::splits(config.samples, config.size, config.seed);
            (train, Some(test))
        }
        DataKind::Idx => idx::load_folder(path)?,
        DataKind::Images => (images::load_path(path, &image_options(config))?, None),
        DataKind::Csv => {
            let options = TableOptions {
                label_column: config.label_column.clone(),
                has_header: config.has_header,
            };
            (table::load_csv(path, &options)?, None)
        }
        // `detect_kind` never answers `auto`; this arm only keeps the match total.
        DataKind::Auto => {
            return Err(Error::data(path, "cannot tell what kind of data this is"));
        }
    };
    let (train, test) = derive_targets(config, path, train, test)?;
    Ok((kind, train, test))
}

/// The targets `[data]` derives from the samples: the targets CSV's columns (training
/// split) and the rotation (both splits, each with draws of its own).
fn derive_targets(
    config: &DataConfig,
    path: &Path,
    mut train: Dataset,
    mut test: Option<Dataset>,
) -> Result<(Dataset, Option<Dataset>)> {
    let root = source_root(path);
    if let Some(csv) = &config.targets_csv {
        let columns = super::targets::read_targets_csv(csv, &train, root)?;
        for column in columns {
            if let Some(test) = &mut test {
                test.targets.push(super::targets::TargetColumn {
                    name: column.name.clone(),
                    values: vec![f32::NAN; test.len()],
                });
            }
            train.targets.push(column);
        }
    }
    if let Some(range) = config.rotate {
        if config.rotate_every_use {
            train.unrotated = Some(train.values.clone());
        }
        super::targets::rotate(&mut train, range, config.seed ^ 0x5EED_0001)?;
        if let Some(test) = &mut test {
            super::targets::rotate(test, range, config.seed ^ 0x5EED_0002)?;
        }
    }
    if let Some(source) = config
        .pair_source()
        .map_err(|message| Error::config(SOURCE, message))?
    {
        let files = config.target_files();
        super::pairs::pair(
            &mut train,
            &source,
            config.seed ^ super::pairs::TRAIN_PAIR_SEED,
            root,
            files,
        )?;
        if let Some(test) = &mut test {
            super::pairs::pair(
                test,
                &source,
                config.seed ^ super::pairs::TEST_PAIR_SEED,
                root,
                files,
            )?;
        }
    }
    Ok((train, test))
}

/// The folder a source's sample ids (file names) are relative to: the source itself when it
/// is a folder, else the folder holding the file.
pub fn source_root(path: &Path) -> &Path {
    if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    }
}

fn image_options(config: &DataConfig) -> ImageOptions {
    ImageOptions {
        size: config.image_size,
        color: config.color,
        strict: config.strict,
    }
}

/// Whether `path` names the built-in shapes: the bare word `shapes`, when no file or folder
/// of that name exists (a real path always wins, so a folder called `shapes` still loads).
pub fn is_builtin_shapes(path: &Path) -> bool {
    path == Path::new("shapes") && !path.exists()
}

/// Finds out what kind of source `path` is: a folder holding the IDX training files is
/// `idx`, any other folder `images`, a `.csv` file `csv`, a PNG/JPEG file `images`, and the
/// bare word `shapes` the built-in shapes.
pub fn detect_kind(path: &Path) -> Result<DataKind> {
    if path.as_os_str().is_empty() {
        return Err(Error::config(SOURCE, "`data.path` is empty"));
    }
    if is_builtin_shapes(path) {
        return Ok(DataKind::Shapes);
    }
    let metadata = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if metadata.is_dir() {
        return Ok(if idx::find_files(path).is_some() {
            DataKind::Idx
        } else {
            DataKind::Images
        });
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("csv") => Ok(DataKind::Csv),
        _ if images::has_image_extension(path) => Ok(DataKind::Images),
        _ => Err(Error::data(
            path,
            "cannot tell what kind of data this is: expected a folder (IDX files or images), \
             a .csv file or a PNG/JPEG image",
        )),
    }
}

/// Loads the data at `path`, finding out its kind: returns the training samples and the
/// test samples when the source has a test split. Images are loaded grey at their own size;
/// `strict` makes non-image files in an image folder errors; a CSV file is read with
/// `table`'s label column and header setting.
pub fn load_dataset_path(
    path: &Path,
    strict: bool,
    table: &TableOptions,
) -> Result<(Dataset, Option<Dataset>)> {
    let config = source_config(path, strict, table);
    let (_, train, test) = load_source(&config)?;
    Ok((train, test))
}

/// The `[data]` table that reads `path` with the given settings and defaults otherwise.
pub fn source_config(path: &Path, strict: bool, table: &TableOptions) -> DataConfig {
    DataConfig {
        path: Some(path.to_path_buf()),
        strict,
        label_column: table.label_column.clone(),
        has_header: table.has_header,
        ..DataConfig::default()
    }
}

/// Loads the samples at `path` for a model whose input is `shape`: the test split when the
/// source has one (samples the model has not trained on), else all samples.
///
/// Images (a folder or a single PNG/JPEG file) are converted to the model's channels; with
/// `resize` they are also resized to its height and width, and without it an image of
/// another size is an error that says so (one rule for every command: nothing is resized
/// unless asked). `shapes` is generated at the model's size. IDX and CSV samples cannot be
/// converted, so a shape that differs from the model's is an error.
pub fn load_for_model(
    path: &Path,
    shape: SampleShape,
    strict: bool,
    resize: bool,
) -> Result<Dataset> {
    load_split_for_model(
        path,
        shape,
        &ModelInput {
            strict,
            resize,
            ..ModelInput::default()
        },
    )
}

/// Which samples of a source with training and test splits to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// The test split (samples the model has not trained on), or all samples of a source
    /// without one.
    #[default]
    Test,
    /// The training split.
    Train,
    /// The training split followed by the test split.
    All,
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "test" => Ok(Split::Test),
            "train" => Ok(Split::Train),
            "all" => Ok(Split::All),
            other => Err(format!("`{other}`: expected `test`, `train` or `all`")),
        }
    }
}

/// How data is read for a trained model.
#[derive(Debug, Clone, Default)]
pub struct ModelInput {
    /// Non-image files in an image folder are errors.
    pub strict: bool,
    /// Images of another size are resized to the model's (else refused).
    pub resize: bool,
    /// Which split.
    pub split: Split,
    /// CSV: the run's label column, left out of the features when a file has it (a file
    /// without it is read as features only).
    pub label_column: Option<String>,
    /// CSV: whether the first row names the columns (`None`: yes, the default).
    pub has_header: Option<bool>,
}

impl ModelInput {
    /// The table settings of a run's `[data]` table, so that files like the training data
    /// are read the same way.
    pub fn for_run(data: &DataConfig) -> Self {
        Self {
            strict: data.strict,
            label_column: data.label_column.clone(),
            has_header: Some(data.has_header),
            ..Self::default()
        }
    }
}

/// Whether the header of the CSV file at `path` names `column`.
fn csv_header_has(path: &Path, column: &str) -> bool {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return false;
    };
    reader
        .headers()
        .is_ok_and(|h| h.iter().any(|name| name.trim() == column))
}

/// [`load_for_model`] with the split chosen.
pub fn load_split_for_model(
    path: &Path,
    shape: SampleShape,
    input: &ModelInput,
) -> Result<Dataset> {
    let ModelInput {
        strict,
        resize,
        split,
        ..
    } = *input;
    let kind = detect_kind(path)?;
    let dataset = match kind {
        DataKind::Images | DataKind::Shapes => {
            if !shape.is_image() {
                return Err(Error::data(
                    path,
                    format!("holds images, but the model takes table rows of {shape}"),
                ));
            }
            let color = match shape.channels {
                1 => Color::Grey,
                3 => Color::Rgb,
                n => {
                    return Err(Error::data(
                        path,
                        format!("holds images, but the model takes {n}-channel samples ({shape})"),
                    ));
                }
            };
            if kind == DataKind::Shapes {
                if shape.channels != 1 || shape.height != shape.width {
                    return Err(Error::data(
                        path,
                        format!(
                            "the built-in shapes are square grey images, but the model takes \
                             {shape}"
                        ),
                    ));
                }
                let (train, test) = shapes::splits(1000, shape.height, 0);
                pick_split(train, Some(test), split)
            } else {
                let options = ImageOptions {
                    size: resize.then_some([shape.height, shape.width]),
                    color,
                    strict,
                };
                images::load_path(path, &options).map_err(|error| match error {
                    Error::Data { path, message } if !resize => Error::data(
                        path,
                        format!("{message} (or pass --resize to resize every image to the model's {shape})"),
                    ),
                    other => other,
                })?
            }
        }
        DataKind::Csv => {
            let has_header = input.has_header.unwrap_or(true);
            let label_column = input
                .label_column
                .clone()
                .filter(|column| has_header && csv_header_has(path, column));
            let config = DataConfig {
                path: Some(path.to_path_buf()),
                kind: DataKind::Csv,
                label_column,
                has_header,
                ..DataConfig::default()
            };
            let (_, train, test) = load_source(&config)?;
            pick_split(train, test, split)
        }
        _ => {
            let (train, test) = load_dataset_path(path, strict, &TableOptions::default())?;
            pick_split(train, test, split)
        }
    };
    if dataset.shape != shape {
        let hint = if dataset.shape.is_image() && shape.is_image() && !resize {
            "; pass --resize to resize the images to the model's size"
        } else {
            ""
        };
        return Err(Error::data(
            path,
            format!(
                "samples are {}, but the model takes {shape}{hint}",
                dataset.shape
            ),
        ));
    }
    Ok(dataset)
}

/// The samples `split` names (the one split of a source that has no test split).
fn pick_split(train: Dataset, test: Option<Dataset>, split: Split) -> Dataset {
    match (split, test) {
        (Split::Test, Some(test)) => test,
        (Split::All, Some(test)) => {
            let test_len = test.len();
            let mut all = train;
            all.values.extend_from_slice(&test.values);
            all.labels = match (all.labels, test.labels) {
                (Some(mut a), Some(b)) => {
                    a.extend(b);
                    Some(a)
                }
                _ => None,
            };
            all.paths = if all.paths.is_empty() || test.paths.is_empty() {
                Vec::new()
            } else {
                all.paths.into_iter().chain(test.paths).collect()
            };
            all.paired = match (all.paired, test.paired) {
                (Some(mut a), Some(b)) => {
                    a.values.extend(b.values);
                    Some(a)
                }
                _ => None,
            };
            // A target both splits have continues; one only the training split has is
            // missing for the test samples.
            for column in &mut all.targets {
                match test.targets.iter().find(|c| c.name == column.name) {
                    Some(other) => column.values.extend_from_slice(&other.values),
                    None => column
                        .values
                        .extend(std::iter::repeat_n(f32::NAN, test_len)),
                }
            }
            all
        }
        (_, _) => train,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapper {
        data: DataConfig,
    }

    fn parse(text: &str) -> std::result::Result<DataConfig, String> {
        toml::from_str::<Wrapper>(text)
            .map(|w| w.data)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_kinds_parse() {
        let config = parse("[data]\n").unwrap();
        assert_eq!(config, DataConfig::default());
        assert_eq!(
            parse("[data]\nkind = \"mnist\"").unwrap().kind,
            DataKind::Idx
        );
        assert_eq!(
            parse("[data]\nkind = \"fashion-mnist\"").unwrap().kind,
            DataKind::Idx
        );
        assert_eq!(parse("[data]\nkind = \"csv\"").unwrap().kind, DataKind::Csv);
        let config = parse(
            "[data]\nkind = \"images\"\npath = \"x\"\nimage_size = [32, 24]\ncolor = \"rgb\"\n\
             validation = 0.25\nlimit = 10",
        )
        .unwrap();
        assert_eq!(config.image_size, Some([32, 24]));
        assert_eq!(config.color, Color::Rgb);
        assert_eq!(config.validation, Validation::Fraction(0.25));
        assert_eq!(config.limit, Some(10));
        assert_eq!(
            parse("[data]\nvalidation = \"test\"").unwrap().validation,
            Validation::Test
        );
        let error = parse("[data]\npaht = \"x\"").unwrap_err();
        assert!(error.contains("paht"), "{error}");
    }

    #[test]
    fn validation_fraction_out_of_range_is_named() {
        for bad in ["1.5", "0", "1", "-0.2", "\"sometimes\""] {
            let error = parse(&format!("[data]\nvalidation = {bad}")).unwrap_err();
            assert!(error.contains("data.validation"), "{bad}: {error}");
            assert!(error.contains("between 0 and 1"), "{bad}: {error}");
        }
        let config = DataConfig {
            kind: DataKind::Shapes,
            validation: Validation::Fraction(1.5),
            ..DataConfig::default()
        };
        let error = load_splits(&config).unwrap_err().to_string();
        assert!(
            error.contains("data.validation") && error.contains("1.5"),
            "{error}"
        );
    }

    #[test]
    fn config_round_trips_through_toml() {
        #[derive(Serialize)]
        struct Out<'a> {
            data: &'a DataConfig,
        }
        for config in [
            DataConfig::default(),
            DataConfig {
                kind: DataKind::Images,
                path: Some("a/b".into()),
                validation: Validation::Fraction(0.2),
                image_size: Some([16, 16]),
                label_column: Some("y".into()),
                ..DataConfig::default()
            },
            DataConfig {
                validation: Validation::Test,
                ..DataConfig::default()
            },
        ] {
            let text = toml::to_string(&Out { data: &config }).unwrap();
            assert_eq!(parse(&text).unwrap(), config, "{text}");
        }
    }

    #[test]
    fn shapes_splits_limits_and_validation() {
        let config = DataConfig {
            kind: DataKind::Shapes,
            samples: 200,
            size: 16,
            limit: Some(50),
            valid_limit: Some(7),
            ..DataConfig::default()
        };
        let splits = load_splits(&config).unwrap();
        assert_eq!(splits.train.len(), 50);
        assert_eq!(splits.valid.len(), 7);
        assert_eq!(splits.train.shape, SampleShape::image(1, 16, 16));

        let config = DataConfig {
            kind: DataKind::Shapes,
            samples: 200,
            size: 16,
            validation: Validation::Fraction(0.25),
            ..DataConfig::default()
        };
        let splits = load_splits(&config).unwrap();
        assert_eq!((splits.train.len(), splits.valid.len()), (150, 50));
    }

    #[test]
    fn missing_path_and_no_test_split_are_errors() {
        let error = load_splits(&DataConfig::default()).unwrap_err().to_string();
        assert!(error.contains("data.path"), "{error}");
        let error = detect_kind(Path::new("")).unwrap_err().to_string();
        assert!(error.contains("empty"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a,b\n1,2\n3,4\n5,6\n").unwrap();
        let mut config = DataConfig {
            path: Some(csv.clone()),
            validation: Validation::Test,
            ..DataConfig::default()
        };
        let error = load_splits(&config).unwrap_err().to_string();
        assert!(error.contains("no test split"), "{error}");
        config.validation = Validation::Auto;
        let splits = load_splits(&config).unwrap();
        assert_eq!((splits.train.len(), splits.valid.len()), (2, 1));
    }

    #[test]
    fn detects_kinds() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect_kind(dir.path()).unwrap(), DataKind::Images);
        let csv = dir.path().join("t.CSV");
        std::fs::write(&csv, "a\n1\n").unwrap();
        assert_eq!(detect_kind(&csv).unwrap(), DataKind::Csv);
        let png = dir.path().join("x.png");
        std::fs::write(&png, "").unwrap();
        assert_eq!(detect_kind(&png).unwrap(), DataKind::Images);
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "").unwrap();
        let error = detect_kind(&other).unwrap_err().to_string();
        assert!(error.contains("cannot tell"), "{error}");
        assert_eq!(detect_kind(Path::new("shapes")).unwrap(), DataKind::Shapes);
        let error = detect_kind(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing"), "{error}");
    }

    #[test]
    fn load_for_model_converts_images_and_checks_other_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("one.png");
        image::RgbImage::from_pixel(10, 6, image::Rgb([255, 0, 0]))
            .save(&png)
            .unwrap();
        let grey = load_for_model(&png, SampleShape::image(1, 4, 5), false, true).unwrap();
        assert_eq!(grey.len(), 1);
        assert_eq!(grey.shape, SampleShape::image(1, 4, 5));
        let error = load_for_model(&png, SampleShape::image(1, 4, 5), false, false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("1x6x10") && error.contains("1x4x5") && error.contains("--resize"),
            "an image of another size is refused unless --resize: {error}"
        );
        let rgb = load_for_model(&png, SampleShape::image(3, 8, 8), false, true).unwrap();
        assert_eq!(rgb.shape, SampleShape::image(3, 8, 8));
        assert!(rgb.sample(0)[..64].iter().all(|&v| (v - 1.0).abs() < 1e-6));

        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a,b\n1,2\n").unwrap();
        let error = load_for_model(&csv, SampleShape::features(3), false, false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("2 features") && error.contains("3 features"),
            "{error}"
        );
        let error = load_for_model(&png, SampleShape::features(3), false, false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("table rows"), "{error}");

        let shapes = load_for_model(
            Path::new("shapes"),
            SampleShape::image(1, 20, 20),
            false,
            false,
        )
        .unwrap();
        assert_eq!(shapes.shape, SampleShape::image(1, 20, 20));
    }
}
