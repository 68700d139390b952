//! Heads: small networks on an autoencoder's code that predict targets other than the input
//! (a digit's class, its rotation angle), trained with the reconstruction as one weighted sum
//! of losses. A head's loss is averaged over the samples of the batch that have its target,
//! so labels may exist for only some samples (semi-supervised learning); a batch with none
//! adds zero for that head.
//!
//! The heads are a module of their own ([`Heads`], saved as `heads.bpk` beside the
//! autoencoder's weights) described by [`HeadSpec`]s (`heads.json`: classes, the regression
//! targets' standardisation), so that runs without heads are exactly what they were.

mod config;

pub use config::{
    BalancedWeights, ClassWeights, HeadConfig, HeadKind, RegressionLoss, is_one, one,
    validate_heads,
};

use crate::data::Dataset;
use crate::data::targets::{self, ClassMapping, HeadTargets, Thinning};
use crate::error::{Error, Result};
use crate::models::layers::{self, Activation, WeightInit};
use crate::models::{Autoencoder, LossSettings};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// What a trained head is, beyond its weights (`heads.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    /// The head's name.
    pub name: String,
    /// Class or regression.
    pub kind: HeadKind,
    /// The target it learned.
    pub target: String,
    /// Its outputs: the number of classes, or 1.
    pub outputs: usize,
    /// Class heads: the classes' names (index = class).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
    /// Class heads: the weight of each class in the loss.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_weights: Vec<f32>,
    /// Regression heads: the training targets' mean (the head predicts standardised values).
    pub mean: f32,
    /// Regression heads: the training targets' standard deviation.
    pub std: f32,
    /// The weight of its loss in the total.
    pub weight: f64,
    /// Regression heads: the loss.
    pub regression_loss: RegressionLoss,
    /// How many training samples had the target (after thinning).
    pub training_targets: usize,
    /// The encoder level it reads (`None`: the code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<usize>,
    /// Class heads: the confidence from which unlabelled samples learn their predicted class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_label_threshold: Option<f64>,
    /// The weight of the pseudo-labelled samples' loss.
    #[serde(default)]
    pub pseudo_label_weight: f64,
    /// Class heads: the weight of the consistency term at the end of its ramp.
    #[serde(default)]
    pub consistency_weight: f64,
    /// Epochs over which the consistency weight ramps up.
    #[serde(default)]
    pub consistency_rampup: usize,
    /// With `standardize`: the mean of each input value over the training samples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_mean: Vec<f32>,
    /// With `standardize`: the reciprocal of each input value's standard deviation (1 for a
    /// value that never changed, such as a dead ReLU unit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_scale: Vec<f32>,
}

impl HeadSpec {
    /// What `config` alone says of its head, for `outputs` values (classes, or 1); the
    /// class names and weights, the targets' standardisation and the counts come from the
    /// training data.
    fn from_config(config: &HeadConfig, outputs: usize) -> HeadSpec {
        HeadSpec {
            name: config.name.clone(),
            kind: config.kind,
            target: config.target.clone(),
            outputs,
            class_names: Vec::new(),
            class_weights: Vec::new(),
            mean: 0.0,
            std: 1.0,
            weight: config.weight,
            regression_loss: config.regression_loss,
            training_targets: 0,
            level: config.level,
            pseudo_label_threshold: config.pseudo_label_threshold,
            pseudo_label_weight: config.pseudo_label_weight,
            consistency_weight: config.consistency_weight,
            consistency_rampup: config.consistency_rampup,
            input_mean: Vec::new(),
            input_scale: Vec::new(),
        }
    }

