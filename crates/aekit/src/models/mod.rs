//! The autoencoder families. Each family lives in its own module with its config beside it;
//! [`ModelConfig`] chooses one by `[model] kind = "..."` and [`Autoencoder`] is the built
//! model the training loop, evaluation and applications work with.
//!
//! To add a family: write `models/<family>/{mod.rs,config.rs}` with a `#[derive(Module)]`
//! model offering `encode`, `decode_logits` and `output_activation`, then add one variant
//! to [`ModelConfig`] and one to [`Autoencoder`] and fill in the `match` arms below.

pub mod conv;
pub mod dense;
pub mod layers;

pub use conv::{ConvAutoencoder, ConvConfig};
pub use dense::{DenseAutoencoder, DenseConfig};
pub use layers::{Activation, WeightInit};

use crate::data::SampleShape;
use crate::error::{Error, Result};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The `[model]` table of a config: which family, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    /// A dense (fully connected) autoencoder, shallow or deep.
    Dense(DenseConfig),
    /// A convolutional autoencoder for images.
    Conv(ConvConfig),
}

impl ModelConfig {
    /// Checks the settings on their own (without the data).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ModelConfig::Dense(config) => config.validate(),
            ModelConfig::Conv(config) => config.validate(),
        }
    }

    /// The activation of the model's output layer.
    pub fn output_activation(&self) -> Activation {
        match self {
            ModelConfig::Dense(config) => config.output_activation,
            ModelConfig::Conv(config) => config.output_activation,
        }
    }

    /// The family's name, as written in configs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ModelConfig::Dense(_) => "dense",
            ModelConfig::Conv(_) => "conv",
        }
    }

    /// Builds the model for samples of `shape`, checking that the config fits the data.
    pub fn init(&self, shape: SampleShape, device: &Device) -> Result<Autoencoder> {
        match self {
            ModelConfig::Dense(config) => {
                if let Some(input) = config.input
                    && input != shape.len()
                {
                    return Err(Error::config(
                        "model.input",
                        format!(
                            "the model's input size is {input}, but the data's samples have \
                             {} values ({shape})",
                            shape.len()
                        ),
                    ));
                }
                Ok(Autoencoder::Dense(config.init(shape.len(), device)))
            }
            ModelConfig::Conv(config) => Ok(Autoencoder::Conv(config.init(shape, device)?)),
        }
    }
}

/// A built autoencoder of any family.
// There is one model per run, so the variants' different sizes cost nothing worth a `Box`
// (which Burn's `Module` does not implement).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Autoencoder {
    /// See [`DenseAutoencoder`].
    Dense(DenseAutoencoder),
    /// See [`ConvAutoencoder`].
    Conv(ConvAutoencoder),
}

/// What one forward pass gives: the code and the output's pre-activation values.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// The code (latent representation), `[batch, code]`.
    pub code: Tensor<2>,
    /// The output layer's values before its activation, `[batch, input]`.
    pub logits: Tensor<2>,
}

impl Autoencoder {
    /// Codes of a batch of flattened samples `[batch, input]`.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Autoencoder::Dense(model) => model.encode(x),
            Autoencoder::Conv(model) => model.encode(x),
        }
    }

    /// The output's pre-activation values for a batch of codes.
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        match self {
            Autoencoder::Dense(model) => model.decode_logits(code),
            Autoencoder::Conv(model) => model.decode_logits(code),
        }
    }

    /// The activation of the output layer.
    pub fn output_activation(&self) -> Activation {
        match self {
            Autoencoder::Dense(model) => model.output_activation(),
            Autoencoder::Conv(model) => model.output_activation(),
        }
    }

    /// Encodes then decodes a batch.
    pub fn forward(&self, x: Tensor<2>) -> ForwardOutput {
        let code = self.encode(x);
        let logits = self.decode_logits(code.clone());
        ForwardOutput { code, logits }
    }

    /// Reconstructions of a batch (the output activation applied).
    pub fn reconstruct(&self, x: Tensor<2>) -> Tensor<2> {
        self.output_activation().forward(self.forward(x).logits)
    }
}
