//! `aekit train`: a config into its run directory, or a run resumed.

use super::Compute;
use aekit::config::RunConfig;
use aekit::run_dir::RunDir;
use aekit::train::{self, TrainOptions};
use clap::Args;
use std::path::{Path, PathBuf};

/// `aekit train`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit train configs/quickstart.toml\n  aekit train configs/mnist-dense.toml --set data.path=/data/mnist --set train.epochs=5\n  aekit train configs/mnist-dense.toml --force          # replace runs/mnist-dense\n  aekit train configs/mnist-dense.toml --out experiments/seed-1   # the run directory to write\n  aekit train --resume runs/mnist-dense                 # continue from the last checkpoint\n  aekit train --resume runs/mnist-dense --set train.epochs=80"
)]
pub struct TrainArgs {
    /// The config file (TOML). Not needed with `--resume RUN_DIR`.
    config: Option<PathBuf>,
    /// Override a config value, e.g. `--set train.epochs=5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Replace the run directory if it exists.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Continue a run from its latest checkpoint: the run directory, or the config's.
    #[arg(long, value_name = "RUN_DIR", num_args = 0..=1, default_missing_value = "")]
    resume: Option<PathBuf>,
    /// The run directory to write (default: `runs_dir/name` from the config, `runs/<name>`).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Print nothing but errors and the final summary.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    compute: Compute,
}

/// The config of a resumed run, relocated to where the run directory is now (it may have
/// been moved since it was made).
pub fn resumed_config(run: &Path, set: &[String]) -> anyhow::Result<RunConfig> {
    let run_dir = RunDir::open(run)?;
    let mut config = RunConfig::from_file(&run_dir.config_path(), set)?;
    if config.run_dir() != run {
        config.runs_dir = run.parent().map(PathBuf::from).unwrap_or_default();
        config.name = run
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(config.name);
    }
    Ok(config)
}

/// Makes `out` the config's run directory (its parent the runs folder, its last part the
/// name).
fn place_run(config: &mut RunConfig, out: &Path) -> anyhow::Result<()> {
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        anyhow::bail!(
            "--out {}: give the run directory's path, e.g. runs/my-run",
            out.display()
        );
    };
    config.runs_dir = out.parent().map(PathBuf::from).unwrap_or_default();
    config.name = name;
    Ok(())
}

/// Ctrl-C once: stop after a checkpoint; twice: stop at once.
fn handle_interrupts() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        static ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if ONCE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            eprintln!("\nstopping now, without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\nstopping after saving a checkpoint (Ctrl-C again to quit at once)");
        train::request_stop();
    })?;
    Ok(())
}

/// Runs `aekit train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    args.compute.setup()?;
    let (mut config, resume) = match (&args.config, &args.resume) {
        (Some(path), resume) => (RunConfig::from_file(path, &args.set)?, resume.is_some()),
        (None, Some(run)) if !run.as_os_str().is_empty() => (resumed_config(run, &args.set)?, true),
        _ => anyhow::bail!("give a config file, or `--resume RUN_DIR` (see `aekit train --help`)"),
    };
    if let Some(out) = &args.out {
        place_run(&mut config, out)?;
    }
    handle_interrupts()?;
    let options = TrainOptions {
        force: args.force,
        resume,
        device: args.compute.device,
        quiet: args.quiet,
        ..Default::default()
    };
    let outcome = train::train(&config, &options)?;
    let s = &outcome.summary;
    println!(
        "{}: {} epochs, final train loss {:.5}, final validation loss {:.5} (best {:.5} at epoch {}), {:.0} samples/s",
        outcome.run.path().display(),
        s.epochs_completed,
        s.final_train_loss,
        s.final_valid_loss,
        s.best_valid_loss,
        s.best_epoch,
        s.mean_samples_per_sec
    );
    // A classifier (reconstruction weight 0) draws no reconstructions.
    let reconstructions = outcome.run.reconstructions_path();
    if reconstructions.is_file() {
        println!(
            "pictures: {} and {}",
            outcome.run.loss_plot_path().display(),
            reconstructions.display()
        );
    } else {
        println!("picture: {}", outcome.run.loss_plot_path().display());
    }
    Ok(())
}