    /// The consistency term's weight in training epoch `epoch` (from 1): the full weight
    /// after `consistency_rampup` epochs, `w * exp(-5 (1 - t)^2)` before (t = (epoch - 1) /
    /// rampup), as in the Pi-model.
    pub fn consistency_weight_at(&self, epoch: usize) -> f64 {
        if self.consistency_rampup == 0 || epoch > self.consistency_rampup {
            return self.consistency_weight;
        }
        let t = (epoch.saturating_sub(1)) as f64 / self.consistency_rampup as f64;
        self.consistency_weight * (-5.0 * (1.0 - t).powi(2)).exp()
    }

    /// The head's input as it learns it: standardised when `input_mean` / `input_scale`
    /// were measured, else `input` itself.
    pub fn head_input(&self, input: Tensor<2>) -> Tensor<2> {
        if self.input_mean.is_empty() {
            return input;
        }
        let device = input.device();
        let width = self.input_mean.len();
        let row = |values: &[f32]| {
            Tensor::<2>::from_data(TensorData::new(values.to_vec(), [1, width]), &device)
        };
        (input - row(&self.input_mean)) * row(&self.input_scale)
    }
}

/// Measures the standardisation of every head with `standardize` (its input's mean and
/// spread over up to 10,000 training samples, evenly spaced, through `model` as it is now)
/// into `specs`.
pub fn measure_standardisation(
    model: &Autoencoder,
    configs: &[HeadConfig],
    specs: &mut [HeadSpec],
    train: &Dataset,
    device: &Device,
) {
    const SAMPLES: usize = 10_000;
    const BATCH: usize = 1_000;
    if !configs.iter().any(|c| c.standardize) {
        return;
    }
    let picked: Vec<usize> = if train.len() <= SAMPLES {
        (0..train.len()).collect()
    } else {
        (0..SAMPLES).map(|i| i * train.len() / SAMPLES).collect()
    };
    let levels_wanted = specs.iter().any(|s| s.level.is_some());
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    let mut squares: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    for chunk in picked.chunks(BATCH) {
        let values: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| train.sample(i).iter().copied())
            .collect();
        let x = Tensor::<2>::from_data(
            TensorData::new(values, [chunk.len(), train.shape.len()]),
            device,
        );
        let levels = if levels_wanted {
            model.encoder_levels(x)
        } else {
            vec![model.encode(x)]
        };
        let inputs = head_inputs(specs, &levels);
        for (i, (config, input)) in configs.iter().zip(inputs).enumerate() {
            if !config.standardize {
                continue;
            }
            let [rows, width] = input.dims();
            let data: Vec<f32> = input.into_data().try_into_vec::<f32>().unwrap_or_default();
            sums[i].resize(width, 0.0);
            squares[i].resize(width, 0.0);
            for row in data.chunks(width).take(rows) {
                for (j, &v) in row.iter().enumerate() {
                    sums[i][j] += v as f64;
                    squares[i][j] += (v as f64) * (v as f64);
                }
            }
        }
    }
    let n = picked.len().max(1) as f64;
    for ((spec, sum), square) in specs.iter_mut().zip(sums).zip(squares) {
        if sum.is_empty() {
            continue;
        }
        spec.input_mean = sum.iter().map(|s| (s / n) as f32).collect();
        spec.input_scale = sum
            .iter()
            .zip(&square)
            .map(|(s, q)| {
                let mean = s / n;
                let std = (q / n - mean * mean).max(0.0).sqrt();
                if std > 1e-6 { (1.0 / std) as f32 } else { 1.0 }
            })
            .collect();
    }
}

/// One head: dense layers from the code to the head's outputs.
#[derive(Module, Debug)]
pub struct Head {
    layers: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
}

impl Head {
    /// The head's output values before softmax (class) or de-standardisation (regression).
    pub fn forward(&self, code: Tensor<2>) -> Tensor<2> {
        layers::stack_logits(&self.layers, self.activation, code)
    }
}

/// Every head of a model, in config order.
#[derive(Module, Debug)]
pub struct Heads {
    /// The heads.
    pub heads: Vec<Head>,
}

