//! The speed benchmark behind `aekit bench speed` and `bench/speed.py` (issue 4: "faster than
//! PyTorch"): training and inference throughput and peak memory of one model, built from a
//! run config exactly as `aekit train` builds it.
//!
//! - **Training**: `steps` optimizer steps (after `warmup` untimed ones) on batches of
//!   `batch_size` samples drawn in a shuffled order from the config's training data held in
//!   memory, each step the training loop's own [`train::step_loss`] (the family's
//!   `loss_parts`) and [`train::step_update`] (backward pass and optimizer step).
//! - **Inference**: encode and decode (output activation applied) of `infer_steps` batches of
//!   the validation split on the plain device (no autodiff graph).
//! - **Memory**: the process's peak resident set (`VmHWM` in `/proc/self/status`); run one
//!   process per model so that the figure belongs to that model. [`epoch_memory`] runs the
//!   real training loop (`train::train`, validation and checkpoints included) for some epochs
//!   and reads the peak of every epoch, resetting it in between (`/proc/self/clear_refs`), to
//!   show that memory does not grow from epoch to epoch.
//! - **Loss check**: [`export_check`] writes the freshly initialised weights, one batch and
//!   the loss aekit computes on them (plus, for a VAE, the noise its reparameterisation
//!   draws) to a folder, so that `bench/pytorch/speed.py --check` can load them into its twin
//!   model and compare the losses: the two sides then time the same computation.
//!
//! - **Device**: the CPU (`flex`) by default; [`SpeedOptions::device`] and the memory run's
//!   `device` take `--device gpu` through to [`device::plain_device`] (a GPU build). The
//!   loss check always computes on the CPU.
//!
//! When the config's data cannot be loaded (MNIST not downloaded), the benchmark runs on
//! uniform random data of MNIST's shape and says so in its report.

use aekit::config::RunConfig;
use aekit::data::{self, Dataset, SampleShape};
use aekit::device::{self, DeviceChoice};
use aekit::error::{Error, Result};
use aekit::models::{Autoencoder, ModelConfig};
use aekit::run_dir::HistoryRow;
use aekit::train::{self, TrainOptions};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone)]
pub struct SpeedOptions {
    /// Timed training steps.
    pub steps: usize,
    /// Untimed training steps before them.
    pub warmup: usize,
    /// Samples per step (training and inference).
    pub batch_size: usize,
    /// Timed inference batches.
    pub infer_steps: usize,
    /// Seed of the initialisation and of the batch order.
    pub seed: u64,
    /// Where to compute.
    pub device: DeviceChoice,
}

impl Default for SpeedOptions {
    fn default() -> Self {
        Self {
            steps: 200,
            warmup: 10,
            batch_size: 256,
            infer_steps: 200,
            seed: 0,
            device: DeviceChoice::Cpu,
        }
    }
}

/// Where the samples came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataSource {
    /// `"config"` (the config's `[data]`) or `"random"` (uniform values; the data could not be
    /// loaded).
    pub kind: String,
    /// The config's data path, when it has one.
    pub path: Option<PathBuf>,
    /// Training samples held in memory.
    pub train_samples: usize,
    /// Validation samples held in memory.
    pub valid_samples: usize,
    /// The shape of a sample.
    pub shape: [usize; 3],
    /// Why the data are random, when they are.
    pub note: Option<String>,
}

/// One measurement of one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeedReport {
    /// The config's name.
    pub name: String,
    /// The model family.
    pub kind: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// The data used.
    pub data: DataSource,
    /// Where it computed: `cpu`, or `gpu: ` and the adapter.
    #[serde(default)]
    pub device: String,
    /// Threads of the kernels' thread pool.
    pub threads: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Timed training steps.
    pub steps: usize,
    /// Untimed steps before them.
    pub warmup: usize,
    /// Seconds of the timed training steps.
    pub train_seconds: f64,
    /// Training samples per second.
    pub train_samples_per_s: f64,
    /// Loss of the first timed step and of the last.
    pub first_loss: f64,
    /// See `first_loss`.
    pub last_loss: f64,
    /// Timed inference batches.
    pub infer_steps: usize,
    /// Seconds of the timed inference batches.
    pub infer_seconds: f64,
    /// Inference (encode + decode, no autodiff) samples per second.
    pub infer_samples_per_s: f64,
    /// Peak resident memory of the process (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    /// The model's resolved `[model]` table.
    pub model: serde_json::Value,
    /// The resolved `[train]` table.
    pub train: serde_json::Value,
}

