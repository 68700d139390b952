//! Strided and transposed 2-D convolutions on Burn's `flex` backend whose weight gradient is
//! one matrix product, registered through `burn-autodiff`'s `Backward` extension point.
//!
//! Why: Burn's generic backward computes a convolution's weight gradient as another
//! convolution, with the batch and channel axes swapped and the gradient maps as the
//! "kernel". On flex that convolution has only nine output positions, so its im2col tiles
//! cannot be spread over threads and its copies dominate: for the conv VAE's stride-2
//! transposed convolutions the weight gradient took 3.5x the forward pass, and a second
//! thread gave nothing (`bench/results/2026-11-24-conv-kernels.txt`).
//!
//! How: with the input padded explicitly, every output position reads one window of
//! `cin * k * k` values. For a convolution the windows of the whole batch are gathered once
//! (in parallel over the samples) into a matrix `[batch * positions, cin * k * k]`: the
//! forward pass is one GEMM of it with the weights (flex would multiply per sample, in small
//! tiles), and the weight gradient one GEMM `grad[cout, batch * positions] x windows`. A
//! transposed convolution's forward pass and input gradient stay Burn's flex operations; its
//! weight gradient is a product per sample of its input with the windows of the output's
//! gradient, summed over the batch. flex runs these GEMMs on every thread.
//!
//! [`conv2d`] and [`conv_transpose2d`] apply to one-group, undilated layers with a bias on
//! `f32` `flex` tensors (autodiff without checkpointing; for plain tensors only the
//! convolution, whose forward pass differs); other tensors go to the layer's own `forward`.

use super::flex_tensor::{
    AutodiffFlexTensor, LayerGradients, contiguous, layer_op, tensor, values,
};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::module;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, PadMode};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// A convolution (`transposed` or not): stride, padding `[(top, bottom), (left, right)]`
/// (for a transposed convolution, symmetric: `padding`, with `padding_out`), kernel `k x k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    transposed: bool,
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    padding_out: [usize; 2],
    kernel: [usize; 2],
}

fn plain(t: &FlexTensor) -> Tensor<4> {
    Tensor::from_primitive::<Flex>(t.clone())
}

fn plain1(t: &FlexTensor) -> Tensor<1> {
    Tensor::from_primitive::<Flex>(t.clone())
}

fn primitive<const D: usize>(t: Tensor<D>) -> FlexTensor {
    t.try_into_primitive::<Flex>()
        .unwrap_or_else(|_| unreachable!("a flex tensor"))
}

/// `[(before, after); 2]` "same" padding of Burn's `PaddingConfig2d` for one size.
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    // As burn-nn's padding.rs: the extra pixel of an odd total goes to the end.
    let out = size.div_ceil(stride);
    let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// `conv.forward(x)`, with the weight gradient as one matrix product on autodiff flex.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [kh, kw] = conv.kernel_size;
    let padding = match conv.padding {
        PaddingConfig2d::Same => [
            same_padding(kh, conv.stride[0], h),
            same_padding(kw, conv.stride[1], w),
        ],
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    };
    let geometry = Geometry {
        transposed: false,
        stride: conv.stride,
        padding,
        padding_out: [0, 0],
        kernel: conv.kernel_size,
    };
    let layer = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
    try_apply(layer, conv.dilation, conv.groups, &x, geometry).unwrap_or_else(|| conv.forward(x))
}

/// `conv.forward(x)`, with the weight gradient as one matrix product on autodiff flex.
pub fn conv_transpose2d(conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let geometry = Geometry {
        transposed: true,
        stride: conv.stride,
        padding: [
            (conv.padding[0], conv.padding[0]),
            (conv.padding[1], conv.padding[1]),
        ],
        padding_out: conv.padding_out,
        kernel: conv.kernel_size,
    };
    let layer = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
    try_apply(layer, conv.dilation, conv.groups, &x, geometry).unwrap_or_else(|| conv.forward(x))
}

