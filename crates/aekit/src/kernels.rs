//! Vectorisable element-wise math for `f32` tensors on Burn's `flex` backend, where flex calls
//! the C library's scalar `expf`/`log1pf` once per element (the larger part of a small model's
//! step): branch-free Cephes polynomials that the compiler turns into vector code, compiled
//! again for AVX-512 and for AVX2, with fused multiply-adds, and chosen at run time
//! (`simd_dispatch!`).
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
//! [`row_blocks`] runs inference with the batch split into one block of rows per thread.
//!
//! And `adam`: Adam's update of one parameter as a single pass (used by `train::FusedAdam`).

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::activation;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

/// `fn $name(args)` that runs `$body(args)`, an `#[inline(always)]` function of plain
/// loops, compiled for AVX-512F or AVX2 (each with FMA) when the CPU has them (chosen at run
/// time) and as compiled otherwise: the crate is built for baseline x86-64, whose 4-wide
/// vectors would leave most of the loops' speed unused.
///
/// `=> body::<FMA>` names a body generic over `const FMA: bool`, called with `true` where
/// the instructions have fused multiply-adds and `false` in the portable build (where
/// `mul_add` would be a library call); see [`madd`]. A plain `=> body` never fuses: Rust
/// does not contract `a * b + c` on its own, so such a body rounds as its scalar code does.
macro_rules! simd_dispatch {
    (@emit [$($meta:tt)*] $vis:vis $name:ident ($($arg:ident: $ty:ty),*)
        [$($fast:tt)*] [$($portable:tt)*]) => {
        $($meta)*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $($fast)*($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $($fast)*($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F, and with it AVX2 and FMA (checked
                    // just above).
                    unsafe { avx512($($arg),*) };
                    return;
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            $($portable)*($($arg),*)
        }
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?)
        => $body:ident::<FMA>) => {
        simd_dispatch!(@emit [$(#[$meta])*] $vis $name ($($arg: $ty),*)
            [$body::<true>] [$body::<false>]);
    };
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:path) => {
        simd_dispatch!(@emit [$(#[$meta])*] $vis $name ($($arg: $ty),*) [$body] [$body]);
    };
}

pub(crate) mod adam;
pub mod conv;
mod flex_tensor;
pub mod gemm_conv;
pub mod linear;
pub(crate) mod matmul;
pub mod pool;
pub mod row_blocks;
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
    pub(crate) fn sigmoid_chunk(values: &mut [f32]) => sigmoid_chunk_body::<FMA>
}

#[inline(always)]
fn sigmoid_chunk_body<const FMA: bool>(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = sigmoid_element::<FMA>(*v);
    }
}

/// `1 / (1 + e^-x)` from `e = e^-|x|`, without branches or library calls.
#[inline(always)]
pub(crate) fn sigmoid_element<const FMA: bool>(x: f32) -> f32 {
    let e = exp_nonpositive::<FMA>(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

/// `a * b + c`, fused into one rounding where the instruction set has it (`FMA`): a third
/// fewer instructions in the polynomials, the sigmoid 30-45% faster (AVX-512, one thread);
/// without FMA, `mul_add` would be a library call.
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `e^x` for `x <= 0` (Cephes' `expf` polynomial; relative error about 1e-7), flushed to a
/// tiny normal number below -87.
#[inline(always)]
pub(crate) fn exp_nonpositive<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.max(-87.0);
    let shifted = madd::<FMA>(x, LOG2E, ROUND);
    let n = shifted - ROUND;
    let k = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    // x - n ln 2, with ln 2 in two parts (Cody-Waite) so that r keeps its precision.
    let r = madd::<FMA>(n, 2.121_944_4e-4, madd::<FMA>(n, -0.693_359_4, x));
    let z = r * r;
    let mut p = 1.987_569_1e-4;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = madd::<FMA>(p, r, c);
    }
    let y = madd::<FMA>(p, z, r) + 1.0;
    y * f32::from_bits(((k + 127) as u32) << 23)
}

/// `ln(u)` for `u` in [1, 2] (Cephes' `logf` polynomial; error about 1e-7).
#[inline(always)]
pub(crate) fn ln_1_to_2<const FMA: bool>(u: f32) -> f32 {
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
        p = madd::<FMA>(p, x, c);
    }
    let y = madd::<FMA>(x * z, p, madd::<FMA>(k, -2.121_944_4e-4, -0.5 * z));
    madd::<FMA>(k, 0.693_359_4, x + y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn polynomials_are_accurate() {
        fn worst<const FMA: bool>() -> (f64, f64) {
            let (mut exp_worst, mut ln_worst) = (0.0f64, 0.0f64);
            for i in 0..=200_000 {
                let x = -87.0 * i as f32 / 200_000.0;
                let exact = (x as f64).exp();
                let ours = exp_nonpositive::<FMA>(x) as f64;
                exp_worst = exp_worst.max((ours - exact).abs() / exact);
                let u = 1.0 + i as f32 / 200_000.0;
                let exact = (u as f64).ln();
                let ours = ln_1_to_2::<FMA>(u) as f64;
                ln_worst = ln_worst.max((ours - exact).abs() / exact.max(1e-30));
            }
            assert_eq!(ln_1_to_2::<FMA>(1.0), 0.0);
            (exp_worst, ln_worst)
        }
        // The fused build's multiply-adds are checked here as scalar `mul_add` calls, the
        // rounding its vector code has.
        for (fused, (exp_worst, ln_worst)) in [(false, worst::<false>()), (true, worst::<true>())] {
            assert!(
                exp_worst < 3e-7,
                "exp relative error {exp_worst} (FMA {fused})"
            );
            assert!(
                ln_worst < 3e-7,
                "ln relative error {ln_worst} (FMA {fused})"
            );
        }
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