impl Heads {
    /// Builds the heads `configs` describe, each for inputs of its `widths` entry (the code's
    /// length, or its encoder level's; see [`input_widths`]).
    pub fn init(
        configs: &[HeadConfig],
        specs: &[HeadSpec],
        widths: &[usize],
        device: &Device,
    ) -> Heads {
        let heads = configs
            .iter()
            .zip(specs)
            .zip(widths)
            .map(|((config, spec), &width)| {
                let sizes: Vec<usize> = std::iter::once(width)
                    .chain(config.hidden.iter().copied())
                    .chain(std::iter::once(spec.outputs))
                    .collect();
                let init = match config.activation {
                    Activation::Relu | Activation::LeakyRelu | Activation::Elu => {
                        WeightInit::KaimingUniform
                    }
                    _ => WeightInit::GlorotUniform,
                };
                Head {
                    layers: sizes
                        .windows(2)
                        .map(|pair| init.linear(pair[0], pair[1], device))
                        .collect(),
                    activation: config.activation,
                }
            })
            .collect();
        Heads { heads }
    }

    /// Whether there are no heads.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

/// The width of each head's input: its encoder level's values (from one forward pass of a
/// zero sample of `shape`) or the code's. A level past the code is an error naming the head.
pub fn input_widths(
    model: &Autoencoder,
    configs: &[HeadConfig],
    shape: crate::data::SampleShape,
    device: &Device,
) -> Result<Vec<usize>> {
    let zero = Tensor::<2>::zeros([1, shape.len()], device);
    let widths: Vec<usize> = model
        .encoder_levels(zero)
        .iter()
        .map(|level| level.dims()[1])
        .collect();
    configs
        .iter()
        .enumerate()
        .map(|(i, config)| match config.level {
            None => Ok(*widths.last().expect("an encoder has a level")),
            Some(level) if (1..=widths.len()).contains(&level) => Ok(widths[level - 1]),
            Some(level) => Err(Error::config(
                format!("model.heads[{i}].level"),
                format!(
                    "{level}, but this encoder has {} level(s) (1 to {}; the last is the code)",
                    widths.len(),
                    widths.len()
                ),
            )),
        })
        .collect()
}

/// Each head's input for a batch: its encoder level's outputs, or the code (`levels`'s
/// last entry).
fn head_inputs(specs: &[HeadSpec], levels: &[Tensor<2>]) -> Vec<Tensor<2>> {
    let code = levels.last().expect("an encoder gives a code");
    specs
        .iter()
        .map(|spec| match spec.level {
            Some(level) => levels[level - 1].clone(),
            None => code.clone(),
        })
        .collect()
}

/// What the encoder gave for a batch, the code last: every level when a head reads one (as
/// the family's loss computed them, or computed here), else the code alone.
fn encoder_outputs(
    model: &Autoencoder,
    specs: &[HeadSpec],
    input: Tensor<2>,
    parts: Option<&crate::models::LossParts>,
) -> Vec<Tensor<2>> {
    let wants_levels = specs.iter().any(|s| s.level.is_some());
    match parts {
        Some(parts) if wants_levels && !parts.levels.is_empty() => parts.levels.clone(),
        Some(parts) if !wants_levels && parts.code.is_some() => {
            vec![parts.code.clone().expect("checked")]
        }
        _ if wants_levels => model.encoder_levels(input),
        _ => vec![model.encode(input)],
    }
}

/// The specs of `configs` from the training split: classes, class weights, the regression
/// targets' standardisation; and the training targets (thinned as each head asks).
pub fn resolve_training(
    configs: &[HeadConfig],
    train: &Dataset,
) -> Result<(Vec<HeadSpec>, Vec<HeadTargets>)> {
    let mut specs = Vec::with_capacity(configs.len());
    let mut all = Vec::with_capacity(configs.len());
    for (i, config) in configs.iter().enumerate() {
        let key = format!("model.heads[{i}] (\"{}\")", config.name);
        let classes = match config.kind {
            HeadKind::Regression => 1,
            HeadKind::Class if !config.groups.is_empty() => config.groups.len(),
            HeadKind::Class => config
                .classes
                .unwrap_or_else(|| targets::classes_of(train).max(2)),
        };
        let mut head_targets = split_targets(config, train, classes)
            .map_err(|message| Error::config(&key, message))?;
        let thinning = match (config.label_fraction, config.label_count) {
            (Some(f), _) => Thinning::Fraction(f, config.label_seed),
            (_, Some(n)) => Thinning::Count(n, config.label_seed),
            _ => Thinning::All,
        };
        targets::thin(&mut head_targets, thinning, config.kind == HeadKind::Class);
        let count = head_targets.count();
        if count == 0 {
            return Err(Error::config(
                &key,
                format!(
                    "none of the {} training samples has target \"{}\"; the head would learn \
                     nothing",
                    train.len(),
                    config.target
                ),
            ));
        }
        let spec = match config.kind {
            HeadKind::Class => class_spec(config, train, &head_targets, classes)
                .map_err(|message| Error::config(&key, message))?,
            HeadKind::Regression => regression_spec(config, &head_targets),
        };
        specs.push(HeadSpec {
            training_targets: count,
            ..spec
        });
        all.push(head_targets);
    }
    Ok((specs, all))
}

/// The targets of every head for the samples of another split (validation, test): all of
/// them, unthinned.
pub fn resolve_split(
    configs: &[HeadConfig],
    specs: &[HeadSpec],
    data: &Dataset,
) -> Result<Vec<HeadTargets>> {
    configs
        .iter()
        .zip(specs)
        .enumerate()
        .map(|(i, (config, spec))| {
            split_targets(config, data, spec.outputs).map_err(|message| {
                Error::config(format!("model.heads[{i}] (\"{}\")", config.name), message)
            })
        })
        .collect()
}

fn split_targets(
    config: &HeadConfig,
    data: &Dataset,
    classes: usize,
) -> Result<HeadTargets, String> {
    match config.kind {
        HeadKind::Class => {
            let mapping = (!config.groups.is_empty()).then_some(ClassMapping {
                groups: &config.groups,
            });
            targets::class_targets(data, &config.target, mapping.as_ref(), classes)
        }
        HeadKind::Regression => targets::real_targets(data, &config.target),
    }
}

fn class_spec(
    config: &HeadConfig,
    train: &Dataset,
    head_targets: &HeadTargets,
    classes: usize,
) -> Result<HeadSpec, String> {
    let class_names = if !config.groups.is_empty() {
        (0..classes)
            .map(|g| {
                config
                    .group_names
                    .get(g)
                    .cloned()
                    .unwrap_or_else(|| format!("group-{g}"))
            })
            .collect()
    } else if config.target == targets::LABEL && train.class_names.len() == classes {
        train.class_names.clone()
    } else {
        (0..classes).map(|c| c.to_string()).collect()
    };
    let class_weights = match &config.class_weights {
        None => vec![1.0; classes],
        Some(ClassWeights::Listed(weights)) => {
            if weights.len() != classes {
                return Err(format!(
                    "class_weights: {} weights for {classes} classes",
                    weights.len()
                ));
            }
            weights.iter().map(|&w| w as f32).collect()
        }
        Some(ClassWeights::Named(BalancedWeights::Balanced)) => {
            let mut counts = vec![0usize; classes];
            for (v, p) in head_targets.values.iter().zip(&head_targets.present) {
                if *p {
                    counts[*v as usize] += 1;
                }
            }
            let total = head_targets.count() as f32;
            counts
                .iter()
                .map(|&c| {
                    if c == 0 {
                        0.0
                    } else {
                        total / (classes as f32 * c as f32)
                    }
                })
                .collect()
        }
    };
    Ok(HeadSpec {
        class_names,
        class_weights,
        ..HeadSpec::from_config(config, classes)
    })
}

fn regression_spec(config: &HeadConfig, head_targets: &HeadTargets) -> HeadSpec {
    let present: Vec<f64> = head_targets
        .values
        .iter()
        .zip(&head_targets.present)
        .filter(|(_, p)| **p)
        .map(|(v, _)| *v as f64)
        .collect();
    let n = present.len().max(1) as f64;
    let mean = present.iter().sum::<f64>() / n;
    let variance = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let std = variance.sqrt();
    HeadSpec {
        mean: mean as f32,
        // A constant target is learned as its mean; 1 keeps the scale finite.
        std: if std > 1e-12 { std as f32 } else { 1.0 },
        ..HeadSpec::from_config(config, 1)
    }
}

/// How an autoencoder and its heads are trained together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkSettings<'a> {
    /// The autoencoder's loss settings (schedules applied).
    pub loss: &'a LossSettings,
    /// The weight of the reconstruction in the total (0: no decoder pass at all).
    pub reconstruction_weight: f64,
    /// The heads' specs.
    pub specs: &'a [HeadSpec],
    /// Whether the encoder is frozen: the heads learn from a detached code.
    pub freeze_encoder: bool,
    /// The training epoch (from 1), for the consistency terms' ramp; `None` outside
    /// training (validation, evaluation), which measures no consistency term.
    pub epoch: Option<usize>,
}

