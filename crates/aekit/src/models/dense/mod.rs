//! The dense autoencoder: a stack of fully connected layers down to a code and back.

mod config;

pub use config::DenseConfig;

use crate::kernels::linear::linear;
use crate::loss::ReconstructionLoss;
use crate::models::LossParts;
use crate::models::layers::{self, Activation};
use crate::models::regularizers::{self, ContractiveConfig, SparsityConfig};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

/// A dense autoencoder built from a [`DenseConfig`].
#[derive(Module, Debug)]
pub struct DenseAutoencoder {
    encoder: Vec<Linear>,
    decoder: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    code_activation: Activation,
    #[module(skip)]
    output_activation: Activation,
    #[module(skip)]
    sparsity: Option<SparsityConfig>,
    #[module(skip)]
    contractive: Option<ContractiveConfig>,
}

impl DenseConfig {
    /// Builds the model for samples of `input` values and outputs of `output` values (the
    /// input's size for an autoencoder, a target's for an image-to-image model).
    pub fn init(&self, input: usize, output: usize, device: &Device) -> DenseAutoencoder {
        let encoder_sizes: Vec<usize> = std::iter::once(input)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.code))
            .collect();
        let decoder_sizes: Vec<usize> = std::iter::once(self.code)
            .chain(self.decoder_sizes())
            .chain(std::iter::once(output))
            .collect();
        let mut layer_index = 0;
        let mut stack = |sizes: &[usize]| -> Vec<Linear> {
            sizes
                .windows(2)
                .map(|pair| {
                    let layer = self.init_of(layer_index).linear(pair[0], pair[1], device);
                    layer_index += 1;
                    layer
                })
                .collect()
        };
        let encoder = stack(&encoder_sizes);
        let decoder = stack(&decoder_sizes);
        DenseAutoencoder {
            encoder,
            decoder,
            activation: self.activation,
            code_activation: self.code_activation,
            output_activation: self.output_activation,
            sparsity: self.sparsity.clone(),
            contractive: self.contractive.clone(),
        }
    }
}

