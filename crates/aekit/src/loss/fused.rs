//! The binary cross-entropy from logits, mean over every element, as one fused operation on
//! Burn's `flex` CPU backend, with its closed-form gradient registered through
//! `burn-autodiff`'s [`Backward`] extension point.
//!
//! Built from tensor operations, `mean((1 - t) x - log_sigmoid(x))` makes about five passes
//! over the batch forward and as many backward, each allocating a tensor, and calls the
//! scalar `expf`/`log1pf` of the C library twice per element (a third of the seed model's
//! training time). Here the forward pass is one sweep computing
//! `max(x, 0) - x t + ln(1 + e^-|x|)` with branch-free polynomial `exp` and `log` that the
//! compiler vectorises (AVX2 when the CPU has it, chosen at run time), summed in `f64` in
//! fixed chunks (so the value does not depend on the thread count); it keeps `sigmoid(x)`
//! when a gradient will be needed. The backward pass is one sweep writing
//! `(sigmoid(x) - t) * g / N` for the upstream gradient `g`.
//!
//! [`try_bce_with_logits_mean`] applies to `f32` tensors on `flex` (plain, or autodiff without
//! gradient checkpointing); `loss::bce_with_logits_mean` falls back to the composition of
//! tensor operations elsewhere.

use crate::kernels::{exp_nonpositive, ln_1_to_2};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task (and per term of the fixed summation order).
const CHUNK: usize = 16 * 1024;
/// Elements per block of the vectorised loops.
const BLOCK: usize = 256;

/// `mean(bce_with_logits(logits, target))` over every element as a one-element tensor, fused
/// on `flex` for `f32`; `None` where the fused kernel does not apply (another backend or
/// dtype, gradient checkpointing, different shapes).
pub fn try_bce_with_logits_mean<const D: usize>(
    logits: &Tensor<D>,
    target: &Tensor<D>,
) -> Option<Tensor<1>> {
    if logits.dims() != target.dims()
        || logits.dtype() != DType::F32
        || target.dtype() != DType::F32
    {
        return None;
    }
    if let (Ok(x), Ok(t)) = (
        logits.clone().try_into_primitive::<Autodiff<Flex>>(),
        target.clone().try_into_primitive::<Autodiff<Flex>>(),
    ) {
        return Some(Tensor::from_primitive::<Autodiff<Flex>>(autodiff_forward(
            x, t,
        )));
    }
    if let (Ok(x), Ok(t)) = (
        logits.clone().try_into_primitive::<Flex>(),
        target.clone().try_into_primitive::<Flex>(),
    ) {
        let (mean, _) = forward(&x, &t, false);
        return Some(Tensor::from_primitive::<Flex>(scalar(mean)));
    }
    None
}

/// A one-element `[1]` tensor.
fn scalar(value: f32) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(vec![value], [1]))
}

/// The tensor itself when its values are a contiguous `f32` slice, else a contiguous copy.
fn contiguous(tensor: &FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() {
        tensor.clone()
    } else {
        tensor.to_contiguous()
    }
}

fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// One sweep: the mean over every element of `max(x, 0) - x t + ln(1 + e^-|x|)` and, when
/// `keep_sigmoid`, `sigmoid(x)` (the state of the backward pass).
fn forward(
    logits: &FlexTensor,
    target: &FlexTensor,
    keep_sigmoid: bool,
) -> (f32, Option<FlexTensor>) {
    let (logits, target) = (contiguous(logits), contiguous(target));
    let (x, t) = (values(&logits), values(&target));
    assert_eq!(x.len(), t.len(), "logits and targets differ in size");
    let n = x.len();
    if keep_sigmoid {
        // Written once by the sweep: no zeroing first.
        let mut sigmoid: Vec<f32> = Vec::with_capacity(n);
        let sums: Vec<f64> = x
            .par_chunks(CHUNK)
            .zip(t.par_chunks(CHUNK))
            .zip(sigmoid.spare_capacity_mut()[..n].par_chunks_mut(CHUNK))
            .map(|((x, t), s)| chunk_loss(x, t, Some(s)))
            .collect();
        // SAFETY: the chunks above cover all `n` values and `chunk_loss` wrote every one.
        unsafe { sigmoid.set_len(n) };
        let shape = logits.layout().shape().clone();
        let sigmoid = FlexTensor::from_data(TensorData::new(sigmoid, shape));
        return (mean(&sums, n), Some(sigmoid));
    }
    let sums: Vec<f64> = x
        .par_chunks(CHUNK)
        .zip(t.par_chunks(CHUNK))
        .map(|(x, t)| chunk_loss(x, t, None))
        .collect();
    (mean(&sums, n), None)
}

