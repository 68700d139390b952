//! Dense layers `y = x W + b` on `flex` as a custom operation with its own gradients, whose
//! matrix products split their output rows (or columns) across the threads.
//!
//! Flex multiplies through the `gemm` crate, single-threaded below 192³ multiply-adds and with
//! `gemm`'s own threading above. For the shapes of a batch of 256 through an autoencoder's
//! layers, one single-threaded `gemm` per thread on its own block of rows is faster at two
//! threads: 256×784×1000 went from 119-129 to 141-157 GFLOP/s, 256×128×64 from 0.039 to
//! 0.029 ms (`bench/results/2026-11-24-dense-kernels.txt`). The bias is added by the thread
//! that wrote the block, while it is in cache, and the backward step computes `dX = dY Wᵀ`,
//! `dW = Xᵀ dY` and `db = Σ dY` the same way, reading the transposes in place.
//!
//! At inference ([`linear_activated`], plain tensors) the same pass applies the activation
//! (ReLU, sigmoid or none) and the output is not zero-filled before the product: seed dense
//! +17%, deep +9%, VAE +15%, Hinton +6% inference samples/s (2 threads, medians of 3). In
//! training the same pass applies a ReLU, whose gradient the backward step applies
//! (`flex_tensor::layer_op`).

use super::flex_tensor::{
    AutodiffFlexTensor, LayerGradients, Wanted, contiguous, layer_op, on_autodiff_flex,
    on_plain_flex, relu_value, values,
};
use super::matmul::{Matrix, new_product, product};
use burn::backend::flex::FlexTensor;
use burn::nn::Linear;
use burn::tensor::{DType, Tensor, TensorData};

/// `layer.forward(x)` for a batch of row vectors; through this module's operation for `f32`
/// tensors on flex (autodiff or plain) with a bias, Burn's own otherwise.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let Some(bias) = &layer.bias else {
        return layer.forward(x);
    };
    let (weight, bias) = (layer.weight.val(), bias.val());
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return layer.forward(x);
    }
    let tensors = (&x, &weight, &bias);
    on_autodiff_flex(tensors, |x, w, b| autodiff_linear(x, w, b, false))
        .or_else(|| on_plain_flex(tensors, forward))
        .unwrap_or_else(|| layer.forward(x))
}

fn autodiff_linear(
    x: AutodiffFlexTensor,
    weight: AutodiffFlexTensor,
    bias: AutodiffFlexTensor,
    relu: bool,
) -> AutodiffFlexTensor {
    layer_op(x, weight, bias, relu, |x, weight, bias, wanted: Wanted| {
        let activation = if relu {
            FusedActivation::Relu
        } else {
            FusedActivation::Identity
        };
        let out = forward_activated(x, weight, bias, activation);
        let state = LinearGradients {
            x: wanted.params.then(|| contiguous(x)),
            weight: wanted.input.then(|| contiguous(weight)),
            dims: dims(x, weight),
        };
        (out, state)
    })
}

/// `[batch, inputs, outputs]`.
fn dims(x: &FlexTensor, weight: &FlexTensor) -> [usize; 3] {
    let (xs, ws) = (x.layout().shape(), weight.layout().shape());
    assert_eq!(xs[1], ws[0], "linear: {xs:?} input for a {ws:?} weight");
    [xs[0], ws[0], ws[1]]
}

/// `x W + b`.
fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    forward_activated(x, weight, bias, FusedActivation::Identity)
}

/// An activation that a dense layer applies in its own pass over each block of output rows,
/// while the block is in cache, instead of a separate pass over the whole output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FusedActivation {
    /// No activation.
    Identity,
    /// `max(0, x)` (a NaN stays NaN, as with Burn's `relu`).
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
}

/// `activation(layer.forward(x))` in one pass for an `f32` batch on flex with a bias: plain
/// tensors with any [`FusedActivation`], autodiff ones with none or ReLU (whose gradient the
/// layer's backward step applies). `None` for any other case, which the caller computes the
/// usual way.
pub fn linear_activated(
    layer: &Linear,
    x: &Tensor<2>,
    activation: FusedActivation,
) -> Option<Tensor<2>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let bias = layer.bias.as_ref()?.val();
    let weight = layer.weight.val();
    if weight.dtype() != DType::F32 {
        return None;
    }
    let tensors = (x, &weight, &bias);
    if x.device().is_autodiff() {
        let relu = match activation {
            FusedActivation::Identity => false,
            FusedActivation::Relu => true,
            FusedActivation::Sigmoid => return None,
        };
        return on_autodiff_flex(tensors, |x, w, b| autodiff_linear(x, w, b, relu));
    }
    on_plain_flex(tensors, |x, weight, bias| {
        forward_activated(x, weight, bias, activation)
    })
}