/// One batch's loss through an autoencoder and its heads.
#[derive(Debug, Clone)]
pub struct NetworkLoss {
    /// What is minimised: `reconstruction_weight * reconstruction + sum(weight * head)`.
    pub total: Tensor<1>,
    /// The parts by name: the autoencoder's own (reconstruction, penalties, KL) and each
    /// head's unweighted loss (`<head>_loss`). Empty for a plain autoencoder's
    /// reconstruction alone.
    pub terms: Vec<(String, Tensor<1>)>,
    /// Each head's outputs (before softmax or de-standardisation), for metrics.
    pub outputs: Vec<Tensor<2>>,
}

/// The loss of a batch: `input` (possibly corrupted) against `target` for the
/// reconstruction, and `batch_targets` (one per head, the batch's samples) for the heads.
/// `second_view`, a second corrupted copy of the batch, adds the consistency terms of the
/// heads that have one.
pub fn network_loss(
    model: &Autoencoder,
    heads: &Heads,
    (input, second_view): (Tensor<2>, Option<Tensor<2>>),
    target: Tensor<2>,
    batch_targets: &[HeadTargets],
    settings: &NetworkSettings<'_>,
) -> NetworkLoss {
    let device = input.device();
    let second_levels = match (&second_view, settings.epoch) {
        (Some(view), Some(_)) if settings.specs.iter().any(|s| s.consistency_weight > 0.0) => {
            Some(encoder_outputs(model, settings.specs, view.clone(), None))
        }
        _ => None,
    };
    let second_inputs = second_levels
        .as_ref()
        .map(|levels| head_inputs(settings.specs, levels));
    let (mut total, mut terms, levels) = if settings.reconstruction_weight > 0.0 {
        let parts = model.loss_parts(input.clone(), target, settings.loss);
        let levels = (!heads.is_empty())
            .then(|| encoder_outputs(model, settings.specs, input, Some(&parts)));
        let mut terms: Vec<(String, Tensor<1>)> = parts
            .terms
            .into_iter()
            .map(|(name, term)| (name.to_string(), term))
            .collect();
        if terms.is_empty() && !heads.is_empty() {
            terms.push(("reconstruction".into(), parts.total.clone()));
        }
        let total = if settings.reconstruction_weight == 1.0 {
            parts.total
        } else {
            parts.total.mul_scalar(settings.reconstruction_weight)
        };
        (total, terms, levels)
    } else {
        (
            Tensor::<1>::zeros([1], &device),
            Vec::new(),
            Some(encoder_outputs(model, settings.specs, input, None)),
        )
    };
    let mut outputs = Vec::with_capacity(heads.heads.len());
    if let Some(levels) = levels {
        let inputs = head_inputs(settings.specs, &levels);
        let detach = |x: Tensor<2>| {
            if settings.freeze_encoder {
                x.detach()
            } else {
                x
            }
        };
        for (i, (((head, spec), head_targets), head_input)) in heads
            .heads
            .iter()
            .zip(settings.specs)
            .zip(batch_targets)
            .zip(inputs)
            .enumerate()
        {
            let output = head.forward(spec.head_input(detach(head_input)));
            let loss = head_loss(output.clone(), spec, head_targets, &device);
            if spec.weight > 0.0 {
                total = total + loss.clone().mul_scalar(spec.weight);
            }
            terms.push((format!("{}_loss", spec.name), loss));
            if let (Some(second), Some(epoch)) = (&second_inputs, settings.epoch)
                && spec.consistency_weight > 0.0
            {
                let second = head.forward(spec.head_input(detach(second[i].clone())));
                let consistency = consistency_loss(output.clone(), second);
                total = total
                    + consistency
                        .clone()
                        .mul_scalar(spec.consistency_weight_at(epoch));
                terms.push((format!("{}_consistency", spec.name), consistency));
            }
            outputs.push(output);
        }
    }
    NetworkLoss {
        total,
        terms,
        outputs,
    }
}

