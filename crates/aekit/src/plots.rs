//! Pictures of a run: loss curves (`loss.png`), originals above their reconstructions
//! (`reconstructions.png`), image grids, captioned tiles (search hits) and anomaly-score
//! histograms.

use crate::data::{Dataset, SampleShape};
use crate::error::{Error, Result};
use crate::models::Autoencoder;
use crate::run_dir::HistoryRow;
use burn::tensor::Device;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static REGISTER_FONT: Once = Once::new();

/// Plotters draws text with a font it is given; DejaVu Sans is embedded so that plots look
/// the same on every machine, with or without system fonts.
pub(crate) fn register_font() {
    REGISTER_FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Draws a plot with `draw` into a temporary file beside `path`, then moves it into place;
/// `what` names the plot in errors.
fn save_plot(
    path: &Path,
    what: &str,
    draw: impl FnOnce(&Path) -> std::result::Result<(), Box<dyn std::error::Error>>,
) -> Result<()> {
    register_font();
    let tmp = crate::run_dir::tmp_path(path).with_extension("png");
    draw(&tmp).map_err(|e| Error::data(path, format!("cannot draw the {what}: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Draws training and validation loss per epoch into a PNG.
pub fn loss_curves(path: &Path, history: &[HistoryRow], loss_name: &str) -> Result<()> {
    save_plot(path, "loss plot", |tmp| {
        draw_loss_curves(tmp, history, loss_name)
    })
}

fn draw_loss_curves(
    path: &Path,
    history: &[HistoryRow],
    loss_name: &str,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let parts = loss_parts(history);
    let height = if parts.is_empty() { 500 } else { 850 };
    let root = BitMapBackend::new(path, (800, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (total_area, parts_area) = root.split_vertically(500);
    let finite = |v: f64| v.is_finite();
    let values: Vec<f64> = history
        .iter()
        .flat_map(|r| [r.train_loss, r.valid_loss])
        .filter(|&v| finite(v))
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let last_epoch = history.last().map_or(1, |r| r.epoch).max(2);
    let mut chart = ChartBuilder::on(&total_area)
        .caption(format!("{loss_name} per epoch"), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(1f64..last_epoch as f64, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(loss_name)
        .label_style(("sans-serif", 14))
        .draw()?;
    let train: Vec<(f64, f64)> = history
        .iter()
        .filter(|r| finite(r.train_loss))
        .map(|r| (r.epoch as f64, r.train_loss))
        .collect();
    let valid: Vec<(f64, f64)> = history
        .iter()
        .filter(|r| finite(r.valid_loss))
        .map(|r| (r.epoch as f64, r.valid_loss))
        .collect();
    chart
        .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))?
        .label("training")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(valid, RED.stroke_width(2)))?
        .label("validation")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    if !parts.is_empty() {
        draw_loss_parts(&parts_area, &parts, last_epoch)?;
    }
    root.present()?;
    Ok(())
}

/// One part of the loss over the epochs: `(name, training points, validation points)`.
type LossPart = (String, Vec<(f64, f64)>, Vec<(f64, f64)>);

/// The loss's parts recorded in the history (`train_<part>` / `valid_<part>`: the
/// reconstruction, penalties, KL, each head's loss), leaving out the heads' figures
/// (accuracy, MAE) and values that cannot go on a log scale.
fn loss_parts(history: &[HistoryRow]) -> Vec<LossPart> {
    let Some(first) = history.first() else {
        return Vec::new();
    };
    let names: Vec<&str> = first
        .terms
        .keys()
        .filter_map(|k| k.strip_prefix("train_"))
        .filter(|name| !name.ends_with("_accuracy") && !name.ends_with("_mae"))
        .collect();
    let points = |key: String| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| r.terms.get(&key).map(|&v| (r.epoch as f64, v)))
            .filter(|&(_, v)| v.is_finite() && v > 0.0)
            .collect()
    };
    names
        .into_iter()
        .map(|name| {
            (
                name.to_string(),
                points(format!("train_{name}")),
                points(format!("valid_{name}")),
            )
        })
        .filter(|(_, train, valid)| !train.is_empty() || !valid.is_empty())
        .collect()
}

/// The loss's parts on a log scale: each part one colour, training solid, validation
/// dashed.
fn draw_loss_parts(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    parts: &[LossPart],
    last_epoch: usize,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let all = parts
        .iter()
        .flat_map(|(_, t, v)| t.iter().chain(v.iter()).map(|&(_, y)| y));
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let mut chart = ChartBuilder::on(area)
        .caption(
            "the loss's parts, unweighted (solid: training, dashed: validation)",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(1f64..last_epoch as f64, (lo * 0.8..hi * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("part (log scale)")
        .y_labels(8)
        .y_label_formatter(&|v| format!("{v:.3}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (name, train, valid)) in parts.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(train.clone(), colour.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(DashedLineSeries::new(
            valid.clone(),
            6,
            4,
            colour.stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Reconstructions of `samples` by `model` (on a plain device), as rows of values.
pub fn reconstruct_values(model: &Autoencoder, samples: &Dataset, device: &Device) -> Vec<f32> {
    let n = samples.shape.len();
    let x = crate::eval::rows_tensor(samples.values.clone(), n, device);
    model
        .reconstruct_in_row_blocks(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// Writes `samples` (top row) above their reconstructions by `model` (bottom row).
pub fn reconstruction_grid(
    path: &Path,
    model: &Autoencoder,
    samples: &Dataset,
    device: &Device,
) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let reconstructions = reconstruct_values(model, samples, device);
    image_grid(
        path,
        samples.shape,
        &[&samples.values, &reconstructions],
        10,
    )
}

/// Writes rows of images (each `rows[i]` holding whole samples) as one PNG grid, `columns`
/// images per row, each row-set below the previous, pixels scaled up for visibility.
pub fn image_grid(path: &Path, shape: SampleShape, rows: &[&[f32]], columns: usize) -> Result<()> {
    let per_sample = shape.len();
    let count = rows
        .iter()
        .map(|r| r.len() / per_sample)
        .max()
        .unwrap_or(0)
        .min(columns)
        .max(1);
    // Table rows (1 x features) are drawn as a near-square tile.
    let (h, w) = if shape.is_image() {
        (shape.height, shape.width)
    } else {
        let side = (shape.width as f64).sqrt().ceil() as usize;
        (side.div_ceil(1), side)
    };
    let scale = (84 / h.max(w)).max(1) as u32;
    let gap = 2u32;
    let tile_w = w as u32 * scale + gap;
    let tile_h = h as u32 * scale + gap;
    let mut canvas = image::RgbImage::from_pixel(
        tile_w * count as u32 + gap,
        tile_h * rows.len() as u32 + gap,
        image::Rgb([128, 128, 128]),
    );
    for (row, values) in rows.iter().enumerate() {
        for i in 0..(values.len() / per_sample).min(count) {
            let sample = &values[i * per_sample..(i + 1) * per_sample];
            let origin = (gap + i as u32 * tile_w, gap + row as u32 * tile_h);
            paint(&mut canvas, shape, sample, origin, scale);
        }
    }
    let tmp = crate::run_dir::tmp_path(path).with_extension("png");
    canvas
        .save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::data(path, format!("cannot write the image: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Draws named curves of points (x, y), each with markers, into a PNG (a rate-distortion
/// plot: bits per pixel against PSNR).
pub fn curves(
    path: &Path,
    title: &str,
    axes: [&str; 2],
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    save_plot(path, "plot", |tmp| draw_curves(tmp, title, axes, series))
}

fn draw_curves(
    path: &Path,
    title: &str,
    [x_name, y_name]: [&str; 2],
    series: &[(String, Vec<(f64, f64)>)],
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let points: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in &points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (px, py) = (((x1 - x0) * 0.05).max(1e-6), ((y1 - y0) * 0.05).max(1e-6));
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - px).max(0.0)..(x1 + px), (y0 - py)..(y1 + py))?;
    chart
        .configure_mesh()
        .x_desc(x_name)
        .y_desc(y_name)
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let mut points = points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// One image of a captioned row: its values, two lines of caption, and whether it is
/// framed (the query among its hits).
pub struct Tile<'a> {
    /// The sample's values (channels x height x width, in [0, 1]).
    pub values: &'a [f32],
    /// The caption's lines (the first in bold colour when framed).
    pub caption: [String; 2],
    /// Draw a frame around the image.
    pub framed: bool,
}

/// Writes images in rows of `columns`, each with a caption under it, into a PNG.
pub fn captioned_tiles(
    path: &Path,
    shape: SampleShape,
    tiles: &[Tile<'_>],
    columns: usize,
) -> Result<()> {
    register_font();
    let (h, w) = (shape.height.max(1), shape.width.max(1));
    let scale = (96 / h.max(w)).max(1) as u32;
    let (image_w, image_h) = (w as u32 * scale, h as u32 * scale);
    let tile_w = image_w.max(96) + 12;
    let tile_h = image_h + 44;
    let columns = columns.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(columns).max(1);
    let (width, height) = (tile_w * columns as u32 + 8, tile_h * rows as u32 + 8);
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let origin = |i: usize| {
        let (col, row) = ((i % columns) as u32, (i / columns) as u32);
        (
            4 + col * tile_w + (tile_w - image_w) / 2,
            4 + row * tile_h + 6,
        )
    };
    for (i, tile) in tiles.iter().enumerate() {
        let (x0, y0) = origin(i);
        if tile.framed {
            for y in y0 - 3..y0 + image_h + 3 {
                for x in x0 - 3..x0 + image_w + 3 {
                    canvas.put_pixel(x, y, image::Rgb([31, 119, 180]));
                }
            }
        }
        paint(&mut canvas, shape, tile.values, (x0, y0), scale);
    }
    let mut buffer = canvas.into_raw();
    draw_captions(&mut buffer, (width, height), tiles, |i| {
        let (x0, y0) = origin(i);
        ((x0 + image_w / 2) as i32, (y0 + image_h + 6) as i32)
    })
    .map_err(|e| Error::data(path, format!("cannot draw the captions: {e}")))?;
    let canvas = image::RgbImage::from_raw(width, height, buffer)
        .ok_or_else(|| Error::data(path, "cannot assemble the picture"))?;
    let tmp = crate::run_dir::tmp_path(path).with_extension("png");
    canvas
        .save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::data(path, format!("cannot write the image: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn draw_captions(
    buffer: &mut [u8],
    size: (u32, u32),
    tiles: &[Tile<'_>],
    anchor: impl Fn(usize) -> (i32, i32),
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let root = BitMapBackend::with_buffer(buffer, size).into_drawing_area();
    let centred = Pos::new(HPos::Center, VPos::Top);
    for (i, tile) in tiles.iter().enumerate() {
        let (x, y) = anchor(i);
        let colour = if tile.framed {
            RGBColor(31, 119, 180)
        } else {
            BLACK
        };
        let first = ("sans-serif", 14).into_font().color(&colour).pos(centred);
        let second = ("sans-serif", 12)
            .into_font()
            .color(&RGBColor(90, 90, 90))
            .pos(centred);
        root.draw_text(&tile.caption[0], &first, (x, y))?;
        root.draw_text(&tile.caption[1], &second, (x, y + 16))?;
    }
    root.present()?;
    Ok(())
}

/// Paints `sample` onto `canvas` with its top-left corner at `(x0, y0)`, each pixel a
/// `scale` x `scale` square (values clamped to [0, 1]; grey unless it has 3 channels).
/// A table row (`1 x features`) fills a near-square tile row by row.
fn paint(
    canvas: &mut image::RgbImage,
    shape: SampleShape,
    sample: &[f32],
    (x0, y0): (u32, u32),
    scale: u32,
) {
    let (h, w) = if shape.is_image() {
        (shape.height, shape.width)
    } else {
        let side = (shape.width as f64).sqrt().ceil() as usize;
        (side, side)
    };
    for y in 0..h {
        for x in 0..w {
            let pixel = |c: usize| -> u8 {
                let index = if shape.is_image() {
                    c * h * w + y * w + x
                } else {
                    y * w + x
                };
                let v = sample.get(index).copied().unwrap_or(0.0);
                (v.clamp(0.0, 1.0) * 255.0).round() as u8
            };
            let rgb = if shape.channels >= 3 {
                [pixel(0), pixel(1), pixel(2)]
            } else {
                [pixel(0); 3]
            };
            for dy in 0..scale {
                for dx in 0..scale {
                    canvas.put_pixel(
                        x0 + x as u32 * scale + dx,
                        y0 + y as u32 * scale + dy,
                        image::Rgb(rgb),
                    );
                }
            }
        }
    }
}

/// Writes one sample as a PNG at its own size (grey or RGB), atomically.
pub fn save_sample_png(path: &Path, shape: SampleShape, values: &[f32]) -> Result<()> {
    let (h, w) = (shape.height, shape.width);
    let pixel = |c: usize, y: usize, x: usize| -> u8 {
        let v = values.get(c * h * w + y * w + x).copied().unwrap_or(0.0);
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    let image = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let (x, y) = (x as usize, y as usize);
        if shape.channels >= 3 {
            image::Rgb([pixel(0, y, x), pixel(1, y, x), pixel(2, y, x)])
        } else {
            image::Rgb([pixel(0, y, x); 3])
        }
    });
    let tmp = crate::run_dir::tmp_path(path).with_extension("png");
    let saved = if shape.channels >= 3 {
        image.save_with_format(&tmp, image::ImageFormat::Png)
    } else {
        image::DynamicImage::ImageRgb8(image)
            .to_luma8()
            .save_with_format(&tmp, image::ImageFormat::Png)
    };
    saved.map_err(|e| Error::data(path, format!("cannot write the image: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Histograms of score groups (each normalised to fractions of its own samples, so that a
/// small group shows beside a large one) with the threshold as a vertical line.
pub fn score_histograms(
    path: &Path,
    groups: &[(&str, &[f64])],
    threshold: f64,
    score_name: &str,
) -> Result<()> {
    save_plot(path, "histogram", |tmp| {
        draw_score_histograms(tmp, groups, threshold, score_name)
    })
}

fn draw_score_histograms(
    path: &Path,
    groups: &[(&str, &[f64])],
    threshold: f64,
    score_name: &str,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    const BINS: usize = 60;
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    // The range covers the bulk (up to the 99.5th percentile) and the threshold, so that a
    // few extreme scores do not squash every bin into one.
    let lo = sorted.first().copied().unwrap_or(0.0).min(threshold);
    let high = sorted
        .get(((sorted.len() as f64 * 0.995) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(1.0);
    let hi = high.max(threshold) + 1e-12;
    let width = (hi - lo) / BINS as f64;
    let histograms: Vec<Vec<f64>> = groups
        .iter()
        .map(|(_, scores)| {
            let mut counts = vec![0f64; BINS];
            for &s in scores.iter() {
                let bin = (((s - lo) / width).floor().max(0.0) as usize).min(BINS - 1);
                counts[bin] += 1.0 / scores.len().max(1) as f64;
            }
            counts
        })
        .collect();
    let top = histograms
        .iter()
        .flatten()
        .fold(0f64, |a, &b| a.max(b))
        .max(1e-9)
        * 1.1;
    let root = BitMapBackend::new(path, (800, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{score_name} scores"), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "{score_name} (higher: more anomalous; last bin holds the top 0.5 %)"
        ))
        .y_desc("fraction of the group")
        .label_style(("sans-serif", 13))
        .draw()?;
    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (g, ((name, scores), counts)) in groups.iter().zip(&histograms).enumerate() {
        let colour = colours[g % colours.len()];
        chart
            .draw_series(counts.iter().enumerate().map(|(b, &c)| {
                let x = lo + b as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, c)], colour.mix(0.35).filled())
            }))?
            .label(format!("{name} ({})", scores.len()))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.mix(0.5).filled())
            });
    }
    chart
        .draw_series(LineSeries::new(
            [(threshold, 0.0), (threshold, top)],
            BLACK.stroke_width(2),
        ))?
        .label(format!("threshold {threshold:.4}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// A class head's confusion matrix: true classes down, predicted across, each cell shaded
/// by the fraction of its true class and labelled with its count.
pub fn confusion_matrix(
    path: &Path,
    title: &str,
    class_names: &[String],
    confusion: &[Vec<usize>],
) -> Result<()> {
    save_plot(path, "confusion matrix", |tmp| {
        draw_confusion(tmp, title, class_names, confusion)
    })
}

fn draw_confusion(
    path: &Path,
    title: &str,
    class_names: &[String],
    confusion: &[Vec<usize>],
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let n = confusion.len();
    let cell = (560 / n.max(1)).clamp(24, 64) as u32;
    let margin = 110u32;
    let side = cell * n as u32;
    let root =
        BitMapBackend::new(path, (side + margin + 20, side + margin + 50)).into_drawing_area();
    root.fill(&WHITE)?;
    let text = |size: u32| ("sans-serif", size).into_font().color(&BLACK);
    root.draw(&Text::new(title.to_string(), (10, 10), text(18)))?;
    root.draw(&Text::new(
        "predicted class →".to_string(),
        (margin as i32, 36),
        text(14),
    ))?;
    root.draw(&Text::new(
        "true class ↓".to_string(),
        (4, margin as i32 - 22),
        text(14),
    ))?;
    let origin = (margin as i32, margin as i32);
    for (i, name) in class_names.iter().enumerate().take(n) {
        let short: String = name.chars().take(10).collect();
        let offset = i as i32 * cell as i32;
        root.draw(&Text::new(
            short.clone(),
            (origin.0 + offset + 2, origin.1 - 18),
            text(12),
        ))?;
        root.draw(&Text::new(
            short,
            (8, origin.1 + offset + cell as i32 / 2 - 6),
            text(12),
        ))?;
    }
    for (t, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            // Right answers shade blue, mistakes red; the darker, the larger the share.
            let shade = (255.0 * (1.0 - share.sqrt())) as u8;
            let colour = if t == p {
                RGBColor(shade, shade, 255)
            } else {
                RGBColor(255, shade, shade)
            };
            let x = origin.0 + p as i32 * cell as i32;
            let y = origin.1 + t as i32 * cell as i32;
            root.draw(&Rectangle::new(
                [(x, y), (x + cell as i32, y + cell as i32)],
                colour.filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(x, y), (x + cell as i32, y + cell as i32)],
                RGBColor(200, 200, 200),
            ))?;
            if count > 0 {
                let label = count.to_string();
                let colour = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    label.clone(),
                    (
                        x + cell as i32 / 2 - 4 * label.len() as i32,
                        y + cell as i32 / 2 - 6,
                    ),
                    ("sans-serif", 12).into_font().color(&colour),
                ))?;
            }
        }
    }
    root.present()?;
    Ok(())
}
