//! The learned image codec (`kind = "codec"`): analysis and synthesis transforms, the
//! entropy bottleneck (a learned factorised prior per latent channel) and the
//! rate-distortion loss. [`crate::codec`] turns its quantised latents into files.

mod config;

pub use config::{CodecConfig, Normalisation};

use crate::codec::entropy::ChannelTable;
use crate::data::SampleShape;
use crate::error::Result;
use crate::kernels;
use crate::models::LossParts;
use crate::models::layers::Activation;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::activation::{sigmoid, softplus, tanh};
// `sigmoid` is the prior's; the synthesis output is linear (see `synthesise`).
use burn::tensor::{Device, Distribution, Tensor, TensorData};

/// Generalised divisive normalisation over channels (or its inverse, a product).
#[derive(Module, Debug)]
pub struct Gdn {
    /// `sqrt` of beta (so that beta stays positive): `[channels]`.
    beta: Param<Tensor<1>>,
    /// `sqrt` of gamma: `[channels, channels]`.
    gamma: Param<Tensor<2>>,
    #[module(skip)]
    inverse: bool,
}

impl Gdn {
    fn new(channels: usize, inverse: bool, device: &Device) -> Self {
        let eye: Vec<f32> = (0..channels * channels)
            .map(|i| {
                if i / channels == i % channels {
                    0.1f32.sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        Self {
            beta: Param::from_tensor(Tensor::ones([channels], device)),
            gamma: Param::from_tensor(Tensor::from_data(
                TensorData::new(eye, [channels, channels]),
                device,
            )),
            inverse,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, channels, h, w] = x.dims();
        let beta = self.beta.val().powi_scalar(2).add_scalar(1e-6);
        let gamma = self.gamma.val().powi_scalar(2);
        let squares = x.clone().powi_scalar(2).reshape([batch, channels, h * w]);
        let norm = gamma
            .unsqueeze::<3>()
            .matmul(squares)
            .add(beta.reshape([1, channels, 1]))
            .sqrt()
            .reshape([batch, channels, h, w]);
        if self.inverse { x * norm } else { x / norm }
    }
}

/// One layer of the prior's per-channel cumulative networks.
#[derive(Module, Debug)]
pub struct PriorLayer {
    /// Pre-softplus matrices `[channels, out, in]` (softplus keeps the network monotone).
    matrix: Param<Tensor<3>>,
    /// `[channels, out, 1]`.
    bias: Param<Tensor<3>>,
    /// `[channels, out, 1]`; `None` on the last layer.
    factor: Option<Param<Tensor<3>>>,
}

/// The entropy bottleneck: for every latent channel a small monotone network `f` whose
/// sigmoid is the cumulative distribution of that channel's latents, so that a quantised
/// latent `y` has the probability `sigmoid(f(y + 1/2)) - sigmoid(f(y - 1/2))` (Ballé et al.
/// 2018, appendix 6.1; CompressAI's `EntropyBottleneck`).
#[derive(Module, Debug)]
pub struct EntropyBottleneck {
    layers: Vec<PriorLayer>,
    #[module(skip)]
    channels: usize,
}

impl EntropyBottleneck {
    fn new(channels: usize, hidden: &[usize], device: &Device) -> Self {
        // CompressAI's initialisation: the network starts as a wide logistic (init_scale 10).
        let sizes: Vec<usize> = std::iter::once(1)
            .chain(hidden.iter().copied())
            .chain(std::iter::once(1))
            .collect();
        let scale = 10f64.powf(1.0 / (sizes.len() - 1) as f64);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, pair)| {
                let (input, output) = (pair[0], pair[1]);
                let init = (1.0 / scale / output as f64).exp_m1().ln() as f32;
                let last = i == sizes.len() - 2;
                PriorLayer {
                    matrix: Param::from_tensor(Tensor::full(
                        [channels, output, input],
                        init,
                        device,
                    )),
                    bias: Param::from_tensor(Tensor::random(
                        [channels, output, 1],
                        Distribution::Uniform(-0.5, 0.5),
                        device,
                    )),
                    factor: (!last)
                        .then(|| Param::from_tensor(Tensor::zeros([channels, output, 1], device))),
                }
            })
            .collect();
        Self { layers, channels }
    }

    /// `f(x)` for values `[channels, 1, m]` (each channel's own network on its row).
    fn logits_cdf(&self, x: Tensor<3>) -> Tensor<3> {
        let mut x = x;
        for layer in &self.layers {
            x = softplus(layer.matrix.val(), 1.0).matmul(x) + layer.bias.val();
            if let Some(factor) = &layer.factor {
                x = x.clone() + tanh(factor.val()) * tanh(x);
            }
        }
        x
    }

    /// The probability of each (quantised or noisy) latent of `y`, `[channels, 1, m]`.
    fn likelihood(&self, y: Tensor<3>) -> Tensor<3> {
        let lower = self.logits_cdf(y.clone().sub_scalar(0.5));
        let upper = self.logits_cdf(y.add_scalar(0.5));
        // Computed on the side of the median where the sigmoids are not near 1, for accuracy.
        let sign = (lower.clone() + upper.clone()).sign().neg().detach();
        (sigmoid(sign.clone() * upper) - sigmoid(sign * lower))
            .abs()
            .clamp_min(1e-9)
    }
}

/// The codec: analysis transform, entropy bottleneck, synthesis transform.
#[derive(Module, Debug)]
pub struct CodecModel {
    analysis: Vec<Conv2d>,
    analysis_norms: Vec<Option<Gdn>>,
    synthesis: Vec<ConvTranspose2d>,
    synthesis_norms: Vec<Option<Gdn>>,
    prior: EntropyBottleneck,
    #[module(skip)]
    channels: usize,
    #[module(skip)]
    size: [usize; 2],
    #[module(skip)]
    latent_channels: usize,
    #[module(skip)]
    levels: usize,
    #[module(skip)]
    lambda: f64,
}

impl CodecConfig {
    /// Builds the codec for images of `shape`.
    pub fn init(&self, shape: SampleShape, device: &Device) -> Result<CodecModel> {
        self.check_shape(shape)?;
        let k = self.kernel_size;
        let widths: Vec<usize> = std::iter::once(shape.channels)
            .chain(self.filters.iter().copied())
            .chain(std::iter::once(self.latent_channels))
            .collect();
        let hidden = self.filters.len();
        let norm = |c: usize, inverse: bool| match self.normalisation {
            Normalisation::Gdn => Some(Gdn::new(c, inverse, device)),
            Normalisation::Relu => None,
        };
        let analysis = widths
            .windows(2)
            .map(|p| self.init.conv2d(p[0], p[1], k, 2, device))
            .collect();
        let analysis_norms = (0..=hidden)
            .map(|i| {
                if i < hidden {
                    norm(widths[i + 1], false)
                } else {
                    None
                }
            })
            .collect();
        let synthesis = widths
            .windows(2)
            .rev()
            .map(|p| self.init.conv_transpose2d_x2(p[1], p[0], k, device))
            .collect();
        let synthesis_norms = (0..=hidden)
            .map(|i| {
                if i < hidden {
                    norm(widths[hidden - i], true)
                } else {
                    None
                }
            })
            .collect();
        Ok(CodecModel {
            analysis,
            analysis_norms,
            synthesis,
            synthesis_norms,
            prior: EntropyBottleneck::new(self.latent_channels, &self.prior_layers, device),
            channels: shape.channels,
            size: [shape.height, shape.width],
            latent_channels: self.latent_channels,
            levels: self.levels(),
            lambda: self.lambda,
        })
    }
}

impl CodecModel {
    /// The latents `[batch, latent_channels, h, w]` of images `[batch, channels, H, W]`
    /// (any size that is a multiple of [`Self::size_multiple`]), before quantisation.
    pub fn analyse(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = x;
        let last = self.analysis.len() - 1;
        for (i, (conv, norm)) in self.analysis.iter().zip(&self.analysis_norms).enumerate() {
            x = kernels::conv::conv2d(conv, x);
            x = match norm {
                Some(gdn) => gdn.forward(x),
                None if i < last => burn::tensor::activation::relu(x),
                None => x,
            };
        }
        x
    }

