//! The `[model]` settings of the variational autoencoder (`kind = "vae"`).

use crate::models::layers::{Activation, WeightInit};
use serde::{Deserialize, Serialize};

/// A dense VAE: `input -> hidden... -> (mean, log-variance) of a Gaussian code -> sample ->
/// mirrored hidden... -> input`. The PyTorch-examples VAE is `hidden = [400]`, `latent = 20`.
///
/// The likelihood follows `[train] loss`: `bce` is a Bernoulli decoder, `mse` a Gaussian one
/// with unit variance. Losses are in nats per sample (summed over values), as the ELBO is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Values per sample, when the config wants to state it; checked against the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
    /// Encoder hidden layer sizes; the decoder mirrors them.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Size of the latent code.
    pub latent: usize,
    /// Activation of the hidden layers.
    #[serde(default = "default_activation")]
    pub activation: Activation,
    /// Activation of the output layer (`sigmoid` for a Bernoulli decoder).
    #[serde(default = "default_output")]
    pub output_activation: Activation,
    /// Weight initialisation of every layer.
    #[serde(default)]
    pub init: WeightInit,
    /// Weight of the KL term (1 is the ELBO; other values give a beta-VAE).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// Epochs over which the KL weight rises linearly from 0 to `beta` (0: no warm-up).
    #[serde(default)]
    pub warmup_epochs: usize,
}

fn default_hidden() -> Vec<usize> {
    vec![400]
}

fn default_activation() -> Activation {
    Activation::Relu
}

fn default_output() -> Activation {
    Activation::Sigmoid
}

fn default_beta() -> f64 {
    1.0
}

impl VaeConfig {
    /// Checks sizes and weights; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.latent == 0 {
            return Err("model.latent: the latent size must be at least 1".into());
        }
        if let Some(i) = self.hidden.iter().position(|&s| s == 0) {
            return Err(format!(
                "model.hidden[{i}]: a layer size must be at least 1"
            ));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(format!("model.beta must be >= 0, not {}", self.beta));
        }
        Ok(())
    }
}
