//! Adam's update of one parameter tensor on `flex` as a single pass over its values.
//!
//! Burn's `Adam` builds the update from about a dozen tensor operations (scale the moments,
//! square the gradient, add, take the root, divide, scale, subtract), each one a pass over
//! the parameter with a fresh allocation; for Hinton's 2.8 million weights that was a tenth
//! of a training step. Here the same arithmetic, operation for operation in the same order
//! and without fused multiply-adds, runs once per element, so the result is bit for bit
//! Burn's (tested in `train::adam`).

use super::flex_tensor::{contiguous, values};
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 16 * 1024;

/// The scalars of one Adam step, computed as Burn computes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    pub beta_1: f32,
    pub beta_2: f32,
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    pub combined_factor: f32,
    /// `epsilon * sqrt(1 - beta_2^t)`.
    pub scaled_epsilon: f32,
    pub learning_rate: f32,
    /// L2 penalty added to the gradient (`penalty * theta + grad`), if any.
    pub weight_decay: Option<f32>,
}

/// The updated parameter and moments: `(theta, moment_1, moment_2)`. Missing moments (the
/// first step) count as zeros. Tensors this function owns alone are updated in place.
pub(crate) fn adam_update(
    theta: FlexTensor,
    grad: FlexTensor,
    moments: Option<(FlexTensor, FlexTensor)>,
    step: AdamStep,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = theta.layout().shape().clone();
    let n = shape.num_elements();
    let grad = contiguous(&grad);
    let mut theta = owned(theta);
    let (mut moment_1, mut moment_2) = match moments {
        Some((m, v)) => (owned(m), owned(v)),
        None => (zeros(n, &shape), zeros(n, &shape)),
    };
    {
        let theta = &mut theta.storage_mut::<f32>()[..n];
        let moment_1 = &mut moment_1.storage_mut::<f32>()[..n];
        let moment_2 = &mut moment_2.storage_mut::<f32>()[..n];
        let grad = &values(&grad)[..n];
        theta
            .par_chunks_mut(CHUNK)
            .zip(moment_1.par_chunks_mut(CHUNK))
            .zip(moment_2.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(((theta, m), v), g)| update_chunk(theta, m, v, g, &step));
    }
    (theta, moment_1, moment_2)
}

/// The tensor itself when it owns its contiguous values, else a contiguous copy that does.
fn owned(tensor: FlexTensor) -> FlexTensor {
    let layout = tensor.layout();
    if tensor.is_unique() && layout.is_contiguous() && layout.start_offset() == 0 {
        return tensor;
    }
    let shape = layout.shape().clone();
    let copy = values(&contiguous(&tensor)).to_vec();
    FlexTensor::from_data(TensorData::new(copy, shape))
}

fn zeros(n: usize, shape: &burn::tensor::Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(vec![0f32; n], shape.clone()))
}

simd_dispatch! {
    fn update_chunk(theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], step: &AdamStep) => update_chunk_body
}

/// Burn's `Adam` element by element (`burn-optim`'s `adam.rs` and `decay.rs`): every line is
/// one of its tensor operations, rounded to `f32` in the same order (Rust does not contract
/// `a * b + c` into a fused multiply-add, so the vector code rounds as the scalar one).
#[inline(always)]
fn update_chunk_body(theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], s: &AdamStep) {
    let n = theta.len().min(m.len()).min(v.len()).min(g.len());
    let (theta, m, v, g) = (&mut theta[..n], &mut m[..n], &mut v[..n], &g[..n]);
    match s.weight_decay {
        None => update_elements::<false>(theta, m, v, g, s, 0.0),
        Some(penalty) => update_elements::<true>(theta, m, v, g, s, penalty),
    }
}

/// The loop of [`update_chunk_body`], compiled once with and once without weight decay.
#[inline(always)]
fn update_elements<const DECAY: bool>(
    theta: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    s: &AdamStep,
    penalty: f32,
) {
    let (b1, b2) = (s.beta_1, s.beta_2);
    let (f1, f2) = (1.0 - b1, 1.0 - b2);
    // Equal lengths, stated where the loop sees them, so that it vectorises.
    let n = theta.len();
    let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
    for i in 0..n {
        let grad = if DECAY {
            theta[i] * penalty + g[i]
        } else {
            g[i]
        };
        let m_i = m[i] * b1 + grad * f1;
        let v_i = v[i] * b2 + (grad * grad) * f2;
        m[i] = m_i;
        v[i] = v_i;
        let update = (m_i * s.combined_factor) / (v_i.sqrt() + s.scaled_epsilon);
        theta[i] -= update * s.learning_rate;
    }
}
