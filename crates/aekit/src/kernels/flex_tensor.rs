//! Small helpers shared by the custom operations on Burn's `flex` backend: getting at a
//! tensor's `f32` values, building tensors from vectors, the autodiff tensor type, and the
//! registration of one-input operations ([`unary_op`]) and of layer operations with data,
//! weight and bias inputs ([`layer_op`]) with their backward step.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// A float tensor of `Autodiff<Flex>` (without gradient checkpointing).
pub(crate) type AutodiffFlexTensor = burn::backend::tensor::FloatTensor<Autodiff<Flex>>;

/// The tensor itself when its values are a contiguous `f32` slice, else a contiguous copy.
pub(crate) fn contiguous(tensor: &FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() {
        tensor.clone()
    } else {
        tensor.to_contiguous()
    }
}

/// The values of a contiguous `f32` tensor (see [`contiguous`]).
pub(crate) fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// A vector of `len` values that `write` writes into its uninitialised memory, with what
/// `write` returns: a fresh output that every value of is written anyway need not be
/// zero-filled first (a memset of the whole output per layer and step).
///
/// # Safety
/// `write` must write every one of the `len` values it is given.
pub(crate) unsafe fn written_vec<R>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<f32>]) -> R,
) -> (Vec<f32>, R) {
    let mut values = Vec::with_capacity(len);
    let result = write(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the caller's `write` has written all `len` values.
    unsafe { values.set_len(len) };
    (values, result)
}

/// A tensor of `shape` holding `values`.
pub(crate) fn tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

/// The state of a one-input custom operation's backward step: the input's gradient from the
/// output's (contiguous `f32` values).
pub(crate) trait UnaryGradient: Clone + Send + std::fmt::Debug + 'static {
    fn input_grad(&self, upstream: &[f32]) -> FlexTensor;
}

#[derive(Debug)]
struct UnaryBackward<S>(PhantomData<S>);

impl<S: UnaryGradient> Backward<Flex, 1> for UnaryBackward<S> {
    type State = S;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let state = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            state.input_grad(values(&contiguous(&grad)))
        });
    }
}

