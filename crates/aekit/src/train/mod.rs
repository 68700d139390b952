//! The training loop: mini-batches in a seeded order, one optimizer step per batch, a
//! validation pass and a checkpoint per epoch, early stopping, resume and Ctrl-C.

mod adam;
pub mod checkpoint;
mod config;
mod pretrain;
mod progress;

pub use adam::FusedAdam;
pub use checkpoint::LoopState;
pub use config::{OptimizerKind, TrainConfig};
pub use pretrain::{LevelReport, pretrain_greedy};
pub use progress::Progress;

use crate::config::RunConfig;
use crate::data::targets::HeadTargets;
use crate::data::{self, Dataset};
use crate::device::{self, DeviceChoice};
use crate::error::{Error, Result};
use crate::eval;
use crate::models::heads::{self, HeadSpec, Heads, NetworkSettings};
use crate::models::{Autoencoder, LossSettings};
use crate::plots;
use crate::run_dir::{self, HistoryRow, ModelMeta, RunDir, RunStatus, Summary};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks a running training loop to stop after saving a checkpoint (what Ctrl-C does).
pub fn request_stop() {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// How to run training, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Replace an existing run directory.
    pub force: bool,
    /// Continue the run in the config's run directory from its latest checkpoint.
    pub resume: bool,
    /// Where to compute.
    pub device: DeviceChoice,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Called at the end of every epoch, after its checkpoint is written (for measurements
    /// such as `aekit bench speed --epochs-memory`).
    pub on_epoch_end: Option<fn(&HistoryRow)>,
}

/// What a finished (or early-stopped) run reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The run directory.
    pub run: RunDir,
    /// Its summary (also in `summary.json`).
    pub summary: Summary,
}