/// The mean from the chunks' sums, added in order (the same order for any thread count).
fn mean(sums: &[f64], n: usize) -> f32 {
    (sums.iter().sum::<f64>() / n.max(1) as f64) as f32
}

/// The loss summed over one chunk (in blocks, each summed into eight `f64` lanes); writes
/// `sigmoid(x)` into every value of `sigmoid` when given.
fn chunk_loss(x: &[f32], t: &[f32], mut sigmoid: Option<&mut [MaybeUninit<f32>]>) -> f64 {
    let mut loss = [0.0f32; BLOCK];
    let mut block_sigmoid = [0.0f32; BLOCK];
    let mut lanes = [0.0f64; 8];
    for start in (0..x.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(x.len());
        let len = end - start;
        bce_block(
            &x[start..end],
            &t[start..end],
            &mut loss[..len],
            &mut block_sigmoid[..len],
        );
        if let Some(s) = sigmoid.as_deref_mut() {
            for (out, &v) in s[start..end].iter_mut().zip(&block_sigmoid[..len]) {
                out.write(v);
            }
        }
        let mut blocks = loss[..len].chunks_exact(8);
        for block in &mut blocks {
            for (lane, &v) in lanes.iter_mut().zip(block) {
                *lane += v as f64;
            }
        }
        for (lane, &v) in lanes.iter_mut().zip(blocks.remainder()) {
            *lane += v as f64;
        }
    }
    lanes.iter().sum()
}

simd_dispatch! {
    /// Element-wise loss and sigmoid of a block, with the widest vector instructions
    /// available.
    fn bce_block(x: &[f32], t: &[f32], loss: &mut [f32], sigmoid: &mut [f32]) => bce_block_body::<FMA>
}

#[inline(always)]
fn bce_block_body<const FMA: bool>(x: &[f32], t: &[f32], loss: &mut [f32], sigmoid: &mut [f32]) {
    let n = x.len();
    let (t, loss, sigmoid) = (&t[..n], &mut loss[..n], &mut sigmoid[..n]);
    for i in 0..n {
        let (l, s) = bce_element::<FMA>(x[i], t[i]);
        loss[i] = l;
        sigmoid[i] = s;
    }
}

/// `(max(x, 0) - x t + ln(1 + e^-|x|), sigmoid(x))` without branches or library calls.
#[inline(always)]
fn bce_element<const FMA: bool>(x: f32, t: f32) -> (f32, f32) {
    let e = exp_nonpositive::<FMA>(-x.abs());
    let u = 1.0 + e;
    let r = 1.0 / u;
    // ln(1 + e) = ln(u) + (e - (u - 1)) / u: the second term restores what rounding 1 + e
    // lost, so small `e` keep their relative precision.
    let softplus = ln_1_to_2::<FMA>(u) + (e - (u - 1.0)) * r;
    let loss = x.max(0.0) - x * t + softplus;
    let sigmoid = if x >= 0.0 { r } else { e * r };
    (loss, sigmoid)
}

/// One sweep: `(s - t) * scale` element-wise, written over `s` (which the backward pass owns,
/// so no new buffer is needed).
fn scaled_difference_in_place(s: FlexTensor, t: &FlexTensor, scale: f32) -> FlexTensor {
    let mut s = if s.is_contiguous() && s.layout().start_offset() == 0 {
        s
    } else {
        s.to_contiguous()
    };
    let t = contiguous(t);
    let t = values(&t);
    let n = t.len();
    s.storage_mut::<f32>()[..n]
        .par_chunks_mut(CHUNK)
        .zip(t.par_chunks(CHUNK))
        .for_each(|(s, t)| {
            for (s, &t) in s.iter_mut().zip(t) {
                *s = (*s - t) * scale;
            }
        });
    s
}

/// `value * scale` element-wise.
fn scaled(a: &FlexTensor, scale: f32) -> FlexTensor {
    let a = contiguous(a);
    let out: Vec<f32> = values(&a).iter().map(|v| v * scale).collect();
    FlexTensor::from_data(TensorData::new(out, a.layout().shape().clone()))
}

