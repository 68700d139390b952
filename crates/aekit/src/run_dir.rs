//! The run directory: everything a training run leaves behind, and the one place that
//! knows its layout.
//!
//! ```text
//! runs/<name>/
//!   config.toml          the resolved config (overrides applied)
//!   model.json           what is needed to rebuild the model (sample shape, family)
//!   model.bpk            the final weights (Burn's burnpack format)
//!   model-best.bpk       the weights of the epoch with the lowest validation loss
//!   scaler.json          the table scaling fitted on the training rows (`[data] scale`)
//!   heads.json           the heads' classes and target scaling (models with heads)
//!   heads.bpk            the heads' final weights (heads-best.bpk: the best epoch's)
//!   checkpoints/latest   the name of the newest checkpoint folder
//!   checkpoints/epoch-0007/{model.bpk,heads.bpk,optimizer.bpk,state.json}
//!   history.csv          one row per epoch
//!   timings.csv          where each epoch's time went (steps, waiting, validation, saving)
//!   loss.png             training and validation loss curves
//!   reconstructions.png  originals above their reconstructions
//!   summary.json         outcome and final figures
//! ```
//!
//! Every file is written atomically (to a temporary name, then renamed), so a run killed at
//! any moment leaves either the old or the new version of each file, never half of one.

use crate::config::RunConfig;
use crate::data::SampleShape;
use crate::error::{Error, Result};
use crate::models::Autoencoder;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the run directory records about the model beyond its config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    /// The shape of the samples the model was built for.
    pub sample_shape: SampleShape,
    /// The model family (`[model] kind`).
    pub kind: String,
    /// Number of trainable parameters.
    pub parameters: usize,
    /// Class names of the training data, when labelled.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// The shape of one output when it is not the input's (an image-to-image model's
    /// targets; one channel per class for segmentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_shape: Option<SampleShape>,
    /// A segmentation model's pixel classes (index = class), background first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pixel_classes: Vec<String>,
}

impl ModelMeta {
    /// The shape of one output: the input's, unless the model maps to other targets.
    pub fn output_shape(&self) -> SampleShape {
        self.output_shape.unwrap_or(self.sample_shape)
    }

    /// For segmentation models, the number of pixel classes.
    pub fn pixel_class_count(&self) -> Option<usize> {
        (!self.pixel_classes.is_empty()).then_some(self.pixel_classes.len())
    }
}

/// One row of `history.csv`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryRow {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f64,
    /// Validation loss after the epoch.
    pub valid_loss: f64,
    /// Wall-clock seconds of the epoch, validation included.
    pub seconds: f64,
    /// Training samples per second (training steps only).
    pub samples_per_sec: f64,
    /// Means of the loss's parts, `train_<part>` and `valid_<part>` (penalties, KL...),
    /// for models whose loss has more than the reconstruction.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub terms: BTreeMap<String, f64>,
}

/// How a run ended (or where it stands), as `summary.json` says.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Still training (or killed without a chance to say otherwise).
    Running,
    /// Trained for all its epochs.
    Completed,
    /// Stopped by early stopping.
    StoppedEarly,
    /// Stopped by the user; resumable.
    Interrupted,
    /// Stopped by an error (e.g. a NaN loss); the last good checkpoint is kept.
    Failed,
}

/// `summary.json`: the outcome of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// How the run ended.
    pub status: RunStatus,
    /// Why, in words, when it did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Epochs finished.
    pub epochs_completed: usize,
    /// The epoch with the lowest validation loss.
    pub best_epoch: usize,
    /// The lowest validation loss.
    pub best_valid_loss: f64,
    /// Training loss of the last epoch.
    pub final_train_loss: f64,
    /// Validation loss of the last epoch.
    pub final_valid_loss: f64,
    /// Validation metrics of the final model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_valid_metrics: Option<crate::loss::ReconstructionMetrics>,
    /// Mean training samples per second over the epochs.
    pub mean_samples_per_sec: f64,
    /// Total wall-clock seconds of training.
    pub total_seconds: f64,
    /// The model.
    pub model: ModelMeta,
    /// Which weight files the run holds and the epochs they come from (absent in runs
    /// made before aekit kept the best weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightFiles>,
}

