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
    /// Seed of the samples drawn (spread over the classes when the data has labels).
    pub seed: u64,
}

/// Originals per row of the picture.
const PER_ROW: usize = 10;

/// Reconstructs `count` samples of `input` (drawn at random with the seed, spread over the
/// classes; all of them when there are fewer) with the run's model and writes `out`: rows
/// of ten originals, each above its reconstructions.
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
        seed,
    } = *options;
    crate::apps::check_extension(out, &["png"])?;
    crate::apps::check_output(out, force)?;
    if count == 0 {
        return Err(Error::Input("--count must be at least 1".into()));
    }
    let trained = TrainedModel::open(run_path, choice, weights)?;
    let samples = trained.load_data(input, resize)?.seeded_sample(count, seed);
    if trained.is_image_to_image() {
        // Rows of ten inputs, each above the outputs and the targets.
        crate::apps::image_to_image::write_picture(
            out,
            trained.model(),
            &samples,
            trained.device(),
        )?;
        return Ok(samples.len());
    }
    let reconstructions = trained.reconstruct(&samples.values)?;
    // Rows of ten originals, each above its reconstructions.
    let per_row = PER_ROW * samples.shape.len();
    let rows: Vec<&[f32]> = samples
        .values
        .chunks(per_row)
        .zip(reconstructions.chunks(per_row))
        .flat_map(|(a, b)| [a, b])
        .collect();
    plots::image_grid(out, samples.shape, &rows, PER_ROW)?;
    Ok(samples.len())
}
