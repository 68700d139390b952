//! Latent maps: the codes of a data set laid out in 2-D (t-SNE, PCA, or the code itself
//! when it is 2-D), beside the same map of the raw inputs (the course's comparison of what
//! the encoder has learned against the pixels), coloured by label.

use crate::data::{Dataset, SampleShape};
use crate::error::{Error, Result};
use crate::stats::tsne::{TsneOptions, tsne_2d};
use crate::trained::TrainedModel;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// How codes (and inputs) are laid out in 2-D.
#[derive(Debug, Clone, PartialEq)]
pub enum MapMethod {
    /// Barnes-Hut t-SNE.
    Tsne(TsneOptions),
    /// The first two principal components.
    Pca,
    /// The code itself (a 2-D code only).
    None,
}

impl MapMethod {
    /// The method's name.
    pub fn name(&self) -> &'static str {
        match self {
            MapMethod::Tsne(_) => "t-SNE",
            MapMethod::Pca => "PCA",
            MapMethod::None => "the code itself",
        }
    }
}

/// One 2-D layout of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// What was laid out (`codes` or `inputs`).
    pub of: String,
    /// One point per sample.
    pub points: Vec<[f32; 2]>,
    /// Seconds the layout took.
    pub seconds: f64,
}

/// The maps of a data set: its codes' and (optionally) its raw inputs'.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentMap {
    /// How the maps were made.
    pub method: String,
    /// The codes' map.
    pub codes: Layout,
    /// The raw inputs' map (with the same method; PCA when the method is `None`).
    pub inputs: Option<Layout>,
    /// Each sample's label, when known.
    pub labels: Option<Vec<u32>>,
    /// Names of the labels.
    pub class_names: Vec<String>,
}

/// Lays out `rows` (`dim` values each) in 2-D.
pub fn layout(
    rows: &[f32],
    dim: usize,
    method: &MapMethod,
    device: &burn::tensor::Device,
) -> Result<Vec<[f32; 2]>> {
    match method {
        MapMethod::Tsne(options) => tsne_2d(rows, dim, options).map_err(Error::Input),
        MapMethod::Pca => {
            let data = Dataset::unlabelled("samples", SampleShape::features(dim), rows.to_vec());
            let pca = crate::pca::fit(&data, 2.min(dim), device)?;
            let x = crate::eval::rows_tensor(rows.to_vec(), dim, device);
            let codes = pca
                .encode(x)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            let k = codes.len() / (rows.len() / dim).max(1);
            Ok(codes
                .chunks(k.max(1))
                .map(|c| [c[0], c.get(1).copied().unwrap_or(0.0)])
                .collect())
        }
        MapMethod::None => {
            if dim != 2 {
                return Err(Error::Unsupported(format!(
                    "--method none plots the code itself, which needs a 2-D code; this model's \
                     code has {dim} values (use --method tsne or pca)"
                )));
            }
            Ok(rows.chunks(2).map(|c| [c[0], c[1]]).collect())
        }
    }
}

/// Maps `data`'s codes and, with `with_inputs`, its raw inputs.
pub fn latent_map(
    model: &TrainedModel,
    data: &Dataset,
    method: &MapMethod,
    with_inputs: bool,
) -> Result<LatentMap> {
    let codes = model.encode(&data.values)?;
    let started = Instant::now();
    let points = layout(&codes, model.code_len(), method, model.device())?;
    let codes_layout = Layout {
        of: "codes".into(),
        points,
        seconds: started.elapsed().as_secs_f64(),
    };
    let inputs = if with_inputs {
        let started = Instant::now();
        let (points, of) = input_layout(data, method, model.device())?;
        Some(Layout {
            of,
            points,
            seconds: started.elapsed().as_secs_f64(),
        })
    } else {
        None
    };
    Ok(LatentMap {
        method: method.name().into(),
        codes: codes_layout,
        inputs,
        labels: data.labels.clone(),
        class_names: data.class_names.clone(),
    })
}

/// Inputs with more values than this are reduced by PCA before t-SNE (as van der Maaten's
/// reference implementation and scikit-learn's documentation advise): t-SNE's neighbour
/// search is slow in hundreds of dimensions and the last components are mostly noise.
pub const TSNE_INPUT_DIMENSIONS: usize = 50;

