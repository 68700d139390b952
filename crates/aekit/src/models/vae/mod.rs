//! The variational autoencoder (Kingma & Welling): the encoder gives the mean and
//! log-variance of a Gaussian code, a code is sampled by reparameterisation, and the loss is
//! the negative ELBO: reconstruction plus the closed-form KL divergence to N(0, I). Dense, or
//! convolutional with the conv family's levels around the dense layers.

mod config;

pub use config::{VaeConfig, VaeConvConfig};

use crate::data::SampleShape;
use crate::error::{Error, Result};
use crate::kernels::linear::linear;
use crate::loss::{ReconstructionLoss, bce_with_logits, bce_with_logits_mean};
use crate::models::conv::ConvAutoencoder;
use crate::models::layers::{self, Activation};
use crate::models::{LossParts, LossSettings};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor};

/// A VAE built from a [`VaeConfig`].
#[derive(Module, Debug)]
pub struct Vae {
    /// The conv levels of a conv VAE: its encoder makes the dense layers' input, its decoder
    /// takes their output.
    conv: Option<ConvAutoencoder>,
    encoder: Vec<Linear>,
    mean: Linear,
    log_variance: Linear,
    decoder: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    output_activation: Activation,
}

impl VaeConfig {
    /// Builds the model for samples of `shape`; a conv VAE needs images and errors (naming
    /// the key) when its levels would shrink them below 1x1.
    pub fn init(&self, shape: SampleShape, device: &Device) -> Result<Vae> {
        let conv =
            match &self.conv {
                Some(conv) => Some(conv.conv_config(self).init(shape, device).map_err(
                    |error| match error {
                        Error::Config {
                            source_name,
                            message,
                        } if source_name.starts_with("model.") && source_name != "model.kind" => {
                            Error::config(source_name.replacen("model.", "model.conv.", 1), message)
                        }
                        other => other,
                    },
                )?),
                None => None,
            };
        // The dense layers sit between the flattened conv maps (or the input) and the code.
        let outer = conv.as_ref().map_or(shape.len(), ConvAutoencoder::code_len);
        let stack = |sizes: &[usize]| -> Vec<Linear> {
            sizes
                .windows(2)
                .map(|p| self.init.linear(p[0], p[1], device))
                .collect()
        };
        let encoder_sizes: Vec<usize> = std::iter::once(outer)
            .chain(self.hidden.iter().copied())
            .collect();
        let last_hidden = *encoder_sizes.last().expect("the input is a size");
        let decoder_sizes: Vec<usize> = std::iter::once(self.latent)
            .chain(self.hidden.iter().rev().copied())
            .chain(std::iter::once(outer))
            .collect();
        Ok(Vae {
            conv,
            encoder: stack(&encoder_sizes),
            mean: self.init.linear(last_hidden, self.latent, device),
            log_variance: self.init.linear(last_hidden, self.latent, device),
            decoder: stack(&decoder_sizes),
            activation: self.activation,
            output_activation: self.output_activation,
        })
    }

    /// The KL weight during epoch `epoch` (from 1), with the linear warm-up.
    pub fn kl_weight(&self, epoch: usize) -> f64 {
        if self.warmup_epochs == 0 {
            self.beta
        } else {
            self.beta * (epoch as f64 / self.warmup_epochs as f64).min(1.0)
        }
    }
}

/// A code drawn from `q(z | x)` by reparameterisation: `mean + exp(log_variance / 2) * eps`.
fn draw_code(mean: &Tensor<2>, log_variance: &Tensor<2>) -> Tensor<2> {
    let noise = Tensor::<2>::random(mean.dims(), Distribution::Normal(0.0, 1.0), &mean.device());
    mean.clone() + log_variance.clone().mul_scalar(0.5).exp() * noise
}

