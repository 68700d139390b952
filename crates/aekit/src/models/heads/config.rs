//! The `[[model.heads]]` settings: what each head predicts, from which target, with which
//! loss weight, and which of its labels training may use.

use crate::data::classes::ClassRef;
use crate::models::layers::Activation;
use serde::{Deserialize, Serialize};

/// One head on the code (`[[model.heads]]`): a small dense network from the code to a class
/// (softmax, categorical cross-entropy) or to a real value (MSE or L1), trained with the
/// reconstruction, its loss weighted by `weight` and averaged over the samples of a batch
/// that have its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// The head's name (letters, digits, `_` and `-`): its columns in `history.csv` and its
    /// figures in `aekit eval`.
    pub name: String,
    /// `class` (one of several classes) or `regression` (a real value).
    pub kind: HeadKind,
    /// The target it learns: `"label"` (the data's labels), `"angle"` (of `[data] rotate`),
    /// or a column of `[data] targets_csv`.
    #[serde(default = "label")]
    pub target: String,
    /// The encoder level the head reads, counted from the input: 1 is the first hidden layer
    /// (dense) or the first convolution level's maps (conv), the last level is the code.
    /// Default: the code. Dense and conv models only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<usize>,
    /// Hidden layer sizes between the code and the head's output (none: a linear head).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers.
    #[serde(default = "relu")]
    pub activation: Activation,
    /// The weight of the head's loss in the total.
    #[serde(default = "one")]
    pub weight: f64,
    /// Class heads: the number of classes (default: the data's classes, or the number of
    /// `groups`). A target outside is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Class heads: coarse classes made of the fine labels, `groups = [[0, 2], [1, 3]]`
    /// (labels or class names); every class of the data must be in exactly one group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<ClassRef>>,
    /// Class heads with `groups`: the groups' names, in order (default `group-0`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_names: Vec<String>,
    /// Train with only this fraction of the targets (seeded, spread over the classes): the
    /// semi-supervised experiment. Validation still measures on all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_fraction: Option<f64>,
    /// Train with only this many targets (seeded, spread over the classes: 100 labels of 10
    /// digits are 10 per digit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_count: Option<usize>,
    /// The seed of `label_fraction` / `label_count`.
    #[serde(default)]
    pub label_seed: u64,
    /// Class heads: weights of the classes in the loss, one per class, or `"balanced"`
    /// (inverse class frequency in the training targets). Default: all 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<ClassWeights>,
    /// Regression heads: `mse` (default) or `l1`, on the target standardised with the
    /// training targets' mean and standard deviation (predictions are in the target's
    /// own units).
    #[serde(default)]
    pub regression_loss: RegressionLoss,
    /// Class heads, semi-supervised: samples without the target whose predicted class has at
    /// least this probability learn it as their target (pseudo-labels, Lee 2013; the
    /// threshold as in FixMatch), so the unlabelled samples shape the classifier too. Off
    /// by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_label_threshold: Option<f64>,
    /// The weight of the pseudo-labelled samples' mean loss beside the labelled ones'.
    #[serde(default = "one")]
    pub pseudo_label_weight: f64,
    /// Standardise the head's input: each value minus its mean, over its standard deviation,
    /// both measured over the training samples once when training starts (and kept in
    /// `heads.json`). A head on a pre-trained encoder, whose codes are far from unit scale,
    /// then learns as it would on well-scaled features; `aekit classify` turns it on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub standardize: bool,
    /// Class heads, semi-supervised: the weight of a consistency term, the mean squared
    /// difference between the head's class probabilities on two independently corrupted
    /// copies of every sample of the batch, labelled or not (the Pi-model, Laine & Aila
    /// 2017): the unlabelled samples teach the classifier to give the same answer under
    /// the model's `[model.corruption]`, which it needs. 0 (default) for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consistency_weight: f64,
    /// Epochs over which `consistency_weight` ramps up from 0 (`w * exp(-5 (1 - t)^2)`, t
    /// the fraction of the ramp done, as in the Pi-model), so that early, random
    /// predictions are not made to agree. 0: the full weight from the start.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub consistency_rampup: usize,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn is_zero_usize(value: &usize) -> bool {
    *value == 0
}

/// What a head predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    /// One of several classes: softmax and categorical cross-entropy.
    Class,
    /// A real value: MSE or L1.
    Regression,
}

/// The loss of a regression head.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RegressionLoss {
    /// Mean squared error.
    #[default]
    Mse,
    /// Mean absolute error.
    L1,
}

/// Per-class weights of a class head's loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ClassWeights {
    /// `"balanced"`: inverse frequency in the training targets.
    Named(BalancedWeights),
    /// One weight per class.
    Listed(Vec<f64>),
}