impl DenseAutoencoder {
    /// The code of a batch `[batch, input]` -> `[batch, code]`.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encode_layers(x)
            .pop()
            .expect("an encoder has at least one layer")
    }

    /// The outputs of every encoder layer, the code last.
    pub fn encode_layers(&self, x: Tensor<2>) -> Vec<Tensor<2>> {
        let last = self.encoder.len() - 1;
        let mut outputs: Vec<Tensor<2>> = Vec::with_capacity(self.encoder.len());
        for (i, layer) in self.encoder.iter().enumerate() {
            let activation = if i == last {
                self.code_activation
            } else {
                self.activation
            };
            let input = outputs.last().cloned().unwrap_or_else(|| x.clone());
            outputs.push(layers::dense(layer, activation, input));
        }
        outputs
    }

    /// The mean over the batch of `||J_f(x)||_F^2`, the squared Frobenius norm of the
    /// encoder's Jacobian: exact for a one-layer encoder, else a finite-difference estimate
    /// over `directions` random directions.
    pub fn jacobian_norm(
        &self,
        x: Tensor<2>,
        code: Tensor<2>,
        directions: usize,
        step: f64,
    ) -> Tensor<1> {
        if self.encoder.len() == 1
            && let Some(norm) = regularizers::exact_jacobian_norm(
                self.code_activation,
                self.encoder[0].weight.val(),
                code.clone(),
            )
        {
            return norm;
        }
        regularizers::finite_difference_jacobian_norm(|x| self.encode(x), x, code, directions, step)
    }

    /// The training loss of a batch and its parts: reconstruction plus the configured
    /// penalties. `input` may be corrupted; `target` is clean.
    pub fn loss_parts(
        &self,
        input: Tensor<2>,
        target: Tensor<2>,
        loss: ReconstructionLoss,
    ) -> LossParts {
        let activations = self.encode_layers(input.clone());
        let code = activations
            .last()
            .expect("an encoder has at least one layer")
            .clone();
        let logits = self.decode_logits(code.clone());
        let mut parts = LossParts::new(loss.compute(logits, target, self.output_activation))
            .with_levels(activations.clone());
        if let Some(sparsity) = &self.sparsity {
            let layer = sparsity.layer.unwrap_or(activations.len());
            parts.add(
                sparsity.term_name(),
                sparsity.penalty(activations[layer - 1].clone()),
            );
        }
        if let Some(contractive) = &self.contractive {
            let norm = if contractive.uses_exact(self.encoder.len() == 1) {
                self.jacobian_norm(input, code, 1, contractive.step)
            } else {
                regularizers::finite_difference_jacobian_norm(
                    |x| self.encode(x),
                    input,
                    code,
                    contractive.directions,
                    contractive.step,
                )
            };
            parts.add("contractive_penalty", norm.mul_scalar(contractive.lambda));
        }
        parts
    }

    /// The output layer's pre-activation values for a batch of codes: `[batch, input]`.
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        layers::stack_logits(&self.decoder, self.activation, code)
    }

    /// The reconstructions of a batch of codes (the output activation applied).
    pub fn decode(&self, code: Tensor<2>) -> Tensor<2> {
        layers::stack_output(&self.decoder, self.activation, self.output_activation, code)
    }

    /// The activation applied to the output layer's pre-activation values.
    pub fn output_activation(&self) -> Activation {
        self.output_activation
    }

    /// Number of encoder layers (the decoder has as many when it is mirrored).
    pub fn depth(&self) -> usize {
        self.encoder.len()
    }

    /// Whether the decoder mirrors the encoder layer for layer, so that encoder layer `i` and
    /// decoder layer `depth - 1 - i` form a shallow autoencoder (greedy pre-training).
    pub fn is_mirrored(&self) -> bool {
        self.decoder.len() == self.encoder.len()
            && self.encoder.iter().enumerate().all(|(i, layer)| {
                let [inputs, outputs] = layer.weight.dims();
                let mirror = &self.decoder[self.decoder.len() - 1 - i];
                mirror.weight.dims() == [outputs, inputs]
            })
    }

    /// Encoder layer `i` and its mirrored decoder layer with their activations: the shallow
    /// autoencoder that greedy pre-training trains at level `i`.
    pub fn shallow_pair(&self, i: usize) -> ShallowAutoencoder {
        let last = self.encoder.len() - 1;
        ShallowAutoencoder {
            encoder: self.encoder[i].clone(),
            decoder: self.decoder[last - i].clone(),
            encoder_activation: if i == last {
                self.code_activation
            } else {
                self.activation
            },
            decoder_activation: if i == 0 {
                self.output_activation
            } else {
                self.activation
            },
        }
    }

    /// Puts a trained shallow pair back at level `i`.
    pub fn set_shallow_pair(&mut self, i: usize, pair: ShallowAutoencoder) {
        let last = self.encoder.len() - 1;
        self.encoder[i] = pair.encoder;
        self.decoder[last - i] = pair.decoder;
    }
}

/// One encoder layer and its mirrored decoder layer: a shallow autoencoder of the layer's
/// input, as greedy layer-wise pre-training trains them one level at a time.
#[derive(Module, Debug)]
pub struct ShallowAutoencoder {
    encoder: Linear,
    decoder: Linear,
    #[module(skip)]
    encoder_activation: Activation,
    #[module(skip)]
    decoder_activation: Activation,
}

impl ShallowAutoencoder {
    /// Size of the level's code.
    pub fn code_len(&self) -> usize {
        self.encoder.weight.dims()[1]
    }

    /// The level's code: the encoder layer's activated output.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        layers::dense(&self.encoder, self.encoder_activation, x)
    }

    /// The reconstruction's pre-activation values.
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        linear(&self.decoder, code)
    }

    /// The activation of the reconstruction (the model's output activation at level 0, the
    /// hidden activation above it).
    pub fn decoder_activation(&self) -> Activation {
        self.decoder_activation
    }
}
