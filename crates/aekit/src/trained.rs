//! A trained run as a tool: [`TrainedModel`] opens a run directory once (config, model
//! description, weights, device) and offers what every application needs — encode, decode,
//! reconstruct, per-sample scores — on plain `f32` slices, so that the CLI, the
//! applications, and later an HTTP server and Python bindings all call the same thing.

use crate::config::RunConfig;
use crate::data::scaling::{FeatureScaler, Scale};
use crate::data::{self, Dataset, SampleShape};
use crate::device::{self, DeviceChoice};
use crate::error::{Error, Result};
use crate::eval;
use crate::kernels::row_blocks::in_row_blocks;
use crate::models::heads::{self, HeadMetrics, HeadSpec, Heads, MetricsTally};
use crate::models::{Autoencoder, LossSettings};
use crate::run_dir::{ModelMeta, RunDir, WeightsChoice};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Samples per forward pass when a call hands the model many samples at once.
const BATCH: usize = 1000;

/// How the run turned raw data into the model's input, so that other data can be prepared
/// the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTransform {
    /// The shape of one input sample (channels x height x width, or table features).
    pub shape: SampleShape,
    /// Whether samples are images (else table rows).
    pub is_image: bool,
    /// Images: 8-bit pixel values are divided by 255 into [0, 1].
    pub pixel_scale: f32,
    /// Training images were binarised (each pixel redrawn from Bernoulli(value)).
    pub binarized: bool,
    /// Tables: the per-column scaling fitted on the training rows (applied to every input,
    /// inverted on outputs written in original units).
    pub scaling: Option<FeatureScaler>,
}

impl std::fmt::Display for InputTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_image {
            let colour = match self.shape.channels {
                1 => "grey",
                3 => "RGB",
                _ => "multi-channel",
            };
            write!(
                f,
                "{colour} images of {}x{} pixels (height x width), pixel values / 255",
                self.shape.height, self.shape.width
            )?;
            if self.binarized {
                write!(f, ", binarised during training")?;
            }
            Ok(())
        } else {
            let scaling = match self.scaling.as_ref().map(|s| s.kind) {
                Some(Scale::Standard) => "each column standardised (training rows' mean and std)",
                Some(Scale::Minmax) => "each column min-max scaled to [0, 1] (training rows)",
                _ => "unscaled",
            };
            write!(f, "table rows of {} features, {scaling}", self.shape.width)
        }
    }
}

/// A model loaded from a run directory, ready to apply.
#[derive(Debug)]
pub struct TrainedModel {
    run: RunDir,
    config: RunConfig,
    meta: ModelMeta,
    model: Autoencoder,
    device: Device,
    weights: PathBuf,
    code_len: usize,
    scaler: Option<FeatureScaler>,
    heads: Option<(Heads, Vec<HeadSpec>)>,
}

impl TrainedModel {
    /// Opens the run at `path` with the weights `weights` names, on `choice`'s device.
    pub fn open(path: &Path, choice: DeviceChoice, weights: WeightsChoice) -> Result<Self> {
        let run = RunDir::open(path)?;
        let device = device::plain_device(choice)?;
        let (config, meta, model) = run.load_model(&device, weights)?;
        let heads_path = run.heads_weights_path(weights);
        let weights = run.weights_path(weights);
        let scaler = run.load_scaler(&config)?;
        let mut trained = Self::from_parts(run, config, meta, model, device, weights)?;
        trained.scaler = scaler;
        trained.heads = trained.load_heads(&heads_path)?;
        Ok(trained)
    }

    /// Wraps a model already built (tests, a model still in memory after training).
    pub fn from_parts(
        run: RunDir,
        config: RunConfig,
        meta: ModelMeta,
        model: Autoencoder,
        device: Device,
        weights: PathBuf,
    ) -> Result<Self> {
        let code_len = crate::train::code_len_of(&model, meta.sample_shape, &device);
        Ok(Self {
            run,
            config,
            meta,
            model,
            device,
            weights,
            code_len,
            scaler: None,
            heads: None,
        })
    }

