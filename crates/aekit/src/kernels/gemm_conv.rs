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
//! transposed convolution's input and weight gradients are products per sample with the
//! windows of the output's gradient (the weight gradient summed over the batch). A transposed
//! convolution's forward pass and a convolution's input gradient are the same sum, computed
//! as one GEMM per sample followed by col2im (`scatter_conv`). The samples are spread over
//! the threads.
//!
//! [`conv2d`] and [`conv_transpose2d`] apply to one-group, undilated layers with a bias on
//! `f32` `flex` tensors (autodiff without checkpointing, and plain tensors for inference);
//! other tensors go to the layer's own `forward`.

use super::flex_tensor::{
    AutodiffFlexTensor, LayerGradients, LayerGrads, contiguous, layer_op, on_autodiff_flex,
    separate_grads, tensor, values,
};
use super::matmul::{Matrix, serial_product};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::ops::PadMode;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

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
    let trained = on_autodiff_flex((x, &weight, &bias), |x, w, b| autodiff_forward(x, w, b, g));
    if trained.is_some() {
        return trained;
    }
    // Plain tensors (inference): a convolution through its windows, a transposed one as its
    // sum of products.
    let on_flex = x.clone().try_into_primitive::<Flex>().is_ok()
        && weight.clone().try_into_primitive::<Flex>().is_ok();
    if !on_flex {
        return None;
    }
    if g.transposed {
        let (x, weight, bias) = (primitive(x.clone()), primitive(weight), primitive(bias));
        return Some(Tensor::from_primitive::<Flex>(transposed_forward(
            &x, &weight, &bias, &g,
        )));
    }
    Some(plain_conv(x.clone(), weight, bias, &g))
}

/// The input padded as the convolution pads it (transposed convolutions pad nothing here).
fn padded_input(x: Tensor<4>, g: &Geometry) -> Tensor<4> {
    if g.transposed || g.padding == [(0, 0), (0, 0)] {
        x
    } else {
        x.pad(g.padding, PadMode::Constant(0.0))
    }
}

/// A convolution's output `[batch, cout, oh, ow]` from its windows `[batch, oh * ow,
/// cin * k * k]`: per sample, the weights times the transposed windows, plus the bias.
fn conv_from_windows(
    windows: &[f32],
    weight: &FlexTensor,
    bias: &FlexTensor,
    [batch, oh, ow]: [usize; 3],
) -> FlexTensor {
    let [cout, cin, kh, kw] = dims4(weight);
    let (weight, bias) = (contiguous(weight), contiguous(bias));
    let out = per_sample_products(
        values(&weight),
        windows,
        [batch, cout, oh * ow, cin * kh * kw],
        Some(values(&bias)),
    );
    tensor(out, &[batch, cout, oh, ow])
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

/// `out[b] = lhs · windows[b]ᵀ` for every sample, `[batch, m, positions]` (NCHW when `lhs` is
/// a convolution's weights `[cout, cin k k]`): `lhs` is `m × width`, `windows` is `[batch,
/// positions, width]`, all row-major; `bias[i]` is added to row `i`. One single-threaded
/// `gemm` per sample, the samples spread over the threads.
fn per_sample_products(
    lhs: &[f32],
    windows: &[f32],
    [batch, m, positions, width]: [usize; 4],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let mut out = vec![0f32; batch * m * positions];
    if out.is_empty() || width == 0 {
        return out;
    }
    out.par_chunks_mut(m * positions)
        .zip(windows.par_chunks(positions * width))
        .for_each(|(out, windows)| sample_product(out, lhs, windows, [m, positions, width], bias));
    out
}

/// One sample of [`per_sample_products`], on the calling thread.
fn sample_product(
    out: &mut [f32],
    lhs: &[f32],
    windows: &[f32],
    [m, positions, width]: [usize; 3],
    bias: Option<&[f32]>,
) {
    // out = lhs · windowsᵀ: the windows read with their strides swapped.
    let lhs = Matrix::row_major(lhs, width);
    let windows = Matrix::row_major(windows, width).transposed();
    serial_product(out, positions, [m, positions, width], lhs, windows);
    if let Some(bias) = bias {
        for (row, b) in out.chunks_exact_mut(positions).zip(bias) {
            row.iter_mut().for_each(|v| *v += b);
        }
    }
}

/// Samples per partial sum of [`summed_products`].
const SAMPLES_PER_SUM: usize = 16;

/// `Σ_b a[b] · c[b]`, `m × n`, for `a` `[batch, m, p]` and `c` `[batch, p, n]` row-major (a
/// weight gradient). Every chunk of [`SAMPLES_PER_SUM`] samples is one GEMM with `a`'s rows
/// laid side by side (inner size `chunk * p`); the chunks' sums are added in a fixed order,
/// so the result does not depend on the thread count.
fn summed_products(a: &[f32], c: &[f32], [batch, m, p, n]: [usize; 4]) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = (0..batch.div_ceil(SAMPLES_PER_SUM))
        .into_par_iter()
        .map(|chunk| {
            let first = chunk * SAMPLES_PER_SUM;
            let samples = SAMPLES_PER_SUM.min(batch - first);
            let a = &a[first * m * p..(first + samples) * m * p];
            let c = &c[first * p * n..(first + samples) * p * n];
            chunk_product(a, c, [samples, m, p, n])
        })
        .collect();
    sum_in_order(partials, m * n)
}

