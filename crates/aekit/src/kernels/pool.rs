//! 2x2 max pooling with stride 2 and "same" padding (an odd height or width gets a last
//! window of one row or column), forward and backward, on Burn's `flex` backend.
//!
//! Why: flex pools with a generic 3-D loop that works out every window's bounds and keeps an
//! `i64` index per output (about 35 ns per window); its backward scatters through those
//! indices. Here a window is four branch-free comparisons and its argmax one byte (0..4
//! within the window), and the backward writes each input value once. Ties go to the first maximum in
//! row-major order and NaN wins, as in flex, so values and gradients are the same as Burn's
//! `MaxPool2d` with kernel 2 and `PaddingConfig2d::Same`.

use super::flex_tensor::{AutodiffFlexTensor, UnaryGradient, contiguous, tensor, unary_op, values};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Planes per parallel task.
const PLANES_PER_TASK: usize = 8;

/// `[batch, channels, h, w]` in, `[batch, channels, ceil(h/2), ceil(w/2)]` out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    planes: usize,
    h: usize,
    w: usize,
}

impl Geometry {
    fn ho(&self) -> usize {
        self.h.div_ceil(2)
    }
    fn wo(&self) -> usize {
        self.w.div_ceil(2)
    }
}

/// 2x2 max pooling, stride 2, "same" padding: Burn's
/// `MaxPool2dConfig::new([2, 2]).with_padding(PaddingConfig2d::Same)`, through the direct
/// kernel on `f32` `flex` tensors.
pub fn max_pool2x2_same(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, h, w] = x.dims();
    let g = Geometry {
        planes: batch * channels,
        h,
        w,
    };
    let shape = [batch, channels, g.ho(), g.wo()];
    if x.dtype() == DType::F32 && h > 0 && w > 0 {
        if let Ok(xa) = x.clone().try_into_primitive::<Autodiff<Flex>>() {
            return Tensor::from_primitive::<Autodiff<Flex>>(autodiff_forward(xa, g, shape));
        }
        if let Ok(xp) = x.clone().try_into_primitive::<Flex>() {
            let (out, _) = forward(values(&contiguous(&xp)), &g);
            return Tensor::from_primitive::<Flex>(tensor(out, &shape));
        }
    }
    MaxPool2dConfig::new([2, 2])
        .with_padding(PaddingConfig2d::Same)
        .init()
        .forward(x)
}

/// The maximum of every window and its position in the window (`2 * dy + dx`).
fn forward(x: &[f32], g: &Geometry) -> (Vec<f32>, Vec<u8>) {
    let (h, w, ho, wo) = (g.h, g.w, g.ho(), g.wo());
    let (in_plane, out_plane) = (h * w, ho * wo);
    let mut out = vec![0.0f32; g.planes * out_plane];
    let mut argmax = vec![0u8; g.planes * out_plane];
    let task_out = PLANES_PER_TASK * out_plane;
    out.par_chunks_mut(task_out)
        .zip(argmax.par_chunks_mut(task_out))
        .enumerate()
        .for_each(|(task, (out, argmax))| {
            let planes = out.chunks_mut(out_plane).zip(argmax.chunks_mut(out_plane));
            for (i, (out, argmax)) in planes.enumerate() {
                let plane = task * PLANES_PER_TASK + i;
                let x = &x[plane * in_plane..(plane + 1) * in_plane];
                let rows = out.chunks_mut(wo).zip(argmax.chunks_mut(wo));
                for (oy, (out, argmax)) in rows.enumerate() {
                    pool_row(x, w, h, oy, out, argmax);
                }
            }
        });
    (out, argmax)
}

/// One output row: full windows first, then the one-column window of an odd width.
#[inline(always)]
fn pool_row(x: &[f32], w: usize, h: usize, oy: usize, out: &mut [f32], argmax: &mut [u8]) {
    let (r0, r1) = (2 * oy, (2 * oy + 1).min(h - 1));
    let (row0, row1) = (&x[r0 * w..(r0 + 1) * w], &x[r1 * w..(r1 + 1) * w]);
    // Past an odd bottom edge the second row repeats the first, with the first's codes.
    let dy = 2 * u8::from(r1 > r0);
    let full = w / 2;
    let pairs = row0.chunks_exact(2).zip(row1.chunks_exact(2));
    for ((o, a), (p0, p1)) in out[..full].iter_mut().zip(&mut argmax[..full]).zip(pairs) {
        (*o, *a) = window([p0[0], p0[1], p1[0], p1[1]], [0, 1, dy, dy + 1]);
    }
    if out.len() > full {
        let last = w - 1;
        (out[full], argmax[full]) = window(
            [row0[last], row0[last], row1[last], row1[last]],
            [0, 0, dy, dy],
        );
    }
}