    /// The run directory.
    pub fn run(&self) -> &RunDir {
        &self.run
    }
    /// The run's resolved config.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }
    /// The run's model description.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }
    /// The model itself, for the library's own applications.
    pub fn model(&self) -> &Autoencoder {
        &self.model
    }
    /// The device the model computes on.
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The weight file that was loaded.
    pub fn weights_path(&self) -> &Path {
        &self.weights
    }
    /// What identifies this model exactly: the sha256 (hex) of its description
    /// (`model.json`), its weight file and its table scaling (`scaler.json`, when it scales),
    /// the files every output depends on. Files made with one model (an index of codes, a
    /// compressed image) record it, so that another model cannot read them by mistake.
    pub fn fingerprint(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut files = vec![self.run.path().join("model.json"), self.weights.clone()];
        if self.scaler.is_some() {
            files.push(self.run.scaler_path());
        }
        for file in files {
            let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// The model family (`[model] kind`).
    pub fn kind(&self) -> &str {
        self.config.model.kind_name()
    }
    /// Whether the model is a VAE (it has a prior to sample from).
    pub fn is_variational(&self) -> bool {
        matches!(self.model, Autoencoder::Vae(_))
    }
    /// The shape of one input sample.
    pub fn sample_shape(&self) -> SampleShape {
        self.meta.sample_shape
    }
    /// Values in one input sample.
    pub fn input_len(&self) -> usize {
        self.meta.sample_shape.len()
    }
    /// Values in one code.
    pub fn code_len(&self) -> usize {
        self.code_len
    }
    /// The code's shape: `[channels, height, width]` for a conv model whose code is its
    /// last feature maps, else `[code_len]`.
    pub fn code_shape(&self) -> Vec<usize> {
        match &self.model {
            Autoencoder::Conv(conv) if conv.code_len() != conv.maps_len() => vec![self.code_len],
            Autoencoder::Conv(conv) => conv.code_shape().to_vec(),
            _ => vec![self.code_len],
        }
    }
    /// The heads of a run with `[[model.heads]]` (`heads.json`, weights from `path`).
    fn load_heads(&self, path: &Path) -> Result<Option<(Heads, Vec<HeadSpec>)>> {
        let configs = self.config.model.heads();
        if configs.is_empty() {
            return Ok(None);
        }
        let specs: Vec<HeadSpec> = crate::run_dir::read_json(&self.run.heads_spec_path())?;
        if specs.len() != configs.len() {
            return Err(Error::run(
                self.run.path(),
                format!(
                    "heads.json describes {} heads, config.toml {}",
                    specs.len(),
                    configs.len()
                ),
            ));
        }
        let widths =
            heads::input_widths(&self.model, configs, self.meta.sample_shape, &self.device)?;
        let fresh = Heads::init(configs, &specs, &widths, &self.device);
        Ok(Some((crate::run_dir::load_weights(fresh, path)?, specs)))
    }

    /// What the model's heads predict (`heads.json`); empty for a plain autoencoder.
    pub fn head_specs(&self) -> &[HeadSpec] {
        self.heads
            .as_ref()
            .map_or(&[], |(_, specs)| specs.as_slice())
    }

    /// Each head's predictions for `inputs`: per head, class probabilities (`classes` values
    /// per sample) or values in the target's units (one per sample).
    pub fn predict_heads(&self, inputs: &[f32]) -> Result<Vec<Vec<f32>>> {
        let Some((model_heads, specs)) = &self.heads else {
            return Ok(Vec::new());
        };
        let codes = self.encode(inputs)?;
        model_heads
            .heads
            .iter()
            .zip(specs)
            .map(|(head, spec)| match spec.level {
                None => self.map_batches(&codes, self.code_len, "codes", |z| {
                    heads::predictions(head.forward(spec.head_input(z)), spec)
                }),
                Some(level) => self.map_batches(inputs, self.input_len(), "inputs", |x| {
                    let levels = self.model.encoder_levels(x);
                    heads::predictions(
                        head.forward(spec.head_input(levels[level - 1].clone())),
                        spec,
                    )
                }),
            })
            .collect()
    }

    /// How well each head predicts its targets on `data`: accuracy and confusion matrix,
    /// or MAE and RMSE. Heads whose target `data` does not carry are left out.
    pub fn head_metrics(&self, data: &Dataset) -> Result<Vec<HeadMetrics>> {
        let Some((_, specs)) = &self.heads else {
            return Ok(Vec::new());
        };
        let predictions = self.predict_heads(&data.values)?;
        let mut metrics = Vec::new();
        for ((config, spec), predicted) in self
            .config
            .model
            .heads()
            .iter()
            .zip(specs)
            .zip(&predictions)
        {
            let Ok(targets) = heads::resolve_split(
                std::slice::from_ref(config),
                std::slice::from_ref(spec),
                data,
            ) else {
                continue;
            };
            let mut tally = MetricsTally::new(spec);
            tally.add(spec, predicted, &targets[0]);
            metrics.push(tally.finish(spec));
        }
        Ok(metrics)
    }

    /// Names of the classes of the training data (index = label), when it had labels.
    pub fn class_names(&self) -> &[String] {
        &self.meta.class_names
    }
    /// The loss settings of the model's full objective (no warm-up).
    pub fn loss_settings(&self) -> LossSettings {
        self.config
            .model
            .loss_settings(self.config.train.loss, None)
            .with_pixel_classes(self.meta.pixel_class_count())
    }

    /// How the run prepared its input.
    pub fn input_transform(&self) -> InputTransform {
        InputTransform {
            shape: self.meta.sample_shape,
            is_image: self.meta.sample_shape.is_image(),
            pixel_scale: 1.0 / 255.0,
            binarized: self.config.data.binarize == data::Binarize::Dynamic,
            scaling: self.scaler.clone(),
        }
    }

    /// The run's table scaling, when it scales its data.
    pub fn scaler(&self) -> Option<&FeatureScaler> {
        self.scaler.as_ref()
    }

    /// The run's own training samples, as training saw them (its class filter, limit and
    /// scaling applied).
    pub fn training_data(&self) -> Result<Dataset> {
        Ok(data::load_splits(&self.config.data)?.train)
    }

    /// The run's own validation samples.
    pub fn validation_data(&self) -> Result<Dataset> {
        Ok(data::load_splits(&self.config.data)?.valid)
    }

    /// The samples at `path` prepared for this model: the test split when the source has
    /// one. Images of another size are refused unless `resize`.
    pub fn load_data(&self, path: &Path, resize: bool) -> Result<Dataset> {
        self.load_split(path, data::config::Split::Test, resize)
    }

    /// The samples at `path` prepared for this model, the split `split` names, read with the
    /// run's own settings for tables (its label column is not a feature).
    pub fn load_split(
        &self,
        path: &Path,
        split: data::config::Split,
        resize: bool,
    ) -> Result<Dataset> {
        let input = data::config::ModelInput {
            resize,
            split,
            ..data::config::ModelInput::for_run(&self.config.data)
        };
        let mut data = data::config::load_split_for_model(path, self.meta.sample_shape, &input)?;
        if let Some(scaler) = &self.scaler {
            scaler.apply(&mut data.values);
        }
        if data.is_empty() {
            return Err(Error::data(path, "holds no samples"));
        }
        self.pair(&mut data, path)?;
        Ok(data)
    }

    /// Gives an image-to-image model's data their targets as training made them: derived
    /// pairs for any data, targets from files for the run's own data folder only (other
    /// data is then applied without targets).
    fn pair(&self, data: &mut Dataset, path: &Path) -> Result<()> {
        let Some(source) = self
            .config
            .data
            .pair_source()
            .map_err(|message| Error::config("[data]", message))?
        else {
            return Ok(());
        };
        let own_data = self.config.data.path.as_deref() == Some(path);
        if !source.is_derived() && !own_data {
            return Ok(());
        }
        data::pairs::pair(
            data,
            &source,
            self.config.data.seed ^ data::pairs::TEST_PAIR_SEED,
            data::config::source_root(path),
            self.config.data.target_files(),
        )?;
        // The pairs of images of another size than the model's cannot be learned targets.
        if data.paired.as_ref().map(|p| p.output_shape()) != Some(self.meta.output_shape()) {
            return Err(Error::data(
                path,
                format!(
                    "its targets are {}, but the model outputs {}",
                    data.paired
                        .as_ref()
                        .map_or(self.meta.sample_shape, |p| p.output_shape()),
                    self.meta.output_shape()
                ),
            ));
        }
        Ok(())
    }

    /// Whether the model learns targets other than its inputs (`[data] target`).
    pub fn is_image_to_image(&self) -> bool {
        self.config.data.target.is_some()
    }

    /// The shape of one output (the input's, unless the model maps to other targets).
    pub fn output_shape(&self) -> SampleShape {
        self.meta.output_shape()
    }

    /// A segmentation model's pixel classes (background first); empty for other models.
    pub fn pixel_classes(&self) -> &[String] {
        &self.meta.pixel_classes
    }

    /// A segmentation model's class of every pixel of `inputs`: the most probable output
    /// channel, `height x width` values per sample.
    pub fn predict_pixel_classes(&self, inputs: &[f32]) -> Result<Vec<u32>> {
        let shape = self.output_shape();
        let logits = self.map_batches(inputs, self.input_len(), "inputs", |x| {
            self.model.forward(x).logits
        })?;
        Ok(crate::apps::image_to_image::most_probable_classes(
            &logits,
            shape.channels,
            shape.height * shape.width,
        ))
    }

    /// The codes of `inputs` (consecutive samples of [`Self::input_len`] values):
    /// [`Self::code_len`] values per sample. A VAE's code is its posterior mean.
    pub fn encode(&self, inputs: &[f32]) -> Result<Vec<f32>> {
        self.map_batches(inputs, self.input_len(), "inputs", |x| self.model.encode(x))
    }

    /// The outputs (output activation applied) of `codes` (consecutive codes of
    /// [`Self::code_len`] values): [`Self::input_len`] values per code.
    pub fn decode(&self, codes: &[f32]) -> Result<Vec<f32>> {
        self.map_batches(codes, self.code_len, "codes", |z| self.model.decode(z))
    }

    /// The reconstructions of `inputs`.
    pub fn reconstruct(&self, inputs: &[f32]) -> Result<Vec<f32>> {
        self.map_batches(inputs, self.input_len(), "inputs", |x| {
            self.model.reconstruct(x)
        })
    }

    /// Each sample's mean reconstruction error, by `kind` (MSE, L1, or BCE on outputs clipped
    /// into (0, 1)).
    ///
    /// On a GPU the error is reduced per batch on the device, so that only one value per
    /// sample is copied back. On the CPU the reconstruction is already in host memory, and one
    /// pass over it per sample (in parallel over samples) replaces three full-size tensor
    /// operations (difference, power, mean), each of which would allocate and fill a batch-
    /// sized buffer: scoring then costs little more than inference.
    pub fn reconstruction_errors(
        &self,
        inputs: &[f32],
        kind: crate::loss::ReconstructionLoss,
    ) -> Result<Vec<f64>> {
        if self.device != Device::flex() {
            return self.device_reconstruction_errors(inputs, kind);
        }
        let width = self.input_len();
        self.check_len(inputs, width, "inputs")?;
        let mut errors = vec![0.0; inputs.len() / width.max(1)];
        for (chunk, out) in inputs.chunks(BATCH * width).zip(errors.chunks_mut(BATCH)) {
            let outputs = self
                .model
                .reconstruct_in_row_blocks(self.tensor(chunk, width))
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Input(format!("inputs: {e:?}")))?;
            out.par_iter_mut()
                .zip(chunk.par_chunks(width).zip(outputs.par_chunks(width)))
                .for_each(|(error, (x, y))| *error = sample_error(kind, x, y));
        }
        Ok(errors)
    }

    /// [`Self::reconstruction_errors`] reduced on the device, with tensor operations.
    fn device_reconstruction_errors(
        &self,
        inputs: &[f32],
        kind: crate::loss::ReconstructionLoss,
    ) -> Result<Vec<f64>> {
        use crate::loss::ReconstructionLoss;
        let errors = self.map_batches(inputs, self.input_len(), "inputs", |x| {
            let y = self.model.reconstruct(x.clone());
            let per_value = match kind {
                ReconstructionLoss::Mse => (y - x).powi_scalar(2),
                ReconstructionLoss::L1 => (y - x).abs(),
                ReconstructionLoss::Bce => {
                    let y = y.clamp(1e-7, 1.0 - 1e-7);
                    let one_minus = y.clone().neg().add_scalar(1.0).log();
                    (x.clone() * y.log() + x.neg().add_scalar(1.0) * one_minus).neg()
                }
            };
            per_value.mean_dim(1)
        })?;
        Ok(errors.into_iter().map(f64::from).collect())
    }

    /// Each sample's loss ([`Autoencoder::sample_losses`]): its reconstruction loss, for a
    /// VAE its negative ELBO with one code drawn per sample from a generator seeded with
    /// `seed` (the same seed gives the same scores).
    pub fn sample_scores(&self, inputs: &[f32], seed: u64) -> Result<Vec<f64>> {
        self.device.seed(seed);
        let settings = self.loss_settings();
        // Whole batches, not row blocks: the codes drawn from the seeded generator must come
        // in the same order on every run.
        let scores = self.map_whole_batches(inputs, self.input_len(), "inputs", |x| {
            let batch = x.dims()[0];
            self.model.sample_losses(x, &settings).reshape([batch, 1])
        })?;
        Ok(scores.into_iter().map(f64::from).collect())
    }

    /// A VAE's importance-weighted estimate of `-log p(x)` per sample with `k` samples
    /// (seeded); an error for other families.
    pub fn importance_weighted_nll(&self, inputs: &[f32], k: usize, seed: u64) -> Result<Vec<f64>> {
        let Autoencoder::Vae(vae) = &self.model else {
            return Err(Error::Unsupported(format!(
                "the importance-weighted NLL needs a variational model (kind = \"vae\"); this \
                 run's model is `{}`",
                self.kind()
            )));
        };
        let n = self.check_len(inputs, self.input_len(), "inputs")?;
        self.device.seed(seed);
        let mut out = Vec::with_capacity(n);
        for chunk in inputs.chunks(100 * self.input_len()) {
            let x = self.tensor(chunk, self.input_len());
            out.extend(vae.importance_weighted_nll(x, k.max(1), self.config.train.loss));
        }
        Ok(out)
    }

    /// The mean loss over `data`, as the training loop's validation pass computes it (the
    /// same seed, batches and objective): for the run's validation split and final
    /// weights, the last `valid_loss` of `history.csv`.
    pub fn validation_loss(&self, data: &Dataset) -> f64 {
        let batch = self.config.train.batch_size.max(256);
        // A model with heads is judged by the total its history records, when the data
        // carry the heads' targets.
        if let Some((model_heads, specs)) = &self.heads
            && let Ok(targets) = heads::resolve_split(self.config.model.heads(), specs, data)
        {
            let settings = self.loss_settings();
            return heads::validate_network(
                (&self.model, model_heads),
                (data, &targets),
                &self.device,
                batch,
                &heads::NetworkSettings {
                    loss: &settings,
                    reconstruction_weight: self.config.model.reconstruction_weight(),
                    specs,
                    freeze_encoder: false,
                    epoch: None,
                },
            )
            .0;
        }
        eval::validation_loss(
            &self.model,
            data,
            &self.device,
            batch,
            &self.loss_settings(),
        )
        .0
    }

    fn check_len(&self, values: &[f32], width: usize, what: &str) -> Result<usize> {
        if width == 0 || !values.len().is_multiple_of(width) {
            return Err(Error::Input(format!(
                "{what}: {} values is not a whole number of samples of {width} values (the \
                 model's {})",
                values.len(),
                if what == "codes" {
                    "code length"
                } else {
                    "input size"
                }
            )));
        }
        Ok(values.len() / width)
    }

    fn tensor(&self, values: &[f32], width: usize) -> Tensor<2> {
        let rows = values.len() / width;
        Tensor::<2>::from_data(
            TensorData::new(values.to_vec(), [rows, width]),
            &self.device,
        )
    }

    /// Applies `f`, a map of each row on its own (deterministic), to `values` in batches of
    /// rows of `width` values and concatenates the results' rows; on the CPU each batch is
    /// split into one block of rows per thread ([`in_row_blocks`]).
    fn map_batches(
        &self,
        values: &[f32],
        width: usize,
        what: &str,
        f: impl Fn(Tensor<2>) -> Tensor<2> + Sync,
    ) -> Result<Vec<f32>> {
        self.map_whole_batches(values, width, what, |x| in_row_blocks(x, &f))
    }

    /// [`Self::map_batches`] with each batch given to `f` whole.
    fn map_whole_batches(
        &self,
        values: &[f32],
        width: usize,
        what: &str,
        f: impl Fn(Tensor<2>) -> Tensor<2>,
    ) -> Result<Vec<f32>> {
        self.check_len(values, width, what)?;
        let mut out = Vec::new();
        for chunk in values.chunks(BATCH * width) {
            let y = f(self.tensor(chunk, width));
            out.extend(
                y.into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| Error::Input(format!("{what}: {e:?}")))?,
            );
        }
        Ok(out)
    }
}

