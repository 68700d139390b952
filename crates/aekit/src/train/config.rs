//! The `[train]` settings: optimizer, schedule, loss, early stopping.

use super::FusedAdam;
use crate::loss::ReconstructionLoss;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

/// Which optimizer updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba).
    #[default]
    Adam,
    /// Stochastic gradient descent, optionally with momentum.
    Sgd,
}

/// The `[train]` table of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f64,
    /// Adam's first-moment decay.
    pub beta1: f64,
    /// Adam's second-moment decay.
    pub beta2: f64,
    /// Adam's epsilon (1e-7 as in Keras; PyTorch uses 1e-8).
    pub epsilon: f64,
    /// SGD momentum (0 for plain SGD).
    pub momentum: f64,
    /// L2 weight decay added to the gradients (0 for none).
    pub weight_decay: f64,
    /// Passes over the training samples.
    pub epochs: usize,
    /// Samples per optimisation step.
    pub batch_size: usize,
    /// Shuffle the training samples at every epoch.
    pub shuffle: bool,
    /// Seed of the weight initialisation and the shuffling.
    pub seed: u64,
    /// The reconstruction loss to minimise.
    pub loss: ReconstructionLoss,
    /// Stop when the validation loss has not improved by `min_delta` for this many epochs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// The improvement of the validation loss that resets the patience counter.
    pub min_delta: f64,
    /// How many epoch checkpoints to keep (the newest ones).
    pub keep_checkpoints: usize,
    /// Seconds between progress lines when the output is not a terminal.
    pub log_every_secs: f64,
    /// Epochs of greedy layer-wise pre-training per level before the whole stack is trained
    /// (dense models with a mirrored decoder); 0 for none.
    pub pretrain_epochs: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            momentum: 0.0,
            weight_decay: 0.0,
            epochs: 10,
            batch_size: 256,
            shuffle: true,
            seed: 0,
            loss: ReconstructionLoss::Bce,
            patience: None,
            min_delta: 0.0,
            keep_checkpoints: 2,
            log_every_secs: 10.0,
            pretrain_epochs: 0,
        }
    }
}

impl TrainConfig {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(format!(
                "train.learning_rate must be a positive number, not {}",
                self.learning_rate
            ));
        }
        if self.epochs == 0 {
            return Err("train.epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("train.batch_size must be at least 1".into());
        }
        for (key, value) in [("train.beta1", self.beta1), ("train.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&value) {
                return Err(format!("{key} must be in [0, 1), not {value}"));
            }
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return Err(format!(
                "train.epsilon must be positive, not {}",
                self.epsilon
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(format!(
                "train.momentum must be in [0, 1), not {}",
                self.momentum
            ));
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return Err(format!(
                "train.weight_decay must be >= 0, not {}",
                self.weight_decay
            ));
        }
        if self.patience == Some(0) {
            return Err(
                "train.patience must be at least 1 (leave it out for no early stopping)".into(),
            );
        }
        if self.keep_checkpoints == 0 {
            return Err("train.keep_checkpoints must be at least 1 (resume needs one)".into());
        }
        Ok(())
    }

    /// Builds the optimizer.
    pub fn optimizer(&self) -> ModuleOptimizer {
        let decay = (self.weight_decay > 0.0).then_some(self.weight_decay as f32);
        match self.optimizer {
            OptimizerKind::Adam => FusedAdam::new(
                self.beta1 as f32,
                self.beta2 as f32,
                self.epsilon as f32,
                decay,
            )
            .module_optimizer(),
            OptimizerKind::Sgd => SgdConfig::new()
                .with_weight_decay(decay.map(WeightDecayConfig::new))
                .with_momentum((self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(0.0)
                }))
                .init(),
        }
    }
}
