//! The quality benchmark behind `aekit bench quality`: trains the reference configs (one per
//! family), evaluates each on its validation split (the MNIST test split for the shipped
//! configs) and puts it beside PCA with as many components as the model's code has values.
//!
//! Runs are kept in a runs folder of their own and reused: a finished run of the same config
//! is evaluated again without training, an interrupted one is resumed, and a folder that
//! holds anything else is an error rather than something to overwrite.

use aekit::config::RunConfig;
use aekit::data;
use aekit::device::{self, DeviceChoice};
use aekit::error::{Error, Result};
use aekit::eval::{self, EvalReport};
use aekit::loss::ReconstructionMetrics;
use aekit::pca;
use aekit::run_dir::{RunDir, RunStatus};
use aekit::train::{self, TrainOptions};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One reference config of the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The config's file name under the configs folder.
    pub file: &'static str,
    /// Epochs to train when not the config's own (`None`: the config's).
    pub epochs: Option<usize>,
    /// Why the epochs differ from the config's, for the report.
    pub note: &'static str,
}

/// The reference configs, in the order of the table.
pub const REFERENCES: &[Reference] = &[
    Reference {
        file: "linear.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "mnist-dense.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "deep.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "hinton-deep.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "hinton-greedy.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "sparse-l1.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "sparse-kl.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "contractive.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "denoising.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "conv.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "conv-bottleneck.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "conv-denoising.toml",
        epochs: Some(5),
        note: "5 of the blog's 100 epochs (minutes an epoch on 2 CPU cores)",
    },
    Reference {
        file: "vae.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "vae-binarized-deep.toml",
        epochs: None,
        note: "",
    },
    Reference {
        file: "conv-vae.toml",
        epochs: Some(2),
        note: "2 of the config's 20 epochs (minutes an epoch on 2 CPU cores)",
    },
];

