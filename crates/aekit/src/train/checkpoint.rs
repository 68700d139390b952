//! Checkpoints: the model, the optimizer state and the loop's position, written atomically
//! so that `--resume` continues a run exactly where its last checkpoint left it.
//!
//! A checkpoint is a folder `checkpoints/epoch-EEEE[-step-SSSSS]/` written under a temporary
//! name and renamed into place; `checkpoints/latest` (itself replaced atomically) names the
//! newest. A run killed at any moment therefore always has one complete checkpoint.

use crate::error::{Error, Result};
use crate::models::Autoencoder;
use crate::models::heads::Heads;
use crate::run_dir::{self, HistoryRow, RunDir};
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the training loop stands: everything besides weights that resuming needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoopState {
    /// Epochs fully finished.
    pub epochs_done: usize,
    /// Steps already done in the next epoch (non-zero only for a mid-epoch checkpoint).
    pub step_in_epoch: usize,
    /// Sum of batch losses times batch sizes so far in the unfinished epoch.
    pub partial_loss_sum: f64,
    /// Samples seen so far in the unfinished epoch.
    pub partial_samples: usize,
    /// Training seconds spent so far in the unfinished epoch.
    pub partial_seconds: f64,
    /// Sums of the loss's parts times batch sizes so far in the unfinished epoch.
    #[serde(default)]
    pub partial_terms: std::collections::BTreeMap<String, f64>,
    /// One row per finished epoch.
    pub history: Vec<HistoryRow>,
    /// The best validation loss so far.
    pub best_valid_loss: f64,
    /// The epoch that reached it.
    pub best_epoch: usize,
    /// Epochs since the validation loss last improved (for early stopping).
    pub epochs_without_improvement: usize,
    /// The loss of the run's first training step, the reference divergence is measured
    /// against.
    #[serde(default)]
    pub first_loss: Option<f64>,
}

impl LoopState {
    /// The state of a run that has not started.
    pub fn fresh() -> Self {
        Self {
            epochs_done: 0,
            step_in_epoch: 0,
            partial_loss_sum: 0.0,
            partial_samples: 0,
            partial_seconds: 0.0,
            partial_terms: Default::default(),
            history: Vec::new(),
            best_valid_loss: f64::INFINITY,
            best_epoch: 0,
            epochs_without_improvement: 0,
            first_loss: None,
        }
    }
}

fn folder_name(state: &LoopState) -> String {
    if state.step_in_epoch == 0 {
        format!("epoch-{:04}", state.epochs_done)
    } else {
        format!(
            "epoch-{:04}-step-{:06}",
            state.epochs_done, state.step_in_epoch
        )
    }
}

/// Writes a checkpoint and makes it the latest; keeps the newest `keep` epoch checkpoints.
pub fn save(
    run: &RunDir,
    model: &Autoencoder,
    heads: &Heads,
    optimizer: &ModuleOptimizer,
    state: &LoopState,
    keep: usize,
) -> Result<PathBuf> {
    let dir = run.checkpoints_dir();
    let name = folder_name(state);
    let final_path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    run_dir::save_weights(model, &tmp.join("model.bpk"))?;
    if !heads.is_empty() {
        run_dir::save_weights(heads, &tmp.join("heads.bpk"))?;
    }
    let optimizer_path = tmp.join("optimizer.bpk");
    optimizer
        .save(&optimizer_path)
        .map_err(|e| Error::data(&optimizer_path, e.to_string()))?;
    run_dir::write_json(&tmp.join("state.json"), state)?;
    if final_path.exists() {
        std::fs::remove_dir_all(&final_path).map_err(|e| Error::io(&final_path, e))?;
    }
    std::fs::rename(&tmp, &final_path).map_err(|e| Error::io(&final_path, e))?;
    run_dir::write_atomic(&dir.join("latest"), name.as_bytes())?;
    prune(run, &name, keep)?;
    Ok(final_path)
}

/// Removes all but the newest `keep` checkpoints (never the latest).
fn prune(run: &RunDir, latest: &str, keep: usize) -> Result<()> {
    let dir = run.checkpoints_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("epoch-"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for name in names.into_iter().take(excess).filter(|n| n != latest) {
        let path = dir.join(name);
        std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// The newest checkpoint's folder, if the run has one.
pub fn latest(run: &RunDir) -> Result<Option<PathBuf>> {
    let pointer = run.checkpoints_dir().join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer).map_err(|e| Error::io(&pointer, e))?;
    let path = run.checkpoints_dir().join(name.trim());
    if !path.join("state.json").is_file() {
        return Err(Error::run(
            &path,
            "the latest checkpoint is incomplete (state.json missing)",
        ));
    }
    Ok(Some(path))
}

/// Loads a checkpoint into a freshly built model and optimizer.
pub fn load(
    path: &std::path::Path,
    model: Autoencoder,
    heads: Heads,
    optimizer: ModuleOptimizer,
) -> Result<(Autoencoder, Heads, ModuleOptimizer, LoopState)> {
    let model = run_dir::load_weights(model, &path.join("model.bpk"))?;
    let heads = if heads.is_empty() {
        heads
    } else {
        run_dir::load_weights(heads, &path.join("heads.bpk"))?
    };
    let optimizer_path = path.join("optimizer.bpk");
    run_dir::check_not_empty(&optimizer_path)?;
    let optimizer = optimizer
        .load(&optimizer_path)
        .map_err(|e| Error::data(&optimizer_path, e.to_string()))?;
    let state = run_dir::read_json(&path.join("state.json"))?;
    Ok((model, heads, optimizer, state))
}

/// The loop state a checkpoint holds.
pub fn load_state(path: &std::path::Path) -> Result<LoopState> {
    run_dir::read_json(&path.join("state.json"))
}
