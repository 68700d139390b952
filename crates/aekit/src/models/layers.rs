//! Building blocks shared by the model families: activation functions and weight
//! initialisation schemes, both chosen by name in a config.

use crate::kernels::linear::{self, FusedActivation};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// An element-wise activation function, chosen by name in a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// The identity (a linear layer).
    #[serde(alias = "identity")]
    Linear,
    /// `x` for positive inputs, `0.01 x` otherwise.
    LeakyRelu,
    /// Exponential linear unit (alpha 1).
    Elu,
    /// `ln(1 + e^x)`.
    Softplus,
}

/// ELU (`alpha = 1`) whose discarded branch stays finite: Burn's `elu` takes `exp` of every
/// input, so a pre-activation above ~88 makes `exp` infinite and its gradient, masked to 0,
/// `inf * 0 = NaN` (a table's unscaled columns reached it on the second step).
fn elu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let negative = x.clone().lower_equal_scalar(0);
    let exponential = x.clone().clamp_max(0).exp().sub_scalar(1);
    x.mask_where(negative, exponential)
}

impl Activation {
    /// The same activation as a dense layer's fused one, where it has one.
    fn fused(self) -> Option<FusedActivation> {
        match self {
            Activation::Relu => Some(FusedActivation::Relu),
            Activation::Sigmoid => Some(FusedActivation::Sigmoid),
            Activation::Linear => Some(FusedActivation::Identity),
            _ => None,
        }
    }

    /// Applies the activation.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => activation::relu(x),
            Activation::Sigmoid => crate::kernels::sigmoid(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Linear => x,
            Activation::LeakyRelu => activation::leaky_relu(x, 0.01),
            Activation::Elu => elu(x),
            Activation::Softplus => activation::softplus(x, 1.0),
        }
    }

    /// The config name of the activation.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Linear => "linear",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Elu => "elu",
            Activation::Softplus => "softplus",
        }
    }
}

/// Runs `x` through a stack of dense layers with `activation` between them and none after
/// the last: the pre-activation values of the stack's output layer (a decoder's logits).
pub fn stack_logits(stack: &[Linear], activation: Activation, x: Tensor<2>) -> Tensor<2> {
    stack_output(stack, activation, Activation::Linear, x)
}

/// Runs `x` through a stack of dense layers with `activation` between them and
/// `output_activation` after the last (a decoder's activated output).
pub fn stack_output(
    stack: &[Linear],
    activation: Activation,
    output_activation: Activation,
    x: Tensor<2>,
) -> Tensor<2> {
    let last = stack.len().saturating_sub(1);
    stack.iter().enumerate().fold(x, |x, (i, layer)| {
        let act = if i == last {
            output_activation
        } else {
            activation
        };
        dense(layer, act, x)
    })
}

/// `activation(layer(x))`: for plain tensors and the activations a dense layer can apply in
/// its own pass over the output (ReLU, sigmoid, none), one pass; otherwise the layer, then
/// the activation.
pub fn dense(layer: &Linear, activation: Activation, x: Tensor<2>) -> Tensor<2> {
    if let Some(fused) = activation.fused()
        && let Some(y) = linear::linear_activated(layer, &x, fused)
    {
        return y;
    }
    activation.forward(linear::linear(layer, x))
}

/// How a layer's weights are drawn at initialisation. Biases start at zero, except with
/// `torch-default`, which reproduces PyTorch's `nn.Linear` defaults exactly.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum WeightInit {
    /// Glorot/Xavier uniform, `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`: Keras's
    /// default, and the one the seed reference figures were obtained with.
    #[default]
    #[serde(alias = "xavier-uniform")]
    GlorotUniform,
    /// Glorot/Xavier normal, standard deviation `sqrt(2 / (fan_in + fan_out))`.
    #[serde(alias = "xavier-normal")]
    GlorotNormal,
    /// Kaiming/He uniform for ReLU layers, `a = sqrt(6 / fan_in)`.
    #[serde(alias = "he-uniform")]
    KaimingUniform,
    /// Kaiming/He normal for ReLU layers, standard deviation `sqrt(2 / fan_in)`.
    #[serde(alias = "he-normal")]
    KaimingNormal,
    /// PyTorch's `nn.Linear` default: weights and biases `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    TorchDefault,
}

