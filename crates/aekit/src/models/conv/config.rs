//! The `[model]` settings of the convolutional autoencoder.

use crate::data::SampleShape;
use crate::error::{Error, Result};
use crate::models::layers::{Activation, WeightInit};
use serde::{Deserialize, Serialize};

/// How an encoder level halves the height and width of its feature maps.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Downsample {
    /// 2x2 max pooling with stride 2 after the level's convolution (the Keras blog's way).
    #[default]
    Pool,
    /// The level's convolution itself has stride 2 (no pooling).
    Stride,
}

/// How a decoder level doubles the height and width of its feature maps.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Upsample {
    /// A convolution, then nearest-neighbour upsampling by 2 (the Keras blog's way).
    #[default]
    Nearest,
    /// A transposed convolution with stride 2.
    Transposed,
}

/// A convolutional autoencoder: one encoder level per entry of `filters`, each a
/// "same"-padded convolution with `filters[i]` channels that then halves the height and
/// width; the code is the last level's feature maps. The decoder mirrors it, one level per
/// encoder level, and a last convolution maps back to the input's channels.
///
/// Every halving rounds up (`ceil(size / 2)`, as Keras's `padding="same"`), and the decoder
/// crops each doubled map to the size of the mirrored encoder level, so the output has the
/// input's exact height and width for any input size. The Keras blog's model is
/// `filters = [16, 8, 8]` (code 8x4x4 for 28x28 inputs; the decoder mirrors to `[8, 8, 16]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvConfig {
    /// Channels of each encoder level's convolution, from the input towards the code; each
    /// level halves the height and width.
    pub filters: Vec<usize>,
    /// Channels of each decoder level's convolution, from the code towards the output (one per
    /// encoder level); the mirror of `filters` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_filters: Option<Vec<usize>>,
    /// Height and width of every convolution's (square) kernel.
    #[serde(default = "three")]
    pub kernel_size: usize,
    /// How the encoder halves the size: `"pool"` (2x2 max pooling) or `"stride"` (stride-2
    /// convolutions).
    #[serde(default)]
    pub downsample: Downsample,
    /// How the decoder doubles the size: `"nearest"` (convolution then nearest-neighbour
    /// upsampling) or `"transposed"` (stride-2 transposed convolutions).
    #[serde(default)]
    pub upsample: Upsample,
    /// Activation of every convolution but the last (the code is the last encoder level's
    /// activated, downsampled maps).
    #[serde(default = "relu")]
    pub activation: Activation,
    /// Activation of the output convolution (`sigmoid` for pixels in [0, 1] and the BCE loss).
    #[serde(default = "sigmoid")]
    pub output_activation: Activation,
    /// Batch normalisation after every convolution but the output one (before its
    /// activation).
    #[serde(default)]
    pub batch_norm: bool,
    /// Dropout probability after every activation but the output's; 0 for none.
    #[serde(default)]
    pub dropout: f64,
    /// Weight initialisation of every convolution (biases start at zero).
    #[serde(default)]
    pub init: WeightInit,
    /// A dense code of this many values after the conv levels: the last level's maps are
    /// flattened into a linear layer to the code, and a linear layer maps the code back to
    /// the maps for the decoder. Without it the code is the last level's maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<usize>,
    /// Activation of the dense code (with `code`); the layer back to the maps uses
    /// `activation`.
    #[serde(default = "linear")]
    pub code_activation: Activation,
    /// Input corruption during training (a denoising conv autoencoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption: Option<crate::models::corruption::CorruptionConfig>,
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

fn three() -> usize {
    3
}

fn relu() -> Activation {
    Activation::Relu
}

fn linear() -> Activation {
    Activation::Linear
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

impl ConvConfig {
    /// The decoder's convolution channels (given, or the encoder's mirrored).
    pub fn decoder_channels(&self) -> Vec<usize> {
        self.decoder_filters
            .clone()
            .unwrap_or_else(|| self.filters.iter().rev().copied().collect())
    }

    /// Checks the settings on their own (without the data); the message names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(corruption) = &self.corruption {
            corruption.validate()?;
        }
        if self.filters.is_empty() {
            return Err(
                "model.filters: give at least one encoder level, e.g. filters = [16, 8, 8]".into(),
            );
        }
        if let Some(i) = self.filters.iter().position(|&f| f == 0) {
            return Err(format!(
                "model.filters[{i}]: a level needs at least 1 filter"
            ));
        }
        if let Some(decoder) = &self.decoder_filters {
            if decoder.len() != self.filters.len() {
                return Err(format!(
                    "model.decoder_filters: {} entries given, but the encoder has {} levels \
                     (model.filters); the decoder needs one per level",
                    decoder.len(),
                    self.filters.len()
                ));
            }
            if let Some(i) = decoder.iter().position(|&f| f == 0) {
                return Err(format!(
                    "model.decoder_filters[{i}]: a level needs at least 1 filter"
                ));
            }
        }
        if self.code == Some(0) {
            return Err(
                "model.code: the code size must be at least 1 (or leave it out to \
                        keep the last level's maps as the code)"
                    .into(),
            );
        }
        if self.kernel_size == 0 {
            return Err("model.kernel_size: the kernel size must be at least 1".into());
        }
        if !self.dropout.is_finite() || !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "model.dropout: the dropout probability must be in [0, 1), not {}",
                self.dropout
            ));
        }
        Ok(())
    }

    /// The height and width at every encoder level for samples of `shape`: entry 0 is the
    /// input's, entry `i + 1` the size after level `i` (the last is the code's). Errors name
    /// the key when the data are not images or the stack halves a side that is already 1.
    pub fn level_sizes(&self, shape: SampleShape) -> Result<Vec<[usize; 2]>> {
        if !shape.is_image() {
            return Err(Error::config(
                "model.kind",
                format!(
                    "the conv model needs images (channels x height x width), but the data's \
                     samples are table rows ({shape}); use kind = \"dense\" for tables"
                ),
            ));
        }
        let mut sizes = vec![[shape.height, shape.width]];
        for level in 0..self.filters.len() {
            let [h, w] = sizes[level];
            if h < 2 || w < 2 {
                let path: Vec<String> = sizes.iter().map(|[h, w]| format!("{h}x{w}")).collect();
                return Err(Error::config(
                    "model.filters",
                    format!(
                        "{} levels would shrink the {}x{} input below 1x1: the sizes go {} and \
                         level {} cannot halve {h}x{w}; use at most {level} levels for this \
                         input",
                        self.filters.len(),
                        shape.height,
                        shape.width,
                        path.join(" -> "),
                        level + 1
                    ),
                ));
            }
            sizes.push([h.div_ceil(2), w.div_ceil(2)]);
        }
        Ok(sizes)
    }

    /// The shape (channels, height, width) of the last level's maps for samples of `shape`.
    pub fn code_shape(&self, shape: SampleShape) -> Result<[usize; 3]> {
        let sizes = self.level_sizes(shape)?;
        let [h, w] = sizes[sizes.len() - 1];
        Ok([self.filters[self.filters.len() - 1], h, w])
    }
}