/// Loads the config's data, or falls back to uniform random data of MNIST's shape.
pub fn load_data(config: &RunConfig) -> (Dataset, Dataset, DataSource) {
    match data::load_splits(&config.data) {
        Ok(splits) => {
            let shape = splits.train.shape;
            let source = DataSource {
                kind: "config".into(),
                path: config.data.path.clone(),
                train_samples: splits.train.len(),
                valid_samples: splits.valid.len(),
                shape: [shape.channels, shape.height, shape.width],
                note: None,
            };
            (splits.train, splits.valid, source)
        }
        Err(error) => {
            let shape = SampleShape::image(1, 28, 28);
            let train = random_dataset(shape, 8192, 1);
            let valid = random_dataset(shape, 2048, 2);
            let source = DataSource {
                kind: "random".into(),
                path: config.data.path.clone(),
                train_samples: train.len(),
                valid_samples: valid.len(),
                shape: [shape.channels, shape.height, shape.width],
                note: Some(format!("the config's data could not be loaded ({error})")),
            };
            (train, valid, source)
        }
    }
}

/// `count` samples of uniform values in [0, 1).
fn random_dataset(shape: SampleShape, count: usize, seed: u64) -> Dataset {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let values = (0..count * shape.len())
        .map(|_| rng.random::<f32>())
        .collect();
    Dataset::unlabelled("random", shape, values)
}

/// Batches of `batch` samples (full batches only) in the shuffled order of successive
/// epochs, as rows of a `[batch, values]` tensor.
struct BatchStream<'a> {
    data: &'a Dataset,
    batch: usize,
    seed: u64,
    epoch: usize,
    order: Vec<usize>,
    next: usize,
}

impl<'a> BatchStream<'a> {
    fn new(data: &'a Dataset, batch: usize, seed: u64) -> Self {
        Self {
            data,
            batch,
            seed,
            epoch: 0,
            order: Vec::new(),
            next: usize::MAX,
        }
    }

    fn next_batch(&mut self) -> Vec<f32> {
        if self.next.saturating_add(self.batch) > self.order.len() {
            self.epoch += 1;
            self.order = train::epoch_order(self.data.len(), self.seed, self.epoch, true);
            self.next = 0;
        }
        let indices = &self.order[self.next..self.next + self.batch];
        self.next += self.batch;
        // Gathered on all threads: the copy of 256 scattered rows was a fifth of a seed-model
        // inference batch (perf), and the twin's `data[perm[...]]` is timed the same way.
        // Not zero-filled first (as the twin's gather is not): every row is copied over.
        let len = self.data.shape.len();
        let mut values = Vec::with_capacity(self.batch * len);
        if len > 0 {
            values.spare_capacity_mut()[..self.batch * len]
                .par_chunks_mut(len)
                .zip(indices.par_iter())
                .for_each(|(row, &i)| {
                    row.write_copy_of_slice(self.data.sample(i));
                });
            // SAFETY: the batch's `batch` rows of `len` values were all written above.
            unsafe { values.set_len(self.batch * len) };
        }
        values
    }
}

/// Checks that the data hold at least one batch.
fn check_batch(data: &Dataset, batch: usize, what: &str) -> Result<()> {
    if batch == 0 || data.len() < batch {
        return Err(Error::Training(format!(
            "the {what} data hold {} samples, fewer than one batch of {batch}",
            data.len()
        )));
    }
    Ok(())
}