/// `activation(x W + b)`: the bias and the activation are applied by the thread that wrote
/// each block of rows, and the output is never zero-filled.
fn forward_activated(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    activation: FusedActivation,
) -> FlexTensor {
    let [batch, inputs, outputs] = dims(x, weight);
    let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
    let bias = values(&bias);
    let x = Matrix::row_major(values(&x), inputs);
    let w = Matrix::row_major(values(&weight), outputs);
    let out = new_product([batch, outputs, inputs], x, w, |rows, _| {
        for row in rows.chunks_exact_mut(outputs) {
            match activation {
                FusedActivation::Relu => {
                    // A select, not a branch: the signs are random (a branch here made the
                    // Hinton model's inference 10% slower than a separate ReLU pass).
                    for (y, b) in row.iter_mut().zip(bias) {
                        *y = relu_value(*y + b);
                    }
                }
                FusedActivation::Identity => add_bias(row, bias),
                FusedActivation::Sigmoid => {
                    add_bias(row, bias);
                    super::sigmoid_chunk(row);
                }
            }
        }
    });
    FlexTensor::from_data(TensorData::new(out, vec![batch, outputs]))
}

fn add_bias(row: &mut [f32], bias: &[f32]) {
    for (y, b) in row.iter_mut().zip(bias) {
        *y += b;
    }
}

/// What the backward step keeps: the input for the weight gradient, the weight for the input
/// gradient (each only when that gradient will be asked for).
#[derive(Debug, Clone)]
struct LinearGradients {
    x: Option<FlexTensor>,
    weight: Option<FlexTensor>,
    dims: [usize; 3],
}

impl LayerGradients for LinearGradients {
    fn input_grad(&self, upstream: &FlexTensor) -> FlexTensor {
        let [batch, inputs, outputs] = self.dims;
        let weight = self.weight.as_ref().expect("the weight is kept for dX");
        let dy = contiguous(upstream);
        let mut dx = vec![0f32; batch * inputs];
        // dX = dY Wᵀ: Wᵀ is W read with its strides swapped.
        let w_t = Matrix::row_major(values(weight), outputs).transposed();
        let dy = Matrix::row_major(values(&dy), outputs);
        product(&mut dx, [batch, inputs, outputs], dy, w_t, |_, _| {});
        FlexTensor::from_data(TensorData::new(dx, vec![batch, inputs]))
    }

    fn param_grads(&self, upstream: &FlexTensor) -> (FlexTensor, FlexTensor) {
        let [batch, inputs, outputs] = self.dims;
        let x = self.x.as_ref().expect("the input is kept for dW");
        let dy = contiguous(upstream);
        let dy = values(&dy);
        let mut dw = vec![0f32; inputs * outputs];
        let x_t = Matrix::row_major(values(x), inputs).transposed();
        product(
            &mut dw,
            [inputs, outputs, batch],
            x_t,
            Matrix::row_major(dy, outputs),
            |_, _| {},
        );
        let db = column_sums(dy, outputs);
        (
            FlexTensor::from_data(TensorData::new(dw, vec![inputs, outputs])),
            FlexTensor::from_data(TensorData::new(db, vec![outputs])),
        )
    }
}

