//! Vectorisable element-wise math for `f32` tensors on Burn's `flex` backend, where flex calls
//! the C library's scalar `expf`/`log1pf` once per element (the larger part of a small model's
//! step): branch-free Cephes polynomials that the compiler turns into vector code, compiled a
//! second time for AVX2 and chosen at run time.
//!
//! - [`sigmoid`]: the logistic function of a plain (no autodiff) tensor, e.g. the output
//!   activation at inference; other tensors go to Burn's own.
//! - `exp_nonpositive`, `ln_1_to_2`: the building blocks, also used by the fused loss
//!   (`loss/fused.rs`).
//!
//! Dense layers ([`linear`]) and the convolutional autoencoder's operations as custom `flex` operations with their own
//! gradients (each falls back to Burn's operation elsewhere):
//!
//! - [`conv`]: a direct "same" convolution for small channel counts;
//! - [`gemm_conv`]: strided and transposed convolutions whose weight gradient is one GEMM;
//! - [`pool`]: 2x2 max pooling with stride 2;
//! - [`upsample`]: nearest-neighbour upsampling by 2 with a crop.
//!
//! And `adam`: Adam's update of one parameter as a single pass (used by `train::FusedAdam`).

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::activation;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

/// `fn $name(args)` that runs `$body(args)`, an `#[inline(always)]` function of plain
/// loops, compiled for AVX-512F or AVX2 when the CPU has them (chosen at run time) and as
/// compiled otherwise: the crate is built for baseline x86-64, whose 4-wide vectors would
/// leave most of the loops' speed unused.
macro_rules! simd_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    unsafe { avx512($($arg),*) };
                    return;
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) mod adam;
pub mod conv;
mod flex_tensor;
pub mod gemm_conv;
pub mod linear;
pub(crate) mod matmul;
pub mod pool;
pub mod upsample;

/// Elements per parallel task.
const CHUNK: usize = 16 * 1024;

/// `1 / (1 + e^-x)` element-wise: vectorised for `f32` tensors on plain `flex`, Burn's
/// `sigmoid` for any other tensor (autodiff ones included, which keep their gradient).
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() != DType::F32 || x.device().is_autodiff() {
        return activation::sigmoid(x);
    }
    let Ok(primitive) = x.clone().try_into_primitive::<Flex>() else {
        return activation::sigmoid(x);
    };
    drop(x);
    Tensor::from_primitive::<Flex>(sigmoid_flex(primitive))
}

/// The sigmoid of a flex tensor, in place when it owns its contiguous values.
fn sigmoid_flex(mut tensor: FlexTensor) -> FlexTensor {
    let shape = tensor.layout().shape().clone();
    let in_place = tensor.is_unique()
        && tensor.layout().is_contiguous()
        && tensor.layout().start_offset() == 0;
    if in_place {
        let n = tensor.layout().num_elements();
        sigmoid_slice(&mut tensor.storage_mut::<f32>()[..n]);
        return tensor;
    }
    let mut values = tensor
        .to_contiguous()
        .as_slice::<f32>()
        .expect("a contiguous f32 tensor")
        .to_vec();
    sigmoid_slice(&mut values);
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Replaces every value by its sigmoid (in parallel chunks).
pub(crate) fn sigmoid_slice(values: &mut [f32]) {
    values.par_chunks_mut(CHUNK).for_each(sigmoid_chunk);
}

simd_dispatch! {
    /// Replaces every value of one chunk by its sigmoid.
    pub(crate) fn sigmoid_chunk(values: &mut [f32]) => sigmoid_chunk_body
}

#[inline(always)]
fn sigmoid_chunk_body(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = sigmoid_element(*v);
    }
}

/// `1 / (1 + e^-x)` from `e = e^-|x|`, without branches or library calls.
#[inline(always)]
pub(crate) fn sigmoid_element(x: f32) -> f32 {
    let e = exp_nonpositive(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

/// `e^x` for `x <= 0` (Cephes' `expf` polynomial; relative error about 1e-7), flushed to a
/// tiny normal number below -87.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.max(-87.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let k = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let z = r * r;
    let mut p = 1.987_569_1e-4;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = p * r + c;
    }
    let y = p * z + r + 1.0;
    y * f32::from_bits(((k + 127) as u32) << 23)
}

/// `ln(u)` for `u` in [1, 2] (Cephes' `logf` polynomial; error about 1e-7).
#[inline(always)]
pub(crate) fn ln_1_to_2(u: f32) -> f32 {
    const SQRT_2: f32 = std::f32::consts::SQRT_2;
    // u = 2^k m with m in [sqrt(1/2), sqrt(2)): k is 0, or 1 above sqrt(2).
    let high = u > SQRT_2;
    let m = if high { u * 0.5 } else { u };
    let k = if high { 1.0 } else { 0.0 };
    let x = m - 1.0;
    let z = x * x;
    let mut p = 7.037_683_6e-2;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        p = p * x + c;
    }
    let y = x * z * p + k * -2.121_944_4e-4 - 0.5 * z;
    x + y + k * 0.693_359_4
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn polynomials_are_accurate() {
        let (mut exp_worst, mut ln_worst) = (0.0f64, 0.0f64);
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let exact = (x as f64).exp();
            exp_worst = exp_worst.max((exp_nonpositive(x) as f64 - exact).abs() / exact);
            let u = 1.0 + i as f32 / 200_000.0;
            let exact = (u as f64).ln();
            ln_worst = ln_worst.max((ln_1_to_2(u) as f64 - exact).abs() / exact.max(1e-30));
        }
        assert!(exp_worst < 3e-7, "exp relative error {exp_worst}");
        assert!(ln_worst < 3e-7, "ln relative error {ln_worst}");
        assert_eq!(ln_1_to_2(1.0), 0.0);
    }

    #[test]
    fn sigmoid_matches_burn_on_plain_tensors_and_defers_to_it_with_autodiff() {
        let device = Device::flex();
        device.seed(4);
        let x = Tensor::<2>::random([70, 784], Distribution::Uniform(-30.0, 30.0), &device);
        let ours = sigmoid(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        let burn = activation::sigmoid(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (a, b) in ours.iter().zip(&burn) {
            assert!((a - b).abs() <= 3e-7 * b.abs().max(1e-30), "{a} vs {b}");
        }
        // A shared, non-contiguous input is left as it was.
        let t = x.clone().transpose();
        let y = sigmoid(t.clone());
        assert_eq!(y.dims(), [784, 70]);
        assert_eq!(
            t.into_data().try_to_vec::<f32>().unwrap(),
            x.clone()
                .transpose()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        );
        // Extremes.
        let edge = Tensor::<1>::from_floats([-200.0, -88.0, 0.0, 88.0, 200.0], &device);
        let e = sigmoid(edge).into_data().try_to_vec::<f32>().unwrap();
        assert!(e[0] < 1e-30 && e[1] < 1e-30 && e[2] == 0.5 && e[3] == 1.0 && e[4] == 1.0);

        let autodiff = device.autodiff();
        let x = Tensor::<1>::from_floats([0.5, -1.0], &autodiff).require_grad();
        let grads = sigmoid(x.clone()).sum().backward();
        let g = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let s = |v: f32| 1.0 / (1.0 + (-v).exp());
        assert!((g[0] - s(0.5) * (1.0 - s(0.5))).abs() < 1e-6);
        assert!((g[1] - s(-1.0) * (1.0 - s(-1.0))).abs() < 1e-6);
    }
}