/// Trains and runs `config`'s model as [`SpeedOptions`] say and reports the throughput.
pub fn run(config: &RunConfig, options: &SpeedOptions) -> Result<SpeedReport> {
    let (train_data, valid_data, source) = load_data(config);
    check_batch(&train_data, options.batch_size, "training")?;
    check_batch(&valid_data, options.batch_size, "validation")?;
    let shape = train_data.shape;
    let values = shape.len();
    let plain = device::plain_device(options.device)?;
    let autodiff = plain.clone().autodiff();
    autodiff.seed(options.seed);
    let mut model = config.model.init(shape, &autodiff)?;
    let mut optimizer = config.train.optimizer();
    let parameters = model.num_params();
    let tc = &config.train;
    let settings = config.model.loss_settings(tc.loss, Some(1));

    let mut stream = BatchStream::new(&train_data, options.batch_size, options.seed);
    let mut step = |model: &mut Autoencoder| -> f64 {
        let x = Tensor::<2>::from_data(
            TensorData::new(stream.next_batch(), [options.batch_size, values]),
            &autodiff,
        );
        let loss = train::step_loss(model, x.clone(), x, &settings);
        train::step_update(model, &mut optimizer, loss.total, tc.learning_rate);
        loss.value
    };
    for _ in 0..options.warmup {
        step(&mut model);
    }
    let (mut first_loss, mut last_loss) = (f64::NAN, f64::NAN);
    let start = Instant::now();
    for i in 0..options.steps {
        last_loss = step(&mut model);
        if i == 0 {
            first_loss = last_loss;
        }
    }
    let train_seconds = start.elapsed().as_secs_f64();

    let valid_model = model.valid();
    let mut stream = BatchStream::new(&valid_data, options.batch_size, options.seed);
    let mut infer = || {
        let x = Tensor::<2>::from_data(
            TensorData::new(stream.next_batch(), [options.batch_size, values]),
            &plain,
        );
        // As a loaded model's `reconstruct` runs it: one block of rows per thread.
        valid_model.reconstruct_in_row_blocks(x)
    };
    for _ in 0..options.warmup.min(options.infer_steps) {
        drop(infer());
    }
    let start = Instant::now();
    for _ in 0..options.infer_steps {
        drop(infer());
    }
    // A GPU queues the work; count it all (a no-op on the CPU).
    plain.sync().map_err(|e| {
        Error::Training(format!(
            "the device failed: {}",
            e.to_string().replace('\n', " ")
        ))
    })?;
    let infer_seconds = start.elapsed().as_secs_f64();

    let samples = |steps: usize, seconds: f64| (steps * options.batch_size) as f64 / seconds;
    Ok(SpeedReport {
        name: config.name.clone(),
        kind: config.model.kind_name().into(),
        parameters,
        data: source,
        device: match options.device {
            DeviceChoice::Cpu => "cpu".into(),
            DeviceChoice::Gpu => format!("gpu: {}", device::gpu_adapter().unwrap_or_default()),
        },
        threads: rayon::current_num_threads(),
        batch_size: options.batch_size,
        steps: options.steps,
        warmup: options.warmup,
        train_seconds,
        train_samples_per_s: samples(options.steps, train_seconds),
        first_loss,
        last_loss,
        infer_steps: options.infer_steps,
        infer_seconds,
        infer_samples_per_s: samples(options.infer_steps, infer_seconds),
        peak_rss_mib: memory().map(|m| m.peak_mib),
        model: serde_json::to_value(&config.model).unwrap_or_default(),
        train: serde_json::to_value(&config.train).unwrap_or_default(),
    })
}

/// The process's resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Peak resident set since the start or the last [`reset_peak`] (VmHWM), MiB.
    pub peak_mib: f64,
    /// Resident set now (VmRSS), MiB.
    pub current_mib: f64,
}

/// Reads VmHWM and VmRSS from `/proc/self/status` (Linux); `None` elsewhere.
pub fn memory() -> Option<Memory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let kib: f64 = line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    };
    Some(Memory {
        peak_mib: field("VmHWM:")?,
        current_mib: field("VmRSS:")?,
    })
}

/// Resets the peak resident set to the current one (Linux 4.0+: `5` into
/// `/proc/self/clear_refs`); false when that is not possible.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The memory of one training epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMemory {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Peak resident memory during the epoch (since the previous epoch's end), MiB; the first
    /// epoch's includes loading the data and building the model.
    pub peak_mib: f64,
    /// Resident memory at the epoch's end, MiB.
    pub end_mib: f64,
    /// The epoch's training loss.
    pub train_loss: f64,
    /// The epoch's training samples per second.
    pub samples_per_sec: f64,
}

/// Peak memory per epoch of a real training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMemoryReport {
    /// The config's name.
    pub name: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Whether the peak could be reset between epochs (else every figure is the peak since
    /// the start).
    pub per_epoch_peaks: bool,
    /// Resident memory before training, MiB.
    pub start_mib: Option<f64>,
    /// One row per epoch.
    pub rows: Vec<EpochMemory>,
    /// Peak of the last epoch minus the smallest peak of the epochs after the first, MiB.
    pub growth_mib: Option<f64>,
}

static EPOCH_MEMORY: Mutex<Vec<EpochMemory>> = Mutex::new(Vec::new());

fn record_epoch(row: &HistoryRow) {
    if let Some(m) = memory() {
        EPOCH_MEMORY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(EpochMemory {
                epoch: row.epoch,
                peak_mib: m.peak_mib,
                end_mib: m.current_mib,
                train_loss: row.train_loss,
                samples_per_sec: row.samples_per_sec,
            });
    }
    reset_peak();
}

