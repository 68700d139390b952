//! One self-contained HTML page about a run (`aekit report`): its config, loss curves,
//! metrics, reconstructions, latent map, and for a VAE its samples and manifold. Pictures
//! are embedded as data URIs and there is no script or outside resource, so the page can
//! be mailed or archived as one file.

use super::generate::{self, Plane};
use super::latent_map::{self, MapMethod};
use crate::error::{Error, Result};
use crate::eval;
use crate::trained::TrainedModel;
use base64::Engine as _;
use std::fmt::Write as _;
use std::path::Path;

/// How much of the validation data the report's pictures use.
#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    /// Samples in the latent map.
    pub map_samples: usize,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            map_samples: 2000,
            seed: 0,
        }
    }
}

/// Builds the page for `model`'s run; `scratch` is a folder for the pictures before they are
/// embedded.
pub fn build(model: &TrainedModel, options: &ReportOptions, scratch: &Path) -> Result<String> {
    let run = model.run();
    let data = model.validation_data()?;
    let mut page = Page::new(&format!("aekit run {}", run.path().display()));
    page.section("Model");
    page.paragraph(&format!(
        "{} model, {} parameters, input {}, code of {} values; weights {}.",
        model.kind(),
        model.meta().parameters,
        model.input_transform(),
        model.code_len(),
        model.weights_path().display()
    ));
    if let Ok(summary) = run.read_summary() {
        page.paragraph(&format!(
            "Training: {:?}, {} epochs, final training loss {:.5}, final validation loss {:.5}, \
             best {:.5} at epoch {}, {:.0} samples/s.",
            summary.status,
            summary.epochs_completed,
            summary.final_train_loss,
            summary.final_valid_loss,
            summary.best_valid_loss,
            summary.best_epoch,
            summary.mean_samples_per_sec
        ));
    }
    page.section("Loss curves");
    page.picture_file(
        &run.loss_plot_path(),
        "training and validation loss per epoch",
    )?;
    page.section("Metrics on the validation split");
    let metrics = eval::evaluate(model.model(), &data, model.device(), 1000);
    let loss = model.validation_loss(&data);
    page.preformatted(&format!(
        "samples  {}\nloss     {loss:.6} ({})\nMSE      {:.6} per value\nBCE      {:.6} per value\nPSNR     {:.2} dB",
        metrics.samples,
        eval::loss_name(model.config()),
        metrics.mse,
        metrics.bce,
        metrics.psnr
    ));
    if data.shape.is_image() {
        page.section("Reconstructions");
        let path = scratch.join("reconstructions.png");
        crate::plots::reconstruction_grid(&path, model.model(), &data.take(10), model.device())?;
        page.picture_file(&path, "originals above their reconstructions")?;
    }
    page.section("Latent map");
    let subset = data.take(options.map_samples);
    let method = if model.code_len() == 2 {
        MapMethod::None
    } else {
        MapMethod::Pca
    };
    let map = latent_map::latent_map(model, &subset, &method, true)?;
    let path = scratch.join("map.png");
    latent_map::draw(&map, &path)?;
    page.picture_file(&path, "the codes' map beside the raw inputs'")?;
    if model.is_variational() && data.shape.is_image() {
        page.section("Samples from the prior");
        let prior = generate::CodeGaussian::standard(model.code_len());
        let samples = generate::sample(model, &prior, 40, options.seed)?;
        let path = scratch.join("samples.png");
        let rows: Vec<&[f32]> = samples.chunks(10 * data.shape.len()).collect();
        crate::plots::image_grid(&path, data.shape, &rows, 10)?;
        page.picture_file(&path, "40 samples decoded from codes drawn from N(0, I)")?;
        page.section("Manifold");
        let plane = if model.code_len() == 2 {
            Plane::Dimensions(0, 1)
        } else {
            Plane::PrincipalComponents
        };
        let codes = model.encode(&subset.values)?;
        let grid = 15;
        let images = generate::manifold(model, &prior, &plane, grid, Some(&codes))?;
        let path = scratch.join("manifold.png");
        let rows: Vec<&[f32]> = images.chunks(grid * data.shape.len()).collect();
        crate::plots::image_grid(&path, data.shape, &rows, grid)?;
        page.picture_file(&path, "codes on a grid of normal quantiles, decoded")?;
    }
    page.section("Config");
    page.preformatted(&model.config().to_toml());
    Ok(page.finish())
}

/// An HTML page under construction.
struct Page {
    html: String,
}

impl Page {
    fn new(title: &str) -> Self {
        let mut html = String::new();
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
             <style>body{{font-family:sans-serif;max-width:1500px;margin:2em auto;padding:0 1em;color:#222}}\
             img{{max-width:100%;border:1px solid #ddd}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}\
             h2{{border-bottom:1px solid #ccc;padding-bottom:.2em}}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(title),
            escape(title)
        );
        Self { html }
    }

    fn section(&mut self, title: &str) {
        let _ = writeln!(self.html, "<h2>{}</h2>", escape(title));
    }

    fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.html, "<p>{}</p>", escape(text));
    }

    fn preformatted(&mut self, text: &str) {
        let _ = writeln!(self.html, "<pre>{}</pre>", escape(text));
    }

    /// Embeds a PNG file; a missing picture is said in words rather than failing the page.
    fn picture_file(&mut self, path: &Path, alt: &str) -> Result<()> {
        if !path.is_file() {
            self.paragraph(&format!("({} is missing)", path.display()));
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        let _ = writeln!(
            self.html,
            "<p><img alt=\"{}\" src=\"data:image/png;base64,{data}\"></p>",
            escape(alt)
        );
        Ok(())
    }

    fn finish(mut self) -> String {
        self.html.push_str("</body>\n</html>\n");
        self.html
    }
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
