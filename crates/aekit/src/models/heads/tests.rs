//! Heads: masked losses against hand computation, no NaN from a batch without targets,
//! regression standardisation, the metrics' tallies.

use super::*;
use crate::data::SampleShape;

fn class_spec(classes: usize, weights: Vec<f32>) -> HeadSpec {
    HeadSpec {
        name: "digit".into(),
        kind: HeadKind::Class,
        target: "label".into(),
        outputs: classes,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        class_weights: weights,
        mean: 0.0,
        std: 1.0,
        weight: 1.0,
        regression_loss: RegressionLoss::Mse,
        training_targets: 1,
        level: None,
        pseudo_label_threshold: None,
        pseudo_label_weight: 0.0,
        consistency_weight: 0.0,
        consistency_rampup: 0,
        input_mean: Vec::new(),
        input_scale: Vec::new(),
    }
}

fn logits(values: Vec<f32>, rows: usize, cols: usize) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values, [rows, cols]), &Device::flex())
}

#[test]
fn class_loss_is_the_cross_entropy_of_the_labelled_samples_only() {
    let output = logits(vec![2.0, 0.0, 0.0, 1.0, 5.0, -5.0], 3, 2);
    let batch = HeadTargets {
        values: vec![0.0, 1.0, 1.0],
        present: vec![true, true, false],
    };
    let loss: f32 = head_loss(
        output,
        &class_spec(2, vec![1.0, 1.0]),
        &batch,
        &Device::flex(),
    )
    .into_scalar();
    // -log softmax: sample 0 class 0 of (2, 0); sample 1 class 1 of (0, 1); sample 2 skipped.
    let ce0 = (1.0f64 + (-2.0f64).exp()).ln();
    let ce1 = (1.0f64 + (-1.0f64).exp()).ln();
    assert!((loss as f64 - (ce0 + ce1) / 2.0).abs() < 1e-5, "{loss}");
    // Class weights make it the weighted mean (PyTorch's CrossEntropyLoss(weight=...)).
    let output = logits(vec![2.0, 0.0, 0.0, 1.0], 2, 2);
    let batch = HeadTargets {
        values: vec![0.0, 1.0],
        present: vec![true, true],
    };
    let loss: f32 = head_loss(
        output,
        &class_spec(2, vec![1.0, 3.0]),
        &batch,
        &Device::flex(),
    )
    .into_scalar();
    assert!(
        (loss as f64 - (ce0 + 3.0 * ce1) / 4.0).abs() < 1e-5,
        "{loss}"
    );
}

#[test]
fn confident_unlabelled_samples_add_their_pseudo_label_loss() {
    // Sample 0 is labelled (class 0); sample 1 is unlabelled and confident (5 vs -5: p of
    // class 0 is 0.99995); sample 2 is unlabelled and unsure (0.1 vs 0), so it adds nothing.
    let output = logits(vec![2.0, 0.0, 5.0, -5.0, 0.1, 0.0], 3, 2);
    let batch = HeadTargets {
        values: vec![0.0, 0.0, 0.0],
        present: vec![true, false, false],
    };
    let spec = HeadSpec {
        pseudo_label_threshold: Some(0.95),
        pseudo_label_weight: 0.5,
        ..class_spec(2, vec![1.0, 1.0])
    };
    let loss: f32 = head_loss(output, &spec, &batch, &Device::flex()).into_scalar();
    let labelled = (1.0f64 + (-2.0f64).exp()).ln();
    let pseudo = (1.0f64 + (-10.0f64).exp()).ln();
    assert!(
        (loss as f64 - (labelled + 0.5 * pseudo)).abs() < 1e-5,
        "{loss}"
    );
}

#[test]
fn a_batch_without_targets_adds_zero_not_nan() {
    let output = logits(vec![1.0, 2.0, 3.0, 4.0], 2, 2);
    let none = HeadTargets {
        values: vec![0.0, 0.0],
        present: vec![false, false],
    };
    let loss: f32 = head_loss(
        output.clone(),
        &class_spec(2, vec![1.0, 1.0]),
        &none,
        &Device::flex(),
    )
    .into_scalar();
    assert_eq!(loss, 0.0);
    let regression = HeadSpec {
        kind: HeadKind::Regression,
        outputs: 1,
        ..class_spec(2, vec![])
    };
    let loss: f32 = head_loss(
        logits(vec![1.0, 2.0], 2, 1),
        &regression,
        &none,
        &Device::flex(),
    )
    .into_scalar();
    assert_eq!(loss, 0.0);
}