/// Trains `config` for `epochs` epochs with the real training loop (in a temporary run
/// directory, removed afterwards) and reports the peak resident memory of every epoch.
pub fn epoch_memory(
    config: &RunConfig,
    epochs: usize,
    device: DeviceChoice,
) -> Result<EpochMemoryReport> {
    let mut config = config.clone();
    let runs = std::env::temp_dir().join(format!("aekit-speed-{}", std::process::id()));
    config.runs_dir = runs.clone();
    config.train.epochs = epochs;
    config.train.patience = None;
    EPOCH_MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    let start = memory();
    let per_epoch_peaks = reset_peak();
    let options = TrainOptions {
        force: true,
        quiet: true,
        on_epoch_end: Some(record_epoch),
        device,
        ..Default::default()
    };
    let outcome = train::train(&config, &options);
    let _ = std::fs::remove_dir_all(&runs);
    outcome?;
    let rows = std::mem::take(&mut *EPOCH_MEMORY.lock().unwrap_or_else(|e| e.into_inner()));
    let growth_mib = match (
        rows.last(),
        rows.iter().skip(1).map(|r| r.peak_mib).reduce(f64::min),
    ) {
        (Some(last), Some(min)) => Some(last.peak_mib - min),
        _ => None,
    };
    Ok(EpochMemoryReport {
        name: config.name.clone(),
        epochs,
        batch_size: config.train.batch_size,
        per_epoch_peaks,
        start_mib: start.map(|m| m.current_mib),
        rows,
        growth_mib,
    })
}

/// One parameter in an exported check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedTensor {
    /// The parameter's path in the module (e.g. `encoder.0.weight`).
    pub name: String,
    /// Its shape as aekit stores it (a dense layer's weight is `[inputs, outputs]`).
    pub shape: Vec<usize>,
    /// Offset in `tensors.bin`, in f32 values.
    pub offset: usize,
}

/// The manifest of an exported loss check (`manifest.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckManifest {
    /// The config's name.
    pub name: String,
    /// The model family.
    pub kind: String,
    /// The resolved `[model]` table.
    pub model: serde_json::Value,
    /// The resolved `[train]` table.
    pub train: serde_json::Value,
    /// The sample shape `[channels, height, width]`.
    pub sample_shape: [usize; 3],
    /// The parameters in the model's order (all `f32`, little-endian, row-major).
    pub parameters: Vec<ExportedTensor>,
    /// The batch `[batch, values]`; the input and the target of the loss.
    pub batch: ExportedTensor,
    /// The VAE's reparameterisation noise `[batch, latent]`, when the model has one.
    pub noise: Option<ExportedTensor>,
    /// The loss aekit computes (`Autoencoder::loss_parts`, total).
    pub loss: f64,
    /// Its named parts.
    pub terms: Vec<(String, f64)>,
    /// The data the batch comes from.
    pub data: DataSource,
}

/// Collects a module's float parameters with their paths.
#[derive(Default)]
struct Collect {
    path: Vec<String>,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.tensors.push((self.path.join("."), shape, values));
    }
}