/// The first maximum of a window in row-major order (NaN wins, the last one, as in flex) and
/// its code.
#[inline(always)]
fn window(values: [f32; 4], codes: [u8; 4]) -> (f32, u8) {
    let (mut best, mut at) = (values[0], codes[0]);
    for k in 1..4 {
        let take = values[k] > best || values[k].is_nan();
        best = if take { values[k] } else { best };
        at = if take { codes[k] } else { at };
    }
    (best, at)
}

/// The input's gradient: each output's gradient goes to its window's maximum.
fn backward(grad: &[f32], argmax: &[u8], g: &Geometry) -> Vec<f32> {
    let (h, w, ho, wo) = (g.h, g.w, g.ho(), g.wo());
    let (in_plane, out_plane) = (h * w, ho * wo);
    let mut dx = vec![0.0f32; g.planes * in_plane];
    dx.par_chunks_mut(PLANES_PER_TASK * in_plane)
        .enumerate()
        .for_each(|(task, dx)| {
            for (i, dx) in dx.chunks_mut(in_plane).enumerate() {
                let plane = task * PLANES_PER_TASK + i;
                let grad = &grad[plane * out_plane..(plane + 1) * out_plane];
                let argmax = &argmax[plane * out_plane..(plane + 1) * out_plane];
                for oy in 0..ho {
                    for ox in 0..wo {
                        let a = argmax[oy * wo + ox] as usize;
                        let (y, x) = (2 * oy + a / 2, 2 * ox + a % 2);
                        dx[y * w + x] = grad[oy * wo + ox];
                    }
                }
            }
        });
    dx
}

#[derive(Debug, Clone)]
struct PoolState {
    argmax: Arc<Vec<u8>>,
    geometry: Geometry,
    input_shape: [usize; 4],
}

impl UnaryGradient for PoolState {
    fn input_grad(&self, upstream: &[f32]) -> FlexTensor {
        tensor(
            backward(upstream, &self.argmax, &self.geometry),
            &self.input_shape,
        )
    }
}

fn autodiff_forward(x: AutodiffFlexTensor, g: Geometry, shape: [usize; 4]) -> AutodiffFlexTensor {
    unary_op(x, |input| {
        let (out, argmax) = forward(input, &g);
        let state = PoolState {
            argmax: Arc::new(argmax),
            geometry: g,
            input_shape: [shape[0], shape[1], g.h, g.w],
        };
        (tensor(out, &shape), state)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::flex_tensor::to_vec;
    use burn::tensor::{Device, Distribution};

    fn burn_pool(x: Tensor<4>) -> Tensor<4> {
        MaxPool2dConfig::new([2, 2])
            .with_padding(PaddingConfig2d::Same)
            .init()
            .forward(x)
    }

    /// Values and gradients equal Burn's, for even and odd sizes, with ties (ReLU zeros).
    #[test]
    fn matches_burn_max_pool_forward_and_backward() {
        let plain = Device::flex();
        let autodiff = plain.clone().autodiff();
        plain.seed(5);
        for shape in [
            [3, 16, 28, 28],
            [2, 8, 7, 7],
            [2, 3, 5, 8],
            [1, 1, 1, 1],
            [2, 9, 1, 3],
        ] {
            // ReLU of a normal: half the values are tied zeros.
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &plain).clamp_min(0.0);
            let ours = max_pool2x2_same(x.clone());
            let reference = burn_pool(x.clone());
            assert_eq!(ours.dims(), reference.dims(), "{shape:?}");
            assert_eq!(to_vec(ours), to_vec(reference.clone()), "{shape:?}");

            let upstream =
                Tensor::<4>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &plain);
            let mut results = Vec::new();
            for direct in [true, false] {
                let x = Tensor::<4>::from_data(x.to_data(), &autodiff).require_grad();
                let u = Tensor::<4>::from_data(upstream.to_data(), &autodiff);
                let y = if direct {
                    max_pool2x2_same(x.clone())
                } else {
                    burn_pool(x.clone())
                };
                let grads = (y * u).sum().backward();
                results.push(to_vec(x.grad(&grads).unwrap()));
            }
            assert_eq!(results[0], results[1], "{shape:?} gradient");
        }
    }
}
