//! Image-to-image pairs: a target image (or a per-pixel class map) for every sample, so that
//! a model learns an output other than its input.
//!
//! `[data] target = "..."` names where the targets come from:
//! - derived from the samples themselves, for the built-in cases: `colourise` (a grey input,
//!   a coloured target whose hue follows the sample's class, or its rows when unlabelled),
//!   `upscale:2` / `upscale:4` (the input is the image shrunk by area averaging and brought
//!   back to full size by bicubic interpolation, as SRCNN does; the target is the image),
//!   `inpaint` (the input has random boxes filled with mid grey; the target is the whole
//!   image) and `segment` (each pixel's class: background, or the class of the sample's
//!   object where the image is bright, for single-object images such as the shapes);
//! - read from files: `folder:PATH` (target images with the input files' names, relative to
//!   their folders) and `masks:PATH` (grey PNG masks whose pixel values are class indices,
//!   below `[data] target_classes`).
//!
//! Derived inputs and targets are drawn once per split with the data seed, so a run is
//! reproducible and its validation pairs never change.

use super::{Dataset, SampleShape};
use crate::error::{Error, Result};
use image::imageops::{self, FilterType};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// Where a data set's targets come from (`[data] target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairSource {
    /// Grey input, coloured target.
    Colourise,
    /// Input shrunk by this factor and brought back by bicubic interpolation.
    Upscale(usize),
    /// Input with random boxes filled in.
    Inpaint,
    /// Per-pixel class map: background or the sample's class.
    Segment,
    /// Target images in a folder, by file name.
    Folder(PathBuf),
    /// Class-index masks in a folder, by file name.
    Masks(PathBuf),
}

/// What the data seed is mixed with for the derived pairs of the training split (colour
/// jitter, boxes), so that they differ from the other splits'.
pub const TRAIN_PAIR_SEED: u64 = 0x9A12_0001;

/// The same for the test split, and for any other data a trained model is applied to.
pub const TEST_PAIR_SEED: u64 = 0x9A12_0002;

/// The fill value of an inpainting box: mid grey, so that a hole is told apart from black.
pub const HOLE_VALUE: f32 = 0.5;

/// A derived segmentation's threshold: a pixel brighter than this belongs to the object.
pub const OBJECT_THRESHOLD: f32 = 0.5;

impl std::str::FromStr for PairSource {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (text, None),
        };
        let path = |what: &str| -> std::result::Result<PathBuf, String> {
            match argument {
                Some(a) if !a.trim().is_empty() => Ok(PathBuf::from(a.trim())),
                _ => Err(format!("`{what}:PATH` needs the folder after the colon")),
            }
        };
        match (name, argument) {
            ("colourise" | "colorize", None) => Ok(PairSource::Colourise),
            ("inpaint", None) => Ok(PairSource::Inpaint),
            ("segment", None) => Ok(PairSource::Segment),
            ("upscale", Some(factor)) => match factor.trim().parse::<usize>() {
                Ok(f @ 2..=8) => Ok(PairSource::Upscale(f)),
                _ => Err(format!(
                    "`upscale:{factor}`: the factor must be a whole number from 2 to 8"
                )),
            },
            ("folder", _) => Ok(PairSource::Folder(path("folder")?)),
            ("masks", _) => Ok(PairSource::Masks(path("masks")?)),
            _ => Err(format!(
                "`{text}` is no target; expected `colourise`, `upscale:2`, `upscale:4`, \
                 `inpaint`, `segment`, `folder:PATH` or `masks:PATH`"
            )),
        }
    }
}

impl std::fmt::Display for PairSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PairSource::Colourise => write!(f, "colourise"),
            PairSource::Upscale(factor) => write!(f, "upscale:{factor}"),
            PairSource::Inpaint => write!(f, "inpaint"),
            PairSource::Segment => write!(f, "segment"),
            PairSource::Folder(path) => write!(f, "folder:{}", path.display()),
            PairSource::Masks(path) => write!(f, "masks:{}", path.display()),
        }
    }
}