/// A head's loss on a batch, averaged over the samples that have the target (weighted by
/// class for class heads); zero when none has it.
fn head_loss(
    output: Tensor<2>,
    spec: &HeadSpec,
    batch: &HeadTargets,
    device: &Device,
) -> Tensor<1> {
    let [rows, outputs] = output.dims();
    match spec.kind {
        HeadKind::Class => {
            // Cross-entropy as a weighted sum of log-probabilities: the weight matrix holds
            // the class weight at each present sample's class, zero elsewhere.
            let mut weights = vec![0.0f32; rows * outputs];
            let mut total = 0.0f32;
            for (r, (v, p)) in batch.values.iter().zip(&batch.present).enumerate() {
                if *p {
                    let class = *v as usize;
                    let w = spec.class_weights.get(class).copied().unwrap_or(1.0);
                    weights[r * outputs + class] = w;
                    total += w;
                }
            }
            let weights = Tensor::<2>::from_data(TensorData::new(weights, [rows, outputs]), device);
            let denominator = if total > 0.0 { total } else { 1.0 };
            let log_probabilities = log_softmax(output, 1);
            let labelled = (log_probabilities.clone() * weights)
                .sum()
                .mul_scalar(-1.0 / denominator as f64);
            match spec.pseudo_label_threshold {
                Some(threshold) if spec.pseudo_label_weight > 0.0 => {
                    labelled
                        + pseudo_label_loss(log_probabilities, batch, threshold, device)
                            .mul_scalar(spec.pseudo_label_weight)
                }
                _ => labelled,
            }
        }
        HeadKind::Regression => {
            let standardised: Vec<f32> = batch
                .values
                .iter()
                .map(|v| (v - spec.mean) / spec.std)
                .collect();
            let mask: Vec<f32> = batch.present.iter().map(|&p| p as u8 as f32).collect();
            let count = batch.count().max(1);
            let target = Tensor::<2>::from_data(TensorData::new(standardised, [rows, 1]), device);
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, 1]), device);
            let difference = (output - target) * mask;
            let per_sample = match spec.regression_loss {
                RegressionLoss::Mse => difference.clone() * difference,
                RegressionLoss::L1 => difference.abs(),
            };
            per_sample.sum().div_scalar(count as f64)
        }
    }
}