/// The layer `(weight, bias)` applied through this module's operation, or `None` where it
/// does not apply.
fn try_apply(
    (weight, bias): (Tensor<4>, Option<Tensor<1>>),
    dilation: [usize; 2],
    groups: usize,
    x: &Tensor<4>,
    g: Geometry,
) -> Option<Tensor<4>> {
    let bias = bias?;
    if dilation != [1, 1] || groups != 1 || x.dtype() != DType::F32 || weight.dtype() != DType::F32
    {
        return None;
    }
    if let (Ok(xa), Ok(wa), Ok(ba)) = (
        x.clone().try_into_primitive::<Autodiff<Flex>>(),
        weight.clone().try_into_primitive::<Autodiff<Flex>>(),
        bias.clone().try_into_primitive::<Autodiff<Flex>>(),
    ) {
        return Some(Tensor::from_primitive::<Autodiff<Flex>>(autodiff_forward(
            xa, wa, ba, g,
        )));
    }
    // Plain tensors (inference): a convolution through its windows; a transposed one is
    // Burn's own forward already.
    let on_flex = x.clone().try_into_primitive::<Flex>().is_ok()
        && weight.clone().try_into_primitive::<Flex>().is_ok();
    (on_flex && !g.transposed).then(|| plain_conv(x.clone(), weight.clone(), bias, &g))
}

/// The input padded as the convolution pads it (transposed convolutions pad nothing here).
fn padded_input(x: Tensor<4>, g: &Geometry) -> Tensor<4> {
    if g.transposed || g.padding == [(0, 0), (0, 0)] {
        x
    } else {
        x.pad(g.padding, PadMode::Constant(0.0))
    }
}

/// A convolution's output from its windows `[batch * positions, cin * k * k]` as one GEMM
/// with the weights (flex would build the same windows per sample, in small tiles).
fn conv_from_windows(
    windows: &Tensor<2>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    [batch, oh, ow]: [usize; 3],
) -> Tensor<4> {
    let [cout, cin, kh, kw] = weight.dims();
    let weight = weight.reshape([cout, cin * kh * kw]).transpose();
    (windows.clone().matmul(weight) + bias.unsqueeze::<2>())
        .reshape([batch, oh, ow, cout])
        .permute([0, 3, 1, 2])
}

/// Output height and width of a convolution of the padded input `[_, _, hp, wp]`.
fn conv_out_size(xp_dims: [usize; 4], g: &Geometry) -> [usize; 2] {
    let [_, _, hp, wp] = xp_dims;
    [
        (hp - g.kernel[0]) / g.stride[0] + 1,
        (wp - g.kernel[1]) / g.stride[1] + 1,
    ]
}

/// A transposed convolution's output: Burn's flex operation.
fn transposed_forward(
    x: &Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    g: &Geometry,
) -> Tensor<4> {
    let [(ph, _), (pw, _)] = g.padding;
    module::conv_transpose2d(
        x.clone(),
        weight,
        Some(bias),
        ConvTransposeOptions::new(g.stride, [ph, pw], g.padding_out, [1, 1], 1),
    )
}

/// A convolution of plain tensors through its windows (inference).
fn plain_conv(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, g: &Geometry) -> Tensor<4> {
    let xp = padded_input(x, g);
    let [oh, ow] = conv_out_size(xp.dims(), g);
    let windows = windows(xp, g, [oh, ow]);
    let [batch, positions, width] = windows.dims();
    conv_from_windows(
        &windows.reshape([batch * positions, width]),
        weight,
        bias,
        [batch, oh, ow],
    )
}

