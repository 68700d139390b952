//! A direct "same" 2-D convolution for small channel counts on Burn's `flex` backend, with its
//! gradients registered through `burn-autodiff`'s `Backward` extension point
//! (`flex_tensor::layer_op`).
//!
//! Why: flex computes every convolution as im2col + GEMM, and its backward pass with Burn's
//! generic rules (a transposed convolution for the input's gradient, a convolution with
//! swapped batch and channel axes for the weights'). With 1 to 16 channels the GEMMs are
//! matrix-vector products, so the im2col copies (nine times the input) dominate and the whole
//! convolution runs at about 1 GFLOP/s; the weight gradient of a 1-channel input is a single
//! task (see `bench/results/2026-11-24-profile.txt`).
//!
//! How: every input plane is copied once into a zero-bordered plane `(h + k - 1) x (w + k - 1)`.
//! In that layout the output at row `y`, column `x` sits at position `q = y * wp + x` (`wp`
//! the padded width) and the kernel tap `(ky, kx)` reads position `q + ky * wp + kx`, so one
//! output channel is, for every input channel and tap, a scaled copy of a *contiguous* run of
//! the padded plane. The kernel keeps a block of positions for up to four output channels in
//! vector registers and accumulates all taps into it (the columns past `w` of each row are
//! computed and thrown away: `k - 1` per row). The input's gradient is the same kernel on the
//! output's gradient with the flipped, transposed weights; the weights' gradient is, for every
//! tap, a dot product of the output's gradient with the shifted padded input, summed over the
//! batch in fixed chunks (so the result does not depend on the thread count).
//!
//! [`conv2d`] applies it to a [`Conv2d`] with an odd square kernel, stride 1, symmetric
//! "same" padding, no dilation, one group and a bias, on `f32` `flex` tensors (plain, or
//! autodiff without checkpointing); any other layer or backend goes to `Conv2d::forward`.

use super::flex_tensor::{
    AutodiffFlexTensor, LayerGradients, contiguous, layer_op, on_autodiff_flex, on_plain_flex,
    relu_value, tensor, values,
};
use super::madd;
use burn::backend::flex::FlexTensor;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// The padded span of output positions is a multiple of this (the widest register block).
const SPAN_ALIGN: usize = 64;
/// Samples per task of the weight gradient (and per term of its fixed summation order).
const SAMPLES_PER_TASK: usize = 4;

/// The shape of one convolution: `[batch, cin, h, w]` in, `[batch, cout, h, w]` out, a
/// `k x k` kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
}

impl Geometry {
    /// Width of a padded plane.
    fn wp(&self) -> usize {
        self.w + self.k - 1
    }
    /// Values in a padded plane.
    fn plane(&self) -> usize {
        (self.h + self.k - 1) * self.wp()
    }
    /// Output positions computed per channel (`y * wp + x` up to the last valid one), rounded
    /// up to [`SPAN_ALIGN`].
    fn span(&self) -> usize {
        ((self.h - 1) * self.wp() + self.w).next_multiple_of(SPAN_ALIGN)
    }
    /// Length of a buffer of `channels` padded planes: the reads of the last block of
    /// positions may run up to [`SPAN_ALIGN`] values past the last plane.
    fn padded_len(&self, channels: usize) -> usize {
        channels * self.plane() + SPAN_ALIGN
    }
    fn taps(&self) -> usize {
        self.k * self.k
    }
    /// The same convolution with input and output swapped (the input gradient's).
    fn transposed(&self) -> Geometry {
        Geometry {
            cin: self.cout,
            cout: self.cin,
            ..*self
        }
    }
}