/// The Pi-model's consistency term: the mean over samples and classes of the squared
/// difference between the class probabilities of two views of the same samples.
fn consistency_loss(first: Tensor<2>, second: Tensor<2>) -> Tensor<1> {
    let difference = softmax(first, 1) - softmax(second, 1);
    (difference.clone() * difference).mean()
}

/// The mean cross-entropy of the samples without a target whose most probable class has at
/// least `threshold` probability, against that class (chosen without gradient); zero when
/// there are none.
fn pseudo_label_loss(
    log_probabilities: Tensor<2>,
    batch: &HeadTargets,
    threshold: f64,
    device: &Device,
) -> Tensor<1> {
    let [rows, outputs] = log_probabilities.dims();
    let values = log_probabilities
        .clone()
        .detach()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let log_threshold = threshold.ln() as f32;
    let mut weights = vec![0.0f32; rows * outputs];
    let mut count = 0usize;
    for (r, present) in batch.present.iter().enumerate() {
        if *present {
            continue;
        }
        let row = &values[r * outputs..(r + 1) * outputs];
        let (best, &log_p) = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("a class head has outputs");
        if log_p >= log_threshold {
            weights[r * outputs + best] = 1.0;
            count += 1;
        }
    }
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [rows, outputs]), device);
    (log_probabilities * weights)
        .sum()
        .mul_scalar(-1.0 / count.max(1) as f64)
}

