//! The command groups of `aekit`, one file each; what they share: the compute options, the
//! run-and-weights options of every command that applies a trained model, and a spinner
//! for long steps.

pub mod anomaly;
pub mod bench;
pub mod classify;
pub mod codes;
pub mod compress;
pub mod config;
pub mod data;
pub mod denoise;
pub mod evaluate;
pub mod generate;
pub mod maps;
pub mod report;
pub mod search;
pub mod train;

use aekit::device::{self, DeviceChoice};
use aekit::run_dir::WeightsChoice;
use aekit::trained::TrainedModel;
use clap::Args;
use std::path::PathBuf;

/// Where and how to compute.
#[derive(Args, Clone, Debug)]
pub struct Compute {
    /// Where to compute: `cpu` (Burn's flex backend) or `gpu` (needs a vulkan/wgpu build).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// CPU threads for the kernels (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Compute {
    /// Starts the kernel threads: `--threads` of them, or one per core.
    pub fn setup(&self) -> anyhow::Result<()> {
        let threads = match self.threads {
            Some(threads) => threads,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        device::set_threads(threads)?;
        Ok(())
    }
}

/// How a CSV file given on the command line is read.
#[derive(Args, Clone, Debug)]
pub struct TableArgs {
    /// CSV: the column (by header name) holding labels, not counted as a feature.
    #[arg(long)]
    pub label_column: Option<String>,
    /// CSV: the first row is data, not column names.
    #[arg(long)]
    pub no_header: bool,
}

impl TableArgs {
    /// The library's table options.
    pub fn options(&self) -> aekit::data::table::TableOptions {
        aekit::data::table::TableOptions {
            label_column: self.label_column.clone(),
            has_header: !self.no_header,
        }
    }
}

/// The trained run a command applies, and which of its weights.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// The run directory (e.g. runs/mnist-dense).
    pub run: PathBuf,
    /// Which weights: `best` (the lowest validation loss, the default) or `final`.
    #[arg(long, default_value = "best")]
    pub weights: WeightsChoice,
    #[command(flatten)]
    pub compute: Compute,
}

impl RunArgs {
    /// Opens the run.
    pub fn open(&self) -> anyhow::Result<TrainedModel> {
        self.compute.setup()?;
        Ok(TrainedModel::open(
            &self.run,
            self.compute.device,
            self.weights,
        )?)
    }

    /// The device choice.
    pub fn device(&self) -> DeviceChoice {
        self.compute.device
    }
}

/// A spinner on stderr for a step that takes a while (hidden when stderr is not a terminal).
pub fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
