//! The convolutional autoencoder: convolution levels that halve the image down to a code of
//! feature maps, and mirrored levels that double it back to the input's exact size.

mod config;
#[cfg(test)]
mod tests;

pub use config::{ConvConfig, Downsample, Upsample};

use crate::data::SampleShape;
use crate::error::Result;
use crate::kernels;
use crate::loss::ReconstructionLoss;
use crate::models::LossParts;
use crate::models::layers::{Activation, dense};
use burn::module::Module;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};

/// The weight layer of a level.
#[derive(Module, Debug)]
pub enum LevelLayer {
    /// A "same"-padded convolution (stride 1, or 2 when it downsamples).
    Conv(Conv2d),
    /// A transposed convolution that doubles the height and width.
    Transposed(ConvTranspose2d),
}

/// One level: a weight layer, then optional batch norm, the activation and optional dropout.
#[derive(Module, Debug)]
pub struct Level {
    layer: LevelLayer,
    norm: Option<BatchNorm>,
    dropout: Option<Dropout>,
}

impl Level {
    fn new(layer: LevelLayer, channels: usize, config: &ConvConfig, device: &Device) -> Self {
        Level {
            layer,
            norm: config
                .batch_norm
                .then(|| BatchNormConfig::new(channels).init(device)),
            dropout: (config.dropout > 0.0).then(|| DropoutConfig::new(config.dropout).init()),
        }
    }

    /// The level's output: the weight layer's, cropped to `size` when given, then batch norm,
    /// `activation` and dropout. Without batch norm a ReLU is applied by the weight layer as
    /// it writes its output (and crops commute with it).
    fn forward(&self, x: Tensor<4>, size: Option<[usize; 2]>, activation: Activation) -> Tensor<4> {
        let fused_relu = self.norm.is_none() && activation == Activation::Relu;
        let x = match (&self.layer, fused_relu) {
            (LevelLayer::Conv(conv), false) => kernels::conv::conv2d(conv, x),
            (LevelLayer::Conv(conv), true) => kernels::conv::conv2d_relu(conv, x),
            (LevelLayer::Transposed(conv), false) => kernels::gemm_conv::conv_transpose2d(conv, x),
            (LevelLayer::Transposed(conv), true) => {
                kernels::gemm_conv::conv_transpose2d_relu(conv, x)
            }
        };
        let x = match size {
            Some(size) => crop(x, size),
            None => x,
        };
        let x = match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        };
        let x = if fused_relu { x } else { activation.forward(x) };
        match &self.dropout {
            Some(dropout) => dropout.forward(x),
            None => x,
        }
    }
}

/// A dense code between the conv levels: flattened maps -> code -> maps.
#[derive(Module, Debug)]
pub struct Bottleneck {
    down: Linear,
    up: Linear,
    #[module(skip)]
    code_activation: Activation,
}

/// A convolutional autoencoder built from a [`ConvConfig`] for one sample shape.
#[derive(Module, Debug)]
pub struct ConvAutoencoder {
    encoder: Vec<Level>,
    bottleneck: Option<Bottleneck>,
    decoder: Vec<Level>,
    output: Conv2d,
    /// The input's channels.
    #[module(skip)]
    channels: usize,
    /// The output's channels (the input's, or an image-to-image target's).
    #[module(skip)]
    output_channels: usize,
    /// Height and width at every encoder level: the input's first, the code's last.
    #[module(skip)]
    sizes: Vec<[usize; 2]>,
    /// Channels of the code's feature maps.
    #[module(skip)]
    code_channels: usize,
    #[module(skip)]
    downsample: Downsample,
    #[module(skip)]
    upsample: Upsample,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    output_activation: Activation,
}

impl ConvConfig {
    /// Builds the model for samples of `shape`; errors (naming the key) when the data are not
    /// images or the levels would shrink them below 1x1.
    pub fn init(&self, shape: SampleShape, device: &Device) -> Result<ConvAutoencoder> {
        self.init_with_output(shape, shape.channels, device)
    }

    /// Builds the model for samples of `shape` and outputs of `output_channels` channels of
    /// the same size (an image-to-image target's).
    pub fn init_with_output(
        &self,
        shape: SampleShape,
        output_channels: usize,
        device: &Device,
    ) -> Result<ConvAutoencoder> {
        let sizes = self.level_sizes(shape)?;
        let k = self.kernel_size;
        let init = self.init;
        let stride = match self.downsample {
            Downsample::Pool => 1,
            Downsample::Stride => 2,
        };
        let mut encoder = Vec::with_capacity(self.filters.len());
        let mut channels = shape.channels;
        for &filters in &self.filters {
            let conv = init.conv2d(channels, filters, k, stride, device);
            encoder.push(Level::new(LevelLayer::Conv(conv), filters, self, device));
            channels = filters;
        }
        let code_channels = channels;
        let [code_h, code_w] = sizes[sizes.len() - 1];
        let maps = code_channels * code_h * code_w;
        let bottleneck = self.code.map(|code| Bottleneck {
            down: init.linear(maps, code, device),
            up: init.linear(code, maps, device),
            code_activation: self.code_activation,
        });
        let mut decoder = Vec::with_capacity(self.filters.len());
        for filters in self.decoder_channels() {
            let layer = match self.upsample {
                Upsample::Nearest => LevelLayer::Conv(init.conv2d(channels, filters, k, 1, device)),
                Upsample::Transposed => {
                    LevelLayer::Transposed(init.conv_transpose2d_x2(channels, filters, k, device))
                }
            };
            decoder.push(Level::new(layer, filters, self, device));
            channels = filters;
        }
        let output = init.conv2d(channels, output_channels, k, 1, device);
        Ok(ConvAutoencoder {
            encoder,
            bottleneck,
            decoder,
            output,
            channels: shape.channels,
            output_channels,
            sizes,
            code_channels,
            downsample: self.downsample,
            upsample: self.upsample,
            activation: self.activation,
            output_activation: self.output_activation,
        })
    }
}

