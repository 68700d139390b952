//! `aekit data`: fetch a standard data set, or say what a path holds.

use clap::Subcommand;
use std::path::PathBuf;

/// `aekit data ...`.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Download a standard data set and verify its checksums.
    #[command(
        after_help = "Examples:\n  aekit data fetch mnist --dir data/mnist\n  aekit data fetch fashion-mnist --dir data/fashion-mnist"
    )]
    Fetch {
        /// `mnist` or `fashion-mnist`.
        name: String,
        /// The folder to download into.
        #[arg(long)]
        dir: PathBuf,
        /// Download from this address instead of the official mirror.
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Say what a path holds: kind, splits, counts, shape, value range, labels.
    #[command(
        after_help = "Examples:\n  aekit data info ../shared/data/mnist\n  aekit data info shapes\n  aekit data info my-images/"
    )]
    Info {
        /// A data folder or file, or `shapes` for the built-in data set.
        path: PathBuf,
        /// Fail on non-image files in image folders instead of skipping them.
        #[arg(long)]
        strict: bool,
    },
}

/// Runs `aekit data ...`.
pub fn run(command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Fetch {
            name,
            dir,
            base_url,
        } => {
            for file in aekit::data::fetch::fetch(&name, &dir, base_url.as_deref())? {
                println!("{}", file.display());
            }
        }
        DataCommand::Info { path, strict } => {
            println!("{}", aekit::data::info::describe(&path, strict)?);
        }
    }
    Ok(())
}
