//! Denoising: a model's reconstructions of corrupted inputs, measured against the clean
//! samples (PSNR and SSIM of the noisy inputs and of the denoised outputs, `aekit eval
//! --noise`), drawn as clean / noisy / denoised rows, and applied to image files (`aekit
//! denoise`).

use crate::data::{Dataset, SampleShape};
use crate::error::{Error, Result};
use crate::models::corruption::CorruptionConfig;
use crate::stats::image_quality::{psnr, ssim};
use crate::trained::TrainedModel;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Image quality of noisy inputs and of the model's reconstructions of them, against the
/// clean samples: means over samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseReport {
    /// The noise, as `--noise` names it.
    pub noise: String,
    /// Samples measured.
    pub samples: usize,
    /// Mean PSNR (dB, peak 1) of the noisy inputs.
    pub noisy_psnr: f64,
    /// Mean PSNR of the denoised outputs.
    pub denoised_psnr: f64,
    /// Mean SSIM (11x11 Gaussian window) of the noisy inputs; absent for table rows and
    /// images smaller than the window.
    pub noisy_ssim: Option<f64>,
    /// Mean SSIM of the denoised outputs.
    pub denoised_ssim: Option<f64>,
}

impl std::fmt::Display for NoiseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "noise {}: PSNR noisy {:.2} dB -> denoised {:.2} dB ({:+.2} dB)",
            self.noise,
            self.noisy_psnr,
            self.denoised_psnr,
            self.denoised_psnr - self.noisy_psnr
        )?;
        if let (Some(a), Some(b)) = (self.noisy_ssim, self.denoised_ssim) {
            write!(f, "; SSIM noisy {a:.4} -> denoised {b:.4} ({:+.4})", b - a)?;
        }
        Ok(())
    }
}

/// `data` corrupted by `noise` with a generator seeded by `seed`.
pub fn corrupt(data: &Dataset, noise: &CorruptionConfig, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    noise.corrupted(&data.values, &mut rng)
}

/// PSNR and SSIM of `data` corrupted by `noise` and of the model's reconstructions of the
/// corrupted samples, against the clean ones.
pub fn noise_report(
    model: &TrainedModel,
    data: &Dataset,
    noise: &CorruptionConfig,
    seed: u64,
) -> Result<NoiseReport> {
    let noisy = corrupt(data, noise, seed);
    let denoised = model.reconstruct(&noisy)?;
    let shape = data.shape;
    let n = shape.len();
    let with_ssim = shape.is_image() && shape.height >= 11 && shape.width >= 11;
    let mut sums = [0.0f64; 4];
    for i in 0..data.len() {
        let range = i * n..(i + 1) * n;
        let clean = &data.values[range.clone()];
        sums[0] += capped_psnr(clean, &noisy[range.clone()]);
        sums[1] += capped_psnr(clean, &denoised[range.clone()]);
        if with_ssim {
            sums[2] += image_ssim(clean, &noisy[range.clone()], shape)?;
            sums[3] += image_ssim(clean, &denoised[range], shape)?;
        }
    }
    let count = data.len().max(1) as f64;
    Ok(NoiseReport {
        noise: noise.to_string(),
        samples: data.len(),
        noisy_psnr: sums[0] / count,
        denoised_psnr: sums[1] / count,
        noisy_ssim: with_ssim.then(|| sums[2] / count),
        denoised_ssim: with_ssim.then(|| sums[3] / count),
    })
}

/// PSNR with peak 1, capped at 100 dB so that an exact copy does not make a mean infinite.
pub(crate) fn capped_psnr(clean: &[f32], other: &[f32]) -> f64 {
    psnr(clean, other, 1.0).min(100.0)
}

pub(crate) fn image_ssim(clean: &[f32], other: &[f32], shape: SampleShape) -> Result<f64> {
    ssim(clean, other, shape.height, shape.width, shape.channels, 1.0)
        .map_err(|e| Error::Input(format!("SSIM: {e}")))
}

/// Writes the first `count` samples of `data` as three rows: clean, noisy, denoised.
pub fn noise_picture(
    model: &TrainedModel,
    data: &Dataset,
    noise: &CorruptionConfig,
    seed: u64,
    count: usize,
    out: &Path,
) -> Result<()> {
    let subset = data.take(count.max(1));
    let noisy = corrupt(&subset, noise, seed);
    let denoised = model.reconstruct(&noisy)?;
    crate::plots::image_grid(
        out,
        subset.shape,
        &[&subset.values, &noisy, &denoised],
        subset.len(),
    )
}

/// Writes the model's reconstruction of every sample of `data` into `out_dir` as a PNG
/// named after the sample's file (or its index); returns the files written. Existing files
/// are replaced only with `force`.
pub fn denoise_to_folder(
    model: &TrainedModel,
    data: &Dataset,
    out_dir: &Path,
    force: bool,
) -> Result<Vec<PathBuf>> {
    if !data.shape.is_image() {
        return Err(Error::Unsupported(
            "`denoise` writes images; this model takes table rows".into(),
        ));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let names = output_names(data);
    let paths: Vec<PathBuf> = names.iter().map(|name| out_dir.join(name)).collect();
    for path in &paths {
        super::check_output(path, force)?;
    }
    let outputs = model.reconstruct(&data.values)?;
    let n = data.shape.len();
    for (i, path) in paths.iter().enumerate() {
        crate::plots::save_sample_png(path, data.shape, &outputs[i * n..(i + 1) * n])?;
    }
    Ok(paths)
}

/// `<file stem>.png` per sample (made unique when two files share a stem), or
/// `sample-00000.png` for samples that did not come from files.
fn output_names(data: &Dataset) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    (0..data.len())
        .map(|i| {
            let stem = data
                .paths
                .get(i)
                .and_then(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("sample-{i:05}"));
            let mut name = format!("{stem}.png");
            let mut k = 1;
            while !seen.insert(name.clone()) {
                name = format!("{stem}-{k}.png");
                k += 1;
            }
            name
        })
        .collect()
}