/// The weight files of a run: the last epoch's and the best validation epoch's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WeightFiles {
    /// The final weights' file name in the run directory (`model.bpk`).
    pub final_file: String,
    /// The epoch the final weights come from.
    pub final_epoch: usize,
    /// The best weights' file name (`model-best.bpk`), when an epoch finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_file: Option<String>,
    /// The epoch with the lowest validation loss.
    pub best_epoch: usize,
}

/// Which of a run's weights to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightsChoice {
    /// The weights of the epoch with the lowest validation loss (`model-best.bpk`); the
    /// final ones for runs made before aekit kept the best.
    #[default]
    Best,
    /// The last epoch's weights (`model.bpk`).
    Final,
}

impl std::str::FromStr for WeightsChoice {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "best" => Ok(WeightsChoice::Best),
            "final" => Ok(WeightsChoice::Final),
            other => Err(format!("`{other}`: expected `best` or `final`")),
        }
    }
}

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates a new run directory. An existing one is an error unless `force` is set, in
    /// which case it is removed first — but only when it is recognisably an aekit run (its
    /// marker file, or the files of a run made before the marker) and holds nothing but what
    /// aekit writes: a run directory, or a folder the user keeps other files in, is never
    /// lost by accident.
    pub fn create(path: &Path, force: bool) -> Result<RunDir> {
        if path.exists() {
            if !force {
                return Err(Error::run(
                    path,
                    "the run directory already exists; use --force to replace it, \
                     --resume to continue it, or `--set name=...` for a new run",
                ));
            }
            check_replaceable(path)?;
            std::fs::remove_dir_all(path).map_err(|e| Error::io(path, e))?;
        }
        std::fs::create_dir_all(path.join("checkpoints")).map_err(|e| Error::io(path, e))?;
        write_atomic(&path.join(MARKER), b"an aekit run directory\n")?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// Removes what a killed run left half-written: checkpoint folders and files still under
    /// their temporary names. Returns how many were removed.
    pub fn clean_partial_writes(&self) -> Result<usize> {
        let mut removed = 0;
        for dir in [self.path.clone(), self.checkpoints_dir()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !is_temporary_name(&name) {
                    continue;
                }
                let path = entry.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                } else {
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Opens an existing run directory (it must hold `config.toml`).
    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.is_dir() {
            return Err(Error::run(path, "no such run directory"));
        }
        if !path.join("config.toml").is_file() {
            return Err(Error::run(
                path,
                "not an aekit run directory: config.toml is missing",
            ));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    /// `model.bpk`, the final weights.
    pub fn model_path(&self) -> PathBuf {
        self.path.join("model.bpk")
    }
    /// `model-best.bpk`, the weights of the best validation epoch.
    pub fn best_model_path(&self) -> PathBuf {
        self.path.join("model-best.bpk")
    }
    /// The weight file `choice` names; the final weights when a run has no best ones (made
    /// before aekit kept them).
    pub fn weights_path(&self, choice: WeightsChoice) -> PathBuf {
        match choice {
            WeightsChoice::Best if self.best_model_path().is_file() => self.best_model_path(),
            _ => self.model_path(),
        }
    }
    /// `heads.json`, what the model's heads are (classes, target scaling).
    pub fn heads_spec_path(&self) -> PathBuf {
        self.path.join("heads.json")
    }
    /// `heads.bpk`, the heads' final weights.
    pub fn heads_path(&self) -> PathBuf {
        self.path.join("heads.bpk")
    }
    /// `heads-best.bpk`, the heads' weights of the best validation epoch.
    pub fn best_heads_path(&self) -> PathBuf {
        self.path.join("heads-best.bpk")
    }
    /// The heads' weight file that goes with [`RunDir::weights_path`]`(choice)`.
    pub fn heads_weights_path(&self, choice: WeightsChoice) -> PathBuf {
        if self.weights_path(choice) == self.best_model_path() {
            self.best_heads_path()
        } else {
            self.heads_path()
        }
    }
    /// `scaler.json`, the fitted table scaling, when the run scales its data.
    pub fn scaler_path(&self) -> PathBuf {
        self.path.join("scaler.json")
    }
    /// The run's fitted table scaling: `None` when its config scales nothing; an error when
    /// the config asks for scaling and the file is missing or unreadable.
    pub fn load_scaler(
        &self,
        config: &RunConfig,
    ) -> Result<Option<crate::data::scaling::FeatureScaler>> {
        if config.data.scale == crate::data::scaling::Scale::None {
            return Ok(None);
        }
        let path = self.scaler_path();
        if !path.is_file() {
            return Err(Error::run(
                &self.path,
                "the files disagree: config.toml scales the data (data.scale), but scaler.json \
                 is missing",
            ));
        }
        read_json(&path).map(Some)
    }
    /// `model.json`.
    pub fn model_meta_path(&self) -> PathBuf {
        self.path.join("model.json")
    }
    /// `history.csv`.
    pub fn history_path(&self) -> PathBuf {
        self.path.join("history.csv")
    }
    /// `timings.csv`.
    pub fn timings_path(&self) -> PathBuf {
        self.path.join("timings.csv")
    }

    /// Adds one epoch's row to `timings.csv` (written whole, atomically, as every file).
    pub fn append_timings(&self, row: &EpochTimings) -> Result<()> {
        let path = self.timings_path();
        let mut text = match std::fs::read_to_string(&path) {
            Ok(text) if text.starts_with(EpochTimings::HEADER) => text,
            _ => format!("{}\n", EpochTimings::HEADER),
        };
        text.push_str(&format!(
            "{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4}\n",
            row.epoch,
            row.samples,
            row.valid_samples,
            row.steps,
            row.waiting,
            row.validation,
            row.saving,
            row.total()
        ));
        write_atomic(&path, text.as_bytes())
    }
    /// `summary.json`.
    pub fn summary_path(&self) -> PathBuf {
        self.path.join("summary.json")
    }
    /// `loss.png`.
    pub fn loss_plot_path(&self) -> PathBuf {
        self.path.join("loss.png")
    }
    /// `reconstructions.png`.
    pub fn reconstructions_path(&self) -> PathBuf {
        self.path.join("reconstructions.png")
    }
    /// `checkpoints/`.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    /// The resolved config of the run.
    pub fn load_config(&self) -> Result<RunConfig> {
        RunConfig::from_file(&self.config_path(), &[])
    }

    /// The model description of the run.
    pub fn load_meta(&self) -> Result<ModelMeta> {
        read_json(&self.model_meta_path())
    }

    /// Rebuilds the run's model with the weights `choice` names on `device` (plain or
    /// autodiff).
    pub fn load_model(
        &self,
        device: &Device,
        choice: WeightsChoice,
    ) -> Result<(RunConfig, ModelMeta, Autoencoder)> {
        let config = self.load_config()?;
        let meta = self.load_meta()?;
        if meta.kind != config.model.kind_name() {
            return Err(Error::run(
                &self.path,
                format!(
                    "the files disagree: model.json says the model is `{}`, config.toml says `{}`",
                    meta.kind,
                    config.model.kind_name()
                ),
            ));
        }
        let weights = self.weights_path(choice);
        if !weights.is_file() {
            return Err(Error::run(
                &self.path,
                "model.bpk is missing: the run has not finished an epoch yet",
            ));
        }
        let model = config
            .model
            .init_mapped(meta.sample_shape, meta.output_shape(), device)?;
        let model = load_weights(model, &weights)?;
        Ok((config, meta, model))
    }

    /// Writes `history.csv`.
    pub fn write_history(&self, rows: &[HistoryRow]) -> Result<()> {
        let extra: Vec<&String> = rows
            .first()
            .map(|r| r.terms.keys().collect())
            .unwrap_or_default();
        let mut text = String::from("epoch,train_loss,valid_loss,seconds,samples_per_sec");
        for name in &extra {
            text.push(',');
            text.push_str(name);
        }
        text.push('\n');
        for r in rows {
            text.push_str(&format!(
                "{},{:.6},{:.6},{:.3},{:.1}",
                r.epoch, r.train_loss, r.valid_loss, r.seconds, r.samples_per_sec
            ));
            for name in &extra {
                text.push_str(&format!(
                    ",{:.6}",
                    r.terms.get(*name).copied().unwrap_or(f64::NAN)
                ));
            }
            text.push('\n');
        }
        write_atomic(&self.history_path(), text.as_bytes())
    }

    /// Reads `history.csv`.
    pub fn read_history(&self) -> Result<Vec<HistoryRow>> {
        let path = self.history_path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        lines
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                let f: Vec<f64> = line
                    .split(',')
                    .filter_map(|v| v.trim().parse().ok())
                    .collect();
                if f.len() != header.len() || f.len() < 5 {
                    return Err(Error::data(
                        &path,
                        format!("line {}: expected {} numbers", i + 2, header.len().max(5)),
                    ));
                }
                Ok(HistoryRow {
                    epoch: f[0] as usize,
                    train_loss: f[1],
                    valid_loss: f[2],
                    seconds: f[3],
                    samples_per_sec: f[4],
                    terms: header[5..]
                        .iter()
                        .zip(&f[5..])
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect(),
                })
            })
            .collect()
    }

    /// Writes `summary.json`.
    pub fn write_summary(&self, summary: &Summary) -> Result<()> {
        write_json(&self.summary_path(), summary)
    }

    /// Reads `summary.json`.
    pub fn read_summary(&self) -> Result<Summary> {
        read_json(&self.summary_path())
    }
}

/// Where one epoch's time went, in seconds (a row of `timings.csv`): the optimizer steps
/// (forward, backward, update, the loss reads and progress), waiting for the next batch
/// (assembled on a thread of its own, so normally near 0), the validation pass, and saving
/// (best weights, checkpoint, history, loss plot).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpochTimings {
    /// The epoch (from 1).
    pub epoch: usize,
    /// Training samples the steps took (a resumed epoch's steps before the stop included).
    pub samples: usize,
    /// Validation samples.
    pub valid_samples: usize,
    /// Seconds in the optimizer steps.
    pub steps: f64,
    /// Seconds waiting for batches.
    pub waiting: f64,
    /// Seconds in validation.
    pub validation: f64,
    /// Seconds saving.
    pub saving: f64,
}