/// The instruction set the kernels run with (chosen at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    Portable,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Copies `channels` planes `h x w` into the interior of zero-bordered padded planes. Only
/// the interior is written: the borders stay as they were (zero when `dst` started zeroed).
fn pad_planes(src: &[f32], g: &Geometry, channels: usize, dst: &mut [f32]) {
    let (h, w, wp, plane, p) = (g.h, g.w, g.wp(), g.plane(), (g.k - 1) / 2);
    for c in 0..channels {
        let src = &src[c * h * w..(c + 1) * h * w];
        let dst = &mut dst[c * plane..(c + 1) * plane];
        for y in 0..h {
            let start = (y + p) * wp + p;
            dst[start..start + w].copy_from_slice(&src[y * w..(y + 1) * w]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Forward (and input gradient): one sample.

/// What the convolution does to its sums as it writes them: the bias it starts them at (per
/// output channel), and a ReLU (see `flex_tensor::layer_op`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// `out[co] = bias[co] + sum over ci, taps of weights[co][ci][tap] * shifted xpad[ci]` for one
/// sample; `block` is scratch of `4 * span` values.
#[inline(always)]
fn conv_sample<const FMA: bool, const P: usize>(
    xpad: &[f32],
    weights: &[f32],
    epilogue: Epilogue,
    g: &Geometry,
    out: &mut [f32],
    block: &mut [f32],
) {
    let mut co = 0;
    while co < g.cout {
        let n = (g.cout - co).min(4);
        match n {
            1 => channel_block::<1, FMA, P>(xpad, weights, epilogue, g, co, out, block),
            2 => channel_block::<2, FMA, P>(xpad, weights, epilogue, g, co, out, block),
            3 => channel_block::<3, FMA, P>(xpad, weights, epilogue, g, co, out, block),
            _ => channel_block::<4, FMA, P>(xpad, weights, epilogue, g, co, out, block),
        }
        co += n;
    }
}

/// Output channels `co0 .. co0 + CO` of one sample, `P` positions at a time in registers.
#[inline(always)]
fn channel_block<const CO: usize, const FMA: bool, const P: usize>(
    xpad: &[f32],
    weights: &[f32],
    epilogue: Epilogue,
    g: &Geometry,
    co0: usize,
    out: &mut [f32],
    block: &mut [f32],
) {
    let (k, wp, plane, span, taps) = (g.k, g.wp(), g.plane(), g.span(), g.taps());
    for q0 in (0..span).step_by(P) {
        let mut acc = [[0.0f32; P]; CO];
        if let Some(bias) = epilogue.bias {
            for (c, acc) in acc.iter_mut().enumerate() {
                *acc = [bias[co0 + c]; P];
            }
        }
        for ci in 0..g.cin {
            let weight_rows: [usize; CO] = std::array::from_fn(|c| ((co0 + c) * g.cin + ci) * taps);
            for ky in 0..k {
                for kx in 0..k {
                    let start = ci * plane + ky * wp + kx + q0;
                    let xs: &[f32; P] = xpad[start..start + P].try_into().expect("P values");
                    let tap = ky * k + kx;
                    for c in 0..CO {
                        let wv = weights[weight_rows[c] + tap];
                        let acc = &mut acc[c];
                        for p in 0..P {
                            acc[p] = madd::<FMA>(wv, xs[p], acc[p]);
                        }
                    }
                }
            }
        }
        for (c, acc) in acc.iter().enumerate() {
            block[c * span + q0..c * span + q0 + P].copy_from_slice(acc);
        }
    }
    // Keep the valid columns of every row.
    let (h, w) = (g.h, g.w);
    for c in 0..CO {
        let src = &block[c * span..(c + 1) * span];
        let dst = &mut out[(co0 + c) * h * w..(co0 + c + 1) * h * w];
        for y in 0..h {
            let (dst, src) = (&mut dst[y * w..(y + 1) * w], &src[y * wp..y * wp + w]);
            if epilogue.relu {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = relu_value(v);
                }
            } else {
                dst.copy_from_slice(src);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn conv_sample_avx512(
    xpad: &[f32],
    weights: &[f32],
    epilogue: Epilogue,
    g: &Geometry,
    out: &mut [f32],
    block: &mut [f32],
) {
    conv_sample::<true, 64>(xpad, weights, epilogue, g, out, block)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn conv_sample_avx2(
    xpad: &[f32],
    weights: &[f32],
    epilogue: Epilogue,
    g: &Geometry,
    out: &mut [f32],
    block: &mut [f32],
) {
    conv_sample::<true, 32>(xpad, weights, epilogue, g, out, block)
}

fn conv_sample_dispatch(
    isa: Isa,
    xpad: &[f32],
    weights: &[f32],
    epilogue: Epilogue,
    g: &Geometry,
    out: &mut [f32],
    block: &mut [f32],
) {
    match isa {
        // SAFETY: `isa()` found these instruction sets on this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { conv_sample_avx512(xpad, weights, epilogue, g, out, block) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { conv_sample_avx2(xpad, weights, epilogue, g, out, block) },
        _ => conv_sample::<false, 16>(xpad, weights, epilogue, g, out, block),
    }
}

/// The "same" convolution of a batch `x` `[batch, cin, h, w]` with `weights`
/// `[cout, cin, k, k]`, the bias and ReLU of `epilogue`: `[batch, cout, h, w]`.
pub(crate) fn forward(x: &[f32], weights: &[f32], epilogue: Epilogue, g: &Geometry) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.cin * g.h * g.w, "input size");
    assert_eq!(weights.len(), g.cout * g.cin * g.taps(), "weight size");
    let isa = isa();
    let (in_len, out_len) = (g.cin * g.h * g.w, g.cout * g.h * g.w);
    let mut out = vec![0.0f32; g.batch * out_len];
    if out_len == 0 {
        return out;
    }
    out.par_chunks_mut(out_len).enumerate().for_each_init(
        || {
            (
                vec![0.0f32; g.padded_len(g.cin)],
                vec![0.0f32; 4 * g.span()],
            )
        },
        |(xpad, block), (b, out)| {
            pad_planes(&x[b * in_len..(b + 1) * in_len], g, g.cin, xpad);
            conv_sample_dispatch(isa, xpad, weights, epilogue, g, out, block);
        },
    );
    out
}

/// The gradient with respect to the input of [`forward`], given the output's gradient.
pub(crate) fn input_grad(grad: &[f32], weights: &[f32], g: &Geometry) -> Vec<f32> {
    // dx[ci][y][x] = sum over co, taps of w[co][ci][ky][kx] * grad[co][y - ky + p][x - kx + p]:
    // a "same" convolution of the gradient with w'[ci][co][t] = w[co][ci][taps - 1 - t].
    let taps = g.taps();
    let mut flipped = vec![0.0f32; weights.len()];
    for co in 0..g.cout {
        for ci in 0..g.cin {
            for t in 0..taps {
                flipped[(ci * g.cout + co) * taps + t] =
                    weights[(co * g.cin + ci) * taps + taps - 1 - t];
            }
        }
    }
    let plain = Epilogue {
        bias: None,
        relu: false,
    };
    forward(grad, &flipped, plain, &g.transposed())
}

// ---------------------------------------------------------------------------------------------
// Weight gradient.

/// `sums[t] += sum over q of gq[q] * xpad[base + offsets[t] + q]` for `T` taps at once.
#[inline(always)]
fn tap_dots<const T: usize, const FMA: bool, const V: usize>(
    gq: &[f32],
    xpad: &[f32],
    base: usize,
    offsets: [usize; T],
    sums: &mut [f32],
) {
    let mut acc = [[0.0f32; V]; T];
    for q0 in (0..gq.len()).step_by(V) {
        let gv: &[f32; V] = gq[q0..q0 + V].try_into().expect("V values");
        for t in 0..T {
            let start = base + offsets[t] + q0;
            let xs: &[f32; V] = xpad[start..start + V].try_into().expect("V values");
            let acc = &mut acc[t];
            for p in 0..V {
                acc[p] = madd::<FMA>(gv[p], xs[p], acc[p]);
            }
        }
    }
    for t in 0..T {
        sums[t] += acc[t].iter().sum::<f32>();
    }
}

/// Adds one sample's weight and bias gradients to `dw` (`[cout, cin, k, k]` then `[cout]`);
/// `gq` holds the output gradient in the padded-width layout, zero outside the valid columns.
#[inline(always)]
fn weight_grad_sample<const FMA: bool, const V: usize>(
    xpad: &[f32],
    gq: &[f32],
    g: &Geometry,
    dw: &mut [f32],
) {
    let (k, wp, plane, span, taps) = (g.k, g.wp(), g.plane(), g.span(), g.taps());
    let (weights, bias) = dw.split_at_mut(g.cout * g.cin * taps);
    for co in 0..g.cout {
        let gq = &gq[co * span..(co + 1) * span];
        let mut lanes = [0.0f32; V];
        for chunk in gq.chunks_exact(V) {
            for p in 0..V {
                lanes[p] += chunk[p];
            }
        }
        bias[co] += lanes.iter().sum::<f32>();
        for ci in 0..g.cin {
            let sums = &mut weights[(co * g.cin + ci) * taps..(co * g.cin + ci + 1) * taps];
            let base = ci * plane;
            if k == 3 {
                let offsets: [usize; 9] = std::array::from_fn(|t| (t / 3) * wp + t % 3);
                tap_dots::<9, FMA, V>(gq, xpad, base, offsets, sums);
            } else {
                for t in 0..taps {
                    let offset = (t / k) * wp + t % k;
                    tap_dots::<1, FMA, V>(gq, xpad, base, [offset], &mut sums[t..t + 1]);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn weight_grad_sample_avx512(xpad: &[f32], gq: &[f32], g: &Geometry, dw: &mut [f32]) {
    weight_grad_sample::<true, 16>(xpad, gq, g, dw)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn weight_grad_sample_avx2(xpad: &[f32], gq: &[f32], g: &Geometry, dw: &mut [f32]) {
    weight_grad_sample::<true, 8>(xpad, gq, g, dw)
}

fn weight_grad_sample_dispatch(isa: Isa, xpad: &[f32], gq: &[f32], g: &Geometry, dw: &mut [f32]) {
    match isa {
        // SAFETY: `isa()` found these instruction sets on this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { weight_grad_sample_avx512(xpad, gq, g, dw) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { weight_grad_sample_avx2(xpad, gq, g, dw) },
        _ => weight_grad_sample::<false, 8>(xpad, gq, g, dw),
    }
}

/// The gradients with respect to the weights (`[cout, cin, k, k]`) and the bias (`[cout]`)
/// of [`forward`], given its input and the output's gradient.
pub(crate) fn weight_grad(x: &[f32], grad: &[f32], g: &Geometry) -> (Vec<f32>, Vec<f32>) {
    let isa = isa();
    let (in_len, out_len) = (g.cin * g.h * g.w, g.cout * g.h * g.w);
    let (wp, span, weight_len) = (g.wp(), g.span(), g.cout * g.cin * g.taps());
    let starts: Vec<usize> = (0..g.batch).step_by(SAMPLES_PER_TASK).collect();
    let partials: Vec<Vec<f32>> = starts
        .par_iter()
        .map(|&b0| {
            let mut dw = vec![0.0f32; weight_len + g.cout];
            let mut xpad = vec![0.0f32; g.padded_len(g.cin)];
            // Zero outside the valid columns, which are rewritten for every sample.
            let mut gq = vec![0.0f32; g.cout * span];
            for b in b0..(b0 + SAMPLES_PER_TASK).min(g.batch) {
                pad_planes(&x[b * in_len..(b + 1) * in_len], g, g.cin, &mut xpad);
                let grad = &grad[b * out_len..(b + 1) * out_len];
                for co in 0..g.cout {
                    for y in 0..g.h {
                        let src = &grad[(co * g.h + y) * g.w..(co * g.h + y + 1) * g.w];
                        gq[co * span + y * wp..co * span + y * wp + g.w].copy_from_slice(src);
                    }
                }
                weight_grad_sample_dispatch(isa, &xpad, &gq, g, &mut dw);
            }
            dw
        })
        .collect();
    // Summed in the order of the chunks: the same result for any number of threads.
    let mut total = vec![0.0f32; weight_len + g.cout];
    for partial in &partials {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    let bias = total.split_off(weight_len);
    (total, bias)
}

// ---------------------------------------------------------------------------------------------
// Tensor-level entry point and autodiff registration.

/// `conv.forward(x)`, through the direct kernel where it applies (see the module's doc),
/// else through [`super::gemm_conv::conv2d`].
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match try_conv2d(conv, &x, false) {
        Some(y) => y,
        // Strided and other layers: Burn's forward, the weight gradient as one GEMM.
        None => super::gemm_conv::conv2d(conv, x),
    }
}

/// `relu(conv.forward(x))`, the ReLU applied as the output is written (and its gradient
/// in the layer's backward step), as [`conv2d`] chooses the kernel.
pub fn conv2d_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match try_conv2d(conv, &x, true) {
        Some(y) => y,
        None => super::gemm_conv::conv2d_relu(conv, x),
    }
}

/// The direct kernel's result, or `None` where it does not apply.
fn try_conv2d(conv: &Conv2d, x: &Tensor<4>, relu: bool) -> Option<Tensor<4>> {
    let [k, kw] = conv.kernel_size;
    let p = (k.max(1) - 1) / 2;
    let same = match conv.padding {
        PaddingConfig2d::Same => true,
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            [top, left, bottom, right] == [p, p, p, p]
        }
        PaddingConfig2d::Valid => k == 1,
    };
    let bias = conv.bias.as_ref()?;
    let weight = conv.weight.val();
    let [batch, cin, h, w] = x.dims();
    let [cout, wcin, _, _] = weight.dims();
    if k != kw
        || k % 2 == 0
        || !same
        || conv.stride != [1, 1]
        || conv.dilation != [1, 1]
        || conv.groups != 1
        || wcin != cin
        || h == 0
        || w == 0
        || x.dtype() != DType::F32
        || weight.dtype() != DType::F32
    {
        return None;
    }
    let g = Geometry {
        batch,
        cin,
        cout,
        h,
        w,
        k,
    };
    let bias = bias.val();
    let layer = (x, &weight, &bias);
    on_autodiff_flex(layer, |x, w, b| autodiff_forward(x, w, b, g, relu))
        .or_else(|| on_plain_flex(layer, |x, w, b| plain_forward(x, w, b, &g, relu)))
}

fn plain_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    g: &Geometry,
    relu: bool,
) -> FlexTensor {
    let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
    let epilogue = Epilogue {
        bias: Some(values(&bias)),
        relu,
    };
    let out = forward(values(&x), values(&weight), epilogue, g);
    tensor(out, &[g.batch, g.cout, g.h, g.w])
}

/// What the backward pass needs: the input for the weights' gradient, the weights for the
/// input's.
#[derive(Debug, Clone)]
struct ConvState {
    input: Option<FlexTensor>,
    weight: Option<FlexTensor>,
    geometry: Geometry,
}

impl LayerGradients for ConvState {
    fn input_grad(&self, upstream: &FlexTensor) -> FlexTensor {
        let g = &self.geometry;
        let weight = contiguous(self.weight.as_ref().expect("kept for the input's gradient"));
        let dx = input_grad(values(&contiguous(upstream)), values(&weight), g);
        tensor(dx, &[g.batch, g.cin, g.h, g.w])
    }

    fn param_grads(&self, upstream: &FlexTensor) -> (FlexTensor, FlexTensor) {
        let g = &self.geometry;
        let input = contiguous(self.input.as_ref().expect("kept for the weights' gradient"));
        let (dw, db) = weight_grad(values(&input), values(&contiguous(upstream)), g);
        (
            tensor(dw, &[g.cout, g.cin, g.k, g.k]),
            tensor(db, &[g.cout]),
        )
    }
}

fn autodiff_forward(
    x: AutodiffFlexTensor,
    weight: AutodiffFlexTensor,
    bias: AutodiffFlexTensor,
    g: Geometry,
    relu: bool,
) -> AutodiffFlexTensor {
    layer_op(x, weight, bias, relu, |x, weight, bias, wanted| {
        let state = ConvState {
            input: wanted.params.then(|| x.clone()),
            weight: wanted.input.then(|| weight.clone()),
            geometry: g,
        };
        (plain_forward(x, weight, bias, &g, relu), state)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::flex_tensor::to_vec;
    use burn::module::Module;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, activation};

    fn max_abs(v: &[f32]) -> f32 {
        v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
    }

    fn assert_close(name: &str, ours: &[f32], burn: &[f32], tolerance: f32) {
        assert_eq!(ours.len(), burn.len(), "{name}: sizes");
        let scale = max_abs(burn).max(1e-6);
        let worst = ours
            .iter()
            .zip(burn)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= tolerance * scale,
            "{name}: worst {worst} vs scale {scale}"
        );
    }

    /// Output, input gradient, weight and bias gradients equal Burn's `Conv2d` on the same
    /// values, for channel counts on and off the block of four, odd sizes and a 5x5 kernel.
    #[test]
    fn matches_burn_conv2d_forward_and_backward() {
        let plain = Device::flex();
        let autodiff = plain.clone().autodiff();
        plain.seed(11);
        for (batch, cin, cout, h, w, k, padding) in [
            (3, 1, 16, 28, 28, 3, PaddingConfig2d::Same),
            (2, 16, 8, 14, 14, 3, PaddingConfig2d::Same),
            (5, 8, 8, 7, 7, 3, PaddingConfig2d::Explicit(1, 1, 1, 1)),
            (2, 8, 8, 4, 4, 3, PaddingConfig2d::Same),
            (3, 16, 1, 28, 28, 3, PaddingConfig2d::Same),
            (2, 3, 6, 13, 17, 5, PaddingConfig2d::Same),
            (1, 5, 7, 1, 9, 3, PaddingConfig2d::Same),
        ] {
            for relu in [false, true] {
                let name = format!("{batch}x{cin}->{cout} {h}x{w} k{k} relu {relu}");
                let config = Conv2dConfig::new([cin, cout], [k, k]).with_padding(padding.clone());
                let conv = config.init(&plain);
                let burn = |conv: &Conv2d, x: Tensor<4>| {
                    let y = conv.forward(x);
                    if relu { activation::relu(y) } else { y }
                };
                let x =
                    Tensor::<4>::random([batch, cin, h, w], Distribution::Normal(0.0, 1.0), &plain);
                let ours = try_conv2d(&conv, &x, relu).expect("the direct kernel applies");
                assert_close(&name, &to_vec(ours), &to_vec(burn(&conv, x.clone())), 1e-5);

                // Gradients, with a non-uniform upstream gradient.
                let record = conv.clone().into_record();
                let upstream = Tensor::<4>::random(
                    [batch, cout, h, w],
                    Distribution::Normal(0.0, 1.0),
                    &plain,
                );
                let mut results = Vec::new();
                for direct in [true, false] {
                    let conv = config.init(&autodiff).load_record(record.clone());
                    let x = Tensor::<4>::from_data(x.to_data(), &autodiff).require_grad();
                    let u = Tensor::<4>::from_data(upstream.to_data(), &autodiff);
                    let y = if direct {
                        try_conv2d(&conv, &x, relu).expect("applies on autodiff")
                    } else {
                        burn(&conv, x.clone())
                    };
                    let grads = (y * u).sum().backward();
                    results.push([
                        to_vec(x.grad(&grads).unwrap()),
                        to_vec(conv.weight.val().grad(&grads).unwrap()),
                        to_vec(conv.bias.as_ref().unwrap().val().grad(&grads).unwrap()),
                    ]);
                }
                for (i, part) in ["input", "weight", "bias"].iter().enumerate() {
                    assert_close(
                        &format!("{name} d{part}"),
                        &results[0][i],
                        &results[1][i],
                        2e-5,
                    );
                }
            }
        }
    }

    #[test]
    fn layers_the_kernel_does_not_cover_go_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 2, 6, 6], &device);
        for config in [
            Conv2dConfig::new([2, 3], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Same),
            Conv2dConfig::new([2, 3], [3, 3]),
            Conv2dConfig::new([2, 3], [2, 2]).with_padding(PaddingConfig2d::Same),
            Conv2dConfig::new([2, 3], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false),
            Conv2dConfig::new([2, 4], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .with_groups(2),
        ] {
            let conv = config.init(&device);
            assert!(try_conv2d(&conv, &x, false).is_none(), "{config:?}");
            // The public entry point still computes it.
            let _ = conv2d(&conv, x.clone());
        }
    }

    #[test]
    fn the_weight_gradient_does_not_depend_on_the_thread_count() {
        let g = Geometry {
            batch: 13,
            cin: 3,
            cout: 5,
            h: 9,
            w: 11,
            k: 3,
        };
        let values = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32
                        / 500.0
                        - 1.0
                })
                .collect()
        };
        let x = values(g.batch * g.cin * g.h * g.w, 1);
        let grad = values(g.batch * g.cout * g.h * g.w, 2);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| weight_grad(&x, &grad, &g))
        };
        let (one, three) = (run(1), run(3));
        assert_eq!(one, three);
    }
}
