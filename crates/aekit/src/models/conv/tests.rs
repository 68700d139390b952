use super::*;
use crate::config::RunConfig;
use crate::models::{Autoencoder, ModelConfig};
use burn::tensor::Distribution;

fn config(text: &str) -> ConvConfig {
    let config: ConvConfig = toml::from_str(text).unwrap();
    config.validate().unwrap();
    config
}

fn random_batch(batch: usize, shape: SampleShape, device: &Device) -> Tensor<2> {
    Tensor::random(
        [batch, shape.len()],
        Distribution::Uniform(0.0, 1.0),
        device,
    )
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn output_has_the_input_shape_for_every_size_and_mode() {
    let device = Device::flex();
    let shapes = [
        SampleShape::image(1, 28, 28),
        SampleShape::image(3, 32, 32),
        SampleShape::image(1, 13, 17),
    ];
    for shape in shapes {
        for filters in ["[4]", "[6, 4, 3]"] {
            for downsample in ["pool", "stride"] {
                for upsample in ["nearest", "transposed"] {
                    let what = format!("{shape} filters {filters} {downsample} {upsample}");
                    let config = config(&format!(
                        "filters = {filters}\ndownsample = \"{downsample}\"\n\
                         upsample = \"{upsample}\""
                    ));
                    let model = config.init(shape, &device).unwrap();
                    let x = random_batch(2, shape, &device);
                    let code = model.encode(x);
                    let [c, h, w] = model.code_shape();
                    assert_eq!(code.dims(), [2, c * h * w], "{what}");
                    let logits = model.decode_logits(code);
                    assert_eq!(logits.dims(), [2, shape.len()], "{what}");
                    assert!(values(logits).iter().all(|v| v.is_finite()), "{what}");
                }
            }
        }
    }
}

#[test]
fn a_dense_code_after_the_levels_has_its_own_size_and_the_output_the_input_s() {
    let device = Device::flex();
    for shape in [SampleShape::image(1, 28, 28), SampleShape::image(3, 13, 17)] {
        let model = config("filters = [4, 6]\ndownsample = \"stride\"\ncode = 10")
            .init(shape, &device)
            .unwrap();
        let x = random_batch(3, shape, &device);
        let code = model.encode(x);
        assert_eq!(code.dims(), [3, 10], "{shape}");
        assert_eq!(model.code_len(), 10);
        assert_eq!(
            model.maps_len(),
            model.code_shape().iter().product::<usize>()
        );
        // The code layer is linear by default: negative values survive.
        assert!(values(code.clone()).iter().any(|&v| v < 0.0), "{shape}");
        assert_eq!(
            model.decode_logits(code).dims(),
            [3, shape.len()],
            "{shape}"
        );
    }
    let zero: ConvConfig = toml::from_str("filters = [4]\ncode = 0").unwrap();
    assert!(zero.validate().unwrap_err().starts_with("model.code:"));
}

#[test]
fn levels_round_up_and_the_decoder_mirrors_them() {
    let device = Device::flex();
    let model = config("filters = [16, 8, 8]")
        .init(SampleShape::image(1, 28, 28), &device)
        .unwrap();
    assert_eq!(model.level_sizes(), [[28, 28], [14, 14], [7, 7], [4, 4]]);
    let model = config("filters = [4, 4, 4]\ndownsample = \"stride\"")
        .init(SampleShape::image(1, 13, 17), &device)
        .unwrap();
    assert_eq!(model.level_sizes(), [[13, 17], [7, 9], [4, 5], [2, 3]]);
    assert_eq!(model.code_shape(), [4, 2, 3]);
    // A different decoder width, a 5x5 kernel and a linear output still give the input's size.
    let model = config(
        "filters = [8, 4]\ndecoder_filters = [3, 5]\nkernel_size = 5\n\
         output_activation = \"linear\"",
    )
    .init(SampleShape::image(3, 9, 30), &device)
    .unwrap();
    let x = random_batch(3, SampleShape::image(3, 9, 30), &device);
    assert_eq!(model.decode_logits(model.encode(x)).dims(), [3, 3 * 9 * 30]);
}

#[test]
fn the_shipped_keras_blog_config_has_a_128_value_code() {
    let text = include_str!("../../../../../configs/conv.toml");
    let run = RunConfig::parse(text, "configs/conv.toml", &[]).unwrap();
    let ModelConfig::Conv(conv) = &run.model else {
        panic!("configs/conv.toml is not a conv model: {:?}", run.model)
    };
    assert_eq!(conv.filters, [16, 8, 8]);
    assert_eq!(conv.decoder_channels(), [8, 8, 16]);
    assert_eq!(run.train.batch_size, 128);
    assert_eq!(run.train.epochs, 50);
    let device = Device::flex();
    let shape = SampleShape::image(1, 28, 28);
    let Autoencoder::Conv(model) = run.model.init(shape, &device).unwrap() else {
        panic!("a conv config builds a conv model")
    };
    assert_eq!(model.code_shape(), [8, 4, 4]);
    assert_eq!(model.code_len(), 128);
    // The blog's layers: 160 + 1160 + 584 (encoder), 584 + 584 + 1168 + 145 (decoder).
    assert_eq!(model.num_params(), 4385);
    let code = model.encode(random_batch(5, shape, &device));
    assert_eq!(code.dims(), [5, 128]);
    // Relu then max pooling: the code is never negative.
    assert!(values(code).iter().all(|&v| v >= 0.0));
}

#[test]
fn too_many_levels_for_the_image_name_the_key_and_sizes() {
    let device = Device::flex();
    let shape = SampleShape::image(1, 28, 28);
    assert!(
        config("filters = [2, 2, 2, 2, 2]")
            .init(shape, &device)
            .is_ok()
    );
    let error = config("filters = [2, 2, 2, 2, 2, 2]")
        .init(shape, &device)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("model.filters: "), "{error}");
    assert!(
        error.contains("28x28 -> 14x14 -> 7x7 -> 4x4 -> 2x2 -> 1x1"),
        "{error}"
    );
    assert!(error.contains("at most 5 levels"), "{error}");
    // A thin image runs out along one side first.
    let error = config("filters = [2, 2]")
        .init(SampleShape::image(1, 2, 40), &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("model.filters") && error.contains("1x20"),
        "{error}"
    );
}

