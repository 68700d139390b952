//! The autoencoder families. Each family lives in its own module with its config beside it;
//! [`ModelConfig`] chooses one by `[model] kind = "..."` and [`Autoencoder`] is the built
//! model the training loop, evaluation and applications work with.
//!
//! To add a family: write `models/<family>/{mod.rs,config.rs}` with a `#[derive(Module)]`
//! model offering `encode`, `decode_logits` and `output_activation`, then add one variant
//! to [`ModelConfig`] and one to [`Autoencoder`] and fill in the `match` arms below.

pub mod codec;
pub mod conv;
pub mod corruption;
pub mod dense;
pub mod heads;
pub mod layers;
pub mod regularizers;
pub mod vae;

pub use codec::{CodecConfig, CodecModel};
pub use conv::{ConvAutoencoder, ConvConfig};
pub use dense::{DenseAutoencoder, DenseConfig, ShallowAutoencoder};
pub use layers::{Activation, WeightInit};
pub use vae::{Vae, VaeConfig, VaeConvConfig};

use crate::data::SampleShape;
use crate::error::{Error, Result};
use crate::loss::ReconstructionLoss;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use corruption::CorruptionConfig;
use serde::{Deserialize, Serialize};

/// The `[model]` table of a config: which family, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    /// A dense (fully connected) autoencoder, shallow or deep.
    Dense(DenseConfig),
    /// A dense autoencoder with a sparsity penalty (`[model.sparsity]` required).
    Sparse(DenseConfig),
    /// A dense autoencoder with the contractive penalty (`[model.contractive]` required).
    Contractive(DenseConfig),
    /// A dense autoencoder trained on corrupted inputs (`[model.corruption]` required).
    Denoising(DenseConfig),
    /// A convolutional autoencoder for images.
    Conv(ConvConfig),
    /// A variational autoencoder.
    Vae(VaeConfig),
    /// A learned image codec (rate-distortion trained, entropy-coded latents).
    Codec(CodecConfig),
}

impl ModelConfig {
    /// Checks the settings on their own (without the data).
    pub fn validate(&self) -> Result<(), String> {
        heads::validate_heads(self.heads(), self.reconstruction_weight())?;
        if let Some(i) = self.heads().iter().position(|h| h.consistency_weight > 0.0)
            && self.corruption().is_none()
        {
            return Err(format!(
                "model.heads[{i}].consistency_weight: the consistency term compares the head's                  predictions on two corrupted copies of each sample; add a [model.corruption]                  table (e.g. kind = \"masking\", p = 0.3)"
            ));
        }
        let (config, required) = match self {
            ModelConfig::Vae(config) => return config.validate(),
            ModelConfig::Conv(config) => return config.validate(),
            ModelConfig::Codec(config) => return config.validate(),
            ModelConfig::Dense(config) => (config, None),
            ModelConfig::Sparse(config) => {
                (config, config.sparsity.is_none().then_some("sparsity"))
            }
            ModelConfig::Contractive(config) => (
                config,
                config.contractive.is_none().then_some("contractive"),
            ),
            ModelConfig::Denoising(config) => {
                (config, config.corruption.is_none().then_some("corruption"))
            }
        };
        if let Some(table) = required {
            return Err(format!(
                "model: kind = \"{}\" needs a [model.{table}] table (see the README's family table)",
                self.kind_name()
            ));
        }
        config.validate()
    }

    /// Whether the family is built on the dense model (a stack of dense layers).
    pub fn is_dense_stack(&self) -> bool {
        self.dense().is_some()
    }

    /// The dense settings, for the families built on the dense model.
    fn dense(&self) -> Option<&DenseConfig> {
        match self {
            ModelConfig::Dense(config)
            | ModelConfig::Sparse(config)
            | ModelConfig::Contractive(config)
            | ModelConfig::Denoising(config) => Some(config),
            ModelConfig::Vae(_) | ModelConfig::Conv(_) | ModelConfig::Codec(_) => None,
        }
    }

    /// The activation of the model's output layer.
    pub fn output_activation(&self) -> Activation {
        match self {
            ModelConfig::Vae(config) => config.output_activation,
            ModelConfig::Conv(config) => config.output_activation,
            ModelConfig::Codec(_) => Activation::Linear,
            other => other.dense().expect("a dense family").output_activation,
        }
    }

    /// How training inputs are corrupted, for denoising models.
    pub fn corruption(&self) -> Option<&CorruptionConfig> {
        match self {
            ModelConfig::Conv(config) => config.corruption.as_ref(),
            other => other.dense().and_then(|config| config.corruption.as_ref()),
        }
    }