impl WeightInit {
    fn initializer(self) -> Initializer {
        let relu_gain = std::f64::consts::SQRT_2;
        match self {
            WeightInit::GlorotUniform => Initializer::XavierUniform { gain: 1.0 },
            WeightInit::GlorotNormal => Initializer::XavierNormal { gain: 1.0 },
            WeightInit::KaimingUniform => Initializer::KaimingUniform {
                gain: relu_gain,
                fan_out_only: false,
            },
            WeightInit::KaimingNormal => Initializer::KaimingNormal {
                gain: relu_gain,
                fan_out_only: false,
            },
            // Burn's own default is PyTorch's scheme: kaiming-uniform with gain 1/sqrt(3).
            WeightInit::TorchDefault => Initializer::KaimingUniform {
                gain: 1.0 / 3f64.sqrt(),
                fan_out_only: false,
            },
        }
    }

    /// A fully connected layer `inputs -> outputs` initialised with this scheme.
    pub fn linear(self, inputs: usize, outputs: usize, device: &Device) -> Linear {
        let mut layer = LinearConfig::new(inputs, outputs)
            .with_initializer(self.initializer())
            .init(device);
        if self != WeightInit::TorchDefault {
            layer.bias = Some(Param::from_tensor(Tensor::zeros([outputs], device)));
        }
        layer
    }

