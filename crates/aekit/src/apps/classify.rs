//! Encoder reuse: a classifier trained on the encoder of a trained run (`aekit classify`).
//! The classifier is a run like any other: the run's own model with one class head on its
//! code and no reconstruction, its weights started from the run's (frozen, or fine-tuned),
//! or from random weights for the comparison a paper's table makes.

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::models::heads::{HeadConfig, HeadKind, RegressionLoss};
use crate::models::layers::Activation;
use crate::run_dir::RunDir;
use std::path::Path;

/// How the encoder is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderUse {
    /// The run's encoder, frozen: only the head learns.
    #[default]
    Frozen,
    /// The run's encoder as the starting point, trained with the head.
    FineTuned,
    /// The same architecture from random weights (the baseline).
    FromScratch,
}

impl EncoderUse {
    /// The suffix of the classifier run's name.
    pub fn suffix(self) -> &'static str {
        match self {
            EncoderUse::Frozen => "frozen",
            EncoderUse::FineTuned => "fine-tuned",
            EncoderUse::FromScratch => "scratch",
        }
    }
}

/// What `aekit classify` trains.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierOptions {
    /// How the encoder is used.
    pub encoder: EncoderUse,
    /// Train on this fraction of the training labels (seeded, spread over the classes).
    pub label_fraction: Option<f64>,
    /// Hidden layer sizes of the head (none: a linear classifier on the code).
    pub hidden: Vec<usize>,
    /// Training epochs (default: the run's own).
    pub epochs: Option<usize>,
    /// The seed of the label draw.
    pub label_seed: u64,
    /// Config overrides applied last (`train.learning_rate=1e-4`), as `aekit train --set`.
    pub overrides: Vec<String>,
}

/// Labelled samples added to every batch when the classifier trains on a fraction of the
/// labels (`train.labelled_per_batch`).
pub const LABELLED_PER_BATCH: usize = 32;

/// The config of the classifier on the encoder of the run at `run_path`, named
/// `<run>-classify-<frozen|fine-tuned|scratch>[-labels-<F>]`, beside the run.
pub fn classifier_config(run_path: &Path, options: &ClassifierOptions) -> Result<RunConfig> {
    let run = RunDir::open(run_path)?;
    let mut config = run.load_config()?;
    if matches!(config.model, ModelConfig::Codec(_)) {
        return Err(Error::run(
            run_path,
            "is a codec: its code is quantised latents, not an encoder to classify with",
        ));
    }
    let head = HeadConfig {
        name: "class".into(),
        kind: HeadKind::Class,
        target: crate::data::targets::LABEL.into(),
        level: None,
        hidden: options.hidden.clone(),
        activation: Activation::Relu,
        weight: 1.0,
        classes: None,
        groups: Vec::new(),
        group_names: Vec::new(),
        label_fraction: options.label_fraction,
        label_count: None,
        label_seed: options.label_seed,
        class_weights: None,
        regression_loss: RegressionLoss::Mse,
        pseudo_label_threshold: None,
        pseudo_label_weight: 1.0,
        // A pre-trained encoder's codes are far from unit scale (a ReLU code of the MNIST
        // autoencoder: mean 4.6, up to 26); the scratch baseline gets the same treatment.
        standardize: true,
        consistency_weight: 0.0,
        consistency_rampup: 0,
    };
    as_classifier(&mut config.model, vec![head]);
    let frozen = options.encoder == EncoderUse::Frozen;
    config.train.freeze_encoder = frozen;
    config.train.init_from = (options.encoder != EncoderUse::FromScratch)
        .then(|| std::path::absolute(run_path).unwrap_or_else(|_| run_path.to_path_buf()));
    config.train.pretrain_epochs = 0;
    config.train.patience = None;
    // With a fraction of the labels, a batch drawn from all samples holds few labelled
    // ones (1% of a batch of 128 is 1.3): the labelled samples are added to every batch.
    config.train.labelled_per_batch = if options.label_fraction.is_some_and(|f| f < 1.0) {
        LABELLED_PER_BATCH
    } else {
        0
    };
    if let Some(epochs) = options.epochs {
        config.train.epochs = epochs;
    }
    let labels = options
        .label_fraction
        .map_or(String::new(), |f| format!("-labels-{f}"));
    config.name = format!(
        "{}-classify-{}{labels}",
        run_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(config.name.clone()),
        options.encoder.suffix()
    );
    config.runs_dir = run_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let source = run.config_path().display().to_string();
    if options.overrides.is_empty() {
        config.validate(&source)?;
        Ok(config)
    } else {
        // Through the TOML text, so that an override is checked as `aekit train --set` is.
        RunConfig::parse(&config.to_toml(), &source, &options.overrides)
    }
}

/// Makes `model` a classifier: `heads` replace its own, its reconstruction is off, and it
/// learns from clean inputs. A denoising run's corruption was its pre-training task; kept,
/// it would also regularise the from-scratch baseline, which is then no longer the plain
/// network that the literature's comparison (Vincent et al. 2010, fine-tuning on clean
/// inputs) measures pre-training against.
fn as_classifier(model: &mut ModelConfig, heads: Vec<HeadConfig>) {
    if let ModelConfig::Denoising(config) = model {
        let mut dense = config.clone();
        dense.corruption = None;
        *model = ModelConfig::Dense(dense);
    }
    let (slot, weight) = match model {
        ModelConfig::Vae(config) => (&mut config.heads, &mut config.reconstruction_weight),
        ModelConfig::Conv(config) => {
            config.corruption = None;
            (&mut config.heads, &mut config.reconstruction_weight)
        }
        ModelConfig::Dense(config)
        | ModelConfig::Sparse(config)
        | ModelConfig::Contractive(config)
        | ModelConfig::Denoising(config) => {
            config.corruption = None;
            (&mut config.heads, &mut config.reconstruction_weight)
        }
        ModelConfig::Codec(_) => return,
    };
    *slot = heads;
    *weight = 0.0;
}
