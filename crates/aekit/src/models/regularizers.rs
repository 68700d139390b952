//! Penalties added to the reconstruction loss: sparsity of a layer's activations (L1, or
//! KL divergence to a target rate) and the contractive penalty on the encoder's Jacobian.
//! Any family whose encoder exposes its activations can use them.

use crate::models::Activation;
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

/// Which sparsity penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SparsityKind {
    /// `lambda * sum |a|`, averaged over the batch (Keras's `activity_regularizer=l1(lambda)`).
    L1,
    /// `beta * sum_j KL(rho || rho_hat_j)`, `rho_hat_j` the mean activation of unit `j` over
    /// the batch (needs activations in (0, 1): a sigmoid layer).
    Kl,
}

/// `[model.sparsity]`: a sparsity penalty on one encoder layer's activations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SparsityConfig {
    /// `l1` or `kl`.
    pub kind: SparsityKind,
    /// Weight of the L1 penalty.
    #[serde(default)]
    pub lambda: f64,
    /// Target mean activation of the KL penalty, in (0, 1).
    #[serde(default = "default_rho")]
    pub rho: f64,
    /// Weight of the KL penalty.
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// The encoder layer penalised, counted from 1; the code layer when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

fn default_rho() -> f64 {
    0.05
}

fn default_beta() -> f64 {
    1.0
}

