//! The run configuration: one TOML file with a `[data]`, a `[model]` and a `[train]` table,
//! plus `--set key=value` overrides from the command line.
//!
//! Unknown keys and wrong types are errors that name the key and its line, because a typo in
//! a config silently falling back to a default is the worst kind of bug in an experiment.

use crate::data::DataConfig;
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything a training run needs, as read from a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The run's name: its directory is `<runs_dir>/<name>`.
    pub name: String,
    /// The folder holding run directories.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
    /// Where the samples come from and how they are split.
    pub data: DataConfig,
    /// The autoencoder to build.
    pub model: ModelConfig,
    /// How to train it.
    #[serde(default)]
    pub train: TrainConfig,
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

impl RunConfig {
    /// Reads a config file and applies `overrides` (`key.path=value`, value in TOML syntax or
    /// a bare string).
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses config text; `source_name` is used in error messages.
    pub fn parse(text: &str, source_name: &str, overrides: &[String]) -> Result<RunConfig> {
        // Deserialising straight from the text first gives errors with line numbers.
        let config: RunConfig =
            toml::from_str(text).map_err(|e| Error::config(source_name, describe(&e, text)))?;
        if overrides.is_empty() {
            config.validate(source_name)?;
            return Ok(config);
        }
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::config(source_name, describe(&e, text)))?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let config: RunConfig = match table.try_into() {
            Ok(config) => config,
            Err(error) => return Err(blame_override(text, source_name, overrides, &error)),
        };
        config.validate(source_name)?;
        Ok(config)
    }

    /// Checks settings that types alone cannot (ranges, consistency).
    pub fn validate(&self, source_name: &str) -> Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) || self.name == ".." {
            return Err(Error::config(
                source_name,
                format!("`name` must be a plain folder name, not `{}`", self.name),
            ));
        }
        self.model
            .validate()
            .and_then(|_| self.train.validate())
            .and_then(|_| self.data.validate())
            .map_err(|message| Error::config(source_name, message))?;
        if self.train.pretrain_epochs > 0 && !self.model.is_dense_stack() {
            return Err(Error::config(
                source_name,
                format!(
                    "train.pretrain_epochs: greedy layer-wise pre-training is for the dense \
                     families (kind = \"dense\", \"sparse\", \"contractive\", \"denoising\"), \
                     not kind = \"{}\"; set train.pretrain_epochs = 0",
                    self.model.kind_name()
                ),
            ));
        }
        if self.train.freeze_encoder
            && (self.model.heads().is_empty() || self.model.reconstruction_weight() != 0.0)
        {
            return Err(Error::config(
                source_name,
                "train.freeze_encoder trains the heads alone: it needs [[model.heads]] and \
                 model.reconstruction_weight = 0",
            ));
        }
        if self.train.labelled_per_batch > 0 && self.model.heads().is_empty() {
            return Err(Error::config(
                source_name,
                "train.labelled_per_batch adds samples with a head's target to every batch; it \
                 needs [[model.heads]]",
            ));
        }
        // A codec's loss is its own rate-distortion objective, and segmentation's the
        // per-pixel cross-entropy; `train.loss` does not apply to them.
        let segmentation = self
            .data
            .pair_source()
            .map_err(|message| Error::config(source_name, message))?
            .is_some_and(|source| source.is_segmentation());
        if matches!(self.model, crate::models::ModelConfig::Codec(_)) || segmentation {
            return Ok(());
        }
        self.train
            .loss
            .check_output(self.model.output_activation())
            .map_err(|message| Error::config(source_name, message))
    }

    /// The run directory this config trains into.
    pub fn run_dir(&self) -> PathBuf {
        self.runs_dir.join(&self.name)
    }

    /// The config as TOML text (what the run directory keeps as `config.toml`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a RunConfig always serialises to TOML")
    }
}

