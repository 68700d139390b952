//! The `[model]` settings of the learned image codec.

use crate::data::SampleShape;
use crate::error::{Error, Result};
use crate::models::layers::WeightInit;
use serde::{Deserialize, Serialize};

/// What follows each hidden convolution of the transforms.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Normalisation {
    /// Generalised divisive normalisation (Ballé et al.): `x_i / sqrt(beta_i + sum_j
    /// gamma_ij x_j^2)` in the analysis transform, its inverse (a product) in the synthesis.
    #[default]
    Gdn,
    /// A ReLU, as a plain convolutional autoencoder has.
    Relu,
}

/// A learned image codec (Ballé et al. 2017, the factorised-prior model): an analysis
/// transform of stride-2 convolutions down to `latent_channels` maps, latents quantised by
/// rounding (uniform noise in their place during training), a learned factorised prior per
/// latent channel (the entropy bottleneck) that gives each quantised latent its probability,
/// and a synthesis transform of stride-2 transposed convolutions back to the image. Trained
/// on the rate-distortion loss `lambda * 255^2 * MSE + bits per pixel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodecConfig {
    /// Channels of the hidden convolutions of the analysis transform (the synthesis mirrors
    /// them); each convolution, and the last one to the latents, halves the height and width.
    #[serde(default = "default_filters")]
    pub filters: Vec<usize>,
    /// Channels of the latent maps (what is quantised and entropy-coded).
    #[serde(default = "default_latent_channels")]
    pub latent_channels: usize,
    /// Height and width of every convolution's kernel.
    #[serde(default = "default_kernel")]
    pub kernel_size: usize,
    /// What follows each hidden convolution: `"gdn"` or `"relu"`.
    #[serde(default)]
    pub normalisation: Normalisation,
    /// The rate-distortion trade-off: the loss is `lambda * 255^2 * MSE + bits per pixel`
    /// (CompressAI's scale); larger values keep more detail in larger files.
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Hidden sizes of each channel's cumulative-distribution network in the prior.
    #[serde(default = "default_prior_layers")]
    pub prior_layers: Vec<usize>,
    /// How the convolutions' weights are initialised.
    #[serde(default)]
    pub init: WeightInit,
}

fn default_filters() -> Vec<usize> {
    vec![64]
}
fn default_latent_channels() -> usize {
    32
}
fn default_kernel() -> usize {
    5
}
fn default_lambda() -> f64 {
    0.01
}
fn default_prior_layers() -> Vec<usize> {
    vec![3, 3, 3]
}

impl CodecConfig {
    /// Checks the settings on their own.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.filters.contains(&0) || self.latent_channels == 0 {
            return Err(
                "model: every entry of filters and latent_channels must be at least 1".into(),
            );
        }
        if self.kernel_size == 0 {
            return Err("model.kernel_size must be at least 1".into());
        }
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(format!(
                "model.lambda must be a positive number, not {}",
                self.lambda
            ));
        }
        if self.prior_layers.contains(&0) {
            return Err("model.prior_layers: every entry must be at least 1".into());
        }
        Ok(())
    }

    /// How many times the transforms halve (and double) the size.
    pub fn levels(&self) -> usize {
        self.filters.len() + 1
    }

    /// The multiple of which an image's height and width must be (others are padded).
    pub fn size_multiple(&self) -> usize {
        1 << self.levels()
    }

    /// Checks that the data are images the transforms fit.
    pub fn check_shape(&self, shape: SampleShape) -> Result<()> {
        if !shape.is_image() {
            return Err(Error::config(
                "model.kind",
                format!("a codec compresses images; the data are {shape}"),
            ));
        }
        let multiple = self.size_multiple();
        if !shape.height.is_multiple_of(multiple) || !shape.width.is_multiple_of(multiple) {
            return Err(Error::config(
                "model.filters",
                format!(
                    "{} halvings need training images whose height and width are multiples of \
                     {multiple}; the data are {shape} (resize them, or use fewer filters)",
                    self.levels()
                ),
            ));
        }
        Ok(())
    }
}