    /// The loss settings of training epoch `epoch` (from 1), with its schedules (KL
    /// warm-up) applied; `None` gives the model's full objective (every weight at its final
    /// value), which is what validation, evaluation and applications measure, so that
    /// losses taken at different epochs compare.
    pub fn loss_settings(
        &self,
        reconstruction: ReconstructionLoss,
        epoch: Option<usize>,
    ) -> LossSettings {
        let kl_weight = match self {
            ModelConfig::Vae(config) => epoch.map_or(config.beta, |e| config.kl_weight(e)),
            _ => 1.0,
        };
        LossSettings {
            reconstruction,
            kl_weight,
            pixel_classes: None,
        }
    }

    /// The heads on the code (`[[model.heads]]`); none for the codec.
    pub fn heads(&self) -> &[heads::HeadConfig] {
        match self {
            ModelConfig::Vae(config) => &config.heads,
            ModelConfig::Conv(config) => &config.heads,
            ModelConfig::Codec(_) => &[],
            other => &other.dense().expect("a dense family").heads,
        }
    }

    /// The weight of the reconstruction in the total loss (`model.reconstruction_weight`).
    pub fn reconstruction_weight(&self) -> f64 {
        match self {
            ModelConfig::Vae(config) => config.reconstruction_weight,
            ModelConfig::Conv(config) => config.reconstruction_weight,
            ModelConfig::Codec(_) => 1.0,
            other => other.dense().expect("a dense family").reconstruction_weight,
        }
    }

    /// The family's name, as written in configs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ModelConfig::Dense(_) => "dense",
            ModelConfig::Sparse(_) => "sparse",
            ModelConfig::Contractive(_) => "contractive",
            ModelConfig::Denoising(_) => "denoising",
            ModelConfig::Vae(_) => "vae",
            ModelConfig::Conv(_) => "conv",
            ModelConfig::Codec(_) => "codec",
        }
    }

    /// Builds the model for samples of `shape`, checking that the config fits the data.
    pub fn init(&self, shape: SampleShape, device: &Device) -> Result<Autoencoder> {
        self.init_mapped(shape, shape, device)
    }

    /// Builds the model for inputs of `input` and outputs of `output` (another shape for an
    /// image-to-image model: other channels, or one channel per class). Dense models take
    /// any output size; conv models keep the input's height and width.
    pub fn init_mapped(
        &self,
        input: SampleShape,
        output: SampleShape,
        device: &Device,
    ) -> Result<Autoencoder> {
        if output != input {
            match self {
                ModelConfig::Conv(_) => {
                    if (output.height, output.width) != (input.height, input.width) {
                        return Err(Error::config(
                            "data.target",
                            format!(
                                "a conv model's output keeps its input's height and width \
                                 ({input}), but the targets are {output}"
                            ),
                        ));
                    }
                }
                other if other.is_dense_stack() => {}
                other => {
                    return Err(Error::config(
                        "data.target",
                        format!(
                            "image-to-image targets are learned by kind = \"dense\" or \
                             \"conv\" models, not \"{}\"",
                            other.kind_name()
                        ),
                    ));
                }
            }
        }
        if let ModelConfig::Conv(config) = self {
            return Ok(Autoencoder::Conv(config.init_with_output(
                input,
                output.channels,
                device,
            )?));
        }
        if let ModelConfig::Codec(config) = self {
            return Ok(Autoencoder::Codec(config.init(input, device)?));
        }
        let stated_input = match self {
            ModelConfig::Vae(config) => config.input,
            other => other.dense().expect("a dense family").input,
        };
        if let Some(stated) = stated_input
            && stated != input.len()
        {
            return Err(Error::config(
                "model.input",
                format!(
                    "the model's input size is {stated}, but the data's samples have {} values ({input})",
                    input.len()
                ),
            ));
        }
        Ok(match self {
            ModelConfig::Vae(config) => Autoencoder::Vae(config.init(input, device)?),
            other => Autoencoder::Dense(other.dense().expect("a dense family").init(
                input.len(),
                output.len(),
                device,
            )),
        })
    }
}

/// What a loss is computed with: the reconstruction loss and the weights that a training
/// schedule changes. The training loop makes one per epoch
/// ([`ModelConfig::loss_settings`]); models keep no schedule state of their own, so a model
/// loaded from a run computes the same loss as the model that was trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSettings {
    /// The reconstruction loss (`[train] loss`).
    pub reconstruction: ReconstructionLoss,
    /// The weight of a VAE's KL term (beta, or less during warm-up); unused by other families.
    pub kl_weight: f64,
    /// For segmentation models: the number of classes. The output then holds one channel of
    /// logits per class, the target is one-hot per pixel, and the loss is the per-pixel
    /// softmax cross-entropy in place of `reconstruction`.
    pub pixel_classes: Option<usize>,
}