impl PairSource {
    /// Whether the targets are per-pixel classes (segmentation) rather than images.
    pub fn is_segmentation(&self) -> bool {
        matches!(self, PairSource::Segment | PairSource::Masks(_))
    }

    /// Whether the targets come from the samples alone (so any data can be paired the same
    /// way), not from files beside them.
    pub fn is_derived(&self) -> bool {
        !matches!(self, PairSource::Folder(_) | PairSource::Masks(_))
    }
}

/// Every sample's target: an image, or a class index per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedTargets {
    /// The shape of one target (`1 x h x w` for a class map).
    pub shape: SampleShape,
    /// All targets, one after another.
    pub values: Vec<f32>,
    /// For class maps: the class names (index = class); empty for image targets.
    pub classes: Vec<String>,
}

impl PairedTargets {
    /// The values of target `index`.
    pub fn sample(&self, index: usize) -> &[f32] {
        let n = self.shape.len();
        &self.values[index * n..(index + 1) * n]
    }

    /// The targets of the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> PairedTargets {
        let mut values = Vec::with_capacity(indices.len() * self.shape.len());
        for &i in indices {
            values.extend_from_slice(self.sample(i));
        }
        PairedTargets {
            shape: self.shape,
            values,
            classes: self.classes.clone(),
        }
    }

    /// Whether targets are class maps.
    pub fn is_segmentation(&self) -> bool {
        !self.classes.is_empty()
    }

    /// The shape of the model's output for these targets: one channel per class for class
    /// maps, the target's shape otherwise.
    pub fn output_shape(&self) -> SampleShape {
        if self.is_segmentation() {
            SampleShape::image(self.classes.len(), self.shape.height, self.shape.width)
        } else {
            self.shape
        }
    }

    /// The targets of the samples at `indices`, in that order, as the loss takes them: the
    /// images, or the class maps one-hot per pixel (`classes x h x w` per sample). Written
    /// straight into one buffer (this runs on the batch thread for every training step).
    pub fn loss_rows(&self, indices: impl ExactSizeIterator<Item = usize>) -> Vec<f32> {
        let n = self.shape.len();
        let classes = self.classes.len().max(1);
        let mut rows = vec![0.0f32; indices.len() * classes * n];
        for (s, i) in indices.enumerate() {
            let map = self.sample(i);
            let row = &mut rows[s * classes * n..(s + 1) * classes * n];
            if self.is_segmentation() {
                for (p, &class) in map.iter().enumerate() {
                    row[class as usize * n + p] = 1.0;
                }
            } else {
                row.copy_from_slice(map);
            }
        }
        rows
    }
}

/// How targets read from files are taken (`[data] target_classes`, `target_color`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetFiles {
    /// Masks: the number of classes (a pixel at or above it is an error).
    pub classes: Option<usize>,
    /// Target images: grey or RGB (default: the inputs' colour).
    pub color: Option<super::config::Color>,
}

