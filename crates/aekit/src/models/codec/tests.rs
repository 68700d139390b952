//! Tests of the codec family: shapes, integer codes, the loss's parts, size checks, and the
//! prior's tables coding real latents.

use super::*;
use crate::codec::entropy;

fn model(normalisation: Normalisation) -> CodecModel {
    let config = CodecConfig {
        filters: vec![8],
        latent_channels: 4,
        kernel_size: 5,
        normalisation,
        lambda: 0.01,
        prior_layers: vec![3, 3, 3],
        init: Default::default(),
    };
    config
        .init(
            SampleShape {
                channels: 1,
                height: 16,
                width: 12,
            },
            &Device::flex(),
        )
        .unwrap()
}

#[test]
fn shapes_round_trip_and_sizes_must_be_multiples() {
    for normalisation in [Normalisation::Gdn, Normalisation::Relu] {
        let codec = model(normalisation);
        assert_eq!(codec.code_shape(), [4, 4, 3]);
        let x = Tensor::<2>::random(
            [3, 16 * 12],
            Distribution::Uniform(0.0, 1.0),
            &Device::flex(),
        );
        let code = codec.encode(x.clone());
        assert_eq!(code.dims(), [3, 48]);
        // The code is integers.
        let values = code.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.fract() == 0.0));
        assert_eq!(codec.decode_logits(code).dims(), [3, 16 * 12]);
        let parts = codec.loss_parts(x.clone(), x);
        let names: Vec<&str> = parts.terms.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["distortion", "rate_bpp", "psnr_db"]);
        let total = parts.total.into_scalar::<f32>();
        let sum = parts.terms[0].1.clone().into_scalar::<f32>()
            + parts.terms[1].1.clone().into_scalar::<f32>();
        assert!(
            (total - sum).abs() < 1e-4 * total.abs().max(1.0),
            "{total} vs {sum}"
        );
    }
    let config = CodecConfig {
        filters: vec![8, 8],
        ..model_config()
    };
    let error = config
        .init(
            SampleShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            &Device::flex(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("multiples of 8") && error.contains("model.filters"),
        "{error}"
    );
}

fn model_config() -> CodecConfig {
    CodecConfig {
        filters: vec![8],
        latent_channels: 4,
        kernel_size: 5,
        normalisation: Normalisation::Gdn,
        lambda: 0.01,
        prior_layers: vec![3, 3, 3],
        init: Default::default(),
    }
}

#[test]
fn the_prior_gives_valid_tables_that_code_the_latents() {
    let codec = model(Normalisation::Gdn);
    let tables = codec.entropy_tables().unwrap();
    assert_eq!(tables.len(), 4);
    for table in &tables {
        table.validate().unwrap();
    }
    let x = Tensor::<2>::random(
        [2, 16 * 12],
        Distribution::Uniform(0.0, 1.0),
        &Device::flex(),
    );
    let code: Vec<i32> = codec
        .encode(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|&v| v as i32)
        .collect();
    let per_channel = 4 * 3;
    let channel_of = |i: usize| (i / per_channel) % 4;
    let bytes = entropy::encode(&tables, &code, channel_of).unwrap();
    assert_eq!(
        entropy::decode(&tables, &bytes, code.len(), channel_of).unwrap(),
        code
    );
    // The same weights give the same tables.
    assert_eq!(codec.entropy_tables().unwrap(), tables);
}
