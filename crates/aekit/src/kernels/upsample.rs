//! Nearest-neighbour upsampling by 2 followed by a crop to the top-left `size`, as one
//! operation on Burn's `flex` backend, with its gradient (each input value's gradient is the
//! sum of the up to four output values it was copied to).
//!
//! Why: built from tensor operations (reshape, two `repeat_dim`s, reshape, `narrow`) it makes
//! four passes forward, and its backward sums through the reshapes and writes the crop's
//! gradient into a zero tensor (23 ms per step for the conv AE's 16x14 -> 28 level, in
//! `bench/results/2026-11-24-profile.txt`). Here it is one pass each way.

use super::flex_tensor::{AutodiffFlexTensor, UnaryGradient, contiguous, tensor, unary_op, values};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// Planes per parallel task.
const PLANES_PER_TASK: usize = 8;

/// `[planes, h, w]` upsampled to `[planes, ho, wo]` (`ho <= 2h`, `wo <= 2w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    planes: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

/// Every value of `x` `[batch, channels, h, w]` as a 2x2 block, then the top-left
/// `[ho, wo]` of each map (at most `2h x 2w`).
pub fn nearest2x_cropped(x: Tensor<4>, [ho, wo]: [usize; 2]) -> Tensor<4> {
    let [batch, channels, h, w] = x.dims();
    assert!(
        ho <= 2 * h && wo <= 2 * w,
        "cropping {h}x{w} doubled to {ho}x{wo}"
    );
    let g = Geometry {
        planes: batch * channels,
        h,
        w,
        ho,
        wo,
    };
    let shape = [batch, channels, ho, wo];
    if x.dtype() == DType::F32 {
        if let Ok(xa) = x.clone().try_into_primitive::<Autodiff<Flex>>() {
            return Tensor::from_primitive::<Autodiff<Flex>>(autodiff_forward(xa, g, shape));
        }
        if let Ok(xp) = x.clone().try_into_primitive::<Flex>() {
            let out = forward(values(&contiguous(&xp)), &g);
            return Tensor::from_primitive::<Flex>(tensor(out, &shape));
        }
    }
    composed(x, [ho, wo])
}

/// The same from Burn's tensor operations (other backends and dtypes).
fn composed(x: Tensor<4>, [ho, wo]: [usize; 2]) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let x = x
        .reshape([b, c, h, 1, w, 1])
        .repeat_dim(3, 2)
        .repeat_dim(5, 2)
        .reshape([b, c, 2 * h, 2 * w]);
    let x = if ho < 2 * h { x.narrow(2, 0, ho) } else { x };
    if wo < 2 * w { x.narrow(3, 0, wo) } else { x }
}

fn forward(x: &[f32], g: &Geometry) -> Vec<f32> {
    let (in_plane, out_plane) = (g.h * g.w, g.ho * g.wo);
    let mut out = vec![0.0f32; g.planes * out_plane];
    if out_plane == 0 {
        return out;
    }
    out.par_chunks_mut(PLANES_PER_TASK * out_plane)
        .enumerate()
        .for_each(|(task, out)| {
            for (i, out) in out.chunks_mut(out_plane).enumerate() {
                let plane = task * PLANES_PER_TASK + i;
                let x = &x[plane * in_plane..(plane + 1) * in_plane];
                for (oy, row) in out.chunks_mut(g.wo).enumerate() {
                    let src = &x[(oy / 2) * g.w..(oy / 2 + 1) * g.w];
                    for (ox, v) in row.iter_mut().enumerate() {
                        *v = src[ox / 2];
                    }
                }
            }
        });
    out
}

/// The input's gradient: the sum of the gradients of the (up to four) copies.
fn backward(grad: &[f32], g: &Geometry) -> Vec<f32> {
    let (in_plane, out_plane) = (g.h * g.w, g.ho * g.wo);
    let mut dx = vec![0.0f32; g.planes * in_plane];
    if in_plane == 0 {
        return dx;
    }
    dx.par_chunks_mut(PLANES_PER_TASK * in_plane)
        .enumerate()
        .for_each(|(task, dx)| {
            for (i, dx) in dx.chunks_mut(in_plane).enumerate() {
                let plane = task * PLANES_PER_TASK + i;
                let grad = &grad[plane * out_plane..(plane + 1) * out_plane];
                for (oy, row) in grad.chunks(g.wo.max(1)).enumerate().take(g.ho) {
                    let dst = &mut dx[(oy / 2) * g.w..(oy / 2 + 1) * g.w];
                    for (ox, &v) in row.iter().enumerate() {
                        dst[ox / 2] += v;
                    }
                }
            }
        });
    dx
}

#[derive(Debug, Clone)]
struct UpsampleState {
    geometry: Geometry,
    input_shape: [usize; 4],
}

impl UnaryGradient for UpsampleState {
    fn input_grad(&self, upstream: &[f32]) -> FlexTensor {
        tensor(backward(upstream, &self.geometry), &self.input_shape)
    }
}

fn autodiff_forward(x: AutodiffFlexTensor, g: Geometry, shape: [usize; 4]) -> AutodiffFlexTensor {
    unary_op(x, |input| {
        let state = UpsampleState {
            geometry: g,
            input_shape: [shape[0], shape[1], g.h, g.w],
        };
        (tensor(forward(input, &g), &shape), state)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::flex_tensor::to_vec;
    use burn::tensor::{Device, Distribution};

    /// Values and gradients equal the composition of Burn's tensor operations, cropped and
    /// not, on plain and autodiff tensors.
    #[test]
    fn matches_the_composition_forward_and_backward() {
        let plain = Device::flex();
        let autodiff = plain.clone().autodiff();
        plain.seed(3);
        for (shape, size) in [
            ([2, 8, 4, 4], [7, 7]),
            ([3, 16, 14, 14], [28, 28]),
            ([2, 3, 5, 6], [9, 12]),
            ([1, 2, 3, 1], [6, 1]),
        ] {
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &plain);
            let ours = nearest2x_cropped(x.clone(), size);
            let reference = composed(x.clone(), size);
            assert_eq!(ours.dims(), reference.dims(), "{shape:?}");
            assert_eq!(to_vec(ours), to_vec(reference.clone()), "{shape:?}");

            let upstream =
                Tensor::<4>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &plain);
            let mut results = Vec::new();
            for direct in [true, false] {
                let x = Tensor::<4>::from_data(x.to_data(), &autodiff).require_grad();
                let u = Tensor::<4>::from_data(upstream.to_data(), &autodiff);
                let y = if direct {
                    nearest2x_cropped(x.clone(), size)
                } else {
                    composed(x.clone(), size)
                };
                let grads = (y * u).sum().backward();
                results.push(to_vec(x.grad(&grads).unwrap()));
            }
            let worst = results[0]
                .iter()
                .zip(&results[1])
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-6, "{shape:?} gradient: {worst}");
        }
    }
}