/// The gradient with respect to the (padded, for a convolution) input.
fn input_grad(
    grad: Tensor<4>,
    weight: Tensor<4>,
    input_dims: [usize; 4],
    g: &Geometry,
) -> Tensor<4> {
    let [_, _, h, w] = input_dims;
    if g.transposed {
        let [(ph, _), (pw, _)] = g.padding;
        let dx = module::conv2d(
            grad,
            weight,
            None,
            ConvOptions::new(g.stride, [ph, pw], [1, 1], 1),
        );
        let [_, _, dh, dw] = dx.dims();
        let dx = if dh > h { dx.narrow(2, 0, h) } else { dx };
        if dw > w { dx.narrow(3, 0, w) } else { dx }
    } else {
        // The transpose of a padding-free convolution of the padded input; `padding_out`
        // restores the rows and columns the stride skipped at the end.
        let [_, _, oh, ow] = grad.dims();
        let [kh, kw] = g.kernel;
        let [(top, bottom), (left, right)] = g.padding;
        let (hp, wp) = (h + top + bottom, w + left + right);
        let out = [
            hp - ((oh - 1) * g.stride[0] + kh),
            wp - ((ow - 1) * g.stride[1] + kw),
        ];
        let dxp = module::conv_transpose2d(
            grad,
            weight,
            None,
            ConvTransposeOptions::new(g.stride, [0, 0], out, [1, 1], 1),
        );
        if g.padding == [(0, 0), (0, 0)] {
            dxp
        } else {
            dxp.narrow(2, top, h).narrow(3, left, w)
        }
    }
}

/// `[batch, rows * cols, channels * kh * kw]`: for every sample and output position, the
/// stride-`s` window of `maps` (already padded) it reads, as one row.
fn windows(maps: Tensor<4>, g: &Geometry, [rows, cols]: [usize; 2]) -> Tensor<3> {
    let [batch, channels, hp, wp] = maps.dims();
    let [kh, kw] = g.kernel;
    let [sy, sx] = g.stride;
    let maps = contiguous(&primitive(maps));
    let maps = values(&maps);
    let (plane, width) = (hp * wp, channels * kh * kw);
    let mut out = vec![0.0f32; batch * rows * cols * width];
    if !out.is_empty() {
        out.par_chunks_mut(rows * cols * width)
            .enumerate()
            .for_each(|(b, out)| {
                let maps = &maps[b * channels * plane..(b + 1) * channels * plane];
                for (position, row) in out.chunks_exact_mut(width).enumerate() {
                    let (oy, ox) = (position / cols, position % cols);
                    let mut taps = row.chunks_exact_mut(kw);
                    for c in 0..channels {
                        for ky in 0..kh {
                            let start = c * plane + (sy * oy + ky) * wp + sx * ox;
                            let dst = taps.next().expect("kh * kw values per channel");
                            let src = &maps[start..start + kw];
                            // A fixed-size copy for 3x3 kernels: a `memcpy` call per three
                            // values made this gather 14% of the conv VAE's step.
                            if let (Ok(dst), Ok(src)) = (
                                <&mut [f32; 3]>::try_from(&mut *dst),
                                <&[f32; 3]>::try_from(src),
                            ) {
                                *dst = *src;
                            } else {
                                dst.copy_from_slice(src);
                            }
                        }
                    }
                }
            });
    }
    Tensor::from_primitive::<Flex>(tensor(out, &[batch, rows * cols, width]))
}

/// `[batch, channels, h * w]`: a free reshape.
fn flat_maps(maps: Tensor<4>) -> Tensor<3> {
    let [batch, channels, h, w] = maps.dims();
    maps.reshape([batch, channels, h * w])
}

/// The weight gradient: `[cout, cin, kh, kw]` for a convolution, `[cin, cout, kh, kw]` for
/// a transposed one; one product per sample (flex runs them on all threads), summed.
fn weight_grad(xp: Tensor<4>, grad: Tensor<4>, weight_dims: [usize; 4], g: &Geometry) -> Tensor<4> {
    let per_sample = if g.transposed {
        // dW[ci, co, ky, kx] = sum x[b, ci, iy, ix] * grad[b, co, s iy + ky - p, s ix + kx - p]
        let [_, _, h, w] = xp.dims();
        let [(ph, _), (pw, _)] = g.padding;
        let grad = grad.pad([(ph, ph), (pw, pw)], PadMode::Constant(0.0));
        flat_maps(xp).matmul(windows(grad, g, [h, w]))
    } else {
        // dW[co, ci, ky, kx] = sum grad[b, co, oy, ox] * xp[b, ci, s oy + ky, s ox + kx]
        let [_, _, oh, ow] = grad.dims();
        flat_maps(grad).matmul(windows(xp, g, [oh, ow]))
    };
    per_sample.sum_dim(0).reshape(weight_dims)
}

