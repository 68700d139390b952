//! Image-to-image models (`[data] target`): how close their outputs come to the targets,
//! beside what the input alone gives (for super-resolution that is bicubic interpolation),
//! and, for segmentation, pixel accuracy and intersection over union per class.

use super::denoise::{capped_psnr, image_ssim};
use crate::data::{Dataset, SampleShape};
use crate::error::{Error, Result};
use crate::trained::TrainedModel;
use serde::{Deserialize, Serialize};

/// PSNR and SSIM of one set of images against the targets (means over images).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImageQuality {
    /// Mean PSNR in dB (peak 1, each image capped at 100 dB).
    pub psnr: f64,
    /// Mean SSIM (11x11 Gaussian window); absent for images smaller than the window.
    pub ssim: Option<f64>,
}

/// One class's intersection over union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassIou {
    /// The class's name.
    pub name: String,
    /// Pixels of the class in the targets.
    pub pixels: usize,
    /// `TP / (TP + FP + FN)` over all pixels; absent when the class occurs in neither the
    /// targets nor the predictions.
    pub iou: Option<f64>,
}

/// How well an image-to-image model maps its inputs to its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PairMetrics {
    /// Image targets (colour, higher resolution, whole images).
    Image {
        /// The target, as `[data] target` names it.
        target: String,
        /// Images measured.
        samples: usize,
        /// The model's outputs against the targets.
        output: ImageQuality,
        /// The inputs themselves against the targets, when they have the targets' shape: the
        /// baseline to beat (bicubic interpolation for `upscale`, the holed image for
        /// `inpaint`).
        input: Option<ImageQuality>,
    },
    /// Class maps.
    Segmentation {
        /// The target, as `[data] target` names it.
        target: String,
        /// Images measured.
        samples: usize,
        /// The share of pixels given their target class.
        pixel_accuracy: f64,
        /// The mean of the classes' IoU (background included), over the classes that occur.
        mean_iou: f64,
        /// Each class's IoU.
        classes: Vec<ClassIou>,
    },
}