/// The element-wise sum of `parts` (each `len` long), added in their order.
fn sum_in_order(parts: impl IntoIterator<Item = Vec<f32>>, len: usize) -> Vec<f32> {
    let mut total = vec![0f32; len];
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, v)| *t += v);
    }
    total
}

/// `Σ_s a[s] · c[s]` over a few samples as one single-threaded GEMM: `a` `[samples, m, p]`
/// with its samples' rows laid side by side (`m × samples p`), `c` `[samples, p, n]` read as
/// `samples p × n`.
fn chunk_product(a: &[f32], c: &[f32], [samples, m, p, n]: [usize; 4]) -> Vec<f32> {
    let mut sum = vec![0f32; m * n];
    let inner = samples * p;
    if sum.is_empty() || inner == 0 {
        return sum;
    }
    let mut packed = vec![0f32; m * inner];
    for (s, sample) in a.chunks_exact(m * p).enumerate() {
        for (i, row) in sample.chunks_exact(p).enumerate() {
            packed[i * inner + s * p..i * inner + (s + 1) * p].copy_from_slice(row);
        }
    }
    let (packed, c) = (Matrix::row_major(&packed, inner), Matrix::row_major(c, n));
    serial_product(&mut sum, n, [m, n, inner], packed, c);
    sum
}

/// The sum of every channel of `[batch, channels, positions]` values (a bias gradient).
fn channel_sums(values: &[f32], [batch, channels, positions]: [usize; 3]) -> Vec<f32> {
    let mut sums = vec![0f32; channels];
    if positions == 0 {
        return sums;
    }
    for sample in values.chunks_exact(channels * positions).take(batch) {
        for (sum, plane) in sums.iter_mut().zip(sample.chunks_exact(positions)) {
            *sum += plane_sum(plane);
        }
    }
    sums
}

/// The sum of `values` in 16 running sums: one running sum cannot be vectorised (float
/// addition is not associative), and this sum was 4% of the conv VAE's training step.
fn plane_sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Output height and width of a convolution of the padded input `[_, _, hp, wp]`.
fn conv_out_size(xp_dims: [usize; 4], g: &Geometry) -> [usize; 2] {
    let [_, _, hp, wp] = xp_dims;
    [
        (hp - g.kernel[0]) / g.stride[0] + 1,
        (wp - g.kernel[1]) / g.stride[1] + 1,
    ]
}

/// A transposed convolution's output `[batch, cout, oh, ow]` for the input `x` `[batch, cin,
/// h, w]` and the weights `[cin, cout, kh, kw]`.
fn transposed_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    g: &Geometry,
) -> FlexTensor {
    let [_, _, h, w] = dims4(x);
    let [(ph, _), (pw, _)] = g.padding;
    let out_size = [
        (h - 1) * g.stride[0] + g.kernel[0] + g.padding_out[0] - 2 * ph,
        (w - 1) * g.stride[1] + g.kernel[1] + g.padding_out[1] - 2 * pw,
    ];
    let bias = contiguous(bias);
    scatter_conv(x, weight, Some(values(&bias)), g.stride, [ph, pw], out_size)
}