/// A one-input operation on autodiff `flex`: `forward` gets the input's values and returns
/// the output and the state of its backward step (kept only when the input is tracked).
pub(crate) fn unary_op<S: UnaryGradient>(
    x: AutodiffFlexTensor,
    forward: impl FnOnce(&[f32]) -> (FlexTensor, S),
) -> AutodiffFlexTensor {
    let prep = UnaryBackward::<S>(PhantomData)
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful();
    let input = contiguous(x.primitive());
    let (out, state) = forward(values(&input));
    match prep {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// A tensor's values (tests).
#[cfg(test)]
pub(crate) fn to_vec<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The state of a layer operation's backward step (inputs: data, weight, bias).
pub(crate) trait LayerGradients: Clone + Send + std::fmt::Debug + 'static {
    /// The data input's gradient from the output's.
    fn input_grad(&self, upstream: &FlexTensor) -> FlexTensor;
    /// The weight's and the bias's gradients from the output's.
    fn param_grads(&self, upstream: &FlexTensor) -> (FlexTensor, FlexTensor);

    /// The gradients asked for, for operations that compute them best together.
    fn grads(&self, upstream: &FlexTensor, input: bool, params: bool) -> LayerGrads {
        separate_grads(self, upstream, input, params)
    }
}

/// A layer's input gradient and (weight, bias) gradients, each when asked for.
pub(crate) type LayerGrads = (Option<FlexTensor>, Option<(FlexTensor, FlexTensor)>);

/// [`LayerGradients::grads`] from its two separate methods.
pub(crate) fn separate_grads<S: LayerGradients>(
    state: &S,
    upstream: &FlexTensor,
    input: bool,
    params: bool,
) -> LayerGrads {
    (
        input.then(|| state.input_grad(upstream)),
        params.then(|| state.param_grads(upstream)),
    )
}

/// `op` on a layer's data, weight and bias when all three are autodiff `flex` tensors.
pub(crate) fn on_autodiff_flex<const D: usize, const W: usize>(
    (x, weight, bias): (&Tensor<D>, &Tensor<W>, &Tensor<1>),
    op: impl FnOnce(AutodiffFlexTensor, AutodiffFlexTensor, AutodiffFlexTensor) -> AutodiffFlexTensor,
) -> Option<Tensor<D>> {
    match (
        x.clone().try_into_primitive::<Autodiff<Flex>>(),
        weight.clone().try_into_primitive::<Autodiff<Flex>>(),
        bias.clone().try_into_primitive::<Autodiff<Flex>>(),
    ) {
        (Ok(x), Ok(w), Ok(b)) => Some(Tensor::from_primitive::<Autodiff<Flex>>(op(x, w, b))),
        _ => None,
    }
}

/// `op` on a layer's data, weight and bias when all three are plain `flex` tensors.
pub(crate) fn on_plain_flex<const D: usize, const W: usize>(
    (x, weight, bias): (&Tensor<D>, &Tensor<W>, &Tensor<1>),
    op: impl FnOnce(&FlexTensor, &FlexTensor, &FlexTensor) -> FlexTensor,
) -> Option<Tensor<D>> {
    match (
        x.clone().try_into_primitive::<Flex>(),
        weight.clone().try_into_primitive::<Flex>(),
        bias.clone().try_into_primitive::<Flex>(),
    ) {
        (Ok(x), Ok(w), Ok(b)) => Some(Tensor::from_primitive::<Flex>(op(&x, &w, &b))),
        _ => None,
    }
}

#[derive(Debug)]
struct LayerBackward<S>(PhantomData<S>);

impl<S: LayerGradients> Backward<Flex, 3> for LayerBackward<S> {
    /// The layer's state, and its output when the layer applied a ReLU.
    type State = (S, Option<FlexTensor>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (state, rectified) = ops.state;
        let [input_node, weight_node, bias_node] = ops.parents;
        let mut grad = grads.consume::<Flex>(&ops.node);
        if let Some(output) = &rectified {
            grad = relu_grad(grad, output);
        }
        let params = weight_node.is_some() || bias_node.is_some();
        let (dx, dw_db) = state.grads(&grad, input_node.is_some(), params);
        if let (Some(node), Some(dx)) = (input_node, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some((dw, db)) = dw_db {
            if let Some(node) = weight_node {
                grads.register::<Flex>(node.id, dw);
            }
            if let Some(node) = bias_node {
                grads.register::<Flex>(node.id, db);
            }
        }
    }
}

/// Which gradients a layer operation's backward step will be asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    /// The data input's (keep the weights).
    pub input: bool,
    /// The weight's or the bias's (keep what the input contributes).
    pub params: bool,
}

/// A layer operation (data, weight, bias) on autodiff `flex`: `forward` gets the three
/// primitives and which gradients will be wanted, and returns the output and the state of its
/// backward step (registered only when something is tracked).
///
/// With `relu`, `forward` has applied a ReLU to its output (see [`relu_value`]) in the pass
/// that wrote it: the output is kept, and the backward step zeroes the output's gradient
/// where the output is zero before the layer's own gradients. Burn's `relu` after the layer
/// made a second output in a pass of its own and a third tensor for its gradient; ReLU after
/// the conv levels was 7% of a conv VAE training step (perf).
pub(crate) fn layer_op<S: LayerGradients>(
    x: AutodiffFlexTensor,
    weight: AutodiffFlexTensor,
    bias: AutodiffFlexTensor,
    relu: bool,
    forward: impl FnOnce(&FlexTensor, &FlexTensor, &FlexTensor, Wanted) -> (FlexTensor, S),
) -> AutodiffFlexTensor {
    let wanted = Wanted {
        input: x.is_tracked(),
        params: weight.is_tracked() || bias.is_tracked(),
    };
    let prep = LayerBackward::<S>(PhantomData)
        .prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful();
    let (out, state) = forward(x.primitive(), weight.primitive(), bias.primitive(), wanted);
    match prep {
        OpsKind::Tracked(prep) => {
            let rectified = relu.then(|| out.clone());
            prep.finish((state, rectified), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// `max(0, v)`, a NaN kept (as Burn's `relu`). A select, not a branch: the signs are random.
#[inline(always)]
pub(crate) fn relu_value(v: f32) -> f32 {
    if v <= 0.0 { 0.0 } else { v }
}

/// Values per task of [`relu_grad`].
const RELU_GRAD_CHUNK: usize = 1 << 14;

/// The gradient before a ReLU from the one after it: `grad` where `output` (the ReLU's) is
/// positive or NaN, zero where it is zero (as Burn's `relu_backward`). In place when the
/// gradient is not shared.
fn relu_grad(mut grad: FlexTensor, output: &FlexTensor) -> FlexTensor {
    let output = contiguous(output);
    let output = values(&output);
    let mask = |g: f32, o: f32| if o <= 0.0 { 0.0 } else { g };
    // In place only where the storage is exactly the gradient's values.
    let whole = grad.layout().contiguous_offsets() == Some((0, output.len()));
    if whole
        && let Some(values) = grad.try_storage_mut::<f32>()
        && values.len() == output.len()
    {
        values
            .par_chunks_mut(RELU_GRAD_CHUNK)
            .zip(output.par_chunks(RELU_GRAD_CHUNK))
            .for_each(|(g, o)| g.iter_mut().zip(o).for_each(|(g, &o)| *g = mask(*g, o)));
        return grad;
    }
    let upstream = contiguous(&grad);
    let masked = values(&upstream)
        .par_iter()
        .zip(output)
        .map(|(&g, &o)| mask(g, o))
        .collect();
    tensor(masked, &grad.layout().shape().to_vec())
}