/// What to run.
#[derive(Debug, Clone)]
pub struct QualityOptions {
    /// The folder holding the reference configs (`configs/`).
    pub configs_dir: PathBuf,
    /// The folder the benchmark's runs go into.
    pub runs_dir: PathBuf,
    /// The data folder, in place of each config's `data.path`.
    pub data: Option<PathBuf>,
    /// `KEY=VALUE` overrides applied to every config (as `aekit train --set`).
    pub overrides: Vec<String>,
    /// Train at most this many epochs per config (a quick look; the table says so).
    pub max_epochs: Option<usize>,
    /// Only the configs with these names (file names without `.toml`); all when empty.
    pub only: Vec<String>,
    /// Where the tensors live.
    pub device: DeviceChoice,
    /// No training progress output.
    pub quiet: bool,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct QualityRow {
    /// The config's name.
    pub name: String,
    /// The family (`[model] kind`).
    pub family: String,
    /// Values in a sample's code.
    pub code: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Reconstruction on the evaluation split.
    pub metrics: ReconstructionMetrics,
    /// PCA with `code` components, fitted on the training split, on the same split; `None`
    /// when the code has at least as many values as a sample (PCA would be exact).
    pub pca: Option<ReconstructionMetrics>,
    /// A variational model (its code is a distribution; not held to the PCA bound).
    pub variational: bool,
    /// The family's own figure (sparsity, Jacobian norm, PSNR gain, ELBO).
    pub family_metric: String,
    /// Caveats on the figures (fewer epochs than the config's), marked in the table.
    pub note: String,
    /// Whether the run was trained now, resumed, or a finished run reused.
    pub provenance: String,
}

impl QualityRow {
    /// Whether the model reconstructs better than PCA at equal code size (squared error);
    /// `None` for an overcomplete code, where PCA is exact.
    pub fn beats_pca(&self) -> Option<bool> {
        self.pca
            .map(|pca| self.metrics.squared_error_per_sample < pca.squared_error_per_sample)
    }
}

/// Trains (or reuses) and evaluates every selected reference config, calling `on_row` as
/// each row is ready.
pub fn run(
    options: &QualityOptions,
    mut on_row: impl FnMut(&QualityRow),
) -> Result<Vec<QualityRow>> {
    let selected: Vec<&Reference> = REFERENCES
        .iter()
        .filter(|r| {
            options.only.is_empty() || options.only.iter().any(|n| r.file == format!("{n}.toml"))
        })
        .collect();
    if let Some(unknown) = options
        .only
        .iter()
        .find(|n| !REFERENCES.iter().any(|r| r.file == format!("{n}.toml")))
    {
        let names: Vec<&str> = REFERENCES
            .iter()
            .map(|r| r.file.trim_end_matches(".toml"))
            .collect();
        return Err(Error::config(
            "--only",
            format!(
                "`{unknown}` is not a reference config; choose from {}",
                names.join(", ")
            ),
        ));
    }
    let plain = device::plain_device(options.device)?;
    // PCA results by (the whole [data] table, code size): binarised data share a path with
    // grey data but not their test split.
    let mut pca_cache: BTreeMap<(String, usize), ReconstructionMetrics> = BTreeMap::new();
    let mut rows = Vec::with_capacity(selected.len());
    for reference in selected {
        let path = options.configs_dir.join(reference.file);
        let mut overrides = vec![format!("runs_dir={}", toml_string(&options.runs_dir))];
        if let Some(data) = &options.data {
            overrides.push(format!("data.path={}", toml_string(data)));
        }
        overrides.extend(options.overrides.iter().cloned());
        let mut config = RunConfig::from_file(&path, &overrides)?;
        let mut notes = vec![reference.note.to_string()];
        if let Some(epochs) = reference.epochs {
            config.train.epochs = epochs;
        }
        if let Some(cap) = options.max_epochs
            && cap < config.train.epochs
        {
            config.train.epochs = cap;
            notes.push(format!("capped at {cap} epochs (--max-epochs)"));
        }
        let (status, provenance) = train_or_reuse(&config, options.device, options.quiet)?;
        // The final weights: the shipped configs validate on the test split, so the best
        // epoch's weights would be chosen on the very samples the table reports.
        let eval_options = eval::EvalOptions {
            weights: aekit::run_dir::WeightsChoice::Final,
            device: options.device,
            ..Default::default()
        };
        let report = eval::evaluate_run(&config.run_dir(), &eval_options)?;
        let code = report.code.units;
        let sample_len = RunDir::open(&config.run_dir())?
            .load_meta()?
            .sample_shape
            .len();
        let data_key = format!("{:?}", config.data);
        let pca = match pca_cache.get(&(data_key.clone(), code)) {
            Some(metrics) => Some(*metrics),
            None if code >= sample_len => None,
            None => {
                let splits = data::load_splits(&config.data)?;
                let fitted = pca::fit(&splits.train, code, &plain)?;
                let metrics = fitted.metrics(&splits.valid, &plain);
                pca_cache.insert((data_key, code), metrics);
                Some(metrics)
            }
        };
        let row = QualityRow {
            name: config.name.clone(),
            family: family_label(&config),
            code,
            epochs: status.epochs_completed,
            metrics: report.metrics,
            pca,
            variational: config.model.kind_name() == "vae",
            family_metric: family_metric(&config, &report, status.final_valid_loss),
            note: notes
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            provenance,
        };
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// A path as a TOML string value for a `--set` override.
/// `path` as a TOML string literal, for `--set`-style overrides.
pub(crate) fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// Trains `config` into its run directory unless a finished run of it is there; resumes an
/// unfinished one. Returns the run's summary and a note on what was done.
/// Trains `config` into its run directory, or reuses a finished run of the same `[model]`
/// and `[data]` there (resuming an unfinished one); returns its summary and what was done.
pub(crate) fn train_or_reuse(
    config: &RunConfig,
    device: DeviceChoice,
    quiet: bool,
) -> Result<(aekit::run_dir::Summary, String)> {
    let run_path = config.run_dir();
    let mut resume = false;
    if run_path.exists() {
        let run = RunDir::open(&run_path)?;
        let saved = run.load_config()?;
        if saved.model != config.model || saved.data != config.data {
            return Err(Error::run(
                &run_path,
                "holds a run of a different [model] or [data] than the reference config; \
                 move it away or choose another --runs-dir (nothing was overwritten)",
            ));
        }
        let summary = run.read_summary().ok();
        let finished = summary.as_ref().is_some_and(|s| {
            (s.status == RunStatus::Completed && s.epochs_completed >= config.train.epochs)
                || s.status == RunStatus::StoppedEarly
        });
        if finished {
            let summary = summary.expect("checked above");
            return Ok((summary, "reused a finished run".into()));
        }
        resume = true;
    }
    let train_options = TrainOptions {
        force: false,
        resume,
        device,
        quiet,
        on_epoch_end: None,
    };
    let outcome = train::train(config, &train_options)?;
    let note = if resume {
        "resumed an unfinished run"
    } else {
        ""
    };
    Ok((outcome.summary, note.into()))
}

/// The family as the table shows it.
fn family_label(config: &RunConfig) -> String {
    use aekit::models::ModelConfig;
    match &config.model {
        ModelConfig::Vae(vae) if vae.conv.is_some() => "conv vae".into(),
        ModelConfig::Dense(dense)
            if dense.hidden.is_empty()
                && dense.activation == aekit::models::Activation::Linear
                && dense.code_activation == aekit::models::Activation::Linear =>
        {
            "linear".into()
        }
        model => {
            let kind = model.kind_name();
            if config.train.pretrain_epochs > 0 {
                format!("{kind} (greedy pre-training)")
            } else {
                kind.into()
            }
        }
    }
}

/// The figure each family is for.
fn family_metric(config: &RunConfig, report: &EvalReport, valid_loss: f64) -> String {
    use aekit::models::ModelConfig;
    if let Some(denoising) = &report.denoising {
        return format!(
            "PSNR {:.2} -> {:.2} dB ({:+.2})",
            denoising.noisy_psnr,
            denoising.denoised_psnr,
            denoising.denoised_psnr - denoising.noisy_psnr
        );
    }
    match &config.model {
        ModelConfig::Sparse(_) => format!(
            "mean code activation {:.4}, active {:.1}%",
            report.code.mean_activation,
            100.0 * report.code.active_fraction
        ),
        ModelConfig::Contractive(_) => match report.code.jacobian_norm {
            Some(norm) => format!("mean ‖J‖²_F {norm:.3}"),
            None => String::new(),
        },
        ModelConfig::Vae(_) => format!("-ELBO {valid_loss:.2} nats"),
        _ => String::new(),
    }
}

/// The table in Markdown, with a line on what "beats PCA" means.
pub fn table(rows: &[QualityRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| config | family | code | epochs | MSE/pixel | sq.err/image | BCE | PCA sq.err/image (same code) | beats PCA | family figure |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let beats = match (row.variational, row.pca) {
            (true, _) => "n/a (variational)".to_string(),
            (false, None) => "n/a (code >= input: PCA is exact)".into(),
            // A linear autoencoder can at best find PCA's subspace: how near it lands.
            (false, Some(pca)) if row.family == "linear" => format!(
                "PCA's subspace: {:+.1}%",
                100.0 * (row.metrics.squared_error_per_sample / pca.squared_error_per_sample - 1.0)
            ),
            (false, Some(_)) if row.beats_pca() == Some(true) => "yes".into(),
            (false, Some(_)) => "**no**".into(),
        };
        let pca = row.pca.map_or("0 (exact)".to_string(), |p| {
            format!("{:.3}", p.squared_error_per_sample)
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{} | {:.6} | {:.3} | {:.6} | {} | {} | {} |",
            row.name,
            row.family,
            row.code,
            row.epochs,
            if row.note.is_empty() {
                String::new()
            } else {
                "*".into()
            },
            row.metrics.mse,
            row.metrics.squared_error_per_sample,
            row.metrics.bce,
            pca,
            beats,
            row.family_metric
        );
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| !r.note.is_empty())
        .map(|r| format!("{}: {}", r.name, r.note))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\n\\* {}", notes.join(". "));
    }
    out
}