impl ConvAutoencoder {
    /// The code of a batch of flattened samples `[batch, c*h*w]` -> `[batch, code]`, the
    /// code being the last encoder level's maps `code_channels x code_h x code_w` flattened.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        let [batch, _] = x.dims();
        let [h, w] = self.sizes[0];
        let mut x = x.reshape([batch, self.channels, h, w]);
        for level in &self.encoder {
            x = level.forward(x, None, self.activation);
            if self.downsample == Downsample::Pool {
                x = kernels::pool::max_pool2x2_same(x);
            }
        }
        let maps = x.reshape([batch, self.maps_len()]);
        match &self.bottleneck {
            Some(b) => dense(&b.down, b.code_activation, maps),
            None => maps,
        }
    }

    /// Every encoder level's maps flattened, `[batch, c*h*w]` each, then the dense code when
    /// there is one after them: the code is last.
    pub fn encode_levels(&self, x: Tensor<2>) -> Vec<Tensor<2>> {
        let [batch, _] = x.dims();
        let [h, w] = self.sizes[0];
        let mut x = x.reshape([batch, self.channels, h, w]);
        let mut levels = Vec::with_capacity(self.encoder.len() + 1);
        for level in &self.encoder {
            x = level.forward(x, None, self.activation);
            if self.downsample == Downsample::Pool {
                x = kernels::pool::max_pool2x2_same(x);
            }
            let [_, c, h, w] = x.dims();
            levels.push(x.clone().reshape([batch, c * h * w]));
        }
        if let Some(b) = &self.bottleneck {
            let maps = levels.last().expect("a conv model has a level").clone();
            levels.push(dense(&b.down, b.code_activation, maps));
        }
        levels
    }

    /// The output layer's pre-activation values for a batch of codes: `[batch, c*h*w]`.
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        let [batch, _] = code.dims();
        let levels = self.sizes.len() - 1;
        let [h, w] = self.sizes[levels];
        let maps = match &self.bottleneck {
            Some(b) => dense(&b.up, self.activation, code),
            None => code,
        };
        let mut x = maps.reshape([batch, self.code_channels, h, w]);
        for (j, level) in self.decoder.iter().enumerate() {
            // Back to the size the mirrored encoder level had.
            let size = self.sizes[levels - 1 - j];
            x = match self.upsample {
                Upsample::Nearest => kernels::upsample::nearest2x_cropped(
                    level.forward(x, None, self.activation),
                    size,
                ),
                Upsample::Transposed => level.forward(x, Some(size), self.activation),
            };
        }
        let [h, w] = self.sizes[0];
        kernels::conv::conv2d(&self.output, x).reshape([batch, self.output_channels * h * w])
    }

    /// The activation applied to the output layer's pre-activation values.
    pub fn output_activation(&self) -> Activation {
        self.output_activation
    }

    /// The training loss of a batch: the reconstruction of `input` (possibly corrupted)
    /// against `target`.
    pub fn loss_parts(
        &self,
        input: Tensor<2>,
        target: Tensor<2>,
        loss: ReconstructionLoss,
    ) -> LossParts {
        let code = self.encode(input);
        let logits = self.decode_logits(code.clone());
        LossParts::new(loss.compute(logits, target, self.output_activation)).with_code(code)
    }

    /// The shape of the last encoder level's maps: `[channels, height, width]` (the code,
    /// unless there is a dense code after them).
    pub fn code_shape(&self) -> [usize; 3] {
        let [h, w] = self.sizes[self.sizes.len() - 1];
        [self.code_channels, h, w]
    }

    /// Values in the last encoder level's maps.
    pub fn maps_len(&self) -> usize {
        self.code_shape().iter().product()
    }

    /// Values in one sample's code: the dense code's size, or the maps'.
    pub fn code_len(&self) -> usize {
        match &self.bottleneck {
            Some(b) => b.down.weight.dims()[1],
            None => self.maps_len(),
        }
    }

    /// Height and width at every encoder level: the input's first, the code's last.
    pub fn level_sizes(&self) -> &[[usize; 2]] {
        &self.sizes
    }
}

/// The top-left `size` of each map (the decoder's doubled maps are never smaller).
fn crop(x: Tensor<4>, [h, w]: [usize; 2]) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    debug_assert!(
        height >= h && width >= w,
        "{height}x{width} cropped to {h}x{w}"
    );
    let x = if height > h { x.narrow(2, 0, h) } else { x };
    if width > w { x.narrow(3, 0, w) } else { x }
}