/// One sample's mean error between its values `x` and its reconstruction `y`.
fn sample_error(kind: crate::loss::ReconstructionLoss, x: &[f32], y: &[f32]) -> f64 {
    use crate::loss::ReconstructionLoss;
    let sum = match kind {
        ReconstructionLoss::Mse => lane_sum(x, y, |x, y| (y - x) * (y - x)),
        ReconstructionLoss::L1 => lane_sum(x, y, |x, y| (y - x).abs()),
        ReconstructionLoss::Bce => lane_sum(x, y, |x, y| {
            let y = y.clamp(1e-7, 1.0 - 1e-7);
            -(x * y.ln() + (1.0 - x) * (1.0 - y).ln())
        }),
    };
    sum / x.len().max(1) as f64
}

/// The sum of `term(x, y)` over pairs, in 16 independent `f32` lanes added up in `f64` at
/// the end: one serial `f64` sum is bound by the latency of its additions (a tenth of
/// scoring time in a profile), while the lanes vectorise.
fn lane_sum(x: &[f32], y: &[f32], term: impl Fn(f32, f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let (xs, ys) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (x_rest, y_rest) = (xs.remainder(), ys.remainder());
    for (xc, yc) in xs.zip(ys) {
        for i in 0..LANES {
            lanes[i] += term(xc[i], yc[i]);
        }
    }
    let rest: f64 = x_rest
        .iter()
        .zip(y_rest)
        .map(|(&x, &y)| f64::from(term(x, y)))
        .sum();
    lanes.iter().map(|&v| f64::from(v)).sum::<f64>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{TrainOptions, train};

    /// A two-epoch run of `model` (a `[model]` table body) on small shapes.
    fn trained_run(runs: &Path, name: &str, model: &str, loss: &str) -> RunDir {
        let text = format!(
            "name = \"{name}\"\nruns_dir = \"{}\"\n[data]\nkind = \"shapes\"\nsamples = 300\nsize = 12\n\
             validation = \"test\"\n[model]\n{model}\n[train]\nlearning_rate = 2e-3\nepochs = 3\n\
             batch_size = 50\nloss = \"{loss}\"\n",
            runs.display()
        );
        let config = RunConfig::parse(&text, name, &[]).unwrap();
        let options = TrainOptions {
            quiet: true,
            ..Default::default()
        };
        train(&config, &options).unwrap().run
    }

    #[test]
    fn every_familys_loaded_model_reproduces_the_last_validation_loss() {
        let runs = tempfile::tempdir().unwrap();
        let families = [
            ("dense", "kind = \"dense\"\nhidden = [16]\ncode = 4", "bce"),
            (
                "sparse",
                "kind = \"sparse\"\ncode = 8\n[model.sparsity]\nkind = \"l1\"\nlambda = 1e-3",
                "bce",
            ),
            (
                "contractive",
                "kind = \"contractive\"\ncode = 8\ncode_activation = \"sigmoid\"\n\
                 [model.contractive]\nlambda = 1e-3",
                "bce",
            ),
            (
                "denoising",
                "kind = \"denoising\"\ncode = 8\n[model.corruption]\nkind = \"masking\"\np = 0.2",
                "mse",
            ),
            ("conv", "kind = \"conv\"\nfilters = [4, 4]", "bce"),
            // KL warm-up longer than the run: the loaded model must still use the full KL.
            (
                "vae-warmup",
                "kind = \"vae\"\nhidden = [16]\nlatent = 2\nwarmup_epochs = 10",
                "bce",
            ),
        ];
        for (name, model, loss) in families {
            let run = trained_run(runs.path(), name, model, loss);
            let history = run.read_history().unwrap();
            let last = history.last().unwrap().valid_loss;
            let loaded =
                TrainedModel::open(run.path(), DeviceChoice::Cpu, WeightsChoice::Final).unwrap();
            let valid = loaded.validation_data().unwrap();
            let loss = loaded.validation_loss(&valid);
            assert!(
                (loss - last).abs() <= 1e-5 * last.abs().max(1.0),
                "{name}: loaded model's validation loss {loss} vs history's last {last}"
            );
        }
    }

    #[test]
    fn a_vaes_validation_loss_carries_the_full_kl_during_warm_up() {
        let runs = tempfile::tempdir().unwrap();
        let run = trained_run(
            runs.path(),
            "vae",
            "kind = \"vae\"\nhidden = [16]\nlatent = 2\nwarmup_epochs = 10",
            "bce",
        );
        let history = run.read_history().unwrap();
        let row = &history[0];
        // In epoch 1 of 10 warm-up epochs, training weighs the KL by 0.1; validation by 1.
        let (train_kl, valid_kl) = (row.terms["train_kl"], row.terms["valid_kl"]);
        assert!(
            valid_kl > 3.0 * train_kl,
            "validation KL {valid_kl} should be the unweighted KL, training's {train_kl} a tenth"
        );
    }

    #[test]
    fn best_weights_are_kept_beside_the_final_ones() {
        let runs = tempfile::tempdir().unwrap();
        let run = trained_run(runs.path(), "best", "kind = \"dense\"\ncode = 4", "bce");
        let summary = run.read_summary().unwrap();
        let weights = summary
            .weights
            .expect("summary.json names the weight files");
        assert_eq!(weights.final_file, "model.bpk");
        assert_eq!(weights.best_file.as_deref(), Some("model-best.bpk"));
        assert_eq!(weights.best_epoch, summary.best_epoch);
        assert!(run.best_model_path().is_file());
        let best = TrainedModel::open(run.path(), DeviceChoice::Cpu, WeightsChoice::Best).unwrap();
        assert_eq!(best.weights_path(), run.best_model_path());
        let valid = best.validation_data().unwrap();
        assert!(
            (best.validation_loss(&valid) - summary.best_valid_loss).abs() < 1e-5,
            "the best weights reproduce the best validation loss"
        );
    }

    #[test]
    fn the_api_checks_shapes_and_scores_every_sample() {
        let runs = tempfile::tempdir().unwrap();
        let run = trained_run(runs.path(), "api", "kind = \"dense\"\ncode = 4", "bce");
        let model = TrainedModel::open(run.path(), DeviceChoice::Cpu, WeightsChoice::Best).unwrap();
        assert_eq!((model.input_len(), model.code_len()), (144, 4));
        assert_eq!(model.class_names().len(), 4);
        let valid = model.validation_data().unwrap();
        let codes = model.encode(&valid.values).unwrap();
        assert_eq!(codes.len(), valid.len() * 4);
        assert_eq!(model.decode(&codes).unwrap().len(), valid.values.len());
        let scores = model.sample_scores(&valid.values, 0).unwrap();
        assert_eq!(scores.len(), valid.len());
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let loss = model.validation_loss(&valid);
        assert!(
            (mean - loss).abs() < 1e-4,
            "mean score {mean} vs loss {loss}"
        );
        let error = model.encode(&[0.0; 145]).unwrap_err().to_string();
        assert!(
            error.contains("145 values") && error.contains("144"),
            "{error}"
        );
        let error = model.decode(&[0.0; 3]).unwrap_err().to_string();
        assert!(error.contains("code length"), "{error}");
        let error = model
            .importance_weighted_nll(&valid.values, 2, 0)
            .unwrap_err()
            .to_string();
        assert!(error.contains("variational"), "{error}");
    }

    #[test]
    fn host_reconstruction_errors_match_the_tensor_reduction() {
        use crate::loss::ReconstructionLoss;
        let runs = tempfile::tempdir().unwrap();
        let run = trained_run(runs.path(), "errors", "kind = \"dense\"\ncode = 4", "bce");
        let model = TrainedModel::open(run.path(), DeviceChoice::Cpu, WeightsChoice::Best).unwrap();
        let valid = model.validation_data().unwrap();
        // More than one batch, and a last batch that is not full.
        let values: Vec<f32> = valid
            .values
            .iter()
            .cycle()
            .take(1503 * 144)
            .copied()
            .collect();
        for kind in [
            ReconstructionLoss::Mse,
            ReconstructionLoss::L1,
            ReconstructionLoss::Bce,
        ] {
            let host = model.reconstruction_errors(&values, kind).unwrap();
            let device = model.device_reconstruction_errors(&values, kind).unwrap();
            assert_eq!(host.len(), 1503);
            for (h, d) in host.iter().zip(&device) {
                assert!(
                    (h - d).abs() <= 1e-5 * d.abs().max(1e-3),
                    "{kind:?}: {h} vs {d}"
                );
            }
        }
        let error = model
            .reconstruction_errors(&values[..145], ReconstructionLoss::Mse)
            .unwrap_err()
            .to_string();
        assert!(error.contains("145 values"), "{error}");
    }

    #[test]
    fn broken_run_directories_are_clear_errors() {
        let runs = tempfile::tempdir().unwrap();
        let run = trained_run(runs.path(), "broken", "kind = \"dense\"\ncode = 4", "bce");
        let weights = run.best_model_path();
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
        let error =
            TrainedModel::open(run.path(), DeviceChoice::Cpu, WeightsChoice::Best).unwrap_err();
        assert!(error.to_string().contains("model-best.bpk"), "{error}");
        let meta = std::fs::read_to_string(run.model_meta_path()).unwrap();
        std::fs::write(run.model_meta_path(), meta.replace("\"dense\"", "\"conv\"")).unwrap();
        let error =
            TrainedModel::open(run.path(), DeviceChoice::Cpu, WeightsChoice::Final).unwrap_err();
        assert!(error.to_string().contains("disagree"), "{error}");
    }
}