impl SparsityConfig {
    /// Checks the settings; `layers` is the number of encoder layers and `activation_of`
    /// gives the activation of encoder layer `i` (from 1).
    pub fn validate(
        &self,
        layers: usize,
        activation_of: impl Fn(usize) -> Activation,
    ) -> Result<(), String> {
        if let Some(layer) = self.layer
            && (layer == 0 || layer > layers)
        {
            return Err(format!(
                "model.sparsity.layer must be between 1 and {layers} (the code), not {layer}"
            ));
        }
        match self.kind {
            SparsityKind::L1 => {
                if !(self.lambda.is_finite() && self.lambda >= 0.0) {
                    return Err(format!(
                        "model.sparsity.lambda must be >= 0, not {}",
                        self.lambda
                    ));
                }
            }
            SparsityKind::Kl => {
                if !(self.rho > 0.0 && self.rho < 1.0) {
                    return Err(format!(
                        "model.sparsity.rho must be in (0, 1), not {}",
                        self.rho
                    ));
                }
                if !(self.beta.is_finite() && self.beta >= 0.0) {
                    return Err(format!(
                        "model.sparsity.beta must be >= 0, not {}",
                        self.beta
                    ));
                }
                let layer = self.layer.unwrap_or(layers);
                if activation_of(layer) != Activation::Sigmoid {
                    return Err(format!(
                        "model.sparsity: the KL penalty needs a sigmoid layer (mean activations in (0, 1)); layer {layer} is {}",
                        activation_of(layer).name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The penalty for a batch of activations `[batch, units]`.
    pub fn penalty(&self, activations: Tensor<2>) -> Tensor<1> {
        match self.kind {
            SparsityKind::L1 => l1_activity(activations, self.lambda),
            SparsityKind::Kl => kl_sparsity(activations, self.rho, self.beta),
        }
    }

    /// The name of the penalty term in histories.
    pub fn term_name(&self) -> &'static str {
        match self.kind {
            SparsityKind::L1 => "l1_penalty",
            SparsityKind::Kl => "kl_sparsity",
        }
    }
}

/// `lambda * sum |a| / batch`.
pub fn l1_activity(activations: Tensor<2>, lambda: f64) -> Tensor<1> {
    let [batch, _] = activations.dims();
    activations.abs().sum().mul_scalar(lambda / batch as f64)
}

/// `beta * sum_j KL(rho || rho_hat_j)` with `rho_hat_j` the batch mean of unit `j`.
pub fn kl_sparsity(activations: Tensor<2>, rho: f64, beta: f64) -> Tensor<1> {
    // Clamped so that a dead or saturated unit gives a large, finite penalty.
    let rho_hat = activations.mean_dim(0).clamp(1e-6, 1.0 - 1e-6);
    let first = rho_hat
        .clone()
        .recip()
        .mul_scalar(rho)
        .log()
        .mul_scalar(rho);
    let second = rho_hat
        .neg()
        .add_scalar(1.0)
        .recip()
        .mul_scalar(1.0 - rho)
        .log()
        .mul_scalar(1.0 - rho);
    (first + second).sum().mul_scalar(beta)
}

/// How the contractive penalty's Jacobian norm is computed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum JacobianEstimator {
    /// The exact closed form where one exists (a one-layer encoder), else finite differences.
    #[default]
    Auto,
    /// The exact closed form; an error for encoders without one.
    Exact,
    /// `||J||_F^2 = E_v ||J v||^2` for `v ~ N(0, I)`, with `J v` by finite differences.
    FiniteDifference,
}

/// `[model.contractive]`: the penalty `lambda * ||J_f(x)||_F^2` on the encoder's Jacobian,
/// averaged over the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractiveConfig {
    /// Weight of the penalty.
    pub lambda: f64,
    /// How the Jacobian norm is computed.
    #[serde(default)]
    pub estimator: JacobianEstimator,
    /// Random directions per sample for the finite-difference estimator.
    #[serde(default = "default_directions")]
    pub directions: usize,
    /// Step of the finite differences.
    #[serde(default = "default_step")]
    pub step: f64,
}

fn default_directions() -> usize {
    1
}

fn default_step() -> f64 {
    1e-2
}

impl ContractiveConfig {
    /// Checks the settings.
    pub fn validate(&self, exact_available: bool) -> Result<(), String> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(format!(
                "model.contractive.lambda must be >= 0, not {}",
                self.lambda
            ));
        }
        if self.directions == 0 {
            return Err("model.contractive.directions must be at least 1".into());
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(format!(
                "model.contractive.step must be positive, not {}",
                self.step
            ));
        }
        if self.estimator == JacobianEstimator::Exact && !exact_available {
            return Err("model.contractive.estimator = \"exact\" needs a one-layer encoder (no `hidden` layers); use \"finite-difference\"".into());
        }
        Ok(())
    }

    /// Whether this config uses the closed form for an encoder where it is `exact_available`.
    pub fn uses_exact(&self, exact_available: bool) -> bool {
        exact_available && self.estimator != JacobianEstimator::FiniteDifference
    }
}

/// The derivative of `activation` expressed through its output `h` (so no pre-activation
/// values need keeping): sigmoid `h(1-h)`, tanh `1-h^2`, relu `[h > 0]`, linear `1`.
/// `None` for activations without such a form.
pub fn derivative_from_output(activation: Activation, h: Tensor<2>) -> Option<Tensor<2>> {
    match activation {
        Activation::Sigmoid => Some(h.clone() * h.neg().add_scalar(1.0)),
        Activation::Tanh => Some((h.clone() * h).neg().add_scalar(1.0)),
        Activation::Relu => Some(h.greater_elem(0.0).float()),
        Activation::Linear => Some(h.ones_like()),
        _ => None,
    }
}

/// Mean over the batch of `||J||_F^2` for a one-layer encoder `h = act(x W + b)`:
/// `J_ji = act'(z_j) W_ij`, so `||J||_F^2 = sum_j act'(z_j)^2 sum_i W_ij^2`.
/// `weight` is `[inputs, units]`, `h` the layer's output `[batch, units]`.
pub fn exact_jacobian_norm(
    activation: Activation,
    weight: Tensor<2>,
    h: Tensor<2>,
) -> Option<Tensor<1>> {
    let [batch, _] = h.dims();
    let derivative = derivative_from_output(activation, h)?;
    let column_norms = (weight.clone() * weight).sum_dim(0); // [1, units]
    Some(
        ((derivative.clone() * derivative) * column_norms)
            .sum()
            .div_scalar(batch as f64),
    )
}

/// Mean over the batch of an unbiased estimate of `||J||_F^2` for any encoder `f`:
/// `E_v ||J v||^2` with `v ~ N(0, I)` and `J v ~ (f(x + s v) - f(x)) / s`.
pub fn finite_difference_jacobian_norm(
    encode: impl Fn(Tensor<2>) -> Tensor<2>,
    x: Tensor<2>,
    code: Tensor<2>,
    directions: usize,
    step: f64,
) -> Tensor<1> {
    let [batch, _] = x.dims();
    let device = x.device();
    let mut total: Option<Tensor<1>> = None;
    for _ in 0..directions {
        let v = Tensor::<2>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
        let jv = (encode(x.clone() + v.mul_scalar(step)) - code.clone()).div_scalar(step);
        let norm = (jv.clone() * jv).sum();
        total = Some(match total {
            Some(t) => t + norm,
            None => norm,
        });
    }
    total
        .expect("at least one direction")
        .div_scalar((batch * directions) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn values(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    #[test]
    fn l1_penalty_matches_hand_computation() {
        let device = Device::flex();
        let a = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, 0.0]], &device);
        // (1 + 2 + 0.5) * 0.1 / 2 samples
        assert!((values(l1_activity(a, 0.1)) - 0.175).abs() < 1e-6);
    }