impl LossSettings {
    /// The reconstruction loss alone, every other weight 1.
    pub fn plain(reconstruction: ReconstructionLoss) -> Self {
        Self {
            reconstruction,
            kl_weight: 1.0,
            pixel_classes: None,
        }
    }

    /// These settings for a segmentation model of `classes` classes (or none).
    pub fn with_pixel_classes(self, classes: Option<usize>) -> Self {
        Self {
            pixel_classes: classes,
            ..self
        }
    }
}

/// A built autoencoder of any family.
// One model exists per run and it is moved, not copied, in bulk: the size difference of the
// variants costs nothing worth boxing for (and Burn's Module derive takes the types as they are).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Autoencoder {
    /// See [`DenseAutoencoder`].
    Dense(DenseAutoencoder),
    /// See [`ConvAutoencoder`].
    Conv(ConvAutoencoder),
    /// See [`Vae`].
    Vae(Vae),
    /// See [`CodecModel`].
    Codec(CodecModel),
}

/// A batch's training loss and its named parts (reconstruction, penalties, KL...).
#[derive(Debug, Clone)]
pub struct LossParts {
    /// What is minimised: the sum of the parts.
    pub total: Tensor<1>,
    /// The parts by name, when there is more than the reconstruction (and values recorded
    /// beside them with [`LossParts::note`], which the total leaves out).
    pub terms: Vec<(&'static str, Tensor<1>)>,
    /// The code the loss was computed from (a VAE's posterior mean), for heads on it.
    pub code: Option<Tensor<2>>,
    /// Every encoder level's outputs on the way to the code (the code last), when the family
    /// computed them anyway, for heads on a level.
    pub levels: Vec<Tensor<2>>,
}

impl LossParts {
    /// A loss that is the reconstruction alone.
    pub fn new(reconstruction: Tensor<1>) -> Self {
        Self {
            total: reconstruction,
            terms: Vec::new(),
            code: None,
            levels: Vec::new(),
        }
    }

    /// A loss whose first part is named `name` (not "reconstruction").
    pub fn named(name: &'static str, term: Tensor<1>) -> Self {
        Self {
            total: term.clone(),
            terms: vec![(name, term)],
            code: None,
            levels: Vec::new(),
        }
    }

    /// The loss with the code it came from.
    pub fn with_code(mut self, code: Tensor<2>) -> Self {
        self.code = Some(code);
        self
    }

    /// The loss with the encoder levels it came from, the code last.
    pub fn with_levels(mut self, levels: Vec<Tensor<2>>) -> Self {
        self.code = levels.last().cloned();
        self.levels = levels;
        self
    }

    /// Records a value beside the loss (in `history.csv`) without adding it to the total.
    pub fn note(&mut self, name: &'static str, value: Tensor<1>) {
        if self.terms.is_empty() {
            self.terms.push(("reconstruction", self.total.clone()));
        }
        self.terms.push((name, value));
    }

