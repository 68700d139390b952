//! `aekit report`: one self-contained HTML page about a run.

use super::RunArgs;
use aekit::apps::{self, report};
use clap::Args;
use std::path::PathBuf;

/// `aekit report`.
#[derive(Args)]
#[command(
    after_help = "The page embeds its pictures and loads nothing from the network.\n\nExamples:\n  aekit report runs/mnist-dense --out report.html\n  aekit report runs/vae-2d --out vae-2d.html --map-samples 5000"
)]
pub struct ReportArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Validation samples in the latent map.
    #[arg(long, default_value_t = 2000)]
    map_samples: usize,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The HTML file to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["html", "htm"])?;
    apps::check_output(&args.out, args.force)?;
    let model = args.run.open()?;
    let scratch = tempfile::tempdir()?;
    let options = report::ReportOptions {
        map_samples: args.map_samples,
        seed: args.seed,
    };
    let bar = super::spinner("drawing the report's pictures");
    let page = report::build(&model, &options, scratch.path())?;
    bar.finish_and_clear();
    aekit::run_dir::write_atomic(&args.out, page.as_bytes())?;
    println!("wrote {} ({} KiB)", args.out.display(), page.len() / 1024);
    Ok(())
}