/// The sums of the columns of a row-major matrix with `columns` columns.
fn column_sums(values: &[f32], columns: usize) -> Vec<f32> {
    let mut sums = vec![0f32; columns];
    for row in values.chunks_exact(columns) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::flex_tensor::to_vec;
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution};

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let tolerance = 1e-5 * (1.0 + y.abs());
            assert!((x - y).abs() <= tolerance, "{what}[{i}]: {x} vs {y}");
        }
    }

    /// The values and all three gradients equal Burn's `Linear` for shapes that run on one
    /// thread, split rows and split columns.
    #[test]
    fn linear_matches_burn_forward_and_gradients() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let shapes = [[5, 7, 3], [256, 300, 64], [40, 130, 700], [1, 9, 1]];
        for ([batch, inputs, outputs], relu) in
            shapes.into_iter().flat_map(|s| [(s, false), (s, true)])
        {
            let layer = LinearConfig::new(inputs, outputs).init(&device);
            // Centred inputs, so that about half of the ReLU's inputs are negative.
            let x = Tensor::<2>::random([batch, inputs], Distribution::Uniform(-1.0, 1.0), &device)
                .require_grad();
            let mix = Tensor::<2>::random([batch, outputs], Distribution::Default, &device);
            let (ours, burns) = if relu {
                let ours = linear_activated(&layer, &x, FusedActivation::Relu).expect("applies");
                (
                    ours,
                    burn::tensor::activation::relu(layer.forward(x.clone())),
                )
            } else {
                (linear(&layer, x.clone()), layer.forward(x.clone()))
            };
            let what = format!("{batch}x{inputs}x{outputs} relu {relu}");
            close(&to_vec(ours.clone()), &to_vec(burns.clone()), &what);
            let grads_ours = (ours * mix.clone()).sum().backward();
            let grads_burn = (burns * mix).sum().backward();
            let pairs = [
                (x.grad(&grads_ours), x.grad(&grads_burn), "dX"),
                (
                    layer.weight.grad(&grads_ours),
                    layer.weight.grad(&grads_burn),
                    "dW",
                ),
            ];
            for (a, b, name) in pairs {
                close(
                    &to_vec(a.unwrap()),
                    &to_vec(b.unwrap()),
                    &format!("{what} {name}"),
                );
            }
            let bias = layer.bias.as_ref().unwrap();
            close(
                &to_vec(bias.grad(&grads_ours).unwrap()),
                &to_vec(bias.grad(&grads_burn).unwrap()),
                &format!("{what} db"),
            );
        }
    }

    #[test]
    fn plain_linear_matches_burn() {
        let device = Device::flex();
        device.seed(4);
        let layer = LinearConfig::new(200, 90).init(&device);
        let x = Tensor::<2>::random([128, 200], Distribution::Default, &device);
        close(
            &to_vec(linear(&layer, x.clone())),
            &to_vec(layer.forward(x)),
            "plain",
        );
    }

    /// The fused activations equal the layer followed by Burn's activation, on one thread,
    /// split rows and split columns, and an autodiff tensor is left to the caller.
    #[test]
    fn fused_activations_match_the_layer_then_the_activation() {
        let device = Device::flex();
        device.seed(6);
        for [batch, inputs, outputs] in [[5, 7, 3], [256, 300, 64], [40, 130, 700]] {
            let layer = LinearConfig::new(inputs, outputs).init(&device);
            let x = Tensor::<2>::random([batch, inputs], Distribution::Default, &device)
                .sub_scalar(0.5)
                .mul_scalar(4.0);
            let plain = layer.forward(x.clone());
            let cases = [
                (FusedActivation::Identity, plain.clone()),
                (
                    FusedActivation::Relu,
                    burn::tensor::activation::relu(plain.clone()),
                ),
                (
                    FusedActivation::Sigmoid,
                    burn::tensor::activation::sigmoid(plain),
                ),
            ];
            for (activation, expected) in cases {
                let ours = linear_activated(&layer, &x, activation).expect("a plain f32 batch");
                close(
                    &to_vec(ours),
                    &to_vec(expected),
                    &format!("{batch}x{inputs}x{outputs} {activation:?}"),
                );
            }
        }
        // On autodiff tensors a sigmoid is left to the caller (its gradient is not fused).
        let autodiff = Device::flex().autodiff();
        let layer = LinearConfig::new(4, 3).init(&autodiff);
        let x = Tensor::<2>::random([2, 4], Distribution::Default, &autodiff);
        assert!(linear_activated(&layer, &x, FusedActivation::Sigmoid).is_none());
        assert!(linear_activated(&layer, &x, FusedActivation::Relu).is_some());
    }

    #[test]
    fn a_frozen_layer_gives_only_the_input_gradient() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let layer = LinearConfig::new(30, 20).init(&device).no_grad();
        let x = Tensor::<2>::random([8, 30], Distribution::Default, &device).require_grad();
        let grads = linear(&layer, x.clone()).sum().backward();
        let expected = layer.forward(x.clone()).sum().backward();
        close(
            &to_vec(x.grad(&grads).unwrap()),
            &to_vec(x.grad(&expected).unwrap()),
            "dX",
        );
        assert!(layer.weight.grad(&grads).is_none());
    }
}