/// The sum that a transposed convolution is, and a convolution's input gradient: every input
/// value `x[b, ci, iy, ix]` adds `x · weight[ci, co, ky, kx]` to the output at `(iy s + ky -
/// top, ix s + kx - left)` where that lies within `out_size`; `weight` is `[cin, cout, kh,
/// kw]`, and `bias` (per output channel) is where each sum starts.
///
/// Per sample, one GEMM gives the products for every output channel and kernel tap at once
/// (`weightᵀ x`: `[cout kh kw, h w]`), which are then added into the output row by row
/// (col2im, [`Col2im`]). Burn's flex operation does the same for any dimension count; this
/// one is 2-D, reuses one product buffer per thread instead of zero-filling a new one per
/// sample, adds whole rows and writes the output once. Against Burn's operation, with the
/// other changes of its commit: the conv VAE's inference +22%, its training +6% (2 threads).
fn scatter_conv(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&[f32]>,
    [sy, sx]: [usize; 2],
    [top, left]: [usize; 2],
    [oh, ow]: [usize; 2],
) -> FlexTensor {
    let [batch, cin, h, w] = dims4(x);
    let [wcin, cout, kh, kw] = dims4(weight);
    assert_eq!(
        cin, wcin,
        "transposed convolution: {cin} input channels, weights for {wcin}"
    );
    let (x, weight) = (contiguous(x), contiguous(weight));
    let (x, weight) = (values(&x), values(&weight));
    let (positions, taps) = (h * w, cout * kh * kw);
    let len = batch * cout * oh * ow;
    if len == 0 {
        return tensor(Vec::new(), &[batch, cout, oh, ow]);
    }
    // Not zero-filled: every value is written once, by `Col2im::add_plane`.
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let weight_t = Matrix::row_major(weight, taps).transposed();
    let layout = Col2im::new([h, w], [oh, ow], [kh, kw], [sy, sx], [top, left]);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(cout * oh * ow)
        .enumerate()
        .for_each_init(
            || (vec![0f32; taps * positions], layout.row_buffer()),
            |(products, row), (b, out)| {
                let sample = Matrix::row_major(
                    &x[b * cin * positions..(b + 1) * cin * positions],
                    positions,
                );
                // No input channels: the products stay the zeros they start as.
                if cin > 0 {
                    serial_product(
                        products,
                        positions,
                        [taps, positions, cin],
                        weight_t,
                        sample,
                    );
                }
                for (co, plane) in out.chunks_exact_mut(oh * ow).enumerate() {
                    let tap_products = &products[co * kh * kw * positions..][..kh * kw * positions];
                    add_plane(
                        &layout,
                        tap_products,
                        bias.map_or(0.0, |bias| bias[co]),
                        plane,
                        row,
                    );
                }
            },
        );
    // SAFETY: every sample's every plane was written in full by `add_plane`.
    unsafe { out.set_len(len) };
    tensor(out, &[batch, cout, oh, ow])
}

/// Where a transposed convolution's products go (col2im): input `(iy, ix)` times tap `(ky,
/// kx)` lands on output `(iy sy + ky - top, ix sx + kx - left)`. The divisions this takes are
/// done once here, not in the loops (per row, they made the loops slower than the scatter).
#[derive(Debug, Clone)]
struct Col2im {
    input: [usize; 2],
    output_width: usize,
    kernel: [usize; 2],
    stride_x: usize,
    left: usize,
    /// For every output row, the `(ky, iy)` pairs that reach it.
    row_taps: Vec<Vec<(usize, usize)>>,
    /// For every `kx`, where its shifted input row starts in the row buffer.
    column_starts: Vec<usize>,
    /// Length of one phase of the row buffer: every `(ox + left) / sx` that an output column
    /// or a tap reaches.
    phase_len: usize,
}

impl Col2im {
    fn new(
        [h, w]: [usize; 2],
        [oh, ow]: [usize; 2],
        [kh, kw]: [usize; 2],
        [sy, sx]: [usize; 2],
        [top, left]: [usize; 2],
    ) -> Self {
        let phase_len = (w + (kw - 1) / sx + 1).max((ow + left).div_ceil(sx));
        let row_taps = (0..oh)
            .map(|oy| {
                (0..kh)
                    .filter_map(|ky| {
                        let shifted = (oy + top).checked_sub(ky)?;
                        let iy = shifted / sy;
                        (shifted % sy == 0 && iy < h).then_some((ky, iy))
                    })
                    .collect()
            })
            .collect();
        let column_starts = (0..kw).map(|kx| (kx % sx) * phase_len + kx / sx).collect();
        Self {
            input: [h, w],
            output_width: ow,
            kernel: [kh, kw],
            stride_x: sx,
            left,
            row_taps,
            column_starts,
            phase_len,
        }
    }