/// `1 + log sigma^2 - mu^2 - sigma^2` per code value: times -1/2 and summed, the closed-form
/// `KL(N(mu, sigma^2) || N(0, 1))`.
fn kl_terms(mean: Tensor<2>, log_variance: Tensor<2>) -> Tensor<2> {
    log_variance.clone().add_scalar(1.0) - mean.clone() * mean - log_variance.exp()
}

impl Vae {
    fn hidden(&self, x: Tensor<2>) -> Tensor<2> {
        let x = match &self.conv {
            Some(conv) => conv.encode(x),
            None => x,
        };
        self.encoder
            .iter()
            .fold(x, |x, layer| layers::dense(layer, self.activation, x))
    }

    /// The mean and log-variance of `q(z | x)`.
    pub fn posterior(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let h = self.hidden(x);
        (linear(&self.mean, h.clone()), linear(&self.log_variance, h))
    }

    /// The code of a batch: the posterior mean.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        linear(&self.mean, self.hidden(x))
    }

    /// The output's pre-activation values for a batch of codes.
    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<2> {
        match &self.conv {
            // The dense layers' output is activated feature maps for the conv decoder.
            Some(conv) => conv.decode_logits(
                self.decoder
                    .iter()
                    .fold(z, |x, layer| layers::dense(layer, self.activation, x)),
            ),
            None => layers::stack_logits(&self.decoder, self.activation, z),
        }
    }

    /// The reconstructions of a batch of codes (the output activation applied).
    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        match &self.conv {
            Some(_) => self.output_activation.forward(self.decode_logits(z)),
            None => layers::stack_output(&self.decoder, self.activation, self.output_activation, z),
        }
    }

    /// The activation applied to the output layer's pre-activation values.
    pub fn output_activation(&self) -> Activation {
        self.output_activation
    }

    /// `-log p(x | z)` per sample, `[batch]`: Bernoulli (`bce`) or unit-variance Gaussian
    /// (`mse`, constant included) likelihood; L1 is read as a Laplace likelihood of scale 1.
    fn negative_log_likelihood(
        &self,
        logits: Tensor<2>,
        target: Tensor<2>,
        loss: ReconstructionLoss,
    ) -> Tensor<1> {
        let [batch, _] = target.dims();
        let per_value = match loss {
            ReconstructionLoss::Bce => bce_with_logits(logits, target),
            ReconstructionLoss::Mse => {
                let diff = self.output_activation.forward(logits) - target;
                (diff.clone() * diff)
                    .mul_scalar(0.5)
                    .add_scalar(0.5 * (2.0 * std::f64::consts::PI).ln())
            }
            ReconstructionLoss::L1 => (self.output_activation.forward(logits) - target)
                .abs()
                .add_scalar(2f64.ln()),
        };
        per_value.sum_dim(1).reshape([batch])
    }

    /// The negative ELBO of a batch, in nats per sample, and its parts.
    pub fn loss_parts(
        &self,
        input: Tensor<2>,
        target: Tensor<2>,
        settings: &LossSettings,
    ) -> LossParts {
        let loss = settings.reconstruction;
        let [batch, values] = input.dims();
        let (mean, log_variance) = self.posterior(input);
        let z = draw_code(&mean, &log_variance);
        let logits = self.decode_logits(z);
        let code = mean.clone();
        let reconstruction = match loss {
            // The per-sample sum averaged over the batch is the mean over every value times
            // the values per sample: the fused loss, with its closed-form gradient.
            ReconstructionLoss::Bce => {
                bce_with_logits_mean(logits, target).mul_scalar(values as f64)
            }
            _ => self
                .negative_log_likelihood(logits, target, loss)
                .sum()
                .div_scalar(batch as f64),
        };
        // KL(N(mu, sigma^2) || N(0, 1)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2).
        let kl = kl_terms(mean, log_variance)
            .sum()
            .mul_scalar(-0.5 / batch as f64);
        let mut parts = LossParts::new(reconstruction).with_code(code);
        parts.add("kl", kl.mul_scalar(settings.kl_weight));
        parts
    }

    /// The negative ELBO of each sample, `[batch]` (nats): `-log p(x | z)` for one code
    /// drawn from `q(z | x)`, plus the KL weight times the closed-form KL to the prior.
    pub fn sample_negative_elbo(&self, x: Tensor<2>, settings: &LossSettings) -> Tensor<1> {
        let [batch, _] = x.dims();
        let (mean, log_variance) = self.posterior(x.clone());
        let z = draw_code(&mean, &log_variance);
        let nll = self.negative_log_likelihood(self.decode_logits(z), x, settings.reconstruction);
        let kl = kl_terms(mean, log_variance)
            .sum_dim(1)
            .reshape([batch])
            .mul_scalar(-0.5);
        nll + kl.mul_scalar(settings.kl_weight)
    }

    /// Importance-weighted estimate of `-log p(x)` per sample with `k` samples (Burda et al.):
    /// `-log (1/k sum_i p(x|z_i) p(z_i) / q(z_i|x))`, `z_i ~ q(z|x)`. Returns `[batch]` values.
    pub fn importance_weighted_nll(
        &self,
        x: Tensor<2>,
        k: usize,
        loss: ReconstructionLoss,
    ) -> Vec<f64> {
        let [batch, _] = x.dims();
        let (mean, log_variance) = self.posterior(x.clone());
        let std = log_variance.clone().mul_scalar(0.5).exp();
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let mut log_weights: Vec<Vec<f64>> = vec![Vec::with_capacity(k); batch];
        for _ in 0..k {
            let eps =
                Tensor::<2>::random(mean.dims(), Distribution::Normal(0.0, 1.0), &mean.device());
            let z = mean.clone() + std.clone() * eps.clone();
            let log_px = self
                .negative_log_likelihood(self.decode_logits(z.clone()), x.clone(), loss)
                .neg();
            let log_pz = (z.clone() * z)
                .mul_scalar(-0.5)
                .add_scalar(-half_log_2pi)
                .sum_dim(1)
                .reshape([batch]);
            let log_qz = ((eps.clone() * eps)
                .mul_scalar(-0.5)
                .add_scalar(-half_log_2pi)
                - log_variance.clone().mul_scalar(0.5))
            .sum_dim(1)
            .reshape([batch]);
            let w = (log_px + log_pz - log_qz)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            for (row, value) in log_weights.iter_mut().zip(w) {
                row.push(value as f64);
            }
        }
        log_weights
            .into_iter()
            .map(|w| {
                let max = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = w.iter().map(|v| (v - max).exp()).sum();
                -(max + (sum / k as f64).ln())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-hidden-layer VAE with a 2-D code.
    fn small_config(hidden: usize, beta: f64, warmup_epochs: usize) -> VaeConfig {
        VaeConfig {
            input: None,
            hidden: vec![hidden],
            latent: 2,
            activation: Activation::Relu,
            output_activation: Activation::Sigmoid,
            init: Default::default(),
            beta,
            warmup_epochs,
            conv: None,
            heads: Vec::new(),
            reconstruction_weight: 1.0,
        }
    }

    fn rows(n: usize) -> SampleShape {
        SampleShape::features(n)
    }

    #[test]
    fn kl_term_matches_the_closed_form_and_warm_up_scales_it() {
        let device = Device::flex();
        let config = small_config(4, 2.0, 4);
        assert_eq!(config.kl_weight(1), 0.5);
        assert_eq!(config.kl_weight(9), 2.0);
        let vae = config.init(rows(3), &device).unwrap();
        let x = Tensor::<2>::from_floats([[0.1, 0.5, 0.9], [0.0, 1.0, 0.3]], &device);
        let (mean, log_variance) = vae.posterior(x.clone());
        let m = mean.into_data().try_to_vec::<f32>().unwrap();
        let lv = log_variance.into_data().try_to_vec::<f32>().unwrap();
        let expected: f64 = m
            .iter()
            .zip(&lv)
            .map(|(&m, &lv)| -0.5 * (1.0 + lv as f64 - (m as f64).powi(2) - (lv as f64).exp()))
            .sum::<f64>()
            / 2.0;
        let parts = vae.loss_parts(x.clone(), x, &LossSettings::plain(ReconstructionLoss::Bce));
        let kl = parts
            .terms
            .iter()
            .find(|(n, _)| *n == "kl")
            .unwrap()
            .1
            .clone()
            .into_scalar::<f32>() as f64;
        assert!((kl - expected).abs() < 1e-5, "{kl} vs {expected}");
    }

    #[test]
    fn importance_weighted_bound_is_at_least_as_tight_as_the_elbo() {
        let device = Device::flex();
        device.seed(3);
        let config = small_config(8, 1.0, 0);
        let vae = config.init(rows(6), &device).unwrap();
        let x = Tensor::<2>::from_floats([[0.0, 1.0, 1.0, 0.0, 0.5, 0.2]], &device);
        // Mean negative ELBO over many samples vs the k = 500 importance-weighted NLL.
        let elbo: f64 = (0..200)
            .map(|_| {
                vae.loss_parts(
                    x.clone(),
                    x.clone(),
                    &LossSettings::plain(ReconstructionLoss::Bce),
                )
                .total
                .into_scalar::<f32>() as f64
            })
            .sum::<f64>()
            / 200.0;
        let iw = vae.importance_weighted_nll(x, 500, ReconstructionLoss::Bce)[0];
        assert!(
            iw <= elbo + 1e-3,
            "IW NLL {iw} must not exceed the negative ELBO {elbo}"
        );
        assert!(iw > 0.0);
    }

    fn conv_config(filters: Vec<usize>) -> VaeConfig {
        VaeConfig {
            hidden: vec![16],
            latent: 4,
            conv: Some(VaeConvConfig {
                filters,
                decoder_filters: None,
                kernel_size: 3,
                downsample: crate::models::conv::Downsample::Stride,
                upsample: crate::models::conv::Upsample::Transposed,
                batch_norm: false,
            }),
            ..small_config(16, 1.0, 0)
        }
    }

    #[test]
    fn conv_vae_reconstructs_any_image_size_exactly() {
        let device = Device::flex();
        for shape in [
            SampleShape::image(1, 28, 28),
            SampleShape::image(1, 13, 17),
            SampleShape::image(3, 32, 32),
        ] {
            let vae = conv_config(vec![4, 8]).init(shape, &device).unwrap();
            let x = Tensor::<2>::random([3, shape.len()], Distribution::Default, &device);
            assert_eq!(vae.encode(x.clone()).dims(), [3, 4], "{shape}");
            assert_eq!(
                vae.decode_logits(vae.encode(x.clone())).dims(),
                [3, shape.len()]
            );
            let total = vae
                .loss_parts(x.clone(), x, &LossSettings::plain(ReconstructionLoss::Bce))
                .total
                .into_scalar::<f32>();
            assert!(total.is_finite() && total > 0.0, "{shape}: {total}");
        }
    }

    #[test]
    fn conv_vae_errors_name_the_conv_keys() {
        let device = Device::flex();
        let too_deep = conv_config(vec![4, 4, 4, 4]);
        let error = too_deep
            .init(SampleShape::image(1, 5, 5), &device)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("model.conv.filters:"), "{error}");
        assert!(error.contains("below 1x1"), "{error}");
        let error = conv_config(vec![4])
            .init(rows(10), &device)
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs images"), "{error}");
        let mut zero = conv_config(vec![4, 0]);
        zero.latent = 2;
        let error = zero.validate().unwrap_err();
        assert!(error.starts_with("model.conv.filters[1]"), "{error}");
    }
}
