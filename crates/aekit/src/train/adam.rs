//! Adam as aekit trains with it: Burn's `Adam`, with the update of `f32` parameters on the
//! `flex` CPU backend done in one pass ([`crate::kernels::adam`]) instead of a dozen tensor
//! operations. The state is Burn's own `AdamState`, so optimizer checkpoints are the same
//! files either way; tensors on any other device, and AMSGrad, go to Burn's `Adam`.

use crate::kernels::adam::{AdamStep, adam_update};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{DType, Device, Tensor};

/// Adam (Kingma & Ba) with Burn's arithmetic and state; see the module documentation.
#[derive(Clone)]
pub struct FusedAdam {
    burn: Adam,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: Option<f32>,
}

impl FusedAdam {
    /// Adam with these decay rates, `epsilon` and optional L2 penalty (added to the gradient,
    /// as Burn's `WeightDecay` does).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: Option<f32>) -> Self {
        let burn = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay.map(WeightDecayConfig::new))
            .build();
        Self {
            burn,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        }
    }

    /// The optimizer for a whole module.
    pub fn module_optimizer(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// The step's scalars at step `time` (1 for the first), as Burn computes them.
    fn scalars(&self, time: usize, learning_rate: LearningRate) -> AdamStep {
        let time = time as i32;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(time)).sqrt();
        AdamStep {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            combined_factor: bias_correction2_sqrt / (1.0 - self.beta_1.powi(time)),
            scaled_epsilon: self.epsilon * bias_correction2_sqrt,
            learning_rate: learning_rate as f32,
            weight_decay: self.weight_decay,
        }
    }
}

/// The `flex` tensor behind `tensor` when it is a plain `f32` one.
fn flex_f32<const D: usize>(tensor: &Tensor<D>) -> Option<FlexTensor> {
    if tensor.dtype() != DType::F32 || tensor.device().is_autodiff() {
        return None;
    }
    tensor.clone().try_into_primitive::<Flex>().ok()
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let moments = match &state {
            None => Some(None),
            Some(s) if s.momentum.max_moment_2.is_none() => {
                match (
                    flex_f32(&s.momentum.moment_1),
                    flex_f32(&s.momentum.moment_2),
                ) {
                    (Some(m), Some(v)) => Some(Some((m, v))),
                    _ => None,
                }
            }
            Some(_) => None,
        };
        let (Some(moments), Some(theta), Some(g)) = (moments, flex_f32(&tensor), flex_f32(&grad))
        else {
            return self.burn.step(lr, tensor, grad, state);
        };
        let time = state.as_ref().map_or(0, |s| s.momentum.time) + 1;
        // Only the flex handles are left, so that unshared values are updated in place.
        drop((tensor, grad, state));
        let (theta, m, v) = adam_update(theta, g, moments, self.scalars(time, lr));
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_primitive::<Flex>(m),
            Tensor::from_primitive::<Flex>(v),
        );
        (
            Tensor::from_primitive::<Flex>(theta),
            Some(AdamState::new(momentum)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, TensorData};

    /// A small two-layer model and its training data (fixed by the seed).
    fn model() -> (Vec<Linear>, Tensor<2>) {
        let device = Device::flex().autodiff();
        device.seed(7);
        let layers = vec![
            LinearConfig::new(40, 70).init(&device),
            LinearConfig::new(70, 40).init(&device),
        ];
        let x = Tensor::<2>::random([16, 40], Distribution::Default, &device);
        (layers, x)
    }

    /// `steps` optimizer steps on the model's squared reconstruction error, with two
    /// alternating learning rates.
    fn train(
        optimizer: &mut ModuleOptimizer,
        mut layers: Vec<Linear>,
        x: &Tensor<2>,
        steps: usize,
    ) -> Vec<Linear> {
        for step in 0..steps {
            let hidden = burn::tensor::activation::relu(layers[0].forward(x.clone()));
            let loss = (layers[1].forward(hidden) - x.clone())
                .powi_scalar(2)
                .mean();
            let grads = GradientsParams::from_grads(loss.backward(), &layers);
            let lr = if step % 2 == 0 { 1e-2 } else { 3e-3 };
            layers = optimizer.step(lr, layers, grads);
        }
        layers
    }

    fn weights(layers: &[Linear]) -> Vec<Vec<f32>> {
        layers
            .iter()
            .flat_map(|l| [l.weight.val(), l.bias.as_ref().unwrap().val().unsqueeze()])
            .map(|t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn fused_adam_equals_burns_adam_bit_for_bit() {
        for decay in [None, Some(1e-3)] {
            let mut burn = AdamConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(decay.map(WeightDecayConfig::new))
                .init();
            let mut fused = FusedAdam::new(0.9, 0.999, 1e-8, decay).module_optimizer();
            let (layers, x) = model();
            let start = weights(&layers);
            let expected = weights(&train(&mut burn, layers.clone(), &x, 12));
            let actual = weights(&train(&mut fused, layers, &x, 12));
            assert_ne!(actual, start, "training moved the weights");
            assert_eq!(actual, expected, "weight decay {decay:?}");
        }
    }

    #[test]
    fn fused_adam_resumes_from_burns_adam_state() {
        let (layers, x) = model();
        let mut burn = AdamConfig::new().with_epsilon(1e-8).init();
        let layers = train(&mut burn, layers, &x, 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optimizer.bpk");
        burn.save(&path).unwrap();
        let mut resumed = FusedAdam::new(0.9, 0.999, 1e-8, None)
            .module_optimizer()
            .load(&path)
            .unwrap();
        let mut fresh = FusedAdam::new(0.9, 0.999, 1e-8, None).module_optimizer();
        let expected = weights(&train(&mut burn, layers.clone(), &x, 3));
        let actual = weights(&train(&mut resumed, layers.clone(), &x, 3));
        let restarted = weights(&train(&mut fresh, layers, &x, 3));
        assert_eq!(actual, expected);
        // The loaded state mattered: without it the steps differ.
        assert_ne!(restarted, expected);
    }

    #[test]
    fn first_step_moves_every_weight_by_the_learning_rate() {
        // With m = v = 0, Adam's first update is lr * g / (|g| + eps'), i.e. about lr.
        let device = Device::flex();
        let theta = Tensor::<1>::from_data(TensorData::from([1.0f32, -2.0, 0.5]), &device);
        let grad = Tensor::<1>::from_data(TensorData::from([0.3f32, -4.0, 1e-3]), &device);
        let adam = FusedAdam::new(0.9, 0.999, 1e-8, None);
        let (next, state) = adam.step(0.1, theta, grad, None);
        let next = next.into_data().try_to_vec::<f32>().unwrap();
        for (got, want) in next.iter().zip([0.9f32, -1.9, 0.4]) {
            assert!((got - want).abs() < 1e-4, "{next:?}");
        }
        assert_eq!(state.unwrap().momentum.time, 1);
    }
}