/// The mean loss of an autoencoder with heads (on a plain device) over `data`, the means of
/// its parts, each head's figure (`<head>_accuracy` / `<head>_mae`) beside them, and each
/// head's metrics. No corruption; a VAE's draws from the validation seed.
pub fn validate_network(
    (model, heads): (&Autoencoder, &Heads),
    (data, targets): (&Dataset, &[HeadTargets]),
    device: &Device,
    batch: usize,
    settings: &NetworkSettings<'_>,
) -> (f64, Vec<(String, f64)>, Vec<HeadMetrics>) {
    device.seed(crate::eval::VALIDATION_SEED);
    let mut total = 0.0;
    let mut terms: Vec<(String, f64)> = Vec::new();
    let mut tallies: Vec<MetricsTally> = settings.specs.iter().map(MetricsTally::new).collect();
    for (range, x) in crate::eval::batches(data, batch, device) {
        let size = range.len() as f64;
        let indices: Vec<usize> = range.collect();
        let batch_targets: Vec<HeadTargets> = targets.iter().map(|t| t.subset(&indices)).collect();
        let target = match data.target_rows(indices[0], indices[indices.len() - 1] + 1) {
            Some((rows, width)) => crate::eval::rows_tensor(rows, width, device),
            None => x.clone(),
        };
        let loss = network_loss(model, heads, (x, None), target, &batch_targets, settings);
        total += loss.total.into_scalar::<f32>() as f64 * size;
        for (i, (name, term)) in loss.terms.into_iter().enumerate() {
            let value = term.into_scalar::<f32>() as f64 * size;
            match terms.get_mut(i) {
                Some(entry) => entry.1 += value,
                None => terms.push((name, value)),
            }
        }
        for (((output, spec), tally), head_targets) in loss
            .outputs
            .into_iter()
            .zip(settings.specs)
            .zip(&mut tallies)
            .zip(&batch_targets)
        {
            let predicted: Vec<f32> = predictions(output, spec)
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 predictions");
            tally.add(spec, &predicted, head_targets);
        }
    }
    let count = data.len().max(1) as f64;
    let metrics: Vec<HeadMetrics> = tallies
        .into_iter()
        .zip(settings.specs)
        .map(|(tally, spec)| tally.finish(spec))
        .collect();
    let mut terms: Vec<(String, f64)> = terms.into_iter().map(|(k, v)| (k, v / count)).collect();
    terms.extend(metrics.iter().map(HeadMetrics::headline));
    (total / count, terms, metrics)
}

