//! The dense autoencoder: a stack of fully connected layers down to a code and back.

mod config;

pub use config::DenseConfig;

use crate::models::layers::Activation;
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
}

impl DenseConfig {
    /// Builds the model for samples of `input` values.
    pub fn init(&self, input: usize, device: &Device) -> DenseAutoencoder {
        let encoder_sizes: Vec<usize> = std::iter::once(input)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.code))
            .collect();
        let decoder_sizes: Vec<usize> = std::iter::once(self.code)
            .chain(self.decoder_sizes())
            .chain(std::iter::once(input))
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
        }
    }
}

impl DenseAutoencoder {
    /// The code of a batch `[batch, input]` -> `[batch, code]`.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.encoder.len() - 1;
        self.encoder.iter().enumerate().fold(x, |x, (i, layer)| {
            let activation = if i == last {
                self.code_activation
            } else {
                self.activation
            };
            activation.forward(layer.forward(x))
        })
    }

    /// The output layer's pre-activation values for a batch of codes: `[batch, input]`.
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        let last = self.decoder.len() - 1;
        self.decoder.iter().enumerate().fold(code, |x, (i, layer)| {
            let x = layer.forward(x);
            if i == last {
                x
            } else {
                self.activation.forward(x)
            }
        })
    }

    /// The activation applied to the output layer's pre-activation values.
    pub fn output_activation(&self) -> Activation {
        self.output_activation
    }
}