#[test]
fn regression_learns_standardised_targets_and_predicts_in_their_units() {
    let config = HeadConfig {
        name: "angle".into(),
        kind: HeadKind::Regression,
        target: "angle".into(),
        level: None,
        pseudo_label_threshold: None,
        pseudo_label_weight: 1.0,
        standardize: false,
        consistency_weight: 0.0,
        consistency_rampup: 0,
        hidden: vec![],
        activation: Activation::Relu,
        weight: 1.0,
        classes: None,
        groups: vec![],
        group_names: vec![],
        label_fraction: None,
        label_count: None,
        label_seed: 0,
        class_weights: None,
        regression_loss: RegressionLoss::Mse,
    };
    let mut data = Dataset::unlabelled("d", SampleShape::features(1), vec![0.0; 4]);
    data.targets.push(crate::data::targets::TargetColumn {
        name: "angle".into(),
        values: vec![10.0, 20.0, f32::NAN, 30.0],
    });
    let (specs, targets) = resolve_training(std::slice::from_ref(&config), &data).unwrap();
    assert_eq!(specs[0].mean, 20.0);
    assert!((specs[0].std - (200.0f32 / 3.0).sqrt()).abs() < 1e-4);
    assert_eq!(targets[0].present, vec![true, true, false, true]);
    // An output of 1 standard deviation above the mean is that many degrees.
    let predicted: Vec<f32> = predictions(logits(vec![1.0], 1, 1), &specs[0])
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    assert!((predicted[0] - (20.0 + specs[0].std)).abs() < 1e-4);
    // The loss on the standardised target: predicting the mean costs 1 (the variance, 1).
    let loss: f32 = head_loss(
        logits(vec![0.0; 4], 4, 1),
        &specs[0],
        &targets[0],
        &Device::flex(),
    )
    .into_scalar();
    assert!((loss - 1.0).abs() < 1e-5, "{loss}");
    // A head whose targets are all missing is an error, not a silent zero loss.
    data.targets[0].values = vec![f32::NAN; 4];
    let err = resolve_training(&[config], &data).unwrap_err().to_string();
    assert!(
        err.contains("none of the 4 training samples has target \"angle\""),
        "{err}"
    );
}

