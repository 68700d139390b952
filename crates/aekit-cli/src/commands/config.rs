//! `aekit config`: the reference of every config key, and a check of a config file without
//! training it.

use clap::Subcommand;
use std::path::PathBuf;

/// `aekit config ...`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the reference of every config key (Markdown, generated from the config types;
    /// docs/config-reference.md is this output).
    #[command(after_help = "Examples:\n  aekit config reference > docs/config-reference.md")]
    Reference,
    /// Read and validate a config (with --set overrides) and print it with every default
    /// filled in, without training.
    #[command(
        after_help = "Examples:\n  aekit config check configs/mnist-dense.toml\n  aekit config check configs/vae.toml --set train.epochs=abc"
    )]
    Check {
        /// The config file.
        config: PathBuf,
        /// Override a key: `--set train.epochs=20` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

/// Runs `aekit config ...`.
pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Reference => print!("{}", aekit::config_reference::markdown()),
        ConfigCommand::Check { config, overrides } => {
            let parsed = aekit::config::RunConfig::from_file(&config, &overrides)?;
            println!(
                "# {}: valid; it trains into {}\n{}",
                config.display(),
                parsed.run_dir().display(),
                parsed.to_toml()
            );
        }
    }
    Ok(())
}