/// A convolution's weight gradient from its forward windows `[batch * positions, cin k k]`:
/// `grad[cout, batch * positions] x windows`, one GEMM.
fn conv_weight_grad_from_windows(
    windows: Tensor<2>,
    grad: Tensor<4>,
    weight_dims: [usize; 4],
) -> Tensor<4> {
    let [batch, cout, oh, ow] = grad.dims();
    grad.permute([0, 2, 3, 1])
        .reshape([batch * oh * ow, cout])
        .transpose()
        .matmul(windows)
        .reshape(weight_dims)
}

#[derive(Debug, Clone)]
struct GemmConvState {
    /// For the weights' gradient: a transposed convolution's input, or a convolution's
    /// windows `[batch * positions, cin * k * k]` (gathered once, in the forward pass).
    input: Option<FlexTensor>,
    /// The weights, for the input's gradient.
    weight: Option<FlexTensor>,
    input_dims: [usize; 4],
    weight_dims: [usize; 4],
    geometry: Geometry,
}

impl LayerGradients for GemmConvState {
    fn input_grad(&self, upstream: &FlexTensor) -> FlexTensor {
        let weight = plain(self.weight.as_ref().expect("kept for the input's gradient"));
        primitive(input_grad(
            plain(upstream),
            weight,
            self.input_dims,
            &self.geometry,
        ))
    }

    fn param_grads(&self, upstream: &FlexTensor) -> (FlexTensor, FlexTensor) {
        let (g, grad) = (&self.geometry, plain(upstream));
        let input = self.input.clone().expect("kept for the weights' gradient");
        let dw = if g.transposed {
            weight_grad(plain(&input), grad.clone(), self.weight_dims, g)
        } else {
            let windows: Tensor<2> = Tensor::from_primitive::<Flex>(input);
            conv_weight_grad_from_windows(windows, grad.clone(), self.weight_dims)
        };
        let [_, channels, _, _] = grad.dims();
        let db = grad.sum_dim(0).sum_dim(2).sum_dim(3).reshape([channels]);
        (primitive(dw), primitive(db))
    }
}

