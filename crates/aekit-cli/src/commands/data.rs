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
    /// Write a generated table with known structure (a few latent factors mixed into many
    /// features, columns on scales from 1 to 10^4, a label column) as CSV.
    #[command(
        after_help = "Examples:\n  aekit data make-table --out data/table.csv                       # 2000 rows, 30 features, 5 factors\n  aekit data make-table --out t.csv --rows 500 --features 8 --factors 2 --same-scale"
    )]
    MakeTable {
        /// The CSV file to write.
        #[arg(long)]
        out: PathBuf,
        /// Rows.
        #[arg(long, default_value_t = 2000)]
        rows: usize,
        /// Feature columns.
        #[arg(long, default_value_t = 30)]
        features: usize,
        /// Latent factors (the table's rank before noise).
        #[arg(long, default_value_t = 5)]
        factors: usize,
        /// Keep every column on the same scale.
        #[arg(long)]
        same_scale: bool,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Add this many anomalous rows (half far out along the table's structure, half off
        /// it); the label column then says which rows are anomalous (1).
        #[arg(long, default_value_t = 0)]
        anomalies: usize,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write the built-in shapes as an image folder (one sub-folder per class), to try the
    /// image-folder workflow on.
    #[command(
        after_help = "Examples:\n  aekit data make-images --out data/shapes-images            # 1200 28x28 PNGs\n  aekit data make-images --out imgs --count 200 --size 32"
    )]
    MakeImages {
        /// The folder to write into (made if missing; files in it are never replaced).
        #[arg(long)]
        out: PathBuf,
        /// Images.
        #[arg(long, default_value_t = 1200)]
        count: usize,
        /// Side of the square images in pixels.
        #[arg(long, default_value_t = 28)]
        size: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Say what a path holds: kind, splits, counts, shape, value range, labels.
    #[command(
        after_help = "Examples:\n  aekit data info ../shared/data/mnist\n  aekit data info shapes\n  aekit data info my-images/\n  aekit data info table.csv --label-column label"
    )]
    Info {
        /// A data folder or file, or `shapes` for the built-in data set.
        path: PathBuf,
        /// Fail on non-image files in image folders instead of skipping them.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        table: super::TableArgs,
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
        DataCommand::MakeTable {
            out,
            rows,
            features,
            factors,
            same_scale,
            seed,
            anomalies,
            force,
        } => {
            aekit::apps::check_extension(&out, &["csv"])?;
            aekit::apps::check_output(&out, force)?;
            if rows == 0 || features == 0 || factors == 0 {
                anyhow::bail!("--rows, --features and --factors must be at least 1");
            }
            let spec = aekit::data::generated::TableSpec {
                rows,
                features,
                factors,
                mixed_scales: !same_scale,
                seed,
                anomalies,
                ..Default::default()
            };
            let text = aekit::data::generated::correlated_table(&spec);
            aekit::run_dir::write_atomic(&out, text.as_bytes())?;
            let labels = if anomalies > 0 {
                format!("{anomalies} anomalous rows among them, label 1")
            } else {
                "a label column".to_string()
            };
            println!(
                "wrote {} ({} rows, {features} features from {factors} factors, {labels})",
                out.display(),
                rows + anomalies
            );
        }
        DataCommand::MakeImages {
            out,
            count,
            size,
            seed,
        } => {
            if count == 0 || size < 4 {
                anyhow::bail!("--count must be at least 1 and --size at least 4");
            }
            let written = aekit::data::generated::shapes_folder(&out, count, size, seed)?;
            println!(
                "wrote {} grey {size}x{size} PNGs into {} (one sub-folder per class)",
                written.len(),
                out.display()
            );
        }
        DataCommand::Info {
            path,
            strict,
            table,
        } => {
            println!(
                "{}",
                aekit::data::info::describe(&path, strict, &table.options())?
            );
        }
    }
    Ok(())
}
