//! `aekit reconstruct`: a trained run's reconstructions of an image, a folder of images or a
//! data set, written as originals above reconstructions in one PNG.

use crate::data::{self};
use crate::device::{self, DeviceChoice};
use crate::error::{Error, Result};
use crate::plots;
use crate::run_dir::RunDir;
use std::path::Path;

/// Reconstructs up to `count` samples of `input` with the run's model and writes `out`.
/// `out` is never overwritten unless `force` is set. Returns the number of samples drawn.
pub fn reconstruct(
    run_path: &Path,
    input: &Path,
    out: &Path,
    count: usize,
    force: bool,
    choice: DeviceChoice,
) -> Result<usize> {
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
    let run = RunDir::open(run_path)?;
    let plain = device::plain_device(choice)?;
    let (_, meta, model) = run.load_model(&plain)?;
    let samples = data::config::load_for_model(input, meta.sample_shape, false)?;
    let samples = match samples.take(count.max(1)) {
        s if s.is_empty() => return Err(Error::data(input, "holds no samples")),
        s => s,
    };
    plots::reconstruction_grid(out, &model, &samples, &plain)?;
    Ok(samples.len())
}