/// The upstream gradient of the one-element loss.
fn upstream(grad: &FlexTensor) -> f32 {
    values(&contiguous(grad))[0]
}

/// What the backward pass needs: `sigmoid(x)` and the targets for the logits' gradient, the
/// logits for the targets' gradient (rarely wanted); and the element count `N`.
#[derive(Debug, Clone)]
struct BceState {
    sigmoid: Option<FlexTensor>,
    target: Option<FlexTensor>,
    logits: Option<FlexTensor>,
    elements: usize,
}

/// The backward step: `d/dx = (sigmoid(x) - t) g / N`, `d/dt = -x g / N`.
#[derive(Debug)]
struct BceWithLogitsMeanBackward;

impl Backward<Flex, 2> for BceWithLogitsMeanBackward {
    type State = BceState;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let BceState {
            sigmoid,
            target,
            logits,
            elements,
        } = ops.state;
        let n = elements.max(1) as f32;
        binary::<Flex, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| {
                let sigmoid = sigmoid.expect("kept for the logits");
                let target = target.expect("kept for the logits");
                scaled_difference_in_place(sigmoid, &target, upstream(&grad) / n)
            },
            |grad| {
                let logits = logits.expect("kept for the targets");
                scaled(&logits, -upstream(&grad) / n)
            },
        );
    }
}

type AutodiffFlexTensor = burn::backend::tensor::FloatTensor<Autodiff<Flex>>;

