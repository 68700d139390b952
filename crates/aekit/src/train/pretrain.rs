//! Greedy layer-wise pre-training of a deep dense autoencoder (Hinton & Salakhutdinov 2006,
//! Bengio et al. 2007, with shallow autoencoders in place of RBMs): encoder layer `i` and its
//! mirrored decoder layer are trained as a shallow autoencoder of the codes the already
//! trained layers below give, one level after the other; the whole stack is then fine-tuned
//! by the ordinary training loop.
//!
//! Level 0 reconstructs the data with the configured loss and the model's output activation;
//! the levels above reconstruct hidden activations with the squared error, through the hidden
//! activation (as the full model's decoder does there). Penalties and input corruption of the
//! families apply to the fine-tuning only.

use super::{STOP_REQUESTED, epoch_order};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::loss::ReconstructionLoss;
use crate::models::DenseAutoencoder;
use crate::run_dir::{self, RunDir};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// How one level's pre-training ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelReport {
    /// The level, from 0 (next to the data).
    pub level: usize,
    /// Sizes of the level's input and code.
    pub sizes: [usize; 2],
    /// Mean training loss of the level's last epoch.
    pub final_loss: f64,
}

/// Pre-trains every level of `model` (built on `autodiff`) on `train`, greedily, and writes
/// the per-epoch losses to the run's `pretrain.csv`.
pub fn pretrain_greedy(
    model: &mut DenseAutoencoder,
    config: &RunConfig,
    train: &Dataset,
    autodiff: &Device,
    run: &RunDir,
    quiet: bool,
) -> Result<Vec<LevelReport>> {
    let tc = &config.train;
    if !model.is_mirrored() {
        return Err(Error::config(
            "train.pretrain_epochs",
            "greedy pre-training pairs each encoder layer with its mirror in the decoder, but \
             model.decoder_hidden does not mirror model.hidden; leave decoder_hidden out or set \
             train.pretrain_epochs = 0",
        ));
    }
    let plain = autodiff.clone().inner();
    let samples = train.len();
    // The current level's inputs for every training sample, on the host: the data at level
    // 0, then the codes of the levels already trained.
    let mut inputs: Cow<[f32]> = Cow::Borrowed(&train.values);
    let mut width = train.shape.len();
    let mut csv = String::from("level,epoch,loss\n");
    let mut reports = Vec::with_capacity(model.depth());
    for level in 0..model.depth() {
        let mut pair = model.shallow_pair(level);
        let loss_kind = if level == 0 {
            tc.loss
        } else {
            ReconstructionLoss::Mse
        };
        let output = pair.decoder_activation();
        let mut optimizer = tc.optimizer();
        let mut final_loss = f64::NAN;
        for epoch in 1..=tc.pretrain_epochs {
            let started = Instant::now();
            // A seed of its own per level, so the levels do not see the same orders.
            let order = epoch_order(
                samples,
                tc.seed ^ (0x5EED_0000 + level as u64),
                epoch,
                tc.shuffle,
            );
            let mut loss_sum = 0.0;
            for indices in order.chunks(tc.batch_size) {
                if STOP_REQUESTED.load(Ordering::SeqCst) {
                    return Err(Error::Interrupted(format!(
                        "stopped during greedy pre-training (level {level}, epoch {epoch}), \
                         before the first checkpoint; train again with --force"
                    )));
                }
                let mut values = Vec::with_capacity(indices.len() * width);
                for &i in indices {
                    values.extend_from_slice(&inputs[i * width..(i + 1) * width]);
                }
                let batch = indices.len();
                let x = Tensor::<2>::from_data(TensorData::new(values, [batch, width]), autodiff);
                let logits = pair.decode_logits(pair.encode(x.clone()));
                let loss = loss_kind.compute(logits, x, output);
                let value = loss.clone().into_scalar::<f32>() as f64;
                if !value.is_finite() {
                    return Err(Error::Training(format!(
                        "the pre-training loss of level {level} became {value} at epoch \
                         {epoch}: the learning rate ({}) is probably too high",
                        tc.learning_rate
                    )));
                }
                loss_sum += value * batch as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &pair);
                pair = optimizer.step(tc.learning_rate, pair, grads);
            }
            final_loss = loss_sum / samples as f64;
            let _ = writeln!(csv, "{level},{epoch},{final_loss}");
            if !quiet {
                eprintln!(
                    "pre-training level {}/{} ({} -> {}), epoch {epoch}/{}: loss {final_loss:.5}, {:.1} s",
                    level + 1,
                    model.depth(),
                    width,
                    pair.code_len(),
                    tc.pretrain_epochs,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        // The next level's inputs: this level's codes of every sample, computed without
        // gradients on the plain device.
        let encoder = pair.valid();
        let mut codes = Vec::new();
        let mut code_width = 0;
        for start in (0..samples).step_by(1024) {
            let end = (start + 1024).min(samples);
            let x = Tensor::<2>::from_data(
                TensorData::new(
                    inputs[start * width..end * width].to_vec(),
                    [end - start, width],
                ),
                &plain,
            );
            let code = encoder.encode(x);
            code_width = code.dims()[1];
            codes.extend(code.into_data().try_into_vec::<f32>().map_err(|e| {
                Error::Training(format!("pre-training level {level}: reading codes: {e:?}"))
            })?);
        }
        reports.push(LevelReport {
            level,
            sizes: [width, code_width],
            final_loss,
        });
        model.set_shallow_pair(level, pair);
        inputs = Cow::Owned(codes);
        width = code_width;
    }
    run_dir::write_atomic(&run.path().join("pretrain.csv"), csv.as_bytes())?;
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use crate::models::Autoencoder;

    fn config(runs_dir: &std::path::Path, extra_model: &str) -> RunConfig {
        let text = format!(
            "name = \"greedy\"\nruns_dir = \"{}\"\n[data]\nkind = \"shapes\"\nsamples = 600\n\
             size = 12\n[model]\nkind = \"dense\"\nhidden = [48]\ncode = 8\n{extra_model}\n\
             [train]\nbatch_size = 32\nlearning_rate = 3e-3\npretrain_epochs = 4\n",
            runs_dir.display()
        );
        RunConfig::parse(&text, "greedy.toml", &[]).unwrap()
    }

    fn full_loss(model: &DenseAutoencoder, train: &Dataset, device: &Device) -> f64 {
        let x = Tensor::<2>::from_data(
            TensorData::new(train.values.clone(), [train.len(), train.shape.len()]),
            device,
        );
        model
            .loss_parts(x.clone(), x, ReconstructionLoss::Bce)
            .total
            .into_scalar::<f32>() as f64
    }

    #[test]
    fn every_level_learns_and_the_stack_starts_better_than_at_random() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), "");
        let splits = data::load_splits(&config.data).unwrap();
        let device = Device::flex().autodiff();
        device.seed(1);
        let Autoencoder::Dense(mut model) = config.model.init(splits.train.shape, &device).unwrap()
        else {
            panic!("a dense config builds a dense model")
        };
        let before = full_loss(&model, &splits.train, &device);
        let run = RunDir::create(&config.run_dir(), false).unwrap();
        let reports =
            pretrain_greedy(&mut model, &config, &splits.train, &device, &run, true).unwrap();
        assert_eq!(
            reports.iter().map(|r| r.sizes).collect::<Vec<_>>(),
            [[144, 48], [48, 8]]
        );
        let after = full_loss(&model, &splits.train, &device);
        assert!(after < before, "stack loss {after} not below {before}");
        // Each level's loss falls from its first epoch to its last (pretrain.csv).
        let csv = std::fs::read_to_string(run.path().join("pretrain.csv")).unwrap();
        for (level, report) in reports.iter().enumerate() {
            let losses: Vec<f64> = csv
                .lines()
                .skip(1)
                .filter(|line| line.starts_with(&format!("{level},")))
                .map(|line| line.rsplit(',').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(losses.len(), 4, "{csv}");
            assert!(losses[3] < losses[0], "level {level}: {losses:?}");
            assert!((losses[3] - report.final_loss).abs() < 1e-12);
        }
    }

    #[test]
    fn only_dense_stacks_with_a_mirrored_decoder_pre_train() {
        let tmp = tempfile::tempdir().unwrap();
        let config = config(tmp.path(), "decoder_hidden = [20]");
        let splits = data::load_splits(&config.data).unwrap();
        let device = Device::flex().autodiff();
        let Autoencoder::Dense(mut model) = config.model.init(splits.train.shape, &device).unwrap()
        else {
            panic!("a dense config builds a dense model")
        };
        let run = RunDir::create(&config.run_dir(), false).unwrap();
        let error = pretrain_greedy(&mut model, &config, &splits.train, &device, &run, true)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not mirror model.hidden"), "{error}");

        let text = "name = \"v\"\n[data]\nkind = \"shapes\"\n[model]\nkind = \"vae\"\nlatent = 2\n\
                    [train]\npretrain_epochs = 2\n";
        let error = RunConfig::parse(text, "v.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "v.toml: train.pretrain_epochs: greedy layer-wise pre-training is for the dense"
            ),
            "{error}"
        );
    }
}