impl std::fmt::Display for PairMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quality = |q: &ImageQuality| match q.ssim {
            Some(ssim) => format!("PSNR {:.2} dB, SSIM {ssim:.4}", q.psnr),
            None => format!("PSNR {:.2} dB", q.psnr),
        };
        match self {
            PairMetrics::Image {
                target,
                samples,
                output,
                input,
            } => {
                write!(
                    f,
                    "target {target}: output {} ({samples} images)",
                    quality(output)
                )?;
                if let Some(input) = input {
                    let baseline = if target.starts_with("upscale") {
                        "bicubic"
                    } else {
                        "input"
                    };
                    write!(
                        f,
                        "\n  {baseline}: {} ({:+.2} dB by the model)",
                        quality(input),
                        output.psnr - input.psnr
                    )?;
                }
                Ok(())
            }
            PairMetrics::Segmentation {
                target,
                samples,
                pixel_accuracy,
                mean_iou,
                classes,
            } => {
                write!(
                    f,
                    "target {target}: pixel accuracy {:.2}%, mean IoU {mean_iou:.4} ({samples} images)",
                    100.0 * pixel_accuracy
                )?;
                for class in classes {
                    match class.iou {
                        Some(iou) => write!(f, "\n  {}: IoU {iou:.4}", class.name)?,
                        None => write!(f, "\n  {}: absent", class.name)?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// The image-to-image metrics of `model` on `data` (which carries its targets); `None` for
/// data without targets (another folder than a file-paired model's own).
pub fn pair_metrics(model: &TrainedModel, data: &Dataset) -> Result<Option<PairMetrics>> {
    let Some(paired) = &data.paired else {
        return Ok(None);
    };
    let target = model.config().data.target.clone().unwrap_or_default();
    if paired.is_segmentation() {
        let predicted = model.predict_pixel_classes(&data.values)?;
        let truth: Vec<u32> = paired.values.iter().map(|&v| v as u32).collect();
        let (pixel_accuracy, mean_iou, classes) =
            segmentation_scores(&truth, &predicted, &paired.classes);
        return Ok(Some(PairMetrics::Segmentation {
            target,
            samples: data.len(),
            pixel_accuracy,
            mean_iou,
            classes,
        }));
    }
    let outputs = model.reconstruct(&data.values)?;
    let output = quality(&paired.values, &outputs, paired.shape)?;
    let input = if data.shape == paired.shape {
        Some(quality(&paired.values, &data.values, paired.shape)?)
    } else {
        None
    };
    Ok(Some(PairMetrics::Image {
        target,
        samples: data.len(),
        output,
        input,
    }))
}

/// Mean PSNR and SSIM of `images` against `targets` (both consecutive images of `shape`).
pub fn quality(targets: &[f32], images: &[f32], shape: SampleShape) -> Result<ImageQuality> {
    let n = shape.len();
    if targets.len() != images.len() || n == 0 {
        return Err(Error::Input(format!(
            "{} target values against {} image values of {shape}",
            targets.len(),
            images.len()
        )));
    }
    let with_ssim = shape.height >= 11 && shape.width >= 11;
    let (mut psnr, mut ssim) = (0.0, 0.0);
    for (target, image) in targets.chunks_exact(n).zip(images.chunks_exact(n)) {
        psnr += capped_psnr(target, image);
        if with_ssim {
            ssim += image_ssim(target, image, shape)?;
        }
    }
    let count = (targets.len() / n) as f64;
    Ok(ImageQuality {
        psnr: psnr / count,
        ssim: with_ssim.then_some(ssim / count),
    })
}

/// Pixel accuracy, mean IoU over the classes that occur, and each class's IoU.
pub fn segmentation_scores(
    truth: &[u32],
    predicted: &[u32],
    names: &[String],
) -> (f64, f64, Vec<ClassIou>) {
    let k = names.len();
    // intersection, target pixels, predicted pixels per class
    let mut counts = vec![[0usize; 3]; k];
    let mut correct = 0usize;
    for (&t, &p) in truth.iter().zip(predicted) {
        let (t, p) = (t as usize, p as usize);
        if t == p {
            correct += 1;
            counts[t][0] += 1;
        }
        counts[t][1] += 1;
        counts[p][2] += 1;
    }
    let classes: Vec<ClassIou> = names
        .iter()
        .zip(&counts)
        .map(|(name, &[intersection, target, predicted])| {
            let union = target + predicted - intersection;
            ClassIou {
                name: name.clone(),
                pixels: target,
                iou: (union > 0).then(|| intersection as f64 / union as f64),
            }
        })
        .collect();
    let present: Vec<f64> = classes.iter().filter_map(|c| c.iou).collect();
    let mean_iou = present.iter().sum::<f64>() / present.len().max(1) as f64;
    (
        correct as f64 / truth.len().max(1) as f64,
        mean_iou,
        classes,
    )
}

/// Each pixel's most probable class from per-class logit planes (`classes x plane` values
/// per sample, class-major): `plane` classes per sample.
pub fn most_probable_classes(logits: &[f32], classes: usize, plane: usize) -> Vec<u32> {
    logits
        .chunks_exact(classes * plane)
        .flat_map(|sample| {
            (0..plane).map(move |p| {
                (0..classes)
                    .max_by(|&a, &b| sample[a * plane + p].total_cmp(&sample[b * plane + p]))
                    .unwrap_or(0) as u32
            })
        })
        .collect()
}

/// Colours of the pixel classes in pictures: background black, then distinct hues.
const PALETTE: [[f32; 3]; 10] = [
    [0.0, 0.0, 0.0],
    [0.90, 0.10, 0.10],
    [0.10, 0.70, 0.20],
    [0.15, 0.35, 0.95],
    [0.95, 0.80, 0.10],
    [0.80, 0.20, 0.85],
    [0.10, 0.80, 0.85],
    [0.95, 0.50, 0.10],
    [0.60, 0.60, 0.60],
    [1.0, 1.0, 1.0],
];

/// Images as RGB for a picture (`3 x h x w` each): grey channels repeated, class maps
/// (`class_map`: one class index per pixel) painted in the palette's colours.
pub fn to_rgb(values: &[f32], shape: SampleShape, class_map: bool) -> Vec<f32> {
    let plane = shape.height * shape.width;
    let n = shape.len();
    let mut out = Vec::with_capacity(values.len() / n.max(1) * 3 * plane);
    for sample in values.chunks_exact(n) {
        let mut rgb = vec![0.0f32; 3 * plane];
        for p in 0..plane {
            let colour = if class_map {
                PALETTE[sample[p] as usize % PALETTE.len()]
            } else if shape.channels >= 3 {
                [sample[p], sample[plane + p], sample[2 * plane + p]]
            } else {
                [sample[p]; 3]
            };
            for (c, v) in colour.into_iter().enumerate() {
                rgb[c * plane + p] = v;
            }
        }
        out.extend_from_slice(&rgb);
    }
    out
}

/// The rows of an image-to-image picture of `samples`: inputs, the model's outputs (each
/// pixel's most probable class for segmentation) and the targets, all as RGB images of the
/// samples' size. The target row is left out for samples without targets.
pub fn picture_rows(
    model: &crate::models::Autoencoder,
    samples: &Dataset,
    device: &burn::tensor::Device,
) -> (SampleShape, Vec<Vec<f32>>) {
    let shape = samples.shape;
    let rgb_shape = SampleShape::image(3, shape.height, shape.width);
    let plane = shape.height * shape.width;
    let x = crate::eval::rows_tensor(samples.values.clone(), shape.len(), device);
    let forward = model.forward(x);
    let mut rows = vec![to_rgb(&samples.values, shape, false)];
    match &samples.paired {
        Some(paired) if paired.is_segmentation() => {
            let classes = paired.classes.len();
            let logits = forward
                .logits
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            let predicted: Vec<f32> = logits
                .chunks_exact(classes * plane)
                .flat_map(|sample| {
                    (0..plane).map(move |p| {
                        (0..classes)
                            .max_by(|&a, &b| {
                                sample[a * plane + p].total_cmp(&sample[b * plane + p])
                            })
                            .unwrap_or(0) as f32
                    })
                })
                .collect();
            let map_shape = SampleShape::image(1, shape.height, shape.width);
            rows.push(to_rgb(&predicted, map_shape, true));
            rows.push(to_rgb(&paired.values, map_shape, true));
        }
        paired => {
            let outputs = model
                .output_activation()
                .forward(forward.logits)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            let output_shape = paired.as_ref().map_or(shape, |p| p.shape);
            rows.push(to_rgb(&outputs, output_shape, false));
            if let Some(paired) = paired {
                rows.push(to_rgb(&paired.values, paired.shape, false));
            }
        }
    }
    (rgb_shape, rows)
}

/// Writes the picture of `samples`: rows of ten inputs, each above the model's outputs and
/// the targets.
pub fn write_picture(
    path: &std::path::Path,
    model: &crate::models::Autoencoder,
    samples: &Dataset,
    device: &burn::tensor::Device,
) -> Result<()> {
    const PER_ROW: usize = 10;
    let (shape, rows) = picture_rows(model, samples, device);
    let per_row = PER_ROW * shape.len();
    let chunked: Vec<Vec<&[f32]>> = rows.iter().map(|r| r.chunks(per_row).collect()).collect();
    let mut grid: Vec<&[f32]> = Vec::new();
    for block in 0..chunked[0].len() {
        for row in &chunked {
            grid.push(row[block]);
        }
    }
    crate::plots::image_grid(path, shape, &grid, PER_ROW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentation_scores_match_hand_counts() {
        // Background 0, class 1, class 2 (never predicted, never true).
        let truth = [0, 0, 1, 1, 1, 0];
        let predicted = [0, 1, 1, 1, 0, 0];
        let names: Vec<String> = ["bg", "a", "b"].iter().map(|s| s.to_string()).collect();
        let (accuracy, mean_iou, classes) = segmentation_scores(&truth, &predicted, &names);
        assert!((accuracy - 4.0 / 6.0).abs() < 1e-12);
        // bg: intersection 2, union 3 + 3 - 2 = 4; a: intersection 2, union 3 + 3 - 2 = 4.
        assert_eq!(classes[0].iou, Some(0.5));
        assert_eq!(classes[1].iou, Some(0.5));
        assert_eq!(classes[2].iou, None);
        assert_eq!(classes[1].pixels, 3);
        assert!((mean_iou - 0.5).abs() < 1e-12);
    }

    #[test]
    fn an_exact_copy_has_the_capped_psnr_and_ssim_one() {
        let shape = SampleShape::image(1, 12, 12);
        let image: Vec<f32> = (0..144).map(|i| (i % 7) as f32 / 7.0).collect();
        let q = quality(&image, &image, shape).unwrap();
        assert_eq!(q.psnr, 100.0);
        assert!((q.ssim.unwrap() - 1.0).abs() < 1e-6);
        assert!(quality(&image, &image[..100], shape).is_err());
    }
}