impl EpochTimings {
    /// The header of `timings.csv`.
    pub const HEADER: &str = "epoch,samples,valid_samples,steps_seconds,waiting_seconds,\
                              validation_seconds,saving_seconds,total_seconds";

    /// The epoch's seconds in all.
    pub fn total(&self) -> f64 {
        self.steps + self.waiting + self.validation + self.saving
    }
}

/// The file that marks a folder as an aekit run directory (only aekit writes it).
pub const MARKER: &str = ".aekit-run";

/// What aekit writes at the top of a run directory; anything else is the user's.
fn is_aekit_file(name: &str) -> bool {
    const NAMES: [&str; 16] = [
        MARKER,
        "timings.csv",
        "heads.json",
        "heads.bpk",
        "heads-best.bpk",
        "config.toml",
        "model.json",
        "model.bpk",
        "model-best.bpk",
        "scaler.json",
        "history.csv",
        "pretrain.csv",
        "loss.png",
        "reconstructions.png",
        "summary.json",
        "checkpoints",
    ];
    NAMES.contains(&name)
        || (name.starts_with("eval") && name.ends_with(".json"))
        || (name.starts_with("confusion-") && name.ends_with(".png"))
        || is_temporary_name(name)
}

/// A name `write_atomic` or a checkpoint uses while writing (`NAME.tmp-PID`).
fn is_temporary_name(name: &str) -> bool {
    name.rsplit_once(".tmp-")
        .is_some_and(|(_, pid)| !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()))
}

