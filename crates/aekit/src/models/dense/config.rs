//! The `[model]` settings of the dense (fully connected) autoencoder.

use crate::models::corruption::CorruptionConfig;
use crate::models::layers::{Activation, WeightInit};
use crate::models::regularizers::{ContractiveConfig, SparsityConfig};
use serde::{Deserialize, Serialize};

/// A dense autoencoder: `input -> hidden... -> code -> mirrored hidden... -> input`.
///
/// The seed of the course material is `hidden = []`, `code = 32`, relu code, sigmoid output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenseConfig {
    /// Values per sample, when the config wants to state it; checked against the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
    /// Encoder hidden layer sizes, from the input towards the code.
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Decoder hidden layer sizes, from the code towards the output; the mirror of `hidden`
    /// when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Size of the code (the bottleneck).
    pub code: usize,
    /// Activation of the hidden layers.
    #[serde(default = "relu")]
    pub activation: Activation,
    /// Activation of the code layer.
    #[serde(default = "relu")]
    pub code_activation: Activation,
    /// Activation of the output layer (`sigmoid` for pixels in [0, 1] and the BCE loss).
    #[serde(default = "sigmoid")]
    pub output_activation: Activation,
    /// Weight initialisation of every layer unless `layer_init` says otherwise.
    #[serde(default)]
    pub init: WeightInit,
    /// Per-layer initialisation, one entry per weight layer (encoder first, then decoder);
    /// empty means `init` everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_init: Vec<WeightInit>,
    /// A sparsity penalty on one encoder layer (a sparse autoencoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<SparsityConfig>,
    /// The contractive penalty on the encoder's Jacobian (a contractive autoencoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contractive: Option<ContractiveConfig>,
    /// Input corruption during training (a denoising autoencoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption: Option<CorruptionConfig>,
    /// Heads on the code that predict other targets (`[[model.heads]]`): multi-task and
    /// semi-supervised models, classifiers on the encoder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub heads: Vec<crate::models::heads::HeadConfig>,
    /// The weight of the reconstruction in the total loss (0: the decoder is not trained
    /// and the model is a plain predictor of its heads' targets).
    #[serde(
        default = "crate::models::heads::one",
        skip_serializing_if = "crate::models::heads::is_one"
    )]
    pub reconstruction_weight: f64,
}

fn relu() -> Activation {
    Activation::Relu
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

impl DenseConfig {
    /// The decoder's hidden sizes (given, or the encoder's mirrored).
    pub fn decoder_sizes(&self) -> Vec<usize> {
        self.decoder_hidden
            .clone()
            .unwrap_or_else(|| self.hidden.iter().rev().copied().collect())
    }

    /// Number of weight layers (encoder and decoder together).
    pub fn weight_layers(&self) -> usize {
        self.hidden.len() + 1 + self.decoder_sizes().len() + 1
    }

    /// Checks sizes and per-layer settings; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.code == 0 {
            return Err("model.code: the code size must be at least 1".into());
        }
        if let Some(i) = self.hidden.iter().position(|&s| s == 0) {
            return Err(format!(
                "model.hidden[{i}]: a layer size must be at least 1"
            ));
        }
        if let Some(i) = self.decoder_sizes().iter().position(|&s| s == 0) {
            return Err(format!(
                "model.decoder_hidden[{i}]: a layer size must be at least 1"
            ));
        }
        if self.input == Some(0) {
            return Err("model.input: the input size must be at least 1".into());
        }
        if !self.layer_init.is_empty() && self.layer_init.len() != self.weight_layers() {
            return Err(format!(
                "model.layer_init: {} entries given, but the model has {} weight layers \
                 (encoder then decoder)",
                self.layer_init.len(),
                self.weight_layers()
            ));
        }
        let encoder_layers = self.hidden.len() + 1;
        if let Some(sparsity) = &self.sparsity {
            sparsity.validate(encoder_layers, |layer| {
                if layer == encoder_layers {
                    self.code_activation
                } else {
                    self.activation
                }
            })?;
        }
        if let Some(contractive) = &self.contractive {
            contractive.validate(self.hidden.is_empty())?;
        }
        if let Some(corruption) = &self.corruption {
            corruption.validate()?;
        }
        Ok(())
    }

    /// The initialisation of weight layer `index`.
    pub fn init_of(&self, index: usize) -> WeightInit {
        self.layer_init.get(index).copied().unwrap_or(self.init)
    }
}