/// Pairs every sample of `data` with its target as `source` says, replacing the inputs
/// where the pair's input is derived (upscaling, inpainting). `seed` draws the random parts
/// (colour jitter, boxes); `root` is the folder the samples were read from (for targets
/// found by file name), and `files` says how such targets are read.
pub fn pair(
    data: &mut Dataset,
    source: &PairSource,
    seed: u64,
    root: &Path,
    files: TargetFiles,
) -> Result<()> {
    if !data.shape.is_image() {
        return Err(Error::data(
            &data.name,
            format!(
                "`data.target = \"{source}\"` pairs images, but the samples are table rows ({})",
                data.shape
            ),
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let paired = match source {
        PairSource::Colourise => colourise(data, &mut rng)?,
        PairSource::Upscale(factor) => upscale(data, *factor)?,
        PairSource::Inpaint => inpaint(data, &mut rng),
        PairSource::Segment => segment(data)?,
        PairSource::Folder(folder) => from_folder(data, root, folder, false, files)?,
        PairSource::Masks(folder) => from_folder(data, root, folder, true, files)?,
    };
    data.paired = Some(paired);
    Ok(())
}

/// The hue of a class, evenly spaced around the colour wheel.
fn class_hue(label: u32, classes: usize) -> f32 {
    label as f32 / classes.max(1) as f32
}

/// RGB of a fully saturated colour of `hue` (0..1) at brightness `value`.
fn hue_to_rgb(hue: f32, value: f32) -> [f32; 3] {
    let h = hue.rem_euclid(1.0) * 6.0;
    let x = 1.0 - ((h % 2.0) - 1.0).abs();
    let (r, g, b) = match h as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    [r * value, g * value, b * value]
}

fn colourise(data: &Dataset, rng: &mut rand::rngs::StdRng) -> Result<PairedTargets> {
    let shape = data.shape;
    if shape.channels != 1 {
        return Err(Error::data(
            &data.name,
            format!(
                "`data.target = \"colourise\"` colours grey images, but the samples have {} \
                 channels",
                shape.channels
            ),
        ));
    }
    let plane = shape.height * shape.width;
    let classes = super::targets::classes_of(data);
    let mut values = Vec::with_capacity(data.len() * 3 * plane);
    for i in 0..data.len() {
        let grey = data.sample(i);
        // Labelled samples are coloured by class (with a little seeded jitter), so that the
        // colour is learnable from the shape; unlabelled ones by row, top to bottom.
        let label_hue = data
            .labels
            .as_ref()
            .map(|labels| class_hue(labels[i], classes) + rng.random_range(-0.03..0.03));
        let mut rgb = vec![0.0f32; 3 * plane];
        for (p, &v) in grey.iter().enumerate() {
            let hue = label_hue.unwrap_or(0.75 * (p / shape.width) as f32 / shape.height as f32);
            for (c, channel) in hue_to_rgb(hue, v).into_iter().enumerate() {
                rgb[c * plane + p] = channel;
            }
        }
        values.extend_from_slice(&rgb);
    }
    Ok(PairedTargets {
        shape: SampleShape::image(3, shape.height, shape.width),
        values,
        classes: Vec::new(),
    })
}

/// `image` shrunk by `factor` (area averaging) and brought back to its size by bicubic
/// (Catmull-Rom) interpolation, channel by channel, clamped to [0, 1].
pub fn bicubic_round_trip(image: &[f32], shape: SampleShape, factor: usize) -> Vec<f32> {
    let (h, w) = (shape.height, shape.width);
    let (small_h, small_w) = (h / factor, w / factor);
    let plane = h * w;
    let mut out = Vec::with_capacity(image.len());
    for channel in image.chunks_exact(plane) {
        let mut small = vec![0.0f32; small_h * small_w];
        for y in 0..small_h {
            for x in 0..small_w {
                let mut sum = 0.0;
                for dy in 0..factor {
                    for dx in 0..factor {
                        sum += channel[(y * factor + dy) * w + x * factor + dx];
                    }
                }
                small[y * small_w + x] = sum / (factor * factor) as f32;
            }
        }
        let small = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(
            small_w as u32,
            small_h as u32,
            small,
        )
        .expect("the buffer holds every pixel");
        let large = imageops::resize(&small, w as u32, h as u32, FilterType::CatmullRom);
        out.extend(large.into_raw().into_iter().map(|v| v.clamp(0.0, 1.0)));
    }
    out
}

fn upscale(data: &mut Dataset, factor: usize) -> Result<PairedTargets> {
    let shape = data.shape;
    if !shape.height.is_multiple_of(factor)
        || !shape.width.is_multiple_of(factor)
        || shape.height < 2 * factor
    {
        return Err(Error::data(
            &data.name,
            format!(
                "`data.target = \"upscale:{factor}\"` needs images whose sides are multiples of \
                 {factor} (at least {}), but they are {}x{}; set `data.image_size`",
                2 * factor,
                shape.height,
                shape.width
            ),
        ));
    }
    let originals = std::mem::take(&mut data.values);
    data.values = originals
        .chunks_exact(shape.len())
        .flat_map(|image| bicubic_round_trip(image, shape, factor))
        .collect();
    Ok(PairedTargets {
        shape,
        values: originals,
        classes: Vec::new(),
    })
}

fn inpaint(data: &mut Dataset, rng: &mut rand::rngs::StdRng) -> PairedTargets {
    let shape = data.shape;
    let (h, w) = (shape.height, shape.width);
    let plane = h * w;
    let originals = data.values.clone();
    let n = shape.len();
    for sample in data.values.chunks_exact_mut(n) {
        // One or two boxes, each a quarter to a half of the side.
        for _ in 0..rng.random_range(1..=2) {
            let box_h = rng.random_range((h / 4).max(1)..=(h / 2).max(1));
            let box_w = rng.random_range((w / 4).max(1)..=(w / 2).max(1));
            let top = rng.random_range(0..=h - box_h);
            let left = rng.random_range(0..=w - box_w);
            for channel in sample.chunks_exact_mut(plane) {
                for y in top..top + box_h {
                    channel[y * w + left..y * w + left + box_w].fill(HOLE_VALUE);
                }
            }
        }
    }
    PairedTargets {
        shape,
        values: originals,
        classes: Vec::new(),
    }
}

fn segment(data: &Dataset) -> Result<PairedTargets> {
    let Some(labels) = &data.labels else {
        return Err(Error::data(
            &data.name,
            "`data.target = \"segment\"` gives each bright pixel its sample's class, but the \
             samples have no labels; use `masks:PATH` for masks of your own",
        ));
    };
    let shape = data.shape;
    let plane = shape.height * shape.width;
    let classes = super::targets::classes_of(data);
    let mut values = Vec::with_capacity(data.len() * plane);
    for (i, &label) in labels.iter().enumerate() {
        let sample = data.sample(i);
        for p in 0..plane {
            let brightness = (0..shape.channels)
                .map(|c| sample[c * plane + p])
                .sum::<f32>()
                / shape.channels as f32;
            values.push(if brightness > OBJECT_THRESHOLD {
                (label + 1) as f32
            } else {
                0.0
            });
        }
    }
    let names = std::iter::once("background".to_string())
        .chain((0..classes).map(|c| {
            data.class_names
                .get(c)
                .cloned()
                .unwrap_or_else(|| c.to_string())
        }))
        .collect();
    Ok(PairedTargets {
        shape: SampleShape::image(1, shape.height, shape.width),
        values,
        classes: names,
    })
}

/// The path of each sample relative to `root`, with `/` separators.
fn relative_names(data: &Dataset, root: &Path) -> Vec<String> {
    data.paths
        .iter()
        .map(|path| {
            path.strip_prefix(root)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

/// A short list of names for a message: the first three and how many more.
fn some_names(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(3).map(|s| s.as_str()).collect();
    match names.len() {
        n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
        _ => shown.join(", "),
    }
}

fn from_folder(
    data: &Dataset,
    root: &Path,
    folder: &Path,
    masks: bool,
    files: TargetFiles,
) -> Result<PairedTargets> {
    if data.paths.len() != data.len() {
        return Err(Error::data(
            &data.name,
            format!(
                "targets read from {} are matched by file name, but these samples were not \
                 read from image files",
                folder.display()
            ),
        ));
    }
    if !folder.is_dir() {
        return Err(Error::data(folder, "is not a folder of target images"));
    }
    let inputs_color = if data.shape.channels == 1 {
        super::config::Color::Grey
    } else {
        super::config::Color::Rgb
    };
    let color = if masks {
        super::config::Color::Grey
    } else {
        files.color.unwrap_or(inputs_color)
    };
    let options = super::images::ImageOptions {
        size: None,
        color,
        strict: false,
    };
    let targets = super::images::load_path(folder, &options)?;
    let target_names = relative_names(&targets, folder);
    let index: std::collections::HashMap<&String, usize> = target_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    let input_names = relative_names(data, root);
    let missing: Vec<&String> = input_names
        .iter()
        .filter(|n| !index.contains_key(n))
        .collect();
    let inputs: std::collections::HashSet<&String> = input_names.iter().collect();
    let extra: Vec<&String> = target_names
        .iter()
        .filter(|n| !inputs.contains(n))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut message = String::from("the target file names do not match the inputs'");
        if !missing.is_empty() {
            message += &format!(
                "; no target for {} input(s): {}",
                missing.len(),
                some_names(&missing)
            );
        }
        if !extra.is_empty() {
            message += &format!(
                "; {} target(s) with no input: {}",
                extra.len(),
                some_names(&extra)
            );
        }
        return Err(Error::data(folder, message));
    }
    let shape = targets.shape;
    if shape.height != data.shape.height || shape.width != data.shape.width {
        return Err(Error::data(
            folder,
            format!(
                "the targets are {}x{} pixels but the inputs {}x{}; image-to-image models keep \
                 the size",
                shape.height, shape.width, data.shape.height, data.shape.width
            ),
        ));
    }
    let order: Vec<usize> = input_names.iter().map(|n| index[n]).collect();
    let mut paired = PairedTargets {
        shape,
        values: targets.subset(&order).values,
        classes: Vec::new(),
    };
    if masks {
        let limit = files.classes.unwrap_or(256);
        let mut highest = 0usize;
        for (s, map) in paired.values.chunks_exact_mut(shape.len()).enumerate() {
            for (p, value) in map.iter_mut().enumerate() {
                let class = (*value * 255.0).round() as usize;
                if class >= limit {
                    return Err(Error::data(
                        &targets.paths[order[s]],
                        format!(
                            "pixel ({}, {}) has class {class}, but `data.target_classes` is \
                             {limit} (classes 0 to {})",
                            p % shape.width,
                            p / shape.width,
                            limit - 1
                        ),
                    ));
                }
                highest = highest.max(class);
                *value = class as f32;
            }
        }
        let classes = files.classes.unwrap_or(highest + 1).max(2);
        paired.classes = (0..classes).map(|c| c.to_string()).collect();
    }
    Ok(paired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(values: Vec<f32>, shape: SampleShape, labels: Vec<u32>) -> Dataset {
        let mut data = Dataset::unlabelled("test", shape, values);
        data.labels = Some(labels);
        data
    }

    #[test]
    fn sources_parse_and_print_back() {
        for text in [
            "colourise",
            "upscale:2",
            "upscale:4",
            "inpaint",
            "segment",
            "folder:a/b",
            "masks:m",
        ] {
            let source: PairSource = text.parse().unwrap();
            assert_eq!(source.to_string(), text);
        }
        assert_eq!("colorize".parse::<PairSource>(), Ok(PairSource::Colourise));
        for bad in [
            "upscale",
            "upscale:1",
            "upscale:x",
            "folder:",
            "blur",
            "masks",
        ] {
            let error = bad.parse::<PairSource>().unwrap_err();
            assert!(!error.is_empty(), "{bad}");
        }
    }

    #[test]
    fn upscaling_a_constant_image_gives_it_back_and_keeps_the_original_as_target() {
        let shape = SampleShape::image(1, 8, 8);
        let mut data = Dataset::unlabelled("c", shape, vec![0.25; 64]);
        pair(
            &mut data,
            &PairSource::Upscale(2),
            0,
            Path::new("."),
            TargetFiles::default(),
        )
        .unwrap();
        assert!(data.values.iter().all(|v| (v - 0.25).abs() < 1e-5));
        let paired = data.paired.unwrap();
        assert_eq!(paired.shape, shape);
        assert_eq!(paired.values, vec![0.25; 64]);
    }

    #[test]
    fn upscaling_averages_blocks_and_interpolates_between_them() {
        // A left half at 0 and a right half at 1: the round trip keeps the far columns and
        // blends across the edge, never overshooting [0, 1].
        let shape = SampleShape::image(1, 4, 8);
        let image: Vec<f32> = (0..32).map(|i| if i % 8 < 4 { 0.0 } else { 1.0 }).collect();
        let out = bicubic_round_trip(&image, shape, 2);
        assert!(out[0] < 0.05 && out[7] > 0.95, "{out:?}");
        assert!(out[3] > 0.0 && out[3] < out[4] && out[4] < 1.0, "{out:?}");
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        let mut odd = Dataset::unlabelled("odd", SampleShape::image(1, 9, 9), vec![0.0; 81]);
        let error = pair(
            &mut odd,
            &PairSource::Upscale(2),
            0,
            Path::new("."),
            TargetFiles::default(),
        );
        assert!(error.unwrap_err().to_string().contains("multiples of 2"));
    }

    #[test]
    fn segmentation_gives_bright_pixels_their_class_and_one_hot_rows() {
        let shape = SampleShape::image(1, 2, 2);
        let mut data = labelled(
            vec![0.0, 0.9, 0.6, 0.1, 1.0, 0.0, 0.0, 0.0],
            shape,
            vec![2, 0],
        );
        data.class_names = vec!["a".into(), "b".into(), "c".into()];
        pair(
            &mut data,
            &PairSource::Segment,
            0,
            Path::new("."),
            TargetFiles::default(),
        )
        .unwrap();
        let paired = data.paired.as_ref().unwrap();
        assert_eq!(paired.values, vec![0.0, 3.0, 3.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(paired.classes, ["background", "a", "b", "c"]);
        assert_eq!(paired.output_shape(), SampleShape::image(4, 2, 2));
        let rows = paired.loss_rows(0..1);
        // Class-major: background's plane, then a's, b's, c's.
        assert_eq!(
            rows,
            vec![
                1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1., 1., 0.
            ]
        );
        let mut unlabelled = Dataset::unlabelled("u", shape, vec![0.0; 4]);
        assert!(
            pair(
                &mut unlabelled,
                &PairSource::Segment,
                0,
                Path::new("."),
                TargetFiles::default()
            )
            .is_err()
        );
    }

    #[test]
    fn colourising_keeps_brightness_and_colours_by_class() {
        let shape = SampleShape::image(1, 2, 2);
        let mut data = labelled(
            vec![1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 1.0, 1.0],
            shape,
            vec![0, 1],
        );
        pair(
            &mut data,
            &PairSource::Colourise,
            3,
            Path::new("."),
            TargetFiles::default(),
        )
        .unwrap();
        let paired = data.paired.as_ref().unwrap();
        assert_eq!(paired.shape, SampleShape::image(3, 2, 2));
        let first = paired.sample(0);
        // The brightest channel of each pixel is the grey value.
        for p in 0..4 {
            let max = (0..3).map(|c| first[c * 4 + p]).fold(0.0f32, f32::max);
            assert!((max - data.sample(0)[p]).abs() < 1e-6);
        }
        // Class 0 is near red, class 1 (of two) near cyan.
        assert!(first[0] > 0.9 && first[8] < 0.3);
        let second = paired.sample(1);
        assert!(second[0] < 0.3 && second[8] > 0.7);
        let mut rgb = Dataset::unlabelled("rgb", SampleShape::image(3, 2, 2), vec![0.0; 12]);
        assert!(
            pair(
                &mut rgb,
                &PairSource::Colourise,
                0,
                Path::new("."),
                TargetFiles::default()
            )
            .is_err()
        );
    }

    #[test]
    fn inpainting_fills_boxes_with_grey_and_keeps_the_whole_image_as_target() {
        let shape = SampleShape::image(1, 8, 8);
        let mut data = Dataset::unlabelled("z", shape, vec![0.0; 64 * 3]);
        pair(
            &mut data,
            &PairSource::Inpaint,
            1,
            Path::new("."),
            TargetFiles::default(),
        )
        .unwrap();
        for i in 0..3 {
            let holes = data.sample(i).iter().filter(|&&v| v == HOLE_VALUE).count();
            assert!((4..=32).contains(&holes), "{holes}");
        }
        assert_eq!(data.paired.unwrap().values, vec![0.0; 64 * 3]);
    }
}