    /// Adds a named term to the total.
    pub fn add(&mut self, name: &'static str, term: Tensor<1>) {
        if self.terms.is_empty() {
            self.terms.push(("reconstruction", self.total.clone()));
        }
        self.total = self.total.clone() + term.clone();
        self.terms.push((name, term));
    }
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
            Autoencoder::Vae(model) => model.encode(x),
            Autoencoder::Conv(model) => model.encode(x),
            Autoencoder::Codec(model) => model.encode(x),
        }
    }

    /// The outputs of every encoder level for a batch, flattened `[batch, values]`, from the
    /// first hidden layer (or convolution level) to the code, last. A VAE's and a codec's
    /// encoder give their code alone.
    pub fn encoder_levels(&self, x: Tensor<2>) -> Vec<Tensor<2>> {
        match self {
            Autoencoder::Dense(model) => model.encode_layers(x),
            Autoencoder::Conv(model) => model.encode_levels(x),
            Autoencoder::Vae(_) | Autoencoder::Codec(_) => vec![self.encode(x)],
        }
    }

    /// The output's pre-activation values for a batch of codes.
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        match self {
            Autoencoder::Dense(model) => model.decode_logits(code),
            Autoencoder::Vae(model) => model.decode_logits(code),
            Autoencoder::Conv(model) => model.decode_logits(code),
            Autoencoder::Codec(model) => model.decode_logits(code),
        }
    }

    /// The activation of the output layer.
    pub fn output_activation(&self) -> Activation {
        match self {
            Autoencoder::Dense(model) => model.output_activation(),
            Autoencoder::Vae(model) => model.output_activation(),
            Autoencoder::Conv(model) => model.output_activation(),
            Autoencoder::Codec(model) => model.output_activation(),
        }
    }

    /// The training loss of a batch: `input` (possibly corrupted) against `target`.
    pub fn loss_parts(
        &self,
        input: Tensor<2>,
        target: Tensor<2>,
        settings: &LossSettings,
    ) -> LossParts {
        if let Some(classes) = settings.pixel_classes {
            // Segmentation: only the per-pixel classification is learned (the families'
            // penalties are for codes of reconstructions; config validation keeps them out).
            let ForwardOutput { code, logits } = self.forward(input);
            let loss = crate::loss::pixel_cross_entropy(logits, target, classes).mean();
            return LossParts::new(loss).with_code(code);
        }
        match self {
            Autoencoder::Dense(model) => model.loss_parts(input, target, settings.reconstruction),
            Autoencoder::Vae(model) => model.loss_parts(input, target, settings),
            Autoencoder::Conv(model) => model.loss_parts(input, target, settings.reconstruction),
            Autoencoder::Codec(model) => model.loss_parts(input, target),
        }
    }

    /// Each sample's loss, `[batch]`: the reconstruction term of the training loss per
    /// sample (a mean over the sample's values, as the batch loss is), and for a VAE its
    /// negative ELBO per sample (nats, KL weighted as `settings` says). Penalties on the code
    /// (sparsity, contractive) are left out: they measure the code, not how well a sample
    /// is reconstructed. The mean of these scores over a data set is its reconstruction
    /// loss (for a VAE, its loss).
    pub fn sample_losses(&self, x: Tensor<2>, settings: &LossSettings) -> Tensor<1> {
        self.sample_losses_against(x.clone(), x, settings)
    }

    /// [`Autoencoder::sample_losses`] of `input` against `target` (an image-to-image model's
    /// targets; one-hot class maps for segmentation).
    pub fn sample_losses_against(
        &self,
        input: Tensor<2>,
        target: Tensor<2>,
        settings: &LossSettings,
    ) -> Tensor<1> {
        if let Some(classes) = settings.pixel_classes {
            let logits = self.forward(input).logits;
            return crate::loss::pixel_cross_entropy(logits, target, classes);
        }
        let x = input;
        match self {
            Autoencoder::Vae(model) => model.sample_negative_elbo(x, settings),
            Autoencoder::Codec(model) => model.sample_losses(x),
            _ => {
                let [batch, _] = x.dims();
                let logits = self.decode_logits(self.encode(x.clone()));
                let output = self.output_activation();
                let per_value = match settings.reconstruction {
                    ReconstructionLoss::Bce => crate::loss::bce_with_logits(logits, target),
                    ReconstructionLoss::Mse => {
                        let diff = output.forward(logits) - target;
                        diff.clone() * diff
                    }
                    ReconstructionLoss::L1 => (output.forward(logits) - target).abs(),
                };
                per_value.mean_dim(1).reshape([batch])
            }
        }
    }

    /// Mean squared Frobenius norm of the encoder's Jacobian over a batch, when the family
    /// can compute it (exact or estimated).
    pub fn jacobian_norm(&self, x: Tensor<2>) -> Option<Tensor<1>> {
        match self {
            Autoencoder::Dense(model) => {
                let code = model.encode(x.clone());
                Some(model.jacobian_norm(x, code, 16, 1e-2))
            }
            Autoencoder::Vae(_) | Autoencoder::Conv(_) | Autoencoder::Codec(_) => {
                let code = self.encode(x.clone());
                Some(regularizers::finite_difference_jacobian_norm(
                    |x| self.encode(x),
                    x,
                    code,
                    16,
                    1e-2,
                ))
            }
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
        self.decode(self.encode(x))
    }

    /// [`Self::reconstruct`] for inference: on the CPU the batch is split into one block of
    /// rows per thread ([`crate::kernels::row_blocks`]), as a loaded model runs it.
    pub fn reconstruct_in_row_blocks(&self, x: Tensor<2>) -> Tensor<2> {
        crate::kernels::row_blocks::in_row_blocks(x, |x| self.reconstruct(x))
    }

    /// The reconstructions of a batch of codes (the output activation applied; for plain
    /// tensors, a dense output layer applies it in its own pass).
    pub fn decode(&self, code: Tensor<2>) -> Tensor<2> {
        match self {
            Autoencoder::Dense(model) => model.decode(code),
            Autoencoder::Vae(model) => model.decode(code),
            Autoencoder::Conv(_) | Autoencoder::Codec(_) => {
                self.output_activation().forward(self.decode_logits(code))
            }
        }
    }
}