/// The one named weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BalancedWeights {
    /// Inverse class frequency.
    Balanced,
}

fn label() -> String {
    crate::data::targets::LABEL.to_string()
}

fn relu() -> Activation {
    Activation::Relu
}

/// 1, the default of every loss weight.
pub fn one() -> f64 {
    1.0
}

/// Whether a weight is the default 1 (left out of a saved config).
pub fn is_one(value: &f64) -> bool {
    *value == 1.0
}

impl HeadConfig {
    /// Checks the settings on their own; errors name the key.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        let at = format!("model.heads[{index}]");
        if let Some(threshold) = self.pseudo_label_threshold
            && (self.kind != HeadKind::Class || !(threshold > 0.0 && threshold <= 1.0))
        {
            return Err(format!(
                "{at}.pseudo_label_threshold: {threshold} must be a probability in (0, 1], on a \
                 class head"
            ));
        }
        if !self.pseudo_label_weight.is_finite() || self.pseudo_label_weight < 0.0 {
            return Err(format!(
                "{at}.pseudo_label_weight: {} must be a finite number of at least 0",
                self.pseudo_label_weight
            ));
        }
        if !self.consistency_weight.is_finite() || self.consistency_weight < 0.0 {
            return Err(format!(
                "{at}.consistency_weight: {} must be a finite number of at least 0",
                self.consistency_weight
            ));
        }
        if self.consistency_weight > 0.0 && self.kind != HeadKind::Class {
            return Err(format!(
                "{at}.consistency_weight: only class heads have a consistency term"
            ));
        }
        if self.level == Some(0) {
            return Err(format!(
                "{at}.level: levels count from 1 (the first hidden layer); leave it out for the code"
            ));
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{at}.name: `{}` must be letters, digits, `_` or `-` (it names history columns)",
                self.name
            ));
        }
        if !self.weight.is_finite() || self.weight < 0.0 {
            return Err(format!(
                "{at}.weight: {} must be a finite number of at least 0",
                self.weight
            ));
        }
        if self.hidden.contains(&0) {
            return Err(format!("{at}.hidden: a layer needs at least one unit"));
        }
        if let Some(f) = self.label_fraction
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(format!(
                "{at}.label_fraction: {f} must be in (0, 1] (the fraction of targets kept)"
            ));
        }
        if self.label_fraction.is_some() && self.label_count.is_some() {
            return Err(format!(
                "{at}: give label_fraction or label_count, not both"
            ));
        }
        if self.label_count == Some(0) {
            return Err(format!("{at}.label_count: keep at least one target"));
        }
        let class_only = [
            ("classes", self.classes.is_some()),
            ("groups", !self.groups.is_empty()),
            ("class_weights", self.class_weights.is_some()),
        ];
        if self.kind == HeadKind::Regression
            && let Some((key, _)) = class_only.iter().find(|(_, set)| *set)
        {
            return Err(format!("{at}.{key}: only class heads have {key}"));
        }
        if self.classes.is_some_and(|c| c < 2) {
            return Err(format!(
                "{at}.classes: a class head needs at least 2 classes"
            ));
        }
        if !self.group_names.is_empty() && self.group_names.len() != self.groups.len() {
            return Err(format!(
                "{at}.group_names: {} names for {} groups",
                self.group_names.len(),
                self.groups.len()
            ));
        }
        if let (Some(classes), false) = (self.classes, self.groups.is_empty())
            && classes != self.groups.len()
        {
            return Err(format!(
                "{at}.classes: {classes} classes, but {} groups",
                self.groups.len()
            ));
        }
        if let Some(ClassWeights::Listed(weights)) = &self.class_weights
            && weights.iter().any(|w| !w.is_finite() || *w < 0.0)
        {
            return Err(format!(
                "{at}.class_weights: every weight must be a finite number of at least 0"
            ));
        }
        Ok(())
    }
}

/// Checks a model's heads together: each valid, names unique, and at least one term left
/// in the loss.
pub fn validate_heads(heads: &[HeadConfig], reconstruction_weight: f64) -> Result<(), String> {
    if !reconstruction_weight.is_finite() || reconstruction_weight < 0.0 {
        return Err(format!(
            "model.reconstruction_weight: {reconstruction_weight} must be a finite number of at \
             least 0"
        ));
    }
    for (i, head) in heads.iter().enumerate() {
        head.validate(i)?;
        if heads[..i].iter().any(|h| h.name == head.name) {
            return Err(format!(
                "model.heads[{i}].name: `{}` names two heads",
                head.name
            ));
        }
    }
    if reconstruction_weight == 0.0 && heads.iter().all(|h| h.weight == 0.0) {
        return Err(
            "model.reconstruction_weight is 0 and no head has a weight above 0: nothing would \
             be learned"
                .into(),
        );
    }
    Ok(())
}