/// A head's predictions for a batch of its outputs: class probabilities `[batch, classes]`,
/// or values in the target's units `[batch, 1]`.
pub fn predictions(output: Tensor<2>, spec: &HeadSpec) -> Tensor<2> {
    match spec.kind {
        HeadKind::Class => softmax(output, 1),
        HeadKind::Regression => output
            .mul_scalar(spec.std as f64)
            .add_scalar(spec.mean as f64),
    }
}

/// How well a head predicts its targets over a data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HeadMetrics {
    /// A class head's accuracy and confusion matrix.
    Class {
        /// The head's name.
        name: String,
        /// Samples that had the target.
        samples: usize,
        /// Fraction predicted right.
        accuracy: f64,
        /// The classes' names.
        class_names: Vec<String>,
        /// `confusion[true][predicted]` counts.
        confusion: Vec<Vec<usize>>,
    },
    /// A regression head's errors, in the target's units.
    Regression {
        /// The head's name.
        name: String,
        /// Samples that had the target.
        samples: usize,
        /// Mean absolute error.
        mae: f64,
        /// Root mean squared error.
        rmse: f64,
    },
}

impl HeadMetrics {
    /// The head's name.
    pub fn name(&self) -> &str {
        match self {
            HeadMetrics::Class { name, .. } | HeadMetrics::Regression { name, .. } => name,
        }
    }

    /// The figure a history row records: accuracy, or MAE.
    pub fn headline(&self) -> (String, f64) {
        match self {
            HeadMetrics::Class { name, accuracy, .. } => (format!("{name}_accuracy"), *accuracy),
            HeadMetrics::Regression { name, mae, .. } => (format!("{name}_mae"), *mae),
        }
    }
}

/// Accumulates a head's predictions against its targets.
#[derive(Debug, Clone)]
pub struct MetricsTally {
    confusion: Vec<Vec<usize>>,
    absolute: f64,
    squared: f64,
    samples: usize,
}

impl MetricsTally {
    /// An empty tally for `spec`.
    pub fn new(spec: &HeadSpec) -> Self {
        let classes = if spec.kind == HeadKind::Class {
            spec.outputs
        } else {
            0
        };
        Self {
            confusion: vec![vec![0; classes]; classes],
            absolute: 0.0,
            squared: 0.0,
            samples: 0,
        }
    }

    /// Adds a batch: the head's predictions (host values, `[batch, outputs]` row-major).
    pub fn add(&mut self, spec: &HeadSpec, predicted: &[f32], batch: &HeadTargets) {
        let outputs = spec.outputs;
        for (r, (v, p)) in batch.values.iter().zip(&batch.present).enumerate() {
            if !*p {
                continue;
            }
            self.samples += 1;
            let row = &predicted[r * outputs..(r + 1) * outputs];
            match spec.kind {
                HeadKind::Class => {
                    let best = argmax(row);
                    self.confusion[*v as usize][best] += 1;
                }
                HeadKind::Regression => {
                    let error = (row[0] - v) as f64;
                    self.absolute += error.abs();
                    self.squared += error * error;
                }
            }
        }
    }

    /// The metrics of what was added.
    pub fn finish(self, spec: &HeadSpec) -> HeadMetrics {
        let n = self.samples.max(1) as f64;
        match spec.kind {
            HeadKind::Class => {
                let right: usize = (0..self.confusion.len())
                    .map(|c| self.confusion[c][c])
                    .sum();
                HeadMetrics::Class {
                    name: spec.name.clone(),
                    samples: self.samples,
                    accuracy: right as f64 / n,
                    class_names: spec.class_names.clone(),
                    confusion: self.confusion,
                }
            }
            HeadKind::Regression => HeadMetrics::Regression {
                name: spec.name.clone(),
                samples: self.samples,
                mae: self.absolute / n,
                rmse: (self.squared / n).sqrt(),
            },
        }
    }
}

/// The index of the largest value (the first of equal ones).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

#[cfg(test)]
mod tests;