/// The fused operation on autodiff tensors: registers the backward step when either input
/// needs a gradient, and keeps only what that gradient needs.
fn autodiff_forward(logits: AutodiffFlexTensor, target: AutodiffFlexTensor) -> AutodiffFlexTensor {
    let elements = logits.primitive().layout().num_elements();
    let (logits_tracked, target_tracked) = (logits.is_tracked(), target.is_tracked());
    let prep = BceWithLogitsMeanBackward
        .prepare::<NoCheckpointing>([logits.node(), target.node()])
        .compute_bound()
        .stateful();
    let (x, t) = (logits.primitive(), target.primitive());
    match prep {
        OpsKind::Tracked(prep) => {
            let (mean, sigmoid) = forward(x, t, logits_tracked);
            let state = BceState {
                sigmoid,
                target: logits_tracked.then(|| t.clone()),
                logits: target_tracked.then(|| x.clone()),
                elements,
            };
            prep.finish(state, scalar(mean))
        }
        OpsKind::UnTracked(prep) => prep.finish(scalar(forward(x, t, false).0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::bce_with_logits;
    use burn::tensor::{Device, Distribution};

    fn reference(x: f64, t: f64) -> f64 {
        x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
    }

    #[test]
    fn elementwise_loss_and_sigmoid_are_accurate() {
        // Both builds: with fused multiply-adds (scalar `mul_add` rounds as the vector
        // code does) and without.
        elementwise_accuracy::<false>();
        elementwise_accuracy::<true>();
    }

    fn elementwise_accuracy<const FMA: bool>() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -40_000..=40_000 {
            let x = i as f32 * 0.0025; // -100 .. 100
            for t in [0.0f32, 0.3, 1.0] {
                let (l, s) = bce_element::<FMA>(x, t);
                let exact = reference(x as f64, t as f64);
                let error = (l as f64 - exact).abs() / exact.abs().max(1e-30);
                // Where the loss nearly cancels (t = 1, x large) only the absolute error counts.
                let error = error.min((l as f64 - exact).abs() / 1e-6);
                worst.0 = worst.0.max(error);
                let sig = 1.0 / (1.0 + (-(x as f64)).exp());
                // Below e^-87 (x < -87) the sigmoid is flushed to about 1e-38.
                worst.1 = worst.1.max((s as f64 - sig).abs() / sig.max(1e-30));
            }
        }
        assert!(
            worst.0 < 5e-7,
            "loss relative error {} (FMA {FMA})",
            worst.0
        );
        assert!(
            worst.1 < 5e-7,
            "sigmoid relative error {} (FMA {FMA})",
            worst.1
        );
        // Tiny e: ln(1 + e) keeps its relative precision.
        let (l, _) = bce_element::<FMA>(30.0, 1.0);
        assert!((l as f64 / (-30f64).exp() - 1.0).abs() < 1e-5, "{l}");
        let (l, s) = bce_element::<FMA>(-200.0, 0.0);
        assert!(l.is_finite() && l < 1e-30 && s < 1e-30, "{l} {s}");
    }

    fn random(shape: [usize; 2], low: f64, high: f64, device: &Device) -> Tensor<2> {
        Tensor::<2>::random(shape, Distribution::Uniform(low, high), device)
    }

    /// The fused loss equals the composition of tensor operations on plain and autodiff
    /// tensors, and its gradient equals the composition's gradient.
    #[test]
    fn fused_loss_and_gradient_match_the_composition() {
        let plain = Device::flex();
        plain.seed(7);
        // Sizes below, at and above one chunk; logits wide enough to saturate.
        for shape in [[3, 5], [64, 256], [70, 784]] {
            let x = random(shape, -12.0, 12.0, &plain);
            let t = random(shape, 0.0, 1.0, &plain);
            let fused = try_bce_with_logits_mean(&x, &t).expect("fused on flex");
            let composed = bce_with_logits(x.clone(), t.clone()).mean();
            let (f, c) = (fused.into_scalar::<f32>(), composed.into_scalar::<f32>());
            assert!((f - c).abs() <= 1e-5 * c.abs(), "{shape:?}: {f} vs {c}");

            let autodiff = plain.clone().autodiff();
            let data = (x.into_data(), t.into_data());
            let leaf = || {
                (
                    Tensor::<2>::from_data(data.0.clone(), &autodiff).require_grad(),
                    Tensor::<2>::from_data(data.1.clone(), &autodiff).require_grad(),
                )
            };
            let (xf, tf) = leaf();
            let fused = try_bce_with_logits_mean(&xf, &tf).expect("fused on autodiff flex");
            let (xc, tc) = leaf();
            let composed = bce_with_logits(xc.clone(), tc.clone()).mean();
            let (f, c) = (
                fused.clone().into_scalar::<f32>(),
                composed.clone().into_scalar::<f32>(),
            );
            assert!((f - c).abs() <= 1e-5 * c.abs(), "{shape:?}: {f} vs {c}");
            // A scaled upstream gradient: the loss times 3.
            let gf = fused.mul_scalar(3.0).backward();
            let gc = composed.mul_scalar(3.0).backward();
            for (name, a, b) in [
                ("logits", xf.grad(&gf), xc.grad(&gc)),
                ("targets", tf.grad(&gf), tc.grad(&gc)),
            ] {
                let a = a.unwrap().into_data().try_to_vec::<f32>().unwrap();
                let b = b.unwrap().into_data().try_to_vec::<f32>().unwrap();
                let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let worst = a
                    .iter()
                    .zip(&b)
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    worst <= 1e-5 * scale,
                    "{shape:?} {name}: {worst} vs {scale}"
                );
            }
        }
    }

    /// Only the logits need a gradient in training: the targets get none, and a loss that
    /// needs no gradient at all (validation on the autodiff device) registers nothing.
    #[test]
    fn targets_without_gradient_and_untracked_inputs() {
        let autodiff = Device::flex().autodiff();
        autodiff.seed(1);
        let x = random([4, 9], -3.0, 3.0, &autodiff).require_grad();
        let t = random([4, 9], 0.0, 1.0, &autodiff);
        let loss = try_bce_with_logits_mean(&x, &t).unwrap();
        let grads = loss.backward();
        let g = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let (xs, ts) = (
            x.clone().into_data().try_to_vec::<f32>().unwrap(),
            t.into_data().try_to_vec::<f32>().unwrap(),
        );
        for i in 0..xs.len() {
            let expected = (1.0 / (1.0 + (-xs[i]).exp()) - ts[i]) / 36.0;
            assert!(
                (g[i] - expected).abs() < 1e-7,
                "{i}: {} vs {expected}",
                g[i]
            );
        }
        let untracked = random([4, 9], -3.0, 3.0, &autodiff);
        let value = try_bce_with_logits_mean(&untracked, &untracked).unwrap();
        assert!(value.into_scalar::<f32>().is_finite());
    }

    #[test]
    fn the_value_does_not_depend_on_the_thread_count() {
        let device = Device::flex();
        device.seed(2);
        let x = random([300, 784], -8.0, 8.0, &device);
        let t = random([300, 784], 0.0, 1.0, &device);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                try_bce_with_logits_mean(&x, &t)
                    .unwrap()
                    .into_scalar::<f32>()
            })
        };
        assert_eq!(run(1).to_bits(), run(3).to_bits());
    }
}