/// The raw inputs' map: PCA for `None` (a 2-D code has no pixel-space twin), t-SNE after PCA
/// to [`TSNE_INPUT_DIMENSIONS`] for wide inputs. Returns the points and what they show.
fn input_layout(
    data: &Dataset,
    method: &MapMethod,
    device: &burn::tensor::Device,
) -> Result<(Vec<[f32; 2]>, String)> {
    let dim = data.shape.len();
    match method {
        MapMethod::Tsne(_) if dim > TSNE_INPUT_DIMENSIONS => {
            let pca = crate::pca::fit(data, TSNE_INPUT_DIMENSIONS, device)?;
            let x = crate::eval::rows_tensor(data.values.clone(), dim, device);
            let reduced = pca
                .encode(x)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            let points = layout(&reduced, TSNE_INPUT_DIMENSIONS, method, device)?;
            Ok((
                points,
                format!("raw inputs (PCA to {TSNE_INPUT_DIMENSIONS} first)"),
            ))
        }
        MapMethod::None => Ok((
            layout(&data.values, dim, &MapMethod::Pca, device)?,
            "raw inputs (PCA)".into(),
        )),
        other => Ok((
            layout(&data.values, dim, other, device)?,
            "raw inputs".into(),
        )),
    }
}

/// The maps as CSV: `id,label,code_x,code_y[,input_x,input_y]`.
pub fn map_csv(map: &LatentMap) -> String {
    let mut text = String::from("id,label,code_x,code_y");
    if map.inputs.is_some() {
        text.push_str(",input_x,input_y");
    }
    text.push('\n');
    for (i, p) in map.codes.points.iter().enumerate() {
        let label = map
            .labels
            .as_ref()
            .map(|l| l[i].to_string())
            .unwrap_or_default();
        let _ = write!(text, "{i},{label},{},{}", p[0], p[1]);
        if let Some(inputs) = &map.inputs {
            let q = inputs.points[i];
            let _ = write!(text, ",{},{}", q[0], q[1]);
        }
        text.push('\n');
    }
    text
}

/// A colour per class, distinguishable for ten classes (Tableau's palette), cycling after.
pub fn class_colour(label: u32) -> RGBColor {
    const PALETTE: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = PALETTE[label as usize % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Draws the maps side by side into a PNG, points coloured by label with a legend.
pub fn draw(map: &LatentMap, path: &Path) -> Result<()> {
    crate::plots::register_font();
    let tmp = crate::run_dir::tmp_path(path).with_extension("png");
    draw_panels(map, &tmp).map_err(|e| Error::data(path, format!("cannot draw the map: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn draw_panels(
    map: &LatentMap,
    path: &Path,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let panels: Vec<&Layout> = std::iter::once(&map.codes)
        .chain(map.inputs.as_ref())
        .collect();
    let root = BitMapBackend::new(path, (700 * panels.len() as u32, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, layout) in root.split_evenly((1, panels.len())).iter().zip(&panels) {
        let method = if layout.of.ends_with("(PCA)") {
            "PCA"
        } else {
            &map.method
        };
        let title = format!("{method} of the {}", layout.of.trim_end_matches(" (PCA)"));
        draw_panel(area, layout, map, &title)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    layout: &Layout,
    map: &LatentMap,
    title: &str,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (x_range, y_range) = bounds(&layout.points);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 12))
        .draw()?;
    let labels = map.labels.as_deref();
    let classes: Vec<u32> = match labels {
        Some(l) => {
            let mut c: Vec<u32> = l.to_vec();
            c.sort_unstable();
            c.dedup();
            c
        }
        None => vec![0],
    };
    for &class in &classes {
        let points = layout
            .points
            .iter()
            .enumerate()
            .filter(|(i, _)| labels.is_none_or(|l| l[*i] == class))
            .map(|(_, p)| (p[0] as f64, p[1] as f64));
        let colour = class_colour(class);
        let series = chart
            .draw_series(points.map(|(x, y)| Circle::new((x, y), 2, colour.mix(0.6).filled())))?;
        if labels.is_some() {
            let name = map
                .class_names
                .get(class as usize)
                .cloned()
                .unwrap_or_else(|| class.to_string());
            series
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 6, y), 5, colour.filled()));
        }
    }
    if labels.is_some() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    Ok(())
}

/// The points' ranges with a margin (a unit range around a single point).
fn bounds(points: &[[f32; 2]]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let range = |k: usize| {
        let (lo, hi) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p[k] as f64), hi.max(p[k] as f64))
            });
        if !lo.is_finite() || hi - lo < 1e-9 {
            let centre = if lo.is_finite() { lo } else { 0.0 };
            return (centre - 1.0)..(centre + 1.0);
        }
        let pad = (hi - lo) * 0.05;
        (lo - pad)..(hi + pad)
    };
    (range(0), range(1))
}
