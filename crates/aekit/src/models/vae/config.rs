//! The `[model]` settings of the variational autoencoder (`kind = "vae"`).

use crate::models::conv::{ConvConfig, Downsample, Upsample};
use crate::models::layers::{Activation, WeightInit};
use serde::{Deserialize, Serialize};

/// A VAE: `input -> hidden... -> (mean, log-variance) of a Gaussian code -> sample ->
/// mirrored hidden... -> input`. The PyTorch-examples VAE is `hidden = [400]`, `latent = 20`.
///
/// With a `[model.conv]` table it is a convolutional VAE: the conv family's encoder levels
/// turn the image into feature maps, which are flattened and go through `hidden` to the
/// Gaussian code; the decoder mirrors it (dense layers back to the maps' size, then the conv
/// family's decoder levels back to the image's exact size).
///
/// The likelihood follows `[train] loss`: `bce` is a Bernoulli decoder, `mse` a Gaussian one
/// with unit variance. Losses are in nats per sample (summed over values), as the ELBO is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Convolutional encoder and decoder levels around the dense layers (a conv VAE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<VaeConvConfig>,
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

/// The `[model.conv]` table of a conv VAE: the conv family's level settings. The levels use
/// the VAE's `activation` and `init`, and the output convolution its `output_activation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VaeConvConfig {
    /// Channels of each encoder level (each halves the height and width).
    pub filters: Vec<usize>,
    /// Channels of each decoder level; the mirror of `filters` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_filters: Option<Vec<usize>>,
    /// Height and width of every convolution's kernel.
    #[serde(default = "three")]
    pub kernel_size: usize,
    /// `"stride"` (stride-2 convolutions, the default here) or `"pool"` (2x2 max pooling).
    #[serde(default = "stride")]
    pub downsample: Downsample,
    /// `"transposed"` (stride-2 transposed convolutions, the default here) or `"nearest"`.
    #[serde(default = "transposed")]
    pub upsample: Upsample,
    /// Batch normalisation after every level's convolution.
    #[serde(default)]
    pub batch_norm: bool,
}

fn three() -> usize {
    3
}

fn stride() -> Downsample {
    Downsample::Stride
}

fn transposed() -> Upsample {
    Upsample::Transposed
}

impl VaeConvConfig {
    /// The conv family's config for these levels, with the VAE's activations and init.
    pub fn conv_config(&self, vae: &VaeConfig) -> ConvConfig {
        ConvConfig {
            filters: self.filters.clone(),
            decoder_filters: self.decoder_filters.clone(),
            kernel_size: self.kernel_size,
            downsample: self.downsample,
            upsample: self.upsample,
            activation: vae.activation,
            output_activation: vae.output_activation,
            batch_norm: self.batch_norm,
            dropout: 0.0,
            init: vae.init,
            code: None,
            code_activation: Activation::Linear,
            corruption: None,
            heads: Vec::new(),
            reconstruction_weight: 1.0,
        }
    }
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
        if let Some(conv) = &self.conv {
            conv.conv_config(self)
                .validate()
                .map_err(|message| message.replacen("model.", "model.conv.", 1))?;
        }
        Ok(())
    }
}