#[test]
fn tallies_count_accuracy_confusion_and_errors() {
    let spec = class_spec(3, vec![1.0; 3]);
    let mut tally = MetricsTally::new(&spec);
    let batch = HeadTargets {
        values: vec![0.0, 1.0, 2.0, 2.0],
        present: vec![true, true, true, false],
    };
    // Predictions: right, right, wrong (says 0), skipped.
    let predicted = vec![0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.6, 0.1, 0.3, 0.0, 0.0, 1.0];
    tally.add(&spec, &predicted, &batch);
    let HeadMetrics::Class {
        accuracy,
        confusion,
        samples,
        ..
    } = tally.finish(&spec)
    else {
        panic!("a class head")
    };
    assert_eq!(samples, 3);
    assert!((accuracy - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(confusion, vec![vec![1, 0, 0], vec![0, 1, 0], vec![1, 0, 0]]);
}

#[test]
fn standardisation_gives_the_heads_input_zero_mean_and_unit_spread() {
    let device = Device::flex();
    let model: crate::models::ModelConfig =
        toml::from_str("kind = \"dense\"\nhidden = [6]\ncode = 3\nactivation = \"relu\"").unwrap();
    let shape = SampleShape::features(5);
    let model = model.init_mapped(shape, shape, &device).unwrap();
    let values: Vec<f32> = (0..200).map(|i| ((i * 37) % 101) as f32 / 25.0).collect();
    let data = Dataset::unlabelled("rows", shape, values.clone());
    let mut config: HeadConfig =
        toml::from_str("name = \"c\"\nkind = \"class\"\nstandardize = true").unwrap();
    let mut specs = vec![class_spec(2, vec![1.0, 1.0])];
    measure_standardisation(
        &model,
        std::slice::from_ref(&config),
        &mut specs,
        &data,
        &device,
    );
    assert_eq!(specs[0].input_mean.len(), 3);
    let x = Tensor::<2>::from_data(TensorData::new(values, [40, 5]), &device);
    let code: Vec<f32> = model.encode(x.clone()).into_data().try_into_vec().unwrap();
    let standardised: Vec<f32> = specs[0]
        .head_input(model.encode(x.clone()))
        .into_data()
        .try_into_vec()
        .unwrap();
    for j in 0..3 {
        let column: Vec<f64> = (0..40).map(|r| standardised[r * 3 + j] as f64).collect();
        let mean = column.iter().sum::<f64>() / 40.0;
        let spread = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 40.0).sqrt();
        assert!(mean.abs() < 1e-4, "value {j}: mean {mean}");
        // A value that never changed (a dead ReLU unit) is left at scale 1, not blown up.
        let constant = (0..40).all(|r| code[r * 3 + j] == code[j]);
        let expected = if constant { 0.0 } else { 1.0 };
        assert!(
            (spread - expected).abs() < 1e-3,
            "value {j}: spread {spread}"
        );
    }
    // Without `standardize` nothing is measured and the input passes unchanged.
    config.standardize = false;
    let mut plain = vec![class_spec(2, vec![1.0, 1.0])];
    measure_standardisation(&model, &[config], &mut plain, &data, &device);
    assert!(plain[0].input_mean.is_empty());
    let same: Vec<f32> = plain[0]
        .head_input(model.encode(x))
        .into_data()
        .try_into_vec()
        .unwrap();
    assert_eq!(same, code);
}

#[test]
fn consistency_is_the_mean_squared_difference_of_probabilities_and_ramps_up() {
    // Two views of two samples with two classes: probabilities (0.5, 0.5) against
    // (sigmoid(2), 1 - sigmoid(2)), and identical rows (no difference).
    let first = logits(vec![0.0, 0.0, 1.0, 3.0], 2, 2);
    let second = logits(vec![2.0, 0.0, 1.0, 3.0], 2, 2);
    let loss: f32 = consistency_loss(first, second).into_scalar();
    let p = 1.0 / (1.0 + (-2.0f64).exp());
    let expected = 2.0 * (p - 0.5).powi(2) / 4.0;
    assert!(
        (loss as f64 - expected).abs() < 1e-6,
        "{loss} vs {expected}"
    );
    let mut spec = class_spec(2, vec![1.0, 1.0]);
    spec.consistency_weight = 10.0;
    assert_eq!(
        spec.consistency_weight_at(1),
        10.0,
        "no ramp: the full weight"
    );
    spec.consistency_rampup = 5;
    assert!((spec.consistency_weight_at(1) - 10.0 * (-5.0f64).exp()).abs() < 1e-12);
    assert!(spec.consistency_weight_at(3) < spec.consistency_weight_at(4));
    assert_eq!(spec.consistency_weight_at(6), 10.0);
}

#[test]
fn a_consistency_term_needs_a_class_head_and_a_corruption() {
    let parse = |text: &str| -> Result<(), String> {
        let model: crate::models::ModelConfig = toml::from_str(text).unwrap();
        model.validate()
    };
    let head = "[[heads]]\nname = \"digit\"\nkind = \"KIND\"\nconsistency_weight = 10.0\n";
    let err = parse(&format!(
        "kind = \"dense\"\ncode = 4\n{}",
        head.replace("KIND", "class")
    ))
    .unwrap_err();
    assert!(
        err.contains("consistency_weight") && err.contains("[model.corruption]"),
        "{err}"
    );
    let err = parse(&format!(
        "kind = \"denoising\"\ncode = 4\n[corruption]\nkind = \"masking\"\n{}",
        head.replace("KIND", "regression")
    ))
    .unwrap_err();
    assert!(err.contains("only class heads"), "{err}");
    parse(&format!(
        "kind = \"denoising\"\ncode = 4\n[corruption]\nkind = \"masking\"\n{}",
        head.replace("KIND", "class")
    ))
    .unwrap();
}
