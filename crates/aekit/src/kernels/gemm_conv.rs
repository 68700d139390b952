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
//! How: every output position reads one window of `cin * k * k` values of the input, its
//! padding read as zeros where the window reaches it (no padded copy of the input is made).
//! For a convolution the windows of the whole batch are gathered once (in parallel over the
//! samples) into a matrix `[batch * positions, cin * k * k]`: the
//! forward pass is one GEMM of it with the weights (flex would multiply per sample, in small
//! tiles), and the weight gradient one GEMM `grad[cout, batch * positions] x windows`. A
//! transposed convolution's input and weight gradients are one GEMM each per group of a few
//! samples with the windows of the output's gradient, which [`PhaseWindows`] lays out from
//! its stride phase planes (the weight gradient summed over the batch). A transposed
//! convolution's forward pass and a convolution's input gradient are the same sum, computed
//! as one GEMM per sample followed by col2im (`scatter_conv`). The samples are spread over
//! the threads.
//!
//! [`conv2d`] and [`conv_transpose2d`] apply to one-group, undilated layers with a bias on
//! `f32` `flex` tensors (autodiff without checkpointing, and plain tensors for inference);
//! other tensors go to the layer's own `forward`.

use super::flex_tensor::{
    AutodiffFlexTensor, LayerGradients, LayerGrads, contiguous, layer_op, on_autodiff_flex,
    relu_value, separate_grads, tensor, values, written_vec,
};
use super::matmul::{Matrix, serial_product, serial_product_add, serial_product_into};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
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
    conv2d_activated(conv, x, false)
}

/// `relu(conv.forward(x))`, the ReLU applied as the output is written (see
/// `flex_tensor::layer_op`).
pub fn conv2d_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv2d_activated(conv, x, true)
}

fn conv2d_activated(conv: &Conv2d, x: Tensor<4>, relu: bool) -> Tensor<4> {
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
    try_apply(layer, conv.dilation, conv.groups, &x, geometry, relu)
        .unwrap_or_else(|| activated(conv.forward(x), relu))
}

/// Burn's ReLU where the layer went to Burn's own operation.
fn activated(y: Tensor<4>, relu: bool) -> Tensor<4> {
    if relu {
        burn::tensor::activation::relu(y)
    } else {
        y
    }
}

/// `conv.forward(x)`, with the weight gradient as one matrix product on autodiff flex.
pub fn conv_transpose2d(conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    conv_transpose2d_activated(conv, x, false)
}

/// `relu(conv.forward(x))`, the ReLU applied as the output is written.
pub fn conv_transpose2d_relu(conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    conv_transpose2d_activated(conv, x, true)
}

fn conv_transpose2d_activated(conv: &ConvTranspose2d, x: Tensor<4>, relu: bool) -> Tensor<4> {
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
    try_apply(layer, conv.dilation, conv.groups, &x, geometry, relu)
        .unwrap_or_else(|| activated(conv.forward(x), relu))
}

/// The layer `(weight, bias)` applied through this module's operation (with a ReLU after it
/// when `relu`), or `None` where it does not apply.
fn try_apply(
    (weight, bias): (Tensor<4>, Option<Tensor<1>>),
    dilation: [usize; 2],
    groups: usize,
    x: &Tensor<4>,
    g: Geometry,
    relu: bool,
) -> Option<Tensor<4>> {
    let bias = bias?;
    if dilation != [1, 1] || groups != 1 || x.dtype() != DType::F32 || weight.dtype() != DType::F32
    {
        return None;
    }
    let trained = on_autodiff_flex((x, &weight, &bias), |x, w, b| {
        autodiff_forward(x, w, b, g, relu)
    });
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
            &x, &weight, &bias, &g, relu,
        )));
    }
    Some(plain_conv(x.clone(), weight, bias, &g, relu))
}