/// Refuses to delete `path` unless it is an aekit run holding only aekit's files.
fn check_replaceable(path: &Path) -> Result<()> {
    let names: Vec<String> = path
        .read_dir()
        .map_err(|e| Error::io(path, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let legacy_run = ["config.toml", "model.json", "checkpoints"]
        .iter()
        .all(|n| names.iter().any(|m| m == n));
    if !names.is_empty() && !names.iter().any(|n| n == MARKER) && !legacy_run {
        return Err(Error::run(
            path,
            "exists and is not an aekit run directory (no .aekit-run marker); refusing to \
             delete it even with --force",
        ));
    }
    let mut foreign: Vec<&String> = names.iter().filter(|n| !is_aekit_file(n)).collect();
    foreign.sort();
    if let Some(first) = foreign.first() {
        return Err(Error::run(
            path,
            format!(
                "holds files aekit did not write ({}{}); refusing to replace the run even with \
                 --force: move them out, or train under another name (`--set name=...`)",
                first,
                if foreign.len() > 1 {
                    format!(" and {} more", foreign.len() - 1)
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok(())
}

/// Loads burnpack weights into a freshly built model of the same architecture.
pub fn load_weights<M: Module>(model: M, path: &Path) -> Result<M> {
    check_not_empty(path)?;
    let record = ModuleRecord::load(path).map_err(|e| {
        Error::data(
            path,
            format!("cannot read the weights (truncated or not a weight file?): {e}"),
        )
    })?;
    model
        .try_load_record(record)
        .map_err(|e| Error::data(path, format!("does not fit the model: {e}")))
}

/// An empty file is one cut short (a kill while it was written, a full disk): say so rather
/// than what the decoder says about it.
pub fn check_not_empty(path: &Path) -> Result<()> {
    let metadata = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if metadata.len() == 0 {
        return Err(Error::data(
            path,
            "is empty (0 bytes): it was cut short while it was written (a kill or a full disk?)",
        ));
    }
    Ok(())
}

/// Saves a model's weights atomically.
pub fn save_weights<M: Module>(model: &M, path: &Path) -> Result<()> {
    let tmp = tmp_path(path);
    model
        .clone()
        .into_record()
        .save(&tmp)
        .map_err(|e| Error::data(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A sibling temporary name for `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically: to a temporary file, flushed, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = tmp_path(path);
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("aekit's records always serialise");
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON file, naming it in any error.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::data(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_run_dir_needs_force() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run");
        RunDir::create(&path, false).unwrap();
        std::fs::write(path.join("config.toml"), "x").unwrap();
        let error = RunDir::create(&path, false).unwrap_err().to_string();
        assert!(
            error.contains("already exists") && error.contains("--force"),
            "{error}"
        );
        assert!(path.join("config.toml").exists(), "nothing may be lost");
        RunDir::create(&path, true).unwrap();
        assert!(!path.join("config.toml").exists());
    }

    #[test]
    fn force_never_deletes_a_folder_that_is_not_a_run() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("precious.txt"), "data").unwrap();
        let error = RunDir::create(tmp.path(), true).unwrap_err().to_string();
        assert!(error.contains("not an aekit run directory"), "{error}");
        assert!(tmp.path().join("precious.txt").exists());
    }

    #[test]
    fn force_with_a_config_toml_is_not_enough_to_delete_a_project_folder() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.toml"), "name = \"x\"").unwrap();
        std::fs::write(tmp.path().join("important.txt"), "data").unwrap();
        let error = RunDir::create(tmp.path(), true).unwrap_err().to_string();
        assert!(error.contains("not an aekit run directory"), "{error}");
        assert!(tmp.path().join("important.txt").exists());
    }

    #[test]
    fn force_on_a_run_with_the_users_files_refuses_and_keeps_them() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run");
        RunDir::create(&path, false).unwrap();
        std::fs::write(path.join("notes.md"), "mine").unwrap();
        let error = RunDir::create(&path, true).unwrap_err().to_string();
        assert!(
            error.contains("notes.md") && error.contains("did not write"),
            "{error}"
        );
        assert!(path.join("notes.md").exists());
        std::fs::remove_file(path.join("notes.md")).unwrap();
        std::fs::write(path.join("eval-test.json"), "{}").unwrap();
        RunDir::create(&path, true).unwrap();
    }

    #[test]
    fn partial_checkpoints_left_by_a_kill_are_cleaned() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(&tmp.path().join("r"), false).unwrap();
        let partial = run.checkpoints_dir().join(".epoch-0003.tmp-4242");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("model.bpk"), vec![0u8; 1000]).unwrap();
        std::fs::write(run.path().join("history.csv.tmp-77"), "half").unwrap();
        std::fs::create_dir_all(run.checkpoints_dir().join("epoch-0002")).unwrap();
        assert_eq!(run.clean_partial_writes().unwrap(), 2);
        assert!(!partial.exists() && !run.path().join("history.csv.tmp-77").exists());
        assert!(run.checkpoints_dir().join("epoch-0002").exists());
    }

    #[test]
    fn an_empty_weight_file_is_named_as_cut_short() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("model.bpk");
        std::fs::write(&path, "").unwrap();
        let error = check_not_empty(&path).unwrap_err().to_string();
        assert!(
            error.contains("model.bpk") && error.contains("0 bytes"),
            "{error}"
        );
    }

    #[test]
    fn history_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(&tmp.path().join("r"), false).unwrap();
        let rows = vec![HistoryRow {
            epoch: 1,
            train_loss: 0.25,
            valid_loss: 0.125,
            seconds: 1.5,
            samples_per_sec: 1000.0,
            terms: [("train_kl".to_string(), 0.5)].into(),
        }];
        run.write_history(&rows).unwrap();
        assert_eq!(run.read_history().unwrap(), rows);
    }
}
