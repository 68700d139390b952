//! Which code units fire for which inputs: the codes of a few inputs drawn as an image, one
//! column per input and one row per code unit (the course's picture of what a sparsity
//! penalty does), with the fraction of active units.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::trained::TrainedModel;
use serde::Serialize;
use std::path::Path;

/// A unit counts as active when its magnitude exceeds this (as `aekit eval` counts).
pub const ACTIVE_THRESHOLD: f32 = 1e-3;

/// The codes of some inputs and how many of their units are active.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activations {
    /// Inputs.
    pub inputs: usize,
    /// Code units.
    pub units: usize,
    /// The codes, one per input.
    #[serde(skip)]
    pub codes: Vec<f32>,
    /// Fraction of (input, unit) values that are active.
    pub active_fraction: f64,
    /// Mean number of active units per input.
    pub mean_active_units: f64,
    /// Units never active for these inputs.
    pub dead_units: usize,
}

impl std::fmt::Display for Activations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} inputs, {} code units: {:.1}% active (|a| > {ACTIVE_THRESHOLD}), {:.1} active \
             units per input, {} units never active",
            self.inputs,
            self.units,
            100.0 * self.active_fraction,
            self.mean_active_units,
            self.dead_units
        )
    }
}

/// The codes of `data`'s samples and their activity.
pub fn activations(model: &TrainedModel, data: &Dataset) -> Result<Activations> {
    let codes = model.encode(&data.values)?;
    let units = model.code_len();
    let inputs = data.len();
    let active = codes.iter().filter(|v| v.abs() > ACTIVE_THRESHOLD).count();
    let dead_units = (0..units)
        .filter(|&u| (0..inputs).all(|i| codes[i * units + u].abs() <= ACTIVE_THRESHOLD))
        .count();
    Ok(Activations {
        inputs,
        units,
        active_fraction: active as f64 / codes.len().max(1) as f64,
        mean_active_units: active as f64 / inputs.max(1) as f64,
        dead_units,
        codes,
    })
}

/// Draws the codes as a heat map (one column per input, one row per unit; white is 0, the
/// darkest blue the largest magnitude), each cell scaled up to be seen; the inputs
/// themselves are drawn in a row above their columns when they are images.
pub fn draw(activations: &Activations, data: &Dataset, path: &Path) -> Result<()> {
    let (inputs, units) = (activations.inputs, activations.units);
    if inputs == 0 {
        return Err(Error::Input("no inputs to draw".into()));
    }
    let cell_w = 28u32;
    let cell_h = (560 / units as u32).clamp(2, 16);
    let thumb = if data.shape.is_image() { 28 } else { 0 };
    let gap = 4u32;
    let width = inputs as u32 * cell_w;
    let height = thumb + gap + units as u32 * cell_h;
    let peak = activations
        .codes
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-12);
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    for i in 0..inputs {
        if thumb > 0 {
            draw_thumbnail(&mut canvas, data, i, i as u32 * cell_w, thumb);
        }
        for u in 0..units {
            let v = activations.codes[i * units + u].abs() / peak;
            let shade = |full: f32| (255.0 - v * (255.0 - full)).round() as u8;
            let colour = image::Rgb([shade(8.0), shade(48.0), shade(107.0)]);
            for dy in 0..cell_h {
                for dx in 0..cell_w - 1 {
                    canvas.put_pixel(
                        i as u32 * cell_w + dx,
                        thumb + gap + u as u32 * cell_h + dy,
                        colour,
                    );
                }
            }
        }
    }
    let tmp = crate::run_dir::tmp_path(path).with_extension("png");
    canvas
        .save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::data(path, format!("cannot write the image: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Sample `i` of `data`, nearest-neighbour scaled into a `size x size` square at `x`.
fn draw_thumbnail(canvas: &mut image::RgbImage, data: &Dataset, i: usize, x: u32, size: u32) {
    let shape = data.shape;
    let sample = data.sample(i);
    let (h, w) = (shape.height, shape.width);
    for ty in 0..size {
        for tx in 0..size.min(27) {
            let (sy, sx) = (
                (ty as usize * h) / size as usize,
                (tx as usize * w) / size as usize,
            );
            let value = |c: usize| (sample[c * h * w + sy * w + sx].clamp(0.0, 1.0) * 255.0) as u8;
            let rgb = if shape.channels >= 3 {
                [value(0), value(1), value(2)]
            } else {
                [value(0); 3]
            };
            canvas.put_pixel(x + tx, ty, image::Rgb(rgb));
        }
    }
}