/// Trains the model a config describes into its run directory.
pub fn train(config: &RunConfig, options: &TrainOptions) -> Result<TrainOutcome> {
    STOP_REQUESTED.store(false, Ordering::SeqCst);
    let run_path = config.run_dir();
    let splits = data::load_splits(&config.data)?;
    data::check_usable(&splits.train, "training")?;
    data::check_usable(&splits.valid, "validation")?;
    let shape = splits.train.shape;
    let output_shape = splits
        .train
        .paired
        .as_ref()
        .map_or(shape, |p| p.output_shape());
    let pixel_classes: Vec<String> = splits
        .train
        .paired
        .as_ref()
        .map(|p| p.classes.clone())
        .unwrap_or_default();
    if !pixel_classes.is_empty() {
        check_segmentation_model(config)?;
    }

    let plain = device::plain_device(options.device)?;
    let autodiff = plain.clone().autodiff();
    let train_config = &config.train;
    autodiff.seed(train_config.seed);
    let model = config.model.init_mapped(shape, output_shape, &autodiff)?;
    let optimizer = train_config.optimizer();
    let head_configs = config.model.heads();
    let (mut specs, train_targets) = heads::resolve_training(head_configs, &splits.train)?;
    let valid_targets = heads::resolve_split(head_configs, &specs, &splits.valid)?;
    let widths = heads::input_widths(&model, head_configs, shape, &autodiff)?;
    let heads = Heads::init(head_configs, &specs, &widths, &autodiff);

    let (run, model, heads, mut optimizer, mut state) = if options.resume {
        let run = RunDir::open(&run_path)?;
        let cleaned = run.clean_partial_writes()?;
        if cleaned > 0 && !options.quiet {
            eprintln!("removed {cleaned} half-written file(s) a stopped run left behind");
        }
        let checkpoint = checkpoint::latest(&run)?.ok_or_else(|| {
            Error::run(
                &run_path,
                "has no checkpoint to resume from; train it anew with --force",
            )
        })?;
        let saved = run.load_config()?;
        if saved.model != config.model || saved.data != config.data {
            return Err(Error::run(
                &run_path,
                "the config's [model] or [data] differs from the run's config.toml; resume \
                 with the run's own config (`aekit train --resume RUN_DIR`)",
            ));
        }
        let (model, heads, optimizer, state) =
            checkpoint::load(&checkpoint, model, heads, optimizer)?;
        if !options.quiet {
            eprintln!(
                "resuming {} from {}",
                run_path.display(),
                checkpoint.display()
            );
        }
        (run, model, heads, optimizer, state)
    } else {
        let model = match &train_config.init_from {
            Some(source) => initial_weights(model, source)?,
            None => model,
        };
        let run = RunDir::create(&run_path, options.force)?;
        (run, model, heads, optimizer, LoopState::fresh())
    };
    // A frozen encoder's parameters are not tracked at all: with them tracked, every step
    // left the encoder's part of the autodiff graph behind the detached code, and a frozen
    // MNIST classifier grew to 4.6 GB and fell from 78k to 2k samples/s in 10 epochs.
    let mut model = if train_config.freeze_encoder {
        model.no_grad()
    } else {
        model
    };
    if options.resume {
        // A resumed run keeps the standardisation it measured when it started: measured
        // again, a fine-tuned encoder's changed codes would give other figures.
        if head_configs.iter().any(|c| c.standardize) {
            let saved: Vec<HeadSpec> = run_dir::read_json(&run.heads_spec_path())?;
            for (spec, saved) in specs.iter_mut().zip(saved) {
                spec.input_mean = saved.input_mean;
                spec.input_scale = saved.input_scale;
            }
        }
    } else if head_configs.iter().any(|c| c.standardize) {
        // Only then: `valid()` touches every parameter, and Burn initialises a parameter
        // (drawing from the device's generator) when it is first touched, so calling it
        // for every run would change the initial weights of the layers not yet used.
        heads::measure_standardisation(
            &model.valid(),
            head_configs,
            &mut specs,
            &splits.train,
            &plain,
        );
    }
    run_dir::write_atomic(&run.config_path(), config.to_toml().as_bytes())?;
    let meta = ModelMeta {
        sample_shape: shape,
        kind: config.model.kind_name().to_string(),
        parameters: model.num_params(),
        class_names: splits.train.class_names.clone(),
        output_shape: (output_shape != shape).then_some(output_shape),
        pixel_classes,
    };
    run_dir::write_json(&run.model_meta_path(), &meta)?;
    if let Some(scaler) = &splits.scaler {
        run_dir::write_json(&run.scaler_path(), scaler)?;
    }
    if !specs.is_empty() {
        run_dir::write_json(&run.heads_spec_path(), &specs)?;
    }
    if !options.quiet {
        eprintln!(
            "training {} ({} model, {} parameters) on {} samples of {}, validating on {}; run directory {}",
            config.name,
            meta.kind,
            meta.parameters,
            splits.train.len(),
            shape,
            splits.valid.len(),
            run.path().display()
        );
        if options.device == DeviceChoice::Gpu
            && let Some(adapter) = device::gpu_adapter()
        {
            eprintln!("computing on the GPU: {adapter}");
        }
    }

    if train_config.pretrain_epochs > 0
        && state.epochs_done == 0
        && state.step_in_epoch == 0
        && let Autoencoder::Dense(dense) = &mut model
    {
        pretrain::pretrain_greedy(dense, config, &splits.train, &autodiff, &run, options.quiet)?;
    }

    let mut progress = Progress::new(options.quiet, train_config.log_every_secs);
    let started = Instant::now();
    let mut network = HeadsState {
        heads,
        specs,
        train: train_targets,
        valid: valid_targets,
    };
    let outcome = run_epochs(
        config,
        &run,
        (&splits.train, &splits.valid),
        (&autodiff, &plain),
        (&mut model, &mut network),
        &mut optimizer,
        &mut state,
        &mut progress,
        options.on_epoch_end,
    );
    progress.finish();

    let (status, message) = match &outcome {
        Ok(status) => (*status, None),
        Err(Error::Interrupted(m)) => (RunStatus::Interrupted, Some(m.clone())),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    // The final model is the last good one: after a failure, the latest checkpoint's.
    if status == RunStatus::Failed {
        if let Some(path) = checkpoint::latest(&run)? {
            std::fs::copy(path.join("model.bpk"), run.model_path())
                .map_err(|e| Error::io(run.model_path(), e))?;
            if !network.heads.is_empty() {
                std::fs::copy(path.join("heads.bpk"), run.heads_path())
                    .map_err(|e| Error::io(run.heads_path(), e))?;
            }
        }
    } else {
        run_dir::save_weights(&model, &run.model_path())?;
        if !network.heads.is_empty() {
            run_dir::save_weights(&network.heads, &run.heads_path())?;
        }
    }
    let valid_model = model.valid();
    let final_metrics = (state.epochs_done > 0 && status != RunStatus::Failed).then(|| {
        eval::evaluate(
            &valid_model,
            &splits.valid,
            &plain,
            train_config.batch_size.max(256),
        )
    });
    // A model trained without its reconstruction (a classifier) has no reconstructions to show.
    if state.epochs_done > 0
        && status != RunStatus::Failed
        && config.model.reconstruction_weight() > 0.0
    {
        let samples = splits.valid.take(10);
        if samples.paired.is_some() {
            crate::apps::image_to_image::write_picture(
                &run.reconstructions_path(),
                &valid_model,
                &samples,
                &plain,
            )?;
        } else {
            plots::reconstruction_grid(
                &run.reconstructions_path(),
                &valid_model,
                &samples,
                &plain,
            )?;
        }
    }
    let last = state.history.last();
    let summary = Summary {
        status,
        message,
        epochs_completed: state.epochs_done,
        best_epoch: state.best_epoch,
        best_valid_loss: state.best_valid_loss,
        final_train_loss: last.map_or(f64::NAN, |r| r.train_loss),
        final_valid_loss: last.map_or(f64::NAN, |r| r.valid_loss),
        final_valid_metrics: final_metrics,
        mean_samples_per_sec: mean(state.history.iter().map(|r| r.samples_per_sec)),
        total_seconds: state.history.iter().map(|r| r.seconds).sum::<f64>()
            + if state.history.is_empty() {
                started.elapsed().as_secs_f64()
            } else {
                0.0
            },
        model: meta,
        weights: Some(run_dir::WeightFiles {
            final_file: file_name(&run.model_path()),
            final_epoch: if status == RunStatus::Failed {
                checkpoint_epoch(&run)?
            } else {
                state.epochs_done
            },
            best_file: run
                .best_model_path()
                .is_file()
                .then(|| file_name(&run.best_model_path())),
            best_epoch: state.best_epoch,
        }),
    };
    run.write_summary(&summary)?;
    outcome.map(|_| TrainOutcome { run, summary })
}

/// The length of `model`'s code for samples of `shape`.
pub fn code_len_of(model: &Autoencoder, shape: crate::data::SampleShape, device: &Device) -> usize {
    model
        .encode(Tensor::<2>::zeros([1, shape.len()], device))
        .dims()[1]
}

/// `model` with the autoencoder weights of the run at `source` (`train.init_from`): the best
/// epoch's when it kept them.
fn initial_weights(model: Autoencoder, source: &std::path::Path) -> Result<Autoencoder> {
    let run = RunDir::open(source)?;
    let weights = run.weights_path(run_dir::WeightsChoice::Best);
    run_dir::load_weights(model, &weights).map_err(|e| {
        Error::run(
            source,
            format!(
                "train.init_from: its weights do not fit this config's model (the [model] \
                 layers must be the run's own): {e}"
            ),
        )
    })
}

/// A model's heads while it trains: their weights, specs and every split's targets.
struct HeadsState {
    heads: Heads,
    specs: Vec<HeadSpec>,
    train: Vec<HeadTargets>,
    valid: Vec<HeadTargets>,
}

/// A loss this many times its first value means training has blown up, not a bad batch.
pub const DIVERGENCE_FACTOR: f64 = 1e4;

/// Whether `loss` is non-finite or has exploded far above where training started.
pub fn diverged(loss: f64, first: f64) -> bool {
    !loss.is_finite() || loss.abs() > DIVERGENCE_FACTOR * first.abs().max(1e-6)
}

/// The error for a diverged run: what happened, where its last good weights are (or that
/// there are none), and how to go on with another learning rate.
fn divergence(run: &RunDir, tc: &TrainConfig, what: &str) -> Error {
    let next = match checkpoint::latest(run) {
        Ok(Some(path)) => format!(
            "The last good checkpoint is kept in {}; to go on from it with another rate: \
             `aekit train --resume {} --set train.learning_rate=...`",
            path.display(),
            run.path().display()
        ),
        _ => "No checkpoint was written before it diverged, so there is nothing to resume \
              from: train anew with a lower train.learning_rate and --force"
            .to_string(),
    };
    Error::Training(format!(
        "{what}: the learning rate ({}) is probably too high. {next}",
        tc.learning_rate
    ))
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The epoch of the latest checkpoint (0 when there is none).
fn checkpoint_epoch(run: &RunDir) -> Result<usize> {
    Ok(match checkpoint::latest(run)? {
        Some(path) => checkpoint::load_state(&path)?.epochs_done,
        None => 0,
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// The order in which epoch `epoch` visits the samples: a function of the seed and the
/// epoch only, so that a resumed run visits them exactly as the original would have.
pub fn epoch_order(samples: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..samples).collect();
    if shuffle {
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        order.shuffle(&mut rng);
    }
    order
}

/// The loss of one training batch, before the optimizer step.
#[derive(Debug, Clone)]
pub struct StepLoss {
    /// The total loss, still attached to the autodiff graph.
    pub total: Tensor<1>,
    /// Its value.
    pub value: f64,
    /// The values of its named parts (empty when the loss is the reconstruction alone).
    pub terms: Vec<(&'static str, f64)>,
}

/// The forward half of a training step: `model`'s loss on a batch, `input` (possibly
/// corrupted) against `target`, through the family's own `loss_parts`.
pub fn step_loss(
    model: &Autoencoder,
    input: Tensor<2>,
    target: Tensor<2>,
    settings: &LossSettings,
) -> StepLoss {
    let parts = model.loss_parts(input, target, settings);
    let terms = parts
        .terms
        .iter()
        .map(|(name, term)| (*name, term.clone().into_scalar::<f32>() as f64))
        .collect();
    let value = parts.total.clone().into_scalar::<f32>() as f64;
    StepLoss {
        total: parts.total,
        value,
        terms,
    }
}

/// Segmentation learns a class per pixel and nothing else: the families whose loss adds
/// terms to a reconstruction (sparsity and contractive penalties, a VAE's KL, a codec's
/// rate) are refused rather than having those terms silently dropped.
fn check_segmentation_model(config: &RunConfig) -> Result<()> {
    use crate::models::ModelConfig;
    let plain = match &config.model {
        ModelConfig::Dense(dense) => dense.sparsity.is_none() && dense.contractive.is_none(),
        ModelConfig::Conv(_) => true,
        _ => false,
    };
    if !plain {
        return Err(Error::config(
            "data.target",
            format!(
                "segmentation targets are learned by kind = \"dense\" (without penalties) or \
                 \"conv\" models, not \"{}\"",
                config.model.kind_name()
            ),
        ));
    }
    Ok(())
}

/// The backward half of a training step: the gradients of `total` and one optimizer step.
pub fn step_update(
    model: &mut Autoencoder,
    optimizer: &mut burn::optim::ModuleOptimizer,
    total: Tensor<1>,
    learning_rate: f64,
) {
    let grads = GradientsParams::from_grads(total.backward(), &*model);
    *model = optimizer.step(learning_rate, model.clone(), grads);
}

/// One training batch: clean samples (the target) and, for denoising models, their
/// corrupted copy (the input).
struct Batch {
    step: usize,
    clean: Vec<f32>,
    noisy: Option<Vec<f32>>,
    /// A second corrupted copy, for heads with a consistency term.
    second: Option<Vec<f32>>,
    /// An image-to-image model's targets (else the clean samples are the target).
    paired: Option<Vec<f32>>,
    targets: Vec<HeadTargets>,
}

/// The samples that have some head's target, in the seeded order of `epoch` in which
/// `train.labelled_per_batch` adds them to the batches (empty when it is 0).
fn labelled_order(targets: &[HeadTargets], tc: &TrainConfig, epoch: usize) -> Vec<usize> {
    if tc.labelled_per_batch == 0 || targets.is_empty() {
        return Vec::new();
    }
    let samples = targets[0].present.len();
    let mut labelled: Vec<usize> = (0..samples)
        .filter(|&i| targets.iter().any(|t| t.present[i]))
        .collect();
    let mut rng = step_rng(tc.seed ^ 0x1ABE_11ED, epoch, 0);
    labelled.shuffle(&mut rng);
    labelled
}

/// The random source of one step's corruption.
fn step_rng(seed: u64, epoch: usize, step: usize) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(
        seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
    )
}

/// Copies the samples at `indices` into one contiguous batch.
fn gather(dataset: &Dataset, indices: &[usize]) -> Vec<f32> {
    let mut values = Vec::with_capacity(indices.len() * dataset.shape.len());
    for &i in indices {
        values.extend_from_slice(dataset.sample(i));
    }
    values
}

#[allow(clippy::too_many_arguments)]
fn run_epochs(
    config: &RunConfig,
    run: &RunDir,
    (train, valid): (&Dataset, &Dataset),
    (autodiff, plain): (&Device, &Device),
    (model, network): (&mut Autoencoder, &mut HeadsState),
    optimizer: &mut burn::optim::ModuleOptimizer,
    state: &mut LoopState,
    progress: &mut Progress,
    on_epoch_end: Option<fn(&HistoryRow)>,
) -> Result<RunStatus> {
    let tc = &config.train;
    let values_per_sample = train.shape.len();
    let steps = train.len().div_ceil(tc.batch_size);
    let mut status = RunStatus::Completed;
    // What the batch thread does beyond gathering, the same every epoch.
    let corruption = config.model.corruption();
    let binarize = config.data.binarize == data::Binarize::Dynamic;
    let rotate_afresh = config
        .data
        .rotate
        .filter(|_| config.data.rotate_every_use && train.unrotated.is_some());
    let angle_heads: Vec<bool> = config
        .model
        .heads()
        .iter()
        .map(|h| h.target == data::targets::ANGLE)
        .collect();
    let angle_heads = &angle_heads;
    let consistency = network.specs.iter().any(|s| s.consistency_weight > 0.0);

    while state.epochs_done < tc.epochs {
        let epoch = state.epochs_done + 1;
        let epoch_start = Instant::now();
        let order = epoch_order(train.len(), tc.seed, epoch, tc.shuffle);
        let first_step = state.step_in_epoch;
        // Random draws (VAE sampling, Jacobian estimates) depend on (seed, epoch) only, so a
        // run resumed at an epoch boundary draws what the uninterrupted run drew.
        autodiff.seed(tc.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let pixel_classes = train.pixel_class_count();
        let settings = config
            .model
            .loss_settings(tc.loss, Some(epoch))
            .with_pixel_classes(pixel_classes);
        let network_settings = NetworkSettings {
            loss: &settings,
            reconstruction_weight: config.model.reconstruction_weight(),
            specs: &network.specs,
            freeze_encoder: tc.freeze_encoder,
            epoch: Some(epoch),
        };
        let train_targets = &network.train;
        let labelled = labelled_order(train_targets, tc, epoch);
        progress.start_epoch(epoch, tc.epochs, steps, first_step);
        let mut train_seconds = state.partial_seconds;

        // Batches are assembled (and corrupted, for denoising models) on a second thread
        // while the current step computes.
        let steps_before = train_seconds;
        let phase_start = Instant::now();
        let result = std::thread::scope(|scope| -> Result<()> {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Batch>(2);
            let order = &order;
            let labelled = &labelled;
            scope.spawn(move || {
                for step in first_step..steps {
                    let start = step * tc.batch_size;
                    let drawn = &order[start..(start + tc.batch_size).min(order.len())];
                    let extra = tc.labelled_per_batch;
                    let with_labelled: Vec<usize>;
                    let indices = if extra > 0 && !labelled.is_empty() {
                        with_labelled = drawn
                            .iter()
                            .copied()
                            .chain(
                                (0..extra).map(|j| labelled[(step * extra + j) % labelled.len()]),
                            )
                            .collect();
                        &with_labelled[..]
                    } else {
                        drawn
                    };
                    let mut clean = gather(train, indices);
                    let mut targets: Vec<HeadTargets> =
                        train_targets.iter().map(|t| t.subset(indices)).collect();
                    if let Some(range) = rotate_afresh {
                        let mut rng = step_rng(tc.seed ^ 0x5EED_0003, epoch, step);
                        let angles = data::targets::rotate_afresh(
                            train, indices, range, &mut rng, &mut clean,
                        );
                        for (head, targets) in targets.iter_mut().enumerate() {
                            if angle_heads[head] {
                                targets.values.clone_from(&angles);
                            }
                        }
                    }
                    if binarize {
                        let mut rng = step_rng(tc.seed ^ 0xB1_4A_21_5E, epoch, step);
                        data::config::binarize_in_place(&mut clean, &mut rng);
                    }
                    // The noise depends only on (seed, epoch, step): a resumed run sees the same.
                    let noisy = corruption
                        .map(|c| c.corrupted(&clean, &mut step_rng(tc.seed, epoch, step)));
                    let second = corruption.filter(|_| consistency).map(|c| {
                        c.corrupted(&clean, &mut step_rng(tc.seed ^ 0xC0_5157, epoch, step))
                    });
                    let batch = Batch {
                        step,
                        clean,
                        noisy,
                        second,
                        paired: train.gather_target_rows(indices),
                        targets,
                    };
                    if sender.send(batch).is_err() {
                        break;
                    }
                }
            });
            for Batch {
                step,
                clean: values,
                noisy,
                second,
                paired,
                targets,
            } in receiver
            {
                if STOP_REQUESTED.load(Ordering::SeqCst) {
                    state.partial_seconds = train_seconds;
                    let path = checkpoint::save(
                        run,
                        model,
                        &network.heads,
                        optimizer,
                        state,
                        tc.keep_checkpoints,
                    )?;
                    return Err(Error::Interrupted(format!(
                        "stopped at epoch {epoch}, step {step}; checkpoint {} saved; continue with \
                         `aekit train --resume {}`",
                        path.display(),
                        run.path().display()
                    )));
                }
                let step_start = Instant::now();
                let batch = values.len() / values_per_sample;
                let clean = Tensor::<2>::from_data(
                    TensorData::new(values, [batch, values_per_sample]),
                    autodiff,
                );
                let input = match noisy {
                    Some(noisy) => Tensor::<2>::from_data(
                        TensorData::new(noisy, [batch, values_per_sample]),
                        autodiff,
                    ),
                    None => clean.clone(),
                };
                let target = match paired {
                    Some(paired) => {
                        let width = paired.len() / batch;
                        Tensor::<2>::from_data(TensorData::new(paired, [batch, width]), autodiff)
                    }
                    None => clean,
                };
                let second = second.map(|values| {
                    Tensor::<2>::from_data(
                        TensorData::new(values, [batch, values_per_sample]),
                        autodiff,
                    )
                });
                let loss = heads::network_loss(
                    model,
                    &network.heads,
                    (input, second),
                    target,
                    &targets,
                    &network_settings,
                );
                for (name, term) in &loss.terms {
                    *state
                        .partial_terms
                        .entry(format!("train_{name}"))
                        .or_default() += term.clone().into_scalar::<f32>() as f64 * batch as f64;
                }
                let loss_value = loss.total.clone().into_scalar::<f32>() as f64;
                let first = *state.first_loss.get_or_insert(loss_value);
                if diverged(loss_value, first) {
                    return Err(divergence(
                        run,
                        tc,
                        &format!(
                            "the training loss became {loss_value:.4e} at epoch {epoch}, step {} \
                             (it started at {first:.4e})",
                            step + 1
                        ),
                    ));
                }
                // One backward pass; each module takes its own gradients from it (a frozen
                // encoder gets none: the heads learn from a detached code).
                let learning_rate = tc.learning_rate_at(epoch, step, steps);
                let mut grads = loss.total.backward();
                if !tc.freeze_encoder {
                    let model_grads = GradientsParams::from_module(&mut grads, &*model);
                    *model = optimizer.step(learning_rate, model.clone(), model_grads);
                }
                if !network.heads.is_empty() {
                    let head_grads = GradientsParams::from_module(&mut grads, &network.heads);
                    network.heads =
                        optimizer.step(learning_rate, network.heads.clone(), head_grads);
                }
                train_seconds += step_start.elapsed().as_secs_f64();
                state.partial_loss_sum += loss_value * batch as f64;
                state.partial_samples += batch;
                state.step_in_epoch = step + 1;
                progress.step(
                    step + 1,
                    state.partial_loss_sum / state.partial_samples as f64,
                    state.partial_samples as f64 / train_seconds.max(1e-9),
                );
            }
            Ok(())
        });
        result?;

        // Validation measures the full objective (no warm-up), so that the epochs' losses
        // compare, early stopping included, and a loaded model's loss matches the history.
        let full_objective = config
            .model
            .loss_settings(tc.loss, None)
            .with_pixel_classes(pixel_classes);
        let waiting =
            (phase_start.elapsed().as_secs_f64() - (train_seconds - steps_before)).max(0.0);
        let validation_start = Instant::now();
        let (valid_loss, valid_terms, _) = heads::validate_network(
            (&model.valid(), &network.heads.valid()),
            (valid, &network.valid),
            plain,
            tc.batch_size.max(256),
            &NetworkSettings {
                loss: &full_objective,
                epoch: None,
                ..network_settings
            },
        );
        let samples = state.partial_samples.max(1) as f64;
        let mut terms: std::collections::BTreeMap<String, f64> =
            std::mem::take(&mut state.partial_terms)
                .into_iter()
                .map(|(k, v)| (k, v / samples))
                .collect();
        terms.extend(
            valid_terms
                .into_iter()
                .map(|(k, v)| (format!("valid_{k}"), v)),
        );
        let row = HistoryRow {
            epoch,
            train_loss: state.partial_loss_sum / samples,
            valid_loss,
            seconds: epoch_start.elapsed().as_secs_f64() + state.partial_seconds,
            samples_per_sec: state.partial_samples as f64 / train_seconds.max(1e-9),
            terms,
        };
        if diverged(valid_loss, state.first_loss.unwrap_or(valid_loss)) {
            return Err(divergence(
                run,
                tc,
                &format!("the validation loss became {valid_loss:.4e} at epoch {epoch}"),
            ));
        }
        let mut timings = run_dir::EpochTimings {
            epoch,
            samples: state.partial_samples,
            valid_samples: valid.len(),
            steps: train_seconds,
            waiting,
            validation: validation_start.elapsed().as_secs_f64(),
            saving: 0.0,
        };
        let saving_start = Instant::now();
        progress.end_epoch(&row);
        state.history.push(row);
        state.epochs_done = epoch;
        state.step_in_epoch = 0;
        state.partial_loss_sum = 0.0;
        state.partial_samples = 0;
        state.partial_seconds = 0.0;
        if valid_loss < state.best_valid_loss - tc.min_delta {
            state.best_valid_loss = valid_loss;
            state.best_epoch = epoch;
            state.epochs_without_improvement = 0;
            // Kept beside the final weights: checkpoint pruning would otherwise delete them.
            run_dir::save_weights(model, &run.best_model_path())?;
            if !network.heads.is_empty() {
                run_dir::save_weights(&network.heads, &run.best_heads_path())?;
            }
        } else {
            state.epochs_without_improvement += 1;
        }
        checkpoint::save(
            run,
            model,
            &network.heads,
            optimizer,
            state,
            tc.keep_checkpoints,
        )?;
        run.write_history(&state.history)?;
        plots::loss_curves(
            &run.loss_plot_path(),
            &state.history,
            &eval::loss_name(config),
        )?;
        timings.saving = saving_start.elapsed().as_secs_f64();
        run.append_timings(&timings)?;
        if let (Some(hook), Some(row)) = (on_epoch_end, state.history.last()) {
            hook(row);
        }
        if let Some(patience) = tc.patience
            && state.epochs_without_improvement >= patience
        {
            progress.note(&format!(
                "early stopping: no improvement of the validation loss for {patience} epochs \
                 (best {:.5} at epoch {})",
                state.best_valid_loss, state.best_epoch
            ));
            status = RunStatus::StoppedEarly;
            break;
        }
    }
    Ok(status)
}