#[test]
fn tables_and_bad_settings_are_clear_errors() {
    let device = Device::flex();
    let model = ModelConfig::Conv(config("filters = [4]"));
    let error = model
        .init(SampleShape::features(13), &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("model.kind") && error.contains("dense"),
        "{error}"
    );

    let invalid = |text: &str| -> String {
        toml::from_str::<ConvConfig>(text)
            .unwrap()
            .validate()
            .unwrap_err()
    };
    assert!(invalid("filters = []").starts_with("model.filters"));
    assert!(invalid("filters = [4, 0]").starts_with("model.filters[1]"));
    assert!(
        invalid("filters = [4, 4]\ndecoder_filters = [4]").starts_with("model.decoder_filters")
    );
    assert!(
        invalid("filters = [4]\ndecoder_filters = [0]").starts_with("model.decoder_filters[0]")
    );
    assert!(invalid("filters = [4]\nkernel_size = 0").starts_with("model.kernel_size"));
    assert!(invalid("filters = [4]\ndropout = 1.0").starts_with("model.dropout"));
    assert!(toml::from_str::<ConvConfig>("filters = [4]\nfilter = 3").is_err());
    assert!(toml::from_str::<ConvConfig>("filters = [4]\ndownsample = \"avg\"").is_err());
}

#[test]
fn batch_norm_and_dropout_run_in_train_and_valid_mode() {
    let plain = Device::flex();
    let autodiff = plain.clone().autodiff();
    let shape = SampleShape::image(3, 12, 10);
    for upsample in ["nearest", "transposed"] {
        let config = config(&format!(
            "filters = [8, 4]\nbatch_norm = true\ndropout = 0.5\nupsample = \"{upsample}\""
        ));
        let model = Autoencoder::Conv(config.init(shape, &autodiff).unwrap());
        let x = random_batch(4, shape, &plain);
        let x_train = Tensor::<2>::from_data(x.to_data(), &autodiff);

        let valid_before = values(model.valid().forward(x.clone()).logits);
        // Training mode: dropout draws a new mask each pass, and gradients flow.
        let first = model.forward(x_train.clone()).logits;
        let second = values(model.forward(x_train).logits);
        assert_eq!(first.dims(), [4, shape.len()]);
        assert_ne!(
            values(first.clone()),
            second,
            "{upsample}: dropout is active"
        );
        let grads = first.mean().backward();
        let conv_grad = match &model {
            Autoencoder::Conv(m) => match &m.encoder[0].layer {
                LevelLayer::Conv(conv) => conv.weight.grad(&grads),
                LevelLayer::Transposed(_) => None,
            },
            _ => None,
        };
        assert!(
            conv_grad.is_some(),
            "{upsample}: the first convolution gets a gradient"
        );

        // Validation mode: deterministic, and the batch norm's running statistics were
        // updated by the training passes.
        let valid = model.valid();
        let once = values(valid.forward(x.clone()).logits);
        let twice = values(valid.forward(x).logits);
        assert_eq!(once, twice, "{upsample}: no dropout when validating");
        assert!(once.iter().all(|v| v.is_finite()));
        assert_ne!(once, valid_before, "{upsample}: running statistics moved");
    }
}

#[test]
fn training_on_shapes_lowers_the_loss() {
    let runs = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "conv-test"
runs_dir = "{}"
[data]
kind = "shapes"
samples = 600
size = 16
validation = "test"
[model]
kind = "conv"
filters = [8, 8]
[train]
learning_rate = 3e-3
epochs = 4
batch_size = 32
loss = "bce"
"#,
        runs.path().display()
    );
    let config = RunConfig::parse(&text, "test", &[]).unwrap();
    let options = crate::train::TrainOptions {
        quiet: true,
        ..Default::default()
    };
    let outcome = crate::train::train(&config, &options).unwrap();
    let history = outcome.run.read_history().unwrap();
    assert_eq!(history.len(), 4);
    let (first, last) = (&history[0], &history[3]);
    assert!(
        last.train_loss < first.train_loss && last.valid_loss < first.valid_loss,
        "{history:?}"
    );
    // Shapes on a black background: a trained model beats predicting 0.5 everywhere (ln 2).
    assert!(last.valid_loss < 0.5, "{history:?}");
    // The saved model reloads to the same validation loss.
    let options = crate::eval::EvalOptions {
        weights: crate::run_dir::WeightsChoice::Final,
        ..Default::default()
    };
    let report = crate::eval::evaluate_run(outcome.run.path(), &options).unwrap();
    assert!(
        (report.loss - outcome.summary.final_valid_loss).abs() < 1e-5,
        "{} vs {}",
        report.loss,
        outcome.summary.final_valid_loss
    );
}
