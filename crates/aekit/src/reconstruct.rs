//! `aekit reconstruct`: a trained run's reconstructions of an image, a folder of images or a
//! data set, written as originals above reconstructions in one PNG.

use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::plots;
use crate::run_dir::WeightsChoice;
use crate::trained::TrainedModel;
use std::path::Path;

/// How `aekit reconstruct` draws its picture.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReconstructOptions {
    /// How many samples to draw.
    pub count: usize,
    /// Overwrite the output file.
    pub force: bool,
    /// Resize images of another size to the model's.
    pub resize: bool,
    /// Which weights.
    pub weights: WeightsChoice,
    /// Where to compute.
    pub device: DeviceChoice,
}

/// Reconstructs up to `count` samples of `input` with the run's model and writes `out`.
/// `out` is never overwritten unless `force` is set. Returns the number of samples drawn.
pub fn reconstruct(
    run_path: &Path,
    input: &Path,
    out: &Path,
    options: &ReconstructOptions,
) -> Result<usize> {
    let ReconstructOptions {
        count,
        force,
        resize,
        weights,
        device: choice,
    } = *options;
    if out.exists() && !force {
        return Err(Error::data(
            out,
            "already exists; use --force to overwrite it",
        ));
    }
    if out
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.eq_ignore_ascii_case("png"))
        != Some(true)
    {
        return Err(Error::data(out, "the output must be a .png file"));
    }
    let trained = TrainedModel::open(run_path, choice, weights)?;
    let samples = trained.load_data(input, resize)?;
    let samples = samples.take(count.max(1));
    plots::reconstruction_grid(out, trained.model(), &samples, trained.device())?;
    Ok(samples.len())
}