/// A convolution's output `[batch, cout, oh, ow]` from its windows `[batch, oh * ow,
/// cin * k * k]`: per sample, the weights times the transposed windows, plus the bias.
fn conv_from_windows(
    windows: &[f32],
    (weight, bias): (&FlexTensor, &FlexTensor),
    [batch, oh, ow]: [usize; 3],
    relu: bool,
) -> FlexTensor {
    let [cout, cin, kh, kw] = dims4(weight);
    let (weight, bias) = (contiguous(weight), contiguous(bias));
    let out = per_sample_products(
        values(&weight),
        windows,
        [batch, cout, oh * ow, cin * kh * kw],
        Some(values(&bias)),
        relu,
    );
    tensor(out, &[batch, cout, oh, ow])
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

/// `out[b] = lhs · windows[b]ᵀ` for every sample, `[batch, m, positions]` (NCHW when `lhs` is
/// a convolution's weights `[cout, cin k k]`): `lhs` is `m × width`, `windows` is `[batch,
/// positions, width]`, all row-major; `bias[i]` is added to row `i`, then the ReLU applied
/// when `relu`. One single-threaded `gemm` per sample, the samples spread over the threads.
fn per_sample_products(
    lhs: &[f32],
    windows: &[f32],
    [batch, m, positions, width]: [usize; 4],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let len = batch * m * positions;
    // Not zero-filled: `sample_product` writes every value.
    if len == 0 || width == 0 {
        return vec![0f32; len];
    }
    // SAFETY: the chunks cover all `len` values, and `sample_product` writes every one.
    let (out, ()) = unsafe {
        written_vec(len, |out| {
            out.par_chunks_mut(m * positions)
                .zip(windows.par_chunks(positions * width))
                .for_each(|(out, windows)| {
                    sample_product(out, lhs, windows, [m, positions, width], bias, relu)
                })
        })
    };
    out
}

/// One sample of [`per_sample_products`], on the calling thread; writes every value of `out`.
fn sample_product(
    out: &mut [MaybeUninit<f32>],
    lhs: &[f32],
    windows: &[f32],
    [m, positions, width]: [usize; 3],
    bias: Option<&[f32]>,
    relu: bool,
) {
    // out = lhs · windowsᵀ: the windows read with their strides swapped.
    let lhs = Matrix::row_major(lhs, width);
    let windows = Matrix::row_major(windows, width).transposed();
    let out = serial_product_into(out, [m, positions, width], lhs, windows);
    match (bias, relu) {
        (Some(bias), false) => {
            for (row, b) in out.chunks_exact_mut(positions).zip(bias) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
        (Some(bias), true) => {
            for (row, b) in out.chunks_exact_mut(positions).zip(bias) {
                row.iter_mut().for_each(|v| *v = relu_value(*v + b));
            }
        }
        (None, true) => out.iter_mut().for_each(|v| *v = relu_value(*v)),
        (None, false) => {}
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

/// The sum of every channel of `[batch, channels, positions]` values (a bias gradient): the
/// planes summed in parallel, their sums added in the batch's order.
fn channel_sums(values: &[f32], [batch, channels, positions]: [usize; 3]) -> Vec<f32> {
    let mut sums = vec![0f32; channels];
    if positions == 0 || channels == 0 {
        return sums;
    }
    let planes: Vec<f32> = values[..batch * channels * positions]
        .par_chunks_exact(positions)
        .map(plane_sum)
        .collect();
    for sample in planes.chunks_exact(channels) {
        for (sum, plane) in sums.iter_mut().zip(sample) {
            *sum += plane;
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

/// Output height and width of a convolution of the input `[_, _, h, w]` padded by `g`.
fn conv_out_size([_, _, h, w]: [usize; 4], g: &Geometry) -> [usize; 2] {
    let [(top, bottom), (left, right)] = g.padding;
    [
        (h + top + bottom - g.kernel[0]) / g.stride[0] + 1,
        (w + left + right - g.kernel[1]) / g.stride[1] + 1,
    ]
}

/// A transposed convolution's output `[batch, cout, oh, ow]` for the input `x` `[batch, cin,
/// h, w]` and the weights `[cin, cout, kh, kw]`.
fn transposed_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    g: &Geometry,
    relu: bool,
) -> FlexTensor {
    let [_, _, h, w] = dims4(x);
    let [(ph, _), (pw, _)] = g.padding;
    let out_size = [
        (h - 1) * g.stride[0] + g.kernel[0] + g.padding_out[0] - 2 * ph,
        (w - 1) * g.stride[1] + g.kernel[1] + g.padding_out[1] - 2 * pw,
    ];
    let bias = contiguous(bias);
    let sum = Scatter {
        stride: g.stride,
        start: [ph, pw],
        out_size,
        relu,
    };
    scatter_conv(x, weight, Some(values(&bias)), sum)
}

/// Where [`scatter_conv`]'s sums go: the stride, the output's offset `[top, left]` into the
/// strided grid, the output's size, and whether the sums are rectified.
#[derive(Debug, Clone, Copy)]
struct Scatter {
    stride: [usize; 2],
    start: [usize; 2],
    out_size: [usize; 2],
    relu: bool,
}

/// The sum that a transposed convolution is, and a convolution's input gradient: every input
/// value `x[b, ci, iy, ix]` adds `x · weight[ci, co, ky, kx]` to the output at `(iy s + ky -
/// top, ix s + kx - left)` where that lies within `out_size`; `weight` is `[cin, cout, kh,
/// kw]`, and `bias` (per output channel) is where each sum starts; with `relu` the sums are
/// written rectified.
///
/// Per sample, one GEMM gives the products for every output channel and kernel tap at once
/// (`weightᵀ x`: `[cout kh kw, h P]`, the input's rows padded with zeros to the pitch `P` of
/// [`Col2im`]), which are then added into the output plane by plane (col2im). Burn's flex
/// operation does the same for any dimension count; this one is 2-D, reuses its buffers per
/// thread instead of zero-filling new ones per sample, adds whole planes and writes the
/// output once. Against Burn's operation, with the other changes of its commit: the conv
/// VAE's inference +22%, its training +6% (2 threads). Summing whole planes instead of rows
/// (rows of 7 or 14 values are shorter than one AVX-512 vector, so the row sums ran scalar)
/// took the col2im from 12.8% of a conv VAE training step to 5.2% (one thread, perf).
fn scatter_conv(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&[f32]>,
    sum: Scatter,
) -> FlexTensor {
    let Scatter {
        stride,
        start,
        out_size: [oh, ow],
        relu,
    } = sum;
    let [batch, cin, h, w] = dims4(x);
    let [wcin, cout, kh, kw] = dims4(weight);
    assert_eq!(
        cin, wcin,
        "transposed convolution: {cin} input channels, weights for {wcin}"
    );
    let (x, weight) = (contiguous(x), contiguous(weight));
    let (x, weight) = (values(&x), values(&weight));
    let taps = cout * kh * kw;
    let len = batch * cout * oh * ow;
    if len == 0 {
        return tensor(Vec::new(), &[batch, cout, oh, ow]);
    }
    let layout = Col2im::new([h, w], [oh, ow], [kh, kw], stride, start);
    let (pitch, positions) = (layout.pitch, h * layout.pitch);
    let weight_t = Matrix::row_major(weight, taps).transposed();
    let per_sample = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(cout * oh * ow)
            .enumerate()
            .for_each_init(
                || {
                    // The padded input's pad columns are zeroed here once and never written.
                    let padded = vec![0f32; cin * positions];
                    (padded, vec![0f32; taps * positions], layout.phase_buffer())
                },
                |(padded, products, phases), (b, out)| {
                    let sample = &x[b * cin * h * w..(b + 1) * cin * h * w];
                    for (dst, src) in padded.chunks_exact_mut(pitch).zip(sample.chunks_exact(w)) {
                        dst[..w].copy_from_slice(src);
                    }
                    // No input channels: the products stay the zeros they start as.
                    if cin > 0 {
                        serial_product(
                            products,
                            positions,
                            [taps, positions, cin],
                            weight_t,
                            Matrix::row_major(padded, positions),
                        );
                    }
                    for (co, plane) in out.chunks_exact_mut(oh * ow).enumerate() {
                        let tap_products =
                            &products[co * kh * kw * positions..][..kh * kw * positions];
                        let bias = bias.map_or(0.0, |bias| bias[co]);
                        add_plane(&layout, tap_products, (bias, relu), plane, phases);
                    }
                },
            )
    };
    // SAFETY: the samples cover all `len` values, and `add_plane` writes every plane in full.
    let (out, ()) = unsafe { written_vec(len, per_sample) };
    tensor(out, &[batch, cout, oh, ow])
}

/// Where a transposed convolution's products go (col2im): input `(iy, ix)` times tap `(ky,
/// kx)` lands on output `(iy sy + ky - top, ix sx + kx - left)`.
///
/// Adding each product where it lands is a stride-`s` scatter, which does not vectorise (it
/// was a quarter of the conv VAE's inference). Instead the output is summed in phase planes:
/// output `(oy, ox)` is phase `((oy + top) mod sy, (ox + left) mod sx)`, at row `(oy + top) /
/// sy` and column `(ox + left) / sx` of its plane. There every tap's products are the input
/// map shifted by `(ky / sy, kx / sx)`: with the phase planes' rows and the products' rows
/// both `pitch` long, the input's rows padded with zeros to it, the shift is one offset and
/// the tap one contiguous addition of the whole map (what spills past a row's end is the
/// padding's zeros). One pass then interleaves the phases into the output plane. The
/// divisions this takes are done once here, not in the loops.
#[derive(Debug, Clone)]
struct Col2im {
    /// The input map's rows.
    rows: usize,
    /// The row length of the products and of the phase planes: at least the input's width
    /// plus the largest column shift, and every output column's position.
    pitch: usize,
    output_width: usize,
    stride_x: usize,
    left: usize,
    /// Values per phase plane (its rows, one spare row for the last shifted tap's spill).
    phase_len: usize,
    phases: usize,
    /// For every tap `(ky, kx)` in order, where its products start in the phase buffer.
    tap_starts: Vec<usize>,
    /// For every output row, where its phase plane's row starts in the phase buffer (the
    /// first column phase's plane; the others follow `phase_len` apart).
    row_starts: Vec<usize>,
}

impl Col2im {
    fn new(
        [h, w]: [usize; 2],
        [oh, ow]: [usize; 2],
        [kh, kw]: [usize; 2],
        [sy, sx]: [usize; 2],
        [top, left]: [usize; 2],
    ) -> Self {
        let pitch = (w + (kw - 1) / sx).max((ow + left).div_ceil(sx));
        let plane_rows = (h + (kh - 1) / sy).max((oh + top).div_ceil(sy));
        let phase_len = (plane_rows + 1) * pitch;
        let phase = |py: usize, px: usize| (py * sx + px) * phase_len;
        let tap_starts = (0..kh)
            .flat_map(|ky| (0..kw).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| phase(ky % sy, kx % sx) + (ky / sy) * pitch + kx / sx)
            .collect();
        let row_starts = (0..oh)
            .map(|oy| phase((oy + top) % sy, 0) + (oy + top) / sy * pitch)
            .collect();
        Self {
            rows: h,
            pitch,
            output_width: ow,
            stride_x: sx,
            left,
            phase_len,
            phases: sy * sx,
            tap_starts,
            row_starts,
        }
    }

    /// The buffer the phase planes are summed in.
    fn phase_buffer(&self) -> Vec<f32> {
        vec![0f32; self.phases * self.phase_len]
    }

    /// One output channel's plane `[oh, ow]`: `bias` plus the products of its taps (`[kh,
    /// kw, h, pitch]`, one padded input map per tap), summed in `phases`, rectified when
    /// `relu`.
    #[inline(always)]
    fn add_plane_body(
        &self,
        products: &[f32],
        (bias, relu): (f32, bool),
        plane: &mut [MaybeUninit<f32>],
        phases: &mut [f32],
    ) {
        if relu {
            self.add_plane_with(products, plane, phases, |v| relu_value(v + bias));
        } else {
            self.add_plane_with(products, plane, phases, |v| v + bias);
        }
    }

    /// [`Self::add_plane_body`] with `finish` applied to every sum as it is written out.
    #[inline(always)]
    fn add_plane_with(
        &self,
        products: &[f32],
        plane: &mut [MaybeUninit<f32>],
        phases: &mut [f32],
        finish: impl Fn(f32) -> f32,
    ) {
        let map = self.rows * self.pitch;
        phases.fill(0.0);
        for (tap, &start) in products.chunks_exact(map).zip(&self.tap_starts) {
            for (d, v) in phases[start..start + map].iter_mut().zip(tap) {
                *d += v;
            }
        }
        let (sx, left, phase_len) = (self.stride_x, self.left, self.phase_len);
        for (out_row, &row_start) in plane
            .chunks_exact_mut(self.output_width)
            .zip(&self.row_starts)
        {
            let row = &phases[row_start..];
            if sx == 2 {
                // The common stride, as two interleaved streams (which vectorise): even
                // output columns from one phase, odd ones from the other.
                let start = |ox: usize| {
                    let at = ox + left;
                    (at % 2) * phase_len + at / 2
                };
                // Slices of the exact lengths and an indexed loop: the compiler then
                // vectorises the interleaving stores (a zip of open-ended slices stayed
                // scalar, half of this function's time).
                let half = out_row.len() / 2;
                let (even, odd) = (&row[start(0)..][..half], &row[start(1)..][..half]);
                let (pairs, last) = out_row.split_at_mut(2 * half);
                for k in 0..half {
                    pairs[2 * k].write(finish(even[k]));
                    pairs[2 * k + 1].write(finish(odd[k]));
                }
                if let [last] = last {
                    last.write(finish(row[start(0) + half]));
                }
                continue;
            }
            // Output column `ox` is phase `(ox + left) % sx`, position `(ox + left) / sx`,
            // counted along instead of divided.
            let (mut phase, mut at) = (left % sx, left / sx);
            for out in out_row.iter_mut() {
                out.write(finish(row[phase * phase_len + at]));
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
        epilogue: (f32, bool),
        plane: &mut [MaybeUninit<f32>],
        phases: &mut [f32],
    ) => Col2im::add_plane_body
}

/// A convolution of plain tensors through its windows (inference).
fn plain_conv(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    g: &Geometry,
    relu: bool,
) -> Tensor<4> {
    let x = primitive(x);
    let [batch, _, _, _] = dims4(&x);
    let [oh, ow] = conv_out_size(dims4(&x), g);
    let windows = windows(&x, g, [oh, ow]);
    let (weight, bias) = (primitive(weight), primitive(bias));
    let out = conv_from_windows(&windows, (&weight, &bias), [batch, oh, ow], relu);
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
    let sum = Scatter {
        stride: g.stride,
        start: [top, left],
        out_size: [h, w],
        relu: false,
    };
    scatter_conv(grad, weight, None, sum)
}

/// `[batch, rows * cols, channels * kh * kw]`: for every sample and output position, the
/// stride-`s` window of `maps` padded as `g` says that it reads, as one row.
fn windows(maps: &FlexTensor, g: &Geometry, out_size: [usize; 2]) -> Vec<f32> {
    let maps_dims = dims4(maps);
    let maps = contiguous(maps);
    let [(top, _), (left, _)] = g.padding;
    gather_windows(values(&maps), maps_dims, g, out_size, [top, left])
}

/// [`windows`] of the maps `[batch, channels, h, w]` held in `maps`, padded with zeros by
/// `top` rows and `left` columns (and as far as the windows reach on the other sides). The
/// padding is read as zeros where a window reaches it rather than copied into a padded
/// tensor first (a zero-filled allocation and a copy of every map per layer and step).
fn gather_windows(
    maps: &[f32],
    [batch, channels, h, w]: [usize; 4],
    g: &Geometry,
    [rows, cols]: [usize; 2],
    [top, left]: [usize; 2],
) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    let [sy, sx] = g.stride;
    let (plane, width) = (h * w, channels * kh * kw);
    let len = batch * rows * cols * width;
    if len == 0 {
        return Vec::new();
    }
    let per_sample = |out: &mut [MaybeUninit<f32>]| {
        out.par_chunks_mut(rows * cols * width)
            .enumerate()
            .for_each(|(b, out)| {
                let maps = &maps[b * channels * plane..(b + 1) * channels * plane];
                for (position, row) in out.chunks_exact_mut(width).enumerate() {
                    let (oy, ox) = (position / cols, position % cols);
                    // The window's first column in the maps, and whether it lies inside them.
                    let x0 = (sx * ox) as isize - left as isize;
                    let inside = x0 >= 0 && x0 as usize + kw <= w;
                    let mut taps = row.chunks_exact_mut(kw);
                    for c in 0..channels {
                        for ky in 0..kh {
                            let dst = taps.next().expect("kh * kw values per channel");
                            let Some(iy) = (sy * oy + ky).checked_sub(top).filter(|&iy| iy < h)
                            else {
                                dst.fill(MaybeUninit::new(0.0));
                                continue;
                            };
                            let map_row = &maps[c * plane + iy * w..][..w];
                            if inside {
                                copy_window_row(dst, &map_row[x0 as usize..][..kw]);
                            } else {
                                for (kx, d) in dst.iter_mut().enumerate() {
                                    let ix = x0 + kx as isize;
                                    let inside = ix >= 0 && (ix as usize) < w;
                                    d.write(if inside { map_row[ix as usize] } else { 0.0 });
                                }
                            }
                        }
                    }
                }
            })
    };
    // SAFETY: the samples cover all `len` values, and every position's row is written in
    // full: `channels * kh` taps of `kw`.
    unsafe { written_vec(len, per_sample) }.0
}

/// One window row: a fixed-size copy for 3x3 kernels (a `memcpy` call per three values made
/// the gather 14% of the conv VAE's step).
#[inline(always)]
fn copy_window_row(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    if let (Ok(dst), Ok(src)) = (
        <&mut [MaybeUninit<f32>; 3]>::try_from(&mut *dst),
        <&[f32; 3]>::try_from(src),
    ) {
        *dst = src.map(MaybeUninit::new);
    } else {
        dst.write_copy_of_slice(src);
    }
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
    /// A transposed convolution's gradients. Each input position's gradient reads one window
    /// of the output's gradient (a stride-`s` convolution of it): the input gradient is the
    /// weights `[cin, cout k k]` times those windows, the weight gradient the input times
    /// them. The windows are laid out by [`PhaseWindows`] for a few samples at a time, one
    /// row per `(cout, ky, kx)` and the samples' positions side by side, so that each
    /// gradient is one GEMM per group of samples (the weights packed once per group, not
    /// once per sample), and dropped while still in cache.
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
        let grad = contiguous(upstream);
        let grad_dims = dims4(&grad);
        let [_, _, oh, ow] = grad_dims;
        let grad_values = values(&grad);
        let width = cout * kh * kw;
        let weight = self.weight.as_ref().filter(|_| want_input).map(contiguous);
        let input = self.input.as_ref().filter(|_| want_params).map(contiguous);
        let layout = PhaseWindows::new(cout, [oh, ow], [h, w], [kh, kw], g.stride, [ph, pw]);
        let terms = TransposedTerms {
            layout: &layout,
            grad: grad_values,
            weight: weight.as_ref().map(values),
            input: input.as_ref().map(values),
            cin,
        };

        let chunks = batch.div_ceil(SAMPLES_PER_SUM);
        let dx_len = if weight.is_some() {
            batch * cin * h * w
        } else {
            0
        };
        let (dx, partials): (Vec<f32>, Vec<Option<Vec<f32>>>) = if dx_len > 0 {
            // SAFETY: the chunks cover the batch, and `TransposedTerms::chunk` writes every
            // sample's gradient in full.
            unsafe {
                written_vec(dx_len, |dx| {
                    dx.par_chunks_mut(SAMPLES_PER_SUM * cin * h * w)
                        .enumerate()
                        .map(|(c, dx)| terms.chunk(c, batch, Some(dx)))
                        .collect()
                })
            }
        } else {
            let partials = (0..chunks)
                .into_par_iter()
                .map(|c| terms.chunk(c, batch, None))
                .collect();
            (Vec::new(), partials)
        };
        let dx = weight.is_some().then(|| tensor(dx, &[batch, cin, h, w]));
        let params = input.is_some().then(|| {
            let dw = sum_in_order(partials.into_iter().flatten(), cin * width);
            let db = channel_sums(grad_values, [batch, cout, oh * ow]);
            (tensor(dw, &self.weight_dims), tensor(db, &[cout]))
        });
        (dx, params)
    }
}

/// Samples whose windows one GEMM of [`TransposedTerms::chunk`] takes: enough for a wide
/// product, few enough for the windows to stay in a core's cache (for the conv VAE's last
/// layer, 4 samples' windows are 1 MB).
const SAMPLES_PER_GEMM: usize = 4;

/// What a transposed convolution's backward step reads, for [`Self::chunk`].
struct TransposedTerms<'a> {
    layout: &'a PhaseWindows,
    /// The output's gradient `[batch, cout, oh, ow]`.
    grad: &'a [f32],
    /// The weights `[cin, cout kh kw]`, when the input's gradient is wanted.
    weight: Option<&'a [f32]>,
    /// The input `[batch, cin, h, w]`, when the weights' gradient is wanted.
    input: Option<&'a [f32]>,
    cin: usize,
}

impl TransposedTerms<'_> {
    /// Chunk `c` of [`SAMPLES_PER_SUM`] samples: writes their input gradient into `dx` (every
    /// value) and returns their weight gradient (summed in groups of [`SAMPLES_PER_GEMM`],
    /// in order, so the result does not depend on the threads).
    fn chunk(
        &self,
        c: usize,
        batch: usize,
        mut dx: Option<&mut [MaybeUninit<f32>]>,
    ) -> Option<Vec<f32>> {
        let l = self.layout;
        let (cin, [h, w], pitch) = (self.cin, l.grid, l.pitch);
        let (positions, width) = (h * pitch, l.width());
        let (grad_sample, input_sample) = (l.channels * l.maps[0] * l.maps[1], cin * h * w);
        let first = c * SAMPLES_PER_SUM;
        let samples = SAMPLES_PER_SUM.min(batch - first);
        let mut dw = self.input.map(|_| vec![0f32; cin * width]);
        // Zeroed once: `split` writes only what comes from the maps.
        let mut planes = vec![0f32; l.sample_len()];
        let most = SAMPLES_PER_GEMM.min(samples) * positions;
        let mut windows = vec![0f32; width * most];
        let mut rows = vec![0f32; cin * most];
        for group in (0..samples).step_by(SAMPLES_PER_GEMM) {
            let n = SAMPLES_PER_GEMM.min(samples - group);
            let cols = n * positions;
            for s in 0..n {
                let b = first + group + s;
                l.split(&self.grad[b * grad_sample..][..grad_sample], &mut planes);
                l.gather(&planes, &mut windows[..width * cols], cols, s * positions);
            }
            let windows = Matrix::row_major(&windows[..width * cols], cols);
            let rows = &mut rows[..cin * cols];
            if let (Some(dx), Some(weight)) = (dx.as_deref_mut(), self.weight) {
                let weight = Matrix::row_major(weight, width);
                serial_product(rows, cols, [cin, cols, width], weight, windows);
                // The pitch's extra columns are dropped.
                let dx = &mut dx[group * input_sample..][..n * input_sample];
                for (s, sample) in dx.chunks_exact_mut(input_sample).enumerate() {
                    for (ci, plane) in sample.chunks_exact_mut(h * w).enumerate() {
                        let src = &rows[ci * cols + s * positions..][..positions];
                        for (dst, src) in plane.chunks_exact_mut(w).zip(src.chunks_exact(pitch)) {
                            dst.write_copy_of_slice(&src[..w]);
                        }
                    }
                }
            }
            if let (Some(dw), Some(input)) = (dw.as_mut(), self.input) {
                // The input's rows padded with zeros to the pitch: the windows' extra
                // columns then add nothing.
                for s in 0..n {
                    let b = first + group + s;
                    let sample = &input[b * input_sample..][..input_sample];
                    for (ci, plane) in sample.chunks_exact(h * w).enumerate() {
                        let dst = &mut rows[ci * cols + s * positions..][..positions];
                        for (dst, src) in dst.chunks_exact_mut(pitch).zip(plane.chunks_exact(w)) {
                            dst[..w].copy_from_slice(src);
                            dst[w..].fill(0.0);
                        }
                    }
                }
                let rows = Matrix::row_major(rows, cols);
                serial_product_add(dw, [cin, width, cols], rows, windows.transposed());
            }
        }
        dw
    }
}

/// The windows that a stride-`s` convolution reads from maps `[channels, mh, mw]` (padded
/// with zeros as far as they reach), for a grid of `[h, w]` window positions: window `(iy,
/// ix)`, tap `(c, ky, kx)` reads the maps at `(iy sy + ky - top, ix sx + kx - left)`.
///
/// Gathered one window at a time, that is `channels kh` copies of `kw` values per position
/// (9% of a conv VAE training step for its transposed layers' gradients). Instead the maps
/// are first split into their stride phase planes (map row `sy r + py` is row `r` of phase
/// `py`), once per sample, with rows `pitch` long. There the tap `(ky, kx)` of every window
/// is the phase plane of `(ky - top) mod s`, shifted by `(ky - top) div s` rows (and the same
/// for columns): one contiguous run of `h * pitch` values, the windows' rows at the pitch.
/// Their columns past `w` are read too and mean nothing: whoever multiplies them makes
/// sure they add nothing (zero-padded input rows) or drops what they give.
#[derive(Debug, Clone)]
struct PhaseWindows {
    channels: usize,
    maps: [usize; 2],
    grid: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    pitch: usize,
    /// Values per phase plane: its rows, and one spare row for the last tap's spill.
    phase_len: usize,
    /// For every phase `py`, the maps' row of each phase-plane row (`None`: padding).
    row_sources: Vec<Vec<Option<usize>>>,
    /// For every phase `px`, the phase-plane columns `[lo, hi)` that lie in the maps and the
    /// maps' column of `lo`.
    col_spans: Vec<(usize, usize, usize)>,
    /// For every tap `(ky, kx)`, where its run starts in a channel's phase planes.
    tap_starts: Vec<usize>,
}

/// `(d, p)` with `t = s d + p`, `0 <= p < s`, and the range of `d` over the taps.
fn phase_shifts(kernel: usize, stride: usize, start: usize) -> (Vec<(isize, usize)>, isize, isize) {
    let shifts: Vec<(isize, usize)> = (0..kernel)
        .map(|k| {
            let t = k as isize - start as isize;
            let s = stride as isize;
            (t.div_euclid(s), t.rem_euclid(s) as usize)
        })
        .collect();
    let low = shifts.iter().map(|&(d, _)| d).min().unwrap_or(0);
    let high = shifts.iter().map(|&(d, _)| d).max().unwrap_or(0);
    (shifts, low, high)
}

impl PhaseWindows {
    fn new(
        channels: usize,
        [mh, mw]: [usize; 2],
        [h, w]: [usize; 2],
        [kh, kw]: [usize; 2],
        [sy, sx]: [usize; 2],
        [top, left]: [usize; 2],
    ) -> Self {
        let (row_shifts, row_low, row_high) = phase_shifts(kh, sy, top);
        let (col_shifts, col_low, col_high) = phase_shifts(kw, sx, left);
        let plane_rows = h + (row_high - row_low) as usize;
        let pitch = w + (col_high - col_low) as usize;
        let phase_len = (plane_rows + 1) * pitch;
        // Phase-plane row `r` (from `row_low` on) of phase `py` is the maps' row `sy r + py`.
        let row_sources = (0..sy)
            .map(|py| {
                (0..plane_rows)
                    .map(|r| {
                        let y = sy as isize * (r as isize + row_low) + py as isize;
                        (0..mh as isize).contains(&y).then_some(y as usize)
                    })
                    .collect()
            })
            .collect();
        let col_spans = (0..sx)
            .map(|px| {
                let x = |c: usize| sx as isize * (c as isize + col_low) + px as isize;
                let inside: Vec<usize> = (0..pitch)
                    .filter(|&c| (0..mw as isize).contains(&x(c)))
                    .collect();
                match (inside.first(), inside.last()) {
                    (Some(&lo), Some(&hi)) => (lo, hi + 1, x(lo) as usize),
                    _ => (0, 0, 0),
                }
            })
            .collect();
        let tap_starts = row_shifts
            .iter()
            .flat_map(|&(dy, py)| col_shifts.iter().map(move |&(dx, px)| (dy, py, dx, px)))
            .map(|(dy, py, dx, px)| {
                (py * sx + px) * phase_len
                    + (dy - row_low) as usize * pitch
                    + (dx - col_low) as usize
            })
            .collect();
        Self {
            channels,
            maps: [mh, mw],
            grid: [h, w],
            kernel: [kh, kw],
            stride: [sy, sx],
            pitch,
            phase_len,
            row_sources,
            col_spans,
            tap_starts,
        }
    }

    /// Values per window: `channels kh kw`.
    fn width(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Values of one sample's phase planes.
    fn sample_len(&self) -> usize {
        self.channels * self.stride[0] * self.stride[1] * self.phase_len
    }

    /// One sample's maps `[channels, mh, mw]` split into its phase planes. Only the values
    /// that come from the maps are written: the padding is the same for every sample, so
    /// `planes` is zeroed once (a fill per padded run was 4% of a conv VAE step, as calls
    /// to `memset` for one or two values).
    fn split(&self, maps: &[f32], planes: &mut [f32]) {
        let [mh, mw] = self.maps;
        let (sx, pitch) = (self.stride[1], self.pitch);
        let mut planes = planes.chunks_exact_mut(self.phase_len);
        for c in 0..self.channels {
            let map = &maps[c * mh * mw..][..mh * mw];
            for rows in &self.row_sources {
                for &(lo, hi, x0) in &self.col_spans {
                    let plane = planes.next().expect("a plane per channel and phase");
                    for (dst, source) in plane.chunks_exact_mut(pitch).zip(rows) {
                        let Some(y) = source else { continue };
                        let src = &map[y * mw + x0..];
                        for (i, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d = src[sx * i];
                        }
                    }
                }
            }
        }
    }

    /// Copies the windows of one sample's `planes` into `windows`: the row of tap `(c, ky,
    /// kx)` starts at `(c kh kw + ky kw + kx) row_stride + offset` and is `h * pitch` long.
    fn gather(&self, planes: &[f32], windows: &mut [f32], row_stride: usize, offset: usize) {
        let run = self.grid[0] * self.pitch;
        let block = self.stride[0] * self.stride[1] * self.phase_len;
        let taps = self.tap_starts.len();
        for c in 0..self.channels {
            let channel = &planes[c * block..][..block];
            for (t, &start) in self.tap_starts.iter().enumerate() {
                let row = (c * taps + t) * row_stride + offset;
                windows[row..row + run].copy_from_slice(&channel[start..start + run]);
            }
        }
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
    relu: bool,
) -> AutodiffFlexTensor {
    layer_op(x, weight, bias, relu, |x, weight, bias, wanted| {
        let input_dims = dims4(x);
        let weight_dims = dims4(weight);
        let (out, kept) = if g.transposed {
            (transposed_forward(x, weight, bias, &g, relu), contiguous(x))
        } else {
            let [oh, ow] = conv_out_size(input_dims, &g);
            let windows = windows(x, &g, [oh, ow]);
            let out = conv_from_windows(&windows, (weight, bias), [input_dims[0], oh, ow], relu);
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
    use burn::tensor::activation::relu;
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
                false,
            );
            assert!(geometry_checked.is_some(), "the plain path applies");
            let name = format!("conv {cin}->{cout} {size} s{stride} {padding:?}");
            assert_close(
                &format!("plain {name}"),
                &to_vec(conv2d(&inference, x.clone())),
                &to_vec(inference.forward(x.clone())),
            );
            assert_close(
                &format!("plain {name} relu"),
                &to_vec(conv2d_relu(&inference, x.clone())),
                &to_vec(relu(inference.forward(x))),
            );
            let params = |c: &Conv2d| (c.weight.val(), c.bias.as_ref().unwrap().val());
            let input = [3, cin, size, size];
            compare(&name, &conv, input, conv2d, |c, x| c.forward(x), params);
            let name = format!("{name} relu");
            let burn = |c: &Conv2d, x| relu(c.forward(x));
            compare(&name, &conv, input, conv2d_relu, burn, params);
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
                &to_vec(inference.forward(x.clone())),
            );
            assert_close(
                &format!("plain {name} relu"),
                &to_vec(conv_transpose2d_relu(&inference, x.clone())),
                &to_vec(relu(inference.forward(x))),
            );
            let params = |c: &ConvTranspose2d| (c.weight.val(), c.bias.as_ref().unwrap().val());
            let input = [2, cin, size, size];
            let burn = |c: &ConvTranspose2d, x| c.forward(x);
            compare(&name, &conv, input, conv_transpose2d, burn, params);
            let burn = |c: &ConvTranspose2d, x| relu(c.forward(x));
            let name = format!("{name} relu");
            compare(&name, &conv, input, conv_transpose2d_relu, burn, params);
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