/// Writes `config`'s freshly initialised model (seeded with `seed`), one batch of `batch`
/// samples and the loss aekit computes on them into `dir` (`manifest.json` and
/// `tensors.bin`); returns the manifest.
pub fn export_check(
    config: &RunConfig,
    batch: usize,
    seed: u64,
    dir: &Path,
) -> Result<CheckManifest> {
    let (train_data, _, source) = load_data(config);
    check_batch(&train_data, batch, "training")?;
    let shape = train_data.shape;
    let autodiff = Device::flex().autodiff();
    autodiff.seed(seed);
    let model = config.model.init(shape, &autodiff)?;
    // Burn draws a parameter's initial values when it is first used: reading them all now
    // keeps those draws away from the VAE's noise below.
    let mut collect = Collect::default();
    model.visit(&mut collect);
    let values = train_data.values[..batch * shape.len()].to_vec();
    let x = Tensor::<2>::from_data(
        TensorData::new(values.clone(), [batch, shape.len()]),
        &autodiff,
    );
    // A VAE draws its noise first thing from the seeded generator: drawing it here after the
    // same seed gives the very values its `loss_parts` then draws.
    let noise_seed = seed ^ 0x5EED;
    let noise = match &config.model {
        ModelConfig::Vae(vae) => {
            autodiff.seed(noise_seed);
            let eps = Tensor::<2>::random(
                [batch, vae.latent],
                Distribution::Normal(0.0, 1.0),
                &autodiff,
            );
            Some((
                vec![batch, vae.latent],
                eps.into_data().try_to_vec::<f32>().unwrap_or_default(),
            ))
        }
        _ => None,
    };
    autodiff.seed(noise_seed);
    let loss = train::step_loss(
        &model,
        x.clone(),
        x,
        &config.model.loss_settings(config.train.loss, Some(1)),
    );

    let mut bytes: Vec<u8> = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, values: &[f32]| -> ExportedTensor {
        let offset = bytes.len() / 4;
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        ExportedTensor {
            name,
            shape,
            offset,
        }
    };
    let parameters: Vec<ExportedTensor> = collect
        .tensors
        .iter()
        .map(|(name, shape, values)| push(name.clone(), shape.clone(), values))
        .collect();
    let batch_tensor = push("batch".into(), vec![batch, shape.len()], &values);
    let noise = noise.map(|(shape, values)| push("noise".into(), shape, &values));
    let manifest = CheckManifest {
        name: config.name.clone(),
        kind: config.model.kind_name().into(),
        model: serde_json::to_value(&config.model).unwrap_or_default(),
        train: serde_json::to_value(&config.train).unwrap_or_default(),
        sample_shape: [shape.channels, shape.height, shape.width],
        parameters,
        batch: batch_tensor,
        noise,
        loss: loss.value,
        terms: loss
            .terms
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect(),
        data: source,
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let bin = dir.join("tensors.bin");
    std::fs::write(&bin, &bytes).map_err(|e| Error::io(&bin, e))?;
    aekit::run_dir::write_json(&dir.join("manifest.json"), &manifest)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(model: &str) -> RunConfig {
        let text = format!(
            "name = \"t\"\n[data]\nkind = \"shapes\"\nsamples = 64\n[model]\n{model}\n[train]\nbatch_size = 8\n"
        );
        RunConfig::parse(&text, "test", &[]).unwrap()
    }

    #[test]
    fn speed_run_reports_throughput_and_memory() {
        let config = config("kind = \"dense\"\nhidden = [16]\ncode = 4");
        let options = SpeedOptions {
            steps: 3,
            warmup: 1,
            batch_size: 8,
            infer_steps: 2,
            seed: 1,
            device: DeviceChoice::Cpu,
        };
        let report = run(&config, &options).unwrap();
        assert_eq!(report.device, "cpu");
        assert_eq!(report.kind, "dense");
        assert_eq!(report.data.kind, "config");
        assert!(report.train_samples_per_s > 0.0 && report.infer_samples_per_s > 0.0);
        assert!(report.first_loss.is_finite() && report.last_loss.is_finite());
        if cfg!(target_os = "linux") {
            assert!(report.peak_rss_mib.unwrap() > 1.0);
        }
    }

    #[test]
    fn missing_data_falls_back_to_random_values() {
        let mut config = config("kind = \"dense\"\ncode = 4");
        config.data = RunConfig::parse(
            "name = \"t\"\n[data]\nkind = \"idx\"\npath = \"/nonexistent/mnist\"\n[model]\nkind = \"dense\"\ncode = 4\n",
            "test",
            &[],
        )
        .unwrap()
        .data;
        let (train, valid, source) = load_data(&config);
        assert_eq!(source.kind, "random");
        assert!(source.note.is_some());
        assert_eq!(train.shape.len(), 784);
        assert!(valid.len() >= 256);
    }

    /// The files hold every parameter, the batch and (VAE) the noise. (That the exported loss
    /// is reproduced from them is checked in `aekit-cli/tests/cli.rs`, in a process of its
    /// own: the random generator is global, and parallel tests would draw from it.)
    #[test]
    fn exported_check_holds_every_tensor() {
        for model in [
            "kind = \"dense\"\nhidden = [16]\ncode = 4",
            "kind = \"vae\"\nhidden = [16]\nlatent = 3",
        ] {
            let config = config(model);
            let dir = tempfile::tempdir().unwrap();
            let manifest = export_check(&config, 8, 3, dir.path()).unwrap();
            assert!(manifest.loss.is_finite() && manifest.loss > 0.0);
            let bytes = std::fs::read(dir.path().join("tensors.bin")).unwrap();
            let total: usize = manifest
                .parameters
                .iter()
                .map(|p| p.shape.iter().product::<usize>())
                .sum::<usize>()
                + 8 * 784
                + manifest
                    .noise
                    .as_ref()
                    .map_or(0, |n| n.shape.iter().product());
            assert_eq!(bytes.len(), 4 * total);
            assert_eq!(manifest.noise.is_some(), model.contains("vae"));
            assert!(
                manifest.parameters[0].name.contains("weight"),
                "{:?}",
                manifest.parameters[0]
            );
        }
    }

    #[test]
    fn epoch_memory_has_one_row_per_epoch() {
        let config = config("kind = \"dense\"\ncode = 4");
        let report = epoch_memory(&config, 2, DeviceChoice::Cpu).unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(report.rows.len(), 2);
            assert!(report.rows.iter().all(|r| r.peak_mib > 1.0));
        }
    }
}