    /// The buffer one output row is summed in: `sx` phases of `phase_len` values.
    fn row_buffer(&self) -> Vec<f32> {
        vec![0f32; self.stride_x * self.phase_len]
    }

    /// One output channel's plane `[oh, ow]`: `bias` plus the products of its taps (`[kh,
    /// kw, h, w]`, one input map per tap).
    ///
    /// Adding each product where it lands would be a stride-`sx` scatter, which does not
    /// vectorise (it was a quarter of the conv VAE's inference). Instead each output row is
    /// summed in `row`, split by the phase `(ox + left) mod sx` of the output column: there
    /// every tap's input row is one contiguous, shifted addition, and one pass interleaves the
    /// phases into the plane.
    #[inline(always)]
    fn add_plane_body(
        &self,
        products: &[f32],
        bias: f32,
        plane: &mut [MaybeUninit<f32>],
        row: &mut [f32],
    ) {
        let ([h, w], [_, kw], sx) = (self.input, self.kernel, self.stride_x);
        let phase_len = self.phase_len;
        for (out_row, taps) in plane
            .chunks_exact_mut(self.output_width)
            .zip(&self.row_taps)
        {
            row.fill(0.0);
            for &(ky, iy) in taps {
                let tap_rows = &products[ky * kw * h * w + iy * w..];
                for (kx, &start) in self.column_starts.iter().enumerate() {
                    let src = &tap_rows[kx * h * w..][..w];
                    for (d, v) in row[start..start + w].iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
            if sx == 2 {
                // The common stride, as two interleaved streams (which vectorise): even
                // output columns from one phase, odd ones from the other.
                let start = |ox: usize| {
                    let at = ox + self.left;
                    (at % 2) * phase_len + at / 2
                };
                let (even, odd) = (&row[start(0)..], &row[start(1)..]);
                let mut pairs = out_row.chunks_exact_mut(2);
                for ((pair, e), o) in (&mut pairs).zip(even).zip(odd) {
                    pair[0].write(bias + e);
                    pair[1].write(bias + o);
                }
                if let [last] = pairs.into_remainder() {
                    last.write(bias + even[self.output_width / 2]);
                }
                continue;
            }
            // Output column `ox` is phase `(ox + left) % sx`, position `(ox + left) / sx`,
            // counted along instead of divided.
            let (mut phase, mut at) = (self.left % sx, self.left / sx);
            for out in out_row.iter_mut() {
                out.write(bias + row[phase * phase_len + at]);
                phase += 1;
                if phase == sx {
                    phase = 0;
                    at += 1;
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`Col2im::add_plane_body`], vectorised for the CPU.
    fn add_plane(
        layout: &Col2im,
        products: &[f32],
        bias: f32,
        plane: &mut [MaybeUninit<f32>],
        row: &mut [f32],
    ) => Col2im::add_plane_body
}

/// A convolution of plain tensors through its windows (inference).
fn plain_conv(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, g: &Geometry) -> Tensor<4> {
    let xp = primitive(padded_input(x, g));
    let [batch, _, _, _] = dims4(&xp);
    let [oh, ow] = conv_out_size(dims4(&xp), g);
    let windows = windows(&xp, g, [oh, ow]);
    let out = conv_from_windows(
        &windows,
        &primitive(weight),
        &primitive(bias),
        [batch, oh, ow],
    );
    Tensor::from_primitive::<Flex>(out)
}

/// A convolution's gradient with respect to its (unpadded) input `[batch, cin, h, w]`: the
/// transposed convolution of the output's gradient by the same weights `[cout, cin, kh, kw]`,
/// shifted by the padding and cut to the input's size.
fn conv_input_grad(
    grad: &FlexTensor,
    weight: &FlexTensor,
    [_, _, h, w]: [usize; 4],
    g: &Geometry,
) -> FlexTensor {
    let [(top, _), (left, _)] = g.padding;
    scatter_conv(grad, weight, None, g.stride, [top, left], [h, w])
}

/// `[batch, rows * cols, channels * kh * kw]`: for every sample and output position, the
/// stride-`s` window of `maps` (already padded) it reads, as one row.
fn windows(maps: &FlexTensor, g: &Geometry, out_size: [usize; 2]) -> Vec<f32> {
    let maps_dims = dims4(maps);
    let maps = contiguous(maps);
    gather_windows(values(&maps), maps_dims, g, out_size)
}

/// [`windows`] of the maps `[batch, channels, hp, wp]` held in `maps`.
fn gather_windows(
    maps: &[f32],
    [batch, channels, hp, wp]: [usize; 4],
    g: &Geometry,
    [rows, cols]: [usize; 2],
) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    let [sy, sx] = g.stride;
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
    out
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

impl GemmConvState {
    /// A transposed convolution's gradients. The output's gradient, padded by the padding on
    /// every side, is cut into the windows that each input position's gradient reads
    /// (`[h * w, cout k k]` per sample): the input gradient is the weights `[cin, cout k k]`
    /// times them, the weight gradient the input times them. They are gathered for a few
    /// samples at a time, used for both gradients while in cache and dropped: for the whole
    /// batch they would be 58 MB for the conv VAE's last layer.
    fn transposed_grads(
        &self,
        upstream: &FlexTensor,
        want_input: bool,
        want_params: bool,
    ) -> LayerGrads {
        let g = &self.geometry;
        let [batch, cin, h, w] = self.input_dims;
        let [_, cout, kh, kw] = self.weight_dims;
        let [(ph, _), (pw, _)] = g.padding;
        let padded = primitive(plain(upstream).pad([(ph, ph), (pw, pw)], PadMode::Constant(0.0)));
        let padded_dims = dims4(&padded);
        let padded_sample = padded_dims[1] * padded_dims[2] * padded_dims[3];
        let padded = contiguous(&padded);
        let (padded, positions, width) = (values(&padded), h * w, cout * kh * kw);
        let weight = self.weight.as_ref().filter(|_| want_input).map(contiguous);
        let input = self.input.as_ref().filter(|_| want_params).map(contiguous);

        let chunk = |c: usize, dx: Option<&mut [f32]>| -> Option<Vec<f32>> {
            let first = c * SAMPLES_PER_SUM;
            let samples = SAMPLES_PER_SUM.min(batch - first);
            let maps = &padded[first * padded_sample..(first + samples) * padded_sample];
            let dims = [samples, padded_dims[1], padded_dims[2], padded_dims[3]];
            let windows = gather_windows(maps, dims, g, [h, w]);
            if let (Some(dx), Some(weight)) = (dx, &weight) {
                let sample_windows = windows.chunks_exact(positions * width);
                for (dx, windows) in dx.chunks_exact_mut(cin * positions).zip(sample_windows) {
                    sample_product(dx, values(weight), windows, [cin, positions, width], None);
                }
            }
            input.as_ref().map(|x| {
                let x = &values(x)[first * cin * positions..(first + samples) * cin * positions];
                chunk_product(x, &windows, [samples, cin, positions, width])
            })
        };
        let chunks = batch.div_ceil(SAMPLES_PER_SUM);
        let mut dx = vec![
            0f32;
            if weight.is_some() {
                batch * cin * positions
            } else {
                0
            }
        ];
        let partials: Vec<Option<Vec<f32>>> = if weight.is_some() && !dx.is_empty() {
            dx.par_chunks_mut(SAMPLES_PER_SUM * cin * positions)
                .enumerate()
                .map(|(c, dx)| chunk(c, Some(dx)))
                .collect()
        } else {
            (0..chunks)
                .into_par_iter()
                .map(|c| chunk(c, None))
                .collect()
        };
        let dx = weight.is_some().then(|| tensor(dx, &[batch, cin, h, w]));
        let params = input.is_some().then(|| {
            let dw = sum_in_order(partials.into_iter().flatten(), cin * width);
            let grad = contiguous(upstream);
            let [_, channels, oh, ow] = dims4(&grad);
            let db = channel_sums(values(&grad), [batch, channels, oh * ow]);
            (tensor(dw, &self.weight_dims), tensor(db, &[channels]))
        });
        (dx, params)
    }
}

impl LayerGradients for GemmConvState {
    fn input_grad(&self, upstream: &FlexTensor) -> FlexTensor {
        if self.geometry.transposed {
            let (dx, _) = self.transposed_grads(upstream, true, false);
            return dx.expect("asked for");
        }
        let weight = self.weight.as_ref().expect("kept for the input's gradient");
        conv_input_grad(upstream, weight, self.input_dims, &self.geometry)
    }

    fn param_grads(&self, upstream: &FlexTensor) -> (FlexTensor, FlexTensor) {
        if self.geometry.transposed {
            let (_, params) = self.transposed_grads(upstream, false, true);
            return params.expect("asked for");
        }
        // dW[co, (ci, ky, kx)] = Σ_b grad[b, co, :] · windows[b, :, (ci, ky, kx)]
        let windows = contiguous(self.input.as_ref().expect("kept for the weights' gradient"));
        let grad = contiguous(upstream);
        let [batch, channels, oh, ow] = dims4(&grad);
        let [_, cin, kh, kw] = self.weight_dims;
        let dw = summed_products(
            values(&grad),
            values(&windows),
            [batch, channels, oh * ow, cin * kh * kw],
        );
        let db = channel_sums(values(&grad), [batch, channels, oh * ow]);
        (tensor(dw, &self.weight_dims), tensor(db, &[channels]))
    }

    fn grads(&self, upstream: &FlexTensor, input: bool, params: bool) -> LayerGrads {
        if self.geometry.transposed {
            self.transposed_grads(upstream, input, params)
        } else {
            separate_grads(self, upstream, input, params)
        }
    }
}

fn autodiff_forward(
    x: AutodiffFlexTensor,
    weight: AutodiffFlexTensor,
    bias: AutodiffFlexTensor,
    g: Geometry,
) -> AutodiffFlexTensor {
    layer_op(x, weight, bias, |x, weight, bias, wanted| {
        let input_dims = dims4(x);
        let weight_dims = dims4(weight);
        let (out, kept) = if g.transposed {
            (transposed_forward(x, weight, bias, &g), contiguous(x))
        } else {
            let xp = primitive(padded_input(plain(x), &g));
            let [oh, ow] = conv_out_size(dims4(&xp), &g);
            let windows = windows(&xp, &g, [oh, ow]);
            let out = conv_from_windows(&windows, weight, bias, [input_dims[0], oh, ow]);
            let positions = oh * ow;
            let width = windows.len() / (input_dims[0] * positions).max(1);
            (out, tensor(windows, &[input_dims[0], positions, width]))
        };
        let state = GemmConvState {
            input: wanted.params.then_some(kept),
            weight: wanted.input.then(|| weight.clone()),
            input_dims,
            weight_dims,
            geometry: g,
        };
        (out, state)
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
        for (cin, cout, size, k, stride, padding, padding_out) in [
            (64, 64, 7, 3, 2, 1, 1),
            (64, 32, 14, 3, 2, 1, 1),
            (3, 5, 5, 4, 2, 1, 0),
            (2, 3, 6, 3, 2, 0, 1),
            (4, 3, 5, 3, 1, 1, 0),
            // A stride above the kernel leaves some outputs at their bias.
            (3, 2, 4, 2, 3, 0, 1),
        ] {
            let conv = ConvTranspose2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding([padding, padding])
                .with_padding_out([padding_out, padding_out])
                .init(&device);
            let name =
                format!("tconv {cin}->{cout} {size} k{k} s{stride} p{padding} po{padding_out}");
            // Inference on plain tensors goes through the same sum of products.
            let inference = conv.valid();
            let x = Tensor::<4>::random(
                [2, cin, size, size],
                Distribution::Normal(0.0, 1.0),
                &Device::flex(),
            );
            assert_close(
                &format!("plain {name}"),
                &to_vec(conv_transpose2d(&inference, x.clone())),
                &to_vec(inference.forward(x)),
            );
            compare(
                &name,
                &conv,
                [2, cin, size, size],
                conv_transpose2d,
                |c, x| c.forward(x),
                |c| (c.weight.val(), c.bias.as_ref().unwrap().val()),
            );
        }
    }

    /// Batches of several chunks of [`SAMPLES_PER_SUM`] samples and a remainder.
    #[test]
    fn batches_of_several_chunks_match_burn() {
        let device = Device::flex().autodiff();
        device.seed(11);
        let batch = 2 * SAMPLES_PER_SUM + 5;
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        compare(
            "conv batch",
            &conv,
            [batch, 3, 8, 8],
            conv2d,
            |c, x| c.forward(x),
            |c| (c.weight.val(), c.bias.as_ref().unwrap().val()),
        );
        let tconv = ConvTranspose2dConfig::new([4, 3], [3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .with_padding_out([1, 1])
            .init(&device);
        compare(
            "tconv batch",
            &tconv,
            [batch, 4, 5, 5],
            conv_transpose2d,
            |c, x| c.forward(x),
            |c| (c.weight.val(), c.bias.as_ref().unwrap().val()),
        );
    }
}