    /// The images from latents (quantised or not), linear: a sigmoid output saturates when
    /// the rate term first pushes the latents to zero, and training then stalls on a black
    /// image (seen on MNIST); CompressAI's models are linear too. Pictures clamp to [0, 1].
    pub fn synthesise(&self, y: Tensor<4>) -> Tensor<4> {
        let mut x = y;
        let last = self.synthesis.len() - 1;
        for (i, (conv, norm)) in self.synthesis.iter().zip(&self.synthesis_norms).enumerate() {
            let [_, _, h, w] = x.dims();
            x = kernels::gemm_conv::conv_transpose2d(conv, x);
            let [_, _, oh, ow] = x.dims();
            let (th, tw) = (2 * h, 2 * w);
            if oh != th || ow != tw {
                x = x.narrow(2, 0, th.min(oh)).narrow(3, 0, tw.min(ow));
            }
            x = match norm {
                Some(gdn) => gdn.forward(x),
                None if i < last => burn::tensor::activation::relu(x),
                None => x,
            };
        }
        x
    }

    /// The multiple an image's height and width must be of.
    pub fn size_multiple(&self) -> usize {
        1 << self.levels
    }

    /// Channels of the latent maps.
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }

    /// The shape of one training image's latents: `[latent_channels, h, w]`.
    pub fn code_shape(&self) -> [usize; 3] {
        let m = self.size_multiple();
        [self.latent_channels, self.size[0] / m, self.size[1] / m]
    }