fn autodiff_forward(
    x: AutodiffFlexTensor,
    weight: AutodiffFlexTensor,
    bias: AutodiffFlexTensor,
    g: Geometry,
) -> AutodiffFlexTensor {
    layer_op(x, weight, bias, |x, weight, bias, wanted| {
        let input = plain(x);
        let input_dims = input.dims();
        let xp = padded_input(input, &g);
        let w = plain(weight);
        let weight_dims = w.dims();
        let bias = plain1(bias);
        let (out, kept) = if g.transposed {
            (transposed_forward(&xp, w, bias, &g), primitive(xp))
        } else {
            let [oh, ow] = conv_out_size(xp.dims(), &g);
            let windows = windows(xp, &g, [oh, ow]);
            let [batch, positions, width] = windows.dims();
            let windows = windows.reshape([batch * positions, width]);
            let out = conv_from_windows(&windows, w, bias, [batch, oh, ow]);
            (out, primitive(windows))
        };
        let state = GemmConvState {
            input: wanted.params.then_some(kept),
            weight: wanted.input.then(|| weight.clone()),
            input_dims,
            weight_dims,
            geometry: g,
        };
        (primitive(out), state)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::flex_tensor::to_vec;
    use burn::module::Module;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::{Device, Distribution};

    fn assert_close(name: &str, ours: &[f32], burn: &[f32]) {
        assert_eq!(ours.len(), burn.len(), "{name}: sizes");
        let scale = burn.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let worst = ours
            .iter()
            .zip(burn)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= 2e-5 * scale,
            "{name}: worst {worst} vs scale {scale}"
        );
    }

    /// Runs `ours` and `theirs` (Burn's layer) on the same autodiff input and upstream
    /// gradient; compares outputs and the input, weight and bias gradients.
    fn compare<M: Module + Clone>(
        name: &str,
        layer: &M,
        input: [usize; 4],
        ours: impl Fn(&M, Tensor<4>) -> Tensor<4>,
        theirs: impl Fn(&M, Tensor<4>) -> Tensor<4>,
        params: impl Fn(&M) -> (Tensor<4>, Tensor<1>),
    ) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        let probe = theirs(layer, x.clone());
        let upstream = Tensor::<4>::random(probe.dims(), Distribution::Normal(0.0, 1.0), &device);
        let mut results = Vec::new();
        for direct in [true, false] {
            let layer = layer.clone();
            let x = Tensor::<4>::from_data(x.to_data(), &device).require_grad();
            let y = if direct {
                ours(&layer, x.clone())
            } else {
                theirs(&layer, x.clone())
            };
            let value = to_vec(y.clone());
            let grads = (y * upstream.clone()).sum().backward();
            let (w, b) = params(&layer);
            results.push([
                value,
                to_vec(x.grad(&grads).unwrap()),
                to_vec(w.grad(&grads).unwrap()),
                to_vec(b.grad(&grads).unwrap()),
            ]);
        }
        for (i, part) in ["output", "dx", "dweight", "dbias"].iter().enumerate() {
            assert_close(&format!("{name} {part}"), &results[0][i], &results[1][i]);
        }
    }

    #[test]
    fn strided_convolutions_match_burn() {
        let device = Device::flex().autodiff();
        device.seed(9);
        for (cin, cout, size, stride, padding) in [
            (1, 32, 28, 2, PaddingConfig2d::Same),
            (32, 64, 14, 2, PaddingConfig2d::Same),
            (3, 5, 7, 2, PaddingConfig2d::Same),
            (4, 6, 9, 3, PaddingConfig2d::Explicit(1, 0, 2, 1)),
            (2, 3, 8, 2, PaddingConfig2d::Valid),
        ] {
            let conv = Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding(padding.clone())
                .init(&device);
            // Inference on plain tensors goes through the windows as well.
            let inference = conv.valid();
            let x = Tensor::<4>::random(
                [2, cin, size, size],
                Distribution::Normal(0.0, 1.0),
                &Device::flex(),
            );
            let bias = inference.bias.as_ref().map(|b| b.val());
            let geometry_checked = try_apply(
                (inference.weight.val(), bias),
                [1, 1],
                1,
                &x,
                Geometry {
                    transposed: false,
                    stride: [stride, stride],
                    padding: [(0, 0), (0, 0)],
                    padding_out: [0, 0],
                    kernel: [3, 3],
                },
            );
            assert!(geometry_checked.is_some(), "the plain path applies");
            assert_close(
                &format!("plain conv {cin}->{cout} {size} s{stride}"),
                &to_vec(conv2d(&inference, x.clone())),
                &to_vec(inference.forward(x)),
            );
            compare(
                &format!("conv {cin}->{cout} {size} s{stride} {padding:?}"),
                &conv,
                [3, cin, size, size],
                conv2d,
                |c, x| c.forward(x),
                |c| (c.weight.val(), c.bias.as_ref().unwrap().val()),
            );
        }
    }

    #[test]
    fn transposed_convolutions_match_burn() {
        let device = Device::flex().autodiff();
        device.seed(10);
        for (cin, cout, size, k, padding, padding_out) in [
            (64, 64, 7, 3, 1, 1),
            (64, 32, 14, 3, 1, 1),
            (3, 5, 5, 4, 1, 0),
            (2, 3, 6, 3, 0, 1),
        ] {
            let conv = ConvTranspose2dConfig::new([cin, cout], [k, k])
                .with_stride([2, 2])
                .with_padding([padding, padding])
                .with_padding_out([padding_out, padding_out])
                .init(&device);
            compare(
                &format!("tconv {cin}->{cout} {size} k{k} p{padding} po{padding_out}"),
                &conv,
                [2, cin, size, size],
                conv_transpose2d,
                |c, x| c.forward(x),
                |c| (c.weight.val(), c.bias.as_ref().unwrap().val()),
            );
        }
    }
}
