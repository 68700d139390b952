//! The `[train]` settings: optimizer, schedule, loss, early stopping.

use super::FusedAdam;
use crate::loss::ReconstructionLoss;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

/// Which optimizer updates the weights.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba).
    #[default]
    Adam,
    /// Stochastic gradient descent, optionally with momentum.
    Sgd,
}

/// How the learning rate changes over a run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// `learning_rate` at every step.
    #[default]
    Constant,
    /// Cosine annealing over the whole run, step by step, from `learning_rate` to
    /// `final_learning_rate` (Loshchilov & Hutter's SGDR without restarts; PyTorch's
    /// `CosineAnnealingLR`).
    Cosine,
}

/// The `[train]` table of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate (the starting rate under a schedule).
    pub learning_rate: f64,
    /// How the learning rate changes over the run: `constant` or `cosine`.
    pub lr_schedule: LrSchedule,
    /// `cosine`: the rate reached at the last step.
    pub final_learning_rate: f64,
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
    /// Start from the weights of a trained run (its folder): the autoencoder's layers are
    /// loaded, the heads start fresh (encoder reuse; what `aekit classify` writes). The run
    /// must have the same model architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<std::path::PathBuf>,
    /// Train the heads only, on a frozen encoder (needs `model.reconstruction_weight = 0`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub freeze_encoder: bool,
    /// Semi-supervised runs: add this many samples that have a head's target to every batch
    /// (cycling through them in a seeded order), so that the heads learn at every step even
    /// when 100 of 60,000 samples are labelled (a batch of 128 would hold 0.2 of them). An
    /// epoch is still one pass over all training samples. 0: batches as drawn.
    #[serde(skip_serializing_if = "is_zero")]
    pub labelled_per_batch: usize,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            lr_schedule: LrSchedule::Constant,
            final_learning_rate: 0.0,
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
            init_from: None,
            freeze_encoder: false,
            labelled_per_batch: 0,
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
        if !(self.final_learning_rate.is_finite()
            && (0.0..=self.learning_rate).contains(&self.final_learning_rate))
        {
            return Err(format!(
                "train.final_learning_rate must be between 0 and train.learning_rate ({}), not {}",
                self.learning_rate, self.final_learning_rate
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

    /// The learning rate of step `step` (0-based) of epoch `epoch` (1-based), with
    /// `steps_per_epoch` steps an epoch: a function of the position alone, so that a resumed
    /// run continues the schedule exactly.
    pub fn learning_rate_at(&self, epoch: usize, step: usize, steps_per_epoch: usize) -> f64 {
        match self.lr_schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine => {
                let total = (self.epochs * steps_per_epoch).max(1);
                let done = (epoch.saturating_sub(1) * steps_per_epoch + step).min(total);
                let progress = done as f64 / total as f64;
                self.final_learning_rate
                    + 0.5
                        * (self.learning_rate - self.final_learning_rate)
                        * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_runs_from_the_rate_to_the_final_rate() {
        let tc = TrainConfig {
            learning_rate: 1e-2,
            final_learning_rate: 1e-4,
            lr_schedule: LrSchedule::Cosine,
            epochs: 4,
            ..TrainConfig::default()
        };
        assert_eq!(tc.learning_rate_at(1, 0, 10), 1e-2);
        // Half-way (epoch 3, step 0 of 4 x 10 steps): the mean of the two rates.
        assert!((tc.learning_rate_at(3, 0, 10) - 0.5 * (1e-2 + 1e-4)).abs() < 1e-12);
        let last = tc.learning_rate_at(4, 9, 10);
        assert!(last > 1e-4 && last < 1.2e-4, "{last}");
        let rates: Vec<f64> = (0..10).map(|s| tc.learning_rate_at(2, s, 10)).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        let constant = TrainConfig::default();
        assert_eq!(constant.learning_rate_at(7, 3, 10), constant.learning_rate);
    }

    #[test]
    fn a_final_rate_above_the_rate_is_refused() {
        let tc = TrainConfig {
            final_learning_rate: 1.0,
            ..TrainConfig::default()
        };
        assert!(
            tc.validate()
                .unwrap_err()
                .contains("train.final_learning_rate")
        );
    }
}
