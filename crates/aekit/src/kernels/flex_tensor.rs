//! Small helpers shared by the custom operations on Burn's `flex` backend: getting at a
//! tensor's `f32` values, building tensors from vectors, and the autodiff tensor type.

use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::TensorData;

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

/// A tensor of `shape` holding `values`.
pub(crate) fn tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}