    #[test]
    fn kl_sparsity_matches_hand_computation() {
        let device = Device::flex();
        let a = Tensor::<2>::from_floats([[0.1, 0.5], [0.3, 0.5]], &device);
        let rho: f64 = 0.05;
        let kl = |q: f64| rho * (rho / q).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - q)).ln();
        let expected = 3.0 * (kl(0.2) + kl(0.5));
        assert!((values(kl_sparsity(a, rho, 3.0)) - expected).abs() < 1e-5);
        // At the target rate the penalty vanishes.
        let at_target = Tensor::<2>::from_floats([[0.05, 0.05]], &device);
        assert!(values(kl_sparsity(at_target, rho, 1.0)).abs() < 1e-6);
    }

    /// The exact Jacobian norm against a Jacobian computed by central differences.
    #[test]
    fn exact_jacobian_norm_matches_finite_differences() {
        let device = Device::flex();
        let w = [[0.3f32, -0.7, 0.2], [1.1, 0.4, -0.5]]; // 2 inputs, 3 units
        let b = [0.1f32, -0.2, 0.05];
        let x = [[0.4f32, -0.9], [1.5, 0.2]];
        for activation in [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::Linear,
        ] {
            let f = |x: &[f32; 2]| -> Vec<f64> {
                (0..3)
                    .map(|j| {
                        let z = x[0] as f64 * w[0][j] as f64
                            + x[1] as f64 * w[1][j] as f64
                            + b[j] as f64;
                        match activation {
                            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
                            Activation::Tanh => z.tanh(),
                            Activation::Relu => z.max(0.0),
                            _ => z,
                        }
                    })
                    .collect()
            };
            let eps = 1e-5;
            let mut expected = 0.0;
            for sample in &x {
                for i in 0..2 {
                    let (mut plus, mut minus) = (*sample, *sample);
                    plus[i] += eps as f32;
                    minus[i] -= eps as f32;
                    let (fp, fm) = (f(&plus), f(&minus));
                    for j in 0..3 {
                        let d = (fp[j] - fm[j]) / (plus[i] as f64 - minus[i] as f64);
                        expected += d * d;
                    }
                }
            }
            expected /= 2.0;
            let weight = Tensor::<2>::from_floats(w, &device);
            let xt = Tensor::<2>::from_floats(x, &device);
            let h = activation.forward(
                xt.matmul(weight.clone()) + Tensor::<1>::from_floats(b, &device).unsqueeze(),
            );
            let got = values(exact_jacobian_norm(activation, weight, h).unwrap());
            assert!(
                (got - expected).abs() < 1e-3 * expected.max(1.0),
                "{activation:?}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn finite_difference_estimate_is_unbiased() {
        let device = Device::flex();
        device.seed(7);
        let weight = Tensor::<2>::from_floats([[0.3f32, -0.7, 0.2], [1.1, 0.4, -0.5]], &device);
        let x = Tensor::<2>::from_floats([[0.4f32, -0.9], [1.5, 0.2]], &device);
        let encode = |x: Tensor<2>| burn::tensor::activation::tanh(x.matmul(weight.clone()));
        let code = encode(x.clone());
        let exact =
            values(exact_jacobian_norm(Activation::Tanh, weight.clone(), code.clone()).unwrap());
        let estimate = values(finite_difference_jacobian_norm(encode, x, code, 4000, 1e-3));
        assert!(
            (estimate - exact).abs() < 0.05 * exact,
            "{estimate} vs {exact}"
        );
    }
}