    /// The quantised latents of a batch of flattened images, flattened: the codec's code.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        let [batch, _] = x.dims();
        let [h, w] = self.size;
        let y = self.analyse(x.reshape([batch, self.channels, h, w]));
        let len = self.code_shape().iter().product::<usize>();
        y.round().reshape([batch, len])
    }

    /// Outputs (linear) of flattened codes.
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        let [batch, _] = code.dims();
        let [c, h, w] = self.code_shape();
        let [ih, iw] = self.size;
        self.synthesise(code.reshape([batch, c, h, w]))
            .reshape([batch, self.channels * ih * iw])
    }

    /// Each sample's bits (under the prior) and squared error per value, with uniform noise
    /// in place of rounding, as training sees them: `([batch], [batch])`.
    fn rate_and_distortion(&self, input: Tensor<2>, target: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        let [batch, values] = input.dims();
        let [h, w] = self.size;
        let y = self.analyse(input.reshape([batch, self.channels, h, w]));
        let [_, c, lh, lw] = y.dims();
        let noisy = y.clone() + y.random_like(Distribution::Uniform(-0.5, 0.5));
        let rows = noisy
            .clone()
            .swap_dims(0, 1)
            .reshape([c, 1, batch * lh * lw]);
        let bits = self
            .prior
            .likelihood(rows)
            .log()
            .div_scalar(-std::f64::consts::LN_2)
            .reshape([c, batch, lh * lw])
            .sum_dim(2)
            .sum_dim(0)
            .reshape([batch]);
        let output = self.synthesise(noisy).reshape([batch, values]);
        let diff = output - target;
        let mse = (diff.clone() * diff).mean_dim(1).reshape([batch]);
        (bits, mse)
    }

    /// The training loss: `lambda * 255^2 * MSE + bits per pixel`, with the rate, the
    /// distortion term, bits per pixel and PSNR (dB) recorded as parts.
    pub fn loss_parts(&self, input: Tensor<2>, target: Tensor<2>) -> LossParts {
        let [h, w] = self.size;
        let (bits, mse) = self.rate_and_distortion(input, target);
        let bpp = bits.mean().div_scalar((h * w) as f64);
        let mse = mse.mean();
        let distortion = mse.clone().mul_scalar(self.lambda * 255.0 * 255.0);
        let psnr = mse
            .clamp_min(1e-10)
            .log()
            .mul_scalar(-10.0 / std::f64::consts::LN_10);
        let mut parts = LossParts::named("distortion", distortion);
        parts.add("rate_bpp", bpp);
        parts.note("psnr_db", psnr.detach());
        parts
    }

    /// Each sample's rate-distortion loss (noise in place of rounding, as in training).
    pub fn sample_losses(&self, x: Tensor<2>) -> Tensor<1> {
        let [h, w] = self.size;
        let (bits, mse) = self.rate_and_distortion(x.clone(), x);
        mse.mul_scalar(self.lambda * 255.0 * 255.0) + bits.div_scalar((h * w) as f64)
    }

    /// The prior as integer tables, one per latent channel, over the integers where it puts
    /// any appreciable mass (the rest is escaped): computed once from the weights and stored
    /// with the model, so that decoding never depends on float arithmetic.
    pub fn entropy_tables(&self) -> Result<Vec<ChannelTable>> {
        const RADIUS: i32 = 64;
        const TAIL: f64 = 1e-9;
        let device = self.prior.layers[0].bias.val().device();
        let c = self.prior.channels;
        let support: Vec<f32> = (-RADIUS..=RADIUS).map(|v| v as f32).collect();
        let m = support.len();
        let values: Vec<f32> = (0..c).flat_map(|_| support.iter().copied()).collect();
        let x = Tensor::<3>::from_data(TensorData::new(values, [c, 1, m]), &device);
        let masses = self
            .prior
            .likelihood(x)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| crate::error::Error::Input(format!("the prior: {e:?}")))?;
        masses
            .chunks(m)
            .map(|row| {
                let first = row
                    .iter()
                    .position(|&p| f64::from(p) > TAIL)
                    .unwrap_or(m / 2);
                let last = row
                    .iter()
                    .rposition(|&p| f64::from(p) > TAIL)
                    .unwrap_or(m / 2);
                let kept: Vec<f64> = row[first..=last].iter().map(|&p| f64::from(p)).collect();
                ChannelTable::from_masses(first as i32 - RADIUS, &kept)
            })
            .collect()
    }

    /// The output activation: none (the synthesis is linear).
    pub fn output_activation(&self) -> Activation {
        Activation::Linear
    }
}

#[cfg(test)]
mod tests;