/// One line saying what is wrong and where: `line N: message`.
fn describe(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim().to_string();
    let Some(span) = error.span() else {
        return message;
    };
    // For unknown keys inside a table the span can cover the whole table: look for the key.
    let mut offset = span.start;
    if let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        let region = &text[span.start..span.end.min(text.len())];
        if let Some(found) = region
            .lines()
            .scan(0, |pos, line| {
                let here = *pos;
                *pos += line.len() + 1;
                Some((here, line))
            })
            .find(|(_, line)| {
                line.trim_start().starts_with(key)
                    && line.trim_start()[key.len()..].trim_start().starts_with('=')
            })
        {
            offset = span.start + found.0;
        }
    }
    let offset = offset.min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    // Name the key written on that line, when there is one (`key = value`).
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    match line_text.split_once('=') {
        Some((key, _)) if !message.contains(&format!("`{}`", key.trim())) => {
            format!("line {line}, key `{}`: {message}", key.trim())
        }
        _ => format!("line {line}: {message}"),
    }
}

/// The error of a config that only fails with its overrides, naming the first override
/// (and so the key) that makes it fail.
fn blame_override(
    text: &str,
    source_name: &str,
    overrides: &[String],
    error: &toml::de::Error,
) -> Error {
    let message = error.message().trim().to_string();
    for (i, assignment) in overrides.iter().enumerate() {
        let Ok(mut table) = toml::from_str::<toml::Table>(text) else {
            break;
        };
        if overrides[..=i]
            .iter()
            .any(|a| apply_override(&mut table, a).is_err())
        {
            break;
        }
        if let Err(e) = table.try_into::<RunConfig>() {
            let key = assignment.split_once('=').map_or("", |(k, _)| k.trim());
            return Error::config(
                format!("--set {assignment}"),
                format!("key `{key}`: {} (in {source_name})", e.message().trim()),
            );
        }
    }
    Error::config(
        format!("{source_name} with --set {}", overrides.join(" --set ")),
        message,
    )
}

/// Applies one `a.b.c=value` assignment to a parsed config table.
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let source = format!("--set {assignment}");
    let (key, raw_value) = assignment
        .split_once('=')
        .ok_or_else(|| Error::config(&source, "expected `key=value`, e.g. `train.epochs=5`"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::config(&source, "the key is empty"));
    }
    // A value is read as TOML (numbers, booleans, arrays, quoted strings); anything that is
    // not valid TOML is taken as a bare string, so `data.path=../x` works unquoted.
    let value = toml::from_str::<toml::Table>(&format!("v = {raw_value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw_value.trim().to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut current = table;
    for part in &parts[..parts.len() - 1] {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| Error::config(&source, format!("`{part}` is a value, not a table")))?;
    }
    current.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[data]
kind = "shapes"
[model]
kind = "dense"
code = 8
[train]
epochs = 1
"#;

    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = RunConfig::parse(MINIMAL, "t.toml", &[]).unwrap();
        assert_eq!(config.train.epochs, 1);
        assert_eq!(config.run_dir(), PathBuf::from("runs/t"));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = MINIMAL.replace("epochs = 1", "epochs = 1\nlearning_rat = 0.1");
        let error = RunConfig::parse(&text, "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("t.toml"), "{error}");
        assert!(error.contains("learning_rat"), "{error}");
        assert!(error.contains("line 10"), "{error}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let text = MINIMAL.replace("epochs = 1", "epochs = \"many\"");
        let error = RunConfig::parse(&text, "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 9, key `epochs`"), "{error}");
        assert!(error.contains("invalid type"), "{error}");
    }

    #[test]
    fn overrides_apply_and_bad_ones_are_named() {
        let config = RunConfig::parse(
            MINIMAL,
            "t.toml",
            &["train.epochs=3".into(), "data.path=../x/y".into()],
        )
        .unwrap();
        assert_eq!(config.train.epochs, 3);
        assert_eq!(config.data.path, Some(PathBuf::from("../x/y")));
        let error = RunConfig::parse(MINIMAL, "t.toml", &["train.epochs=lots".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--set train.epochs=lots"), "{error}");
        // Among several overrides, the one at fault is named with its key.
        let error = RunConfig::parse(
            MINIMAL,
            "t.toml",
            &["train.batch_size=8".into(), "train.epochs=abc".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("--set train.epochs=abc: key `train.epochs`"),
            "{error}"
        );
        let error = RunConfig::parse(MINIMAL, "t.toml", &["train.epochs".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("key=value"), "{error}");
    }

    #[test]
    fn round_trips_through_toml() {
        let config = RunConfig::parse(MINIMAL, "t.toml", &[]).unwrap();
        let again = RunConfig::parse(&config.to_toml(), "again", &[]).unwrap();
        assert_eq!(config, again);
    }
}