    /// A 2D convolution `in_channels -> out_channels` with a square `kernel`, `stride` and
    /// "same" padding (output size `ceil(size / stride)`, as Keras's `padding="same"`),
    /// initialised with this scheme: `fan_in = in_channels * kernel^2`,
    /// `fan_out = out_channels * kernel^2`, as Keras and PyTorch count them.
    pub fn conv2d(
        self,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        device: &Device,
    ) -> Conv2d {
        let mut layer = Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Same)
            .with_initializer(self.initializer())
            .init(device);
        if self != WeightInit::TorchDefault {
            layer.bias = Some(Param::from_tensor(Tensor::zeros([out_channels], device)));
        }
        layer
    }

    /// A transposed 2D convolution `in_channels -> out_channels` with a square `kernel` and
    /// stride 2 that exactly doubles the height and width (Keras's `Conv2DTranspose` with
    /// `strides=2, padding="same"`), initialised with this scheme. As in Keras and PyTorch,
    /// the fans of a transposed convolution are counted from its weight's layout:
    /// `fan_in = out_channels * kernel^2`, `fan_out = in_channels * kernel^2`.
    pub fn conv_transpose2d_x2(
        self,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        device: &Device,
    ) -> ConvTranspose2d {
        // Output size (in - 1) * 2 - 2 * padding + kernel + padding_out; 2 * in wants
        // 2 * padding - padding_out = kernel - 2.
        let (padding, padding_out) = if kernel % 2 == 1 {
            ((kernel - 1) / 2, 1)
        } else {
            ((kernel - 2) / 2, 0)
        };
        let mut layer = ConvTranspose2dConfig::new([in_channels, out_channels], [kernel, kernel])
            .with_stride([2, 2])
            .with_padding([padding, padding])
            .with_padding_out([padding_out, padding_out])
            .init(device);
        // Burn gives a transposed convolution's initializer no fan_out (Glorot needs one), so
        // the weights are drawn here with both fans.
        let fan_in = out_channels * kernel * kernel;
        let fan_out = in_channels * kernel * kernel;
        let initializer = self.initializer();
        layer.weight = initializer.init_with(
            [in_channels, out_channels, kernel, kernel],
            Some(fan_in),
            Some(fan_out),
            device,
        );
        layer.bias = Some(if self == WeightInit::TorchDefault {
            initializer.init_with([out_channels], Some(fan_in), Some(fan_out), device)
        } else {
            Param::from_tensor(Tensor::zeros([out_channels], device))
        });
        layer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_uniform_bounds_and_zero_bias() {
        let device = Device::flex();
        let layer = WeightInit::GlorotUniform.linear(784, 32, &device);
        let bound = (6.0f32 / (784.0 + 32.0)).sqrt();
        let weights = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(weights.iter().all(|w| w.abs() <= bound));
        // Uniform on [-a, a] has standard deviation a / sqrt(3).
        let std = (weights.iter().map(|w| w * w).sum::<f32>() / weights.len() as f32).sqrt();
        assert!(
            (std - bound / 3f32.sqrt()).abs() < 0.01 * bound,
            "std {std}"
        );
        let bias = layer
            .bias
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(bias.iter().all(|&b| b == 0.0));
    }

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn conv_layers_use_glorot_fans_and_zero_biases() {
        let device = Device::flex();
        let conv = WeightInit::GlorotUniform.conv2d(8, 16, 3, 1, &device);
        assert_eq!(conv.weight.dims(), [16, 8, 3, 3]);
        let bound = (6.0f32 / ((8.0 + 16.0) * 9.0)).sqrt();
        let weights = values(conv.weight.val());
        assert!(weights.iter().all(|w| w.abs() <= bound));
        assert!(weights.iter().any(|w| w.abs() > 0.5 * bound));
        assert!(values(conv.bias.unwrap().val()).iter().all(|&b| b == 0.0));

        let up = WeightInit::GlorotUniform.conv_transpose2d_x2(8, 4, 3, &device);
        assert_eq!(up.weight.dims(), [8, 4, 3, 3]);
        let bound = (6.0f32 / ((8.0 + 4.0) * 9.0)).sqrt();
        let weights = values(up.weight.val());
        assert!(weights.iter().all(|w| w.abs() <= bound));
        assert!(weights.iter().any(|w| w.abs() > 0.5 * bound));
        assert!(values(up.bias.unwrap().val()).iter().all(|&b| b == 0.0));
    }

    #[test]
    fn conv_layers_keep_or_double_the_size() {
        let device = Device::flex();
        for kernel in [1, 2, 3, 4, 5] {
            let x = Tensor::<4>::ones([2, 3, 7, 10], &device);
            let same = WeightInit::KaimingNormal.conv2d(3, 5, kernel, 1, &device);
            assert_eq!(
                same.forward(x.clone()).dims(),
                [2, 5, 7, 10],
                "kernel {kernel}"
            );
            let strided = WeightInit::TorchDefault.conv2d(3, 5, kernel, 2, &device);
            assert_eq!(
                strided.forward(x.clone()).dims(),
                [2, 5, 4, 5],
                "kernel {kernel}"
            );
            let up = WeightInit::GlorotNormal.conv_transpose2d_x2(3, 5, kernel, &device);
            assert_eq!(up.forward(x).dims(), [2, 5, 14, 20], "kernel {kernel}");
        }
    }

    #[test]
    fn activations_compute_what_they_say() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([-2.0, 0.0, 3.0], &device);
        let relu = Activation::Relu
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(relu, vec![0.0, 0.0, 3.0]);
        let sigmoid = Activation::Sigmoid
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((sigmoid[1] - 0.5).abs() < 1e-6);
        assert!((sigmoid[2] - 1.0 / (1.0 + (-3f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn elus_gradient_is_finite_for_large_inputs() {
        let device = Device::flex().autodiff();
        let x = Tensor::<1>::from_floats([-2.0, 0.0, 3.0, 500.0], &device).require_grad();
        let y = Activation::Elu.forward(x.clone());
        let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(
            (values[0] - ((-2f32).exp() - 1.0)).abs() < 1e-6,
            "{values:?}"
        );
        assert_eq!(&values[1..], &[0.0, 3.0, 500.0]);
        let grads = y.sum().backward();
        let g = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((g[0] - (-2f32).exp()).abs() < 1e-6, "{g:?}");
        assert_eq!(&g[2..], &[1.0, 1.0], "{g:?}");
    }
}
