//! `aekit`: the command-line tool over the aekit library. It parses arguments, calls the
//! library and prints results; all logic lives in the library.

use aekit::config::RunConfig;
use aekit::device::{self, DeviceChoice};
use aekit::train::{self, TrainOptions};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "aekit",
    version,
    about = "Build, train, evaluate and apply autoencoders",
    after_help = "Examples:\n  aekit train configs/quickstart.toml\n  aekit train configs/mnist-dense.toml --set train.epochs=5\n  aekit eval runs/quickstart\n  aekit reconstruct runs/quickstart --input shapes --out recon.png\n  aekit data info ../shared/data/mnist"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Compute {
    /// Where to compute: `cpu` (Burn's flex backend) or `gpu` (needs a vulkan/wgpu build).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// CPU threads for the kernels (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a config into its run directory (runs/<name>/).
    #[command(
        after_help = "Examples:\n  aekit train configs/quickstart.toml\n  aekit train configs/mnist-dense.toml --set data.path=/data/mnist --set train.epochs=5\n  aekit train configs/mnist-dense.toml --force          # replace runs/mnist-dense\n  aekit train --resume runs/mnist-dense                 # continue from the last checkpoint\n  aekit train --resume runs/mnist-dense --set train.epochs=80"
    )]
    Train {
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
        /// Print nothing but errors and the final summary.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        compute: Compute,
    },
    /// Evaluate a trained run: loss, MSE, BCE and PSNR (written to RUN_DIR/eval.json).
    #[command(
        after_help = "Examples:\n  aekit eval runs/mnist-dense                       # its validation split\n  aekit eval runs/mnist-dense --data ../shared/data/mnist   # that data's test split"
    )]
    Eval {
        /// The run directory.
        run: PathBuf,
        /// Evaluate on these samples (a data folder or file; its test split if it has one)
        /// instead of the run's validation split.
        #[arg(long)]
        data: Option<PathBuf>,
        /// For VAEs: also estimate -log p(x) by importance sampling with this many samples.
        #[arg(long, value_name = "K")]
        iw_samples: Option<usize>,
        /// Data samples the importance-weighted estimate uses (it costs K decoder passes each).
        #[arg(long, default_value_t = 10000, requires = "iw_samples")]
        iw_limit: usize,
        #[command(flatten)]
        compute: Compute,
    },
    /// Write originals above their reconstructions into a PNG.
    #[command(
        after_help = "Examples:\n  aekit reconstruct runs/mnist-dense --input ../shared/data/mnist --out recon.png\n  aekit reconstruct runs/quickstart --input shapes --out recon.png\n  aekit reconstruct runs/mnist-dense --input digit.png --out digit-recon.png"
    )]
    Reconstruct {
        /// The run directory.
        run: PathBuf,
        /// An image, a folder of images, or a data set (`shapes` for the built-in one).
        #[arg(long)]
        input: PathBuf,
        /// The PNG file to write.
        #[arg(long)]
        out: PathBuf,
        /// How many samples to draw.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Overwrite `--out` if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        compute: Compute,
    },
    /// The PCA baseline: fit on a data set's training split, report reconstruction on its
    /// test split (or the training split when it has none).
    #[command(
        after_help = "Examples:\n  aekit pca ../shared/data/mnist --components 30\n  aekit pca shapes --components 16"
    )]
    Pca {
        /// A data folder or file, or `shapes`.
        data: PathBuf,
        /// Number of principal components (the code size to compare with).
        #[arg(long, default_value_t = 32)]
        components: usize,
        #[command(flatten)]
        compute: Compute,
    },
    /// Fetch or describe data sets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Benchmarks: the reference configs' quality beside PCA, and training/inference speed
    /// (`bench/speed.py` runs the whole speed suite against PyTorch).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Train the reference config of every family (or reuse its finished run), evaluate it on
    /// the test split and print one table beside PCA at the same code size.
    #[command(
        after_help = "Runs go into --runs-dir and are reused: a finished run is only evaluated, an \
                      unfinished one is resumed.\n\nExamples:\n  aekit bench quality --out bench/results/quality.md\n  \
                      aekit bench quality --only deep,sparse-l1 --max-epochs 2\n  \
                      aekit bench quality --data /data/mnist"
    )]
    Quality(QualityArgs),
    /// Training and inference samples/s and peak memory of a config's model.
    #[command(
        after_help = "Examples:\n  aekit bench speed --config configs/mnist-dense.toml --threads 1\n  aekit bench speed --config configs/conv.toml --steps 50 --json conv.json\n  aekit bench speed --config configs/vae.toml --export-check /tmp/vae-check   # for bench/pytorch/speed.py --check\n  aekit bench speed --config configs/mnist-dense.toml --epochs-memory 10      # peak memory per epoch"
    )]
    Speed(SpeedArgs),
}

#[derive(Args)]
struct QualityArgs {
    /// The folder holding the reference configs.
    #[arg(long, default_value = "configs")]
    configs: PathBuf,
    /// The folder the benchmark's runs go into.
    #[arg(long, default_value = "runs/quality")]
    runs_dir: PathBuf,
    /// The MNIST folder, in place of the configs' `data.path`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Train at most this many epochs per config (a quick look).
    #[arg(long)]
    max_epochs: Option<usize>,
    /// Override a key of every config, e.g. `--set data.limit=2000` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Only these configs (names without .toml, comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the report (command, machine, date, table) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No training progress output.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    compute: Compute,
}

#[derive(Args)]
struct SpeedArgs {
    /// The config file (TOML) whose model is measured.
    #[arg(long)]
    config: PathBuf,
    /// Override a config value, e.g. `--set data.limit=10000` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Timed training steps.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Untimed steps before the timed ones (training and inference).
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Timed inference batches (default: as many as `--steps`).
    #[arg(long)]
    infer_steps: Option<usize>,
    /// Seed of the initialisation and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// Instead of timing: write the initial weights, one batch and aekit's loss on them into
    /// this folder, for `bench/pytorch/speed.py --check`.
    #[arg(long, value_name = "DIR", conflicts_with = "epochs_memory")]
    export_check: Option<PathBuf>,
    /// Instead of timing: train this many epochs with the real training loop and report the
    /// peak resident memory of every epoch.
    #[arg(long, value_name = "EPOCHS")]
    epochs_memory: Option<usize>,
    #[command(flatten)]
    compute: Compute,
}

#[derive(Subcommand)]
enum DataCommand {
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

fn main() -> ExitCode {
    device::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if matches!(
                error.downcast_ref::<aekit::Error>(),
                Some(aekit::Error::Interrupted(_))
            ) {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn setup(compute: &Compute) -> anyhow::Result<()> {
    if let Some(threads) = compute.threads {
        device::set_threads(threads)?;
    }
    Ok(())
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Train {
            config,
            set,
            force,
            resume,
            quiet,
            compute,
        } => {
            setup(&compute)?;
            let (config, resume) = match (config, resume) {
                (Some(path), resume) => (RunConfig::from_file(&path, &set)?, resume),
                (None, Some(run)) if !run.as_os_str().is_empty() => {
                    let run_dir = aekit::run_dir::RunDir::open(&run)?;
                    let mut config = RunConfig::from_file(&run_dir.config_path(), &set)?;
                    // The run may have been moved: resume where it is now.
                    if config.run_dir() != run {
                        config.runs_dir = run.parent().map(PathBuf::from).unwrap_or_default();
                        config.name = run
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or(config.name);
                    }
                    (config, Some(run))
                }
                _ => anyhow::bail!(
                    "give a config file, or `--resume RUN_DIR` (see `aekit train --help`)"
                ),
            };
            ctrlc::set_handler(|| {
                static ONCE: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if ONCE.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    eprintln!("\nstopping now, without a checkpoint");
                    std::process::exit(130);
                }
                eprintln!("\nstopping after saving a checkpoint (Ctrl-C again to quit at once)");
                train::request_stop();
            })?;
            let options = TrainOptions {
                force,
                resume: resume.is_some(),
                device: compute.device,
                quiet,
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
            println!(
                "pictures: {} and {}",
                outcome.run.loss_plot_path().display(),
                outcome.run.reconstructions_path().display()
            );
        }
        Command::Eval {
            run,
            data,
            iw_samples,
            iw_limit,
            compute,
        } => {
            setup(&compute)?;
            let iw = iw_samples.map(|k| (k, iw_limit));
            let report = aekit::eval::evaluate_run(&run, data.as_deref(), iw, compute.device)?;
            println!("{report}");
        }
        Command::Reconstruct {
            run,
            input,
            out,
            count,
            force,
            compute,
        } => {
            setup(&compute)?;
            let drawn =
                aekit::reconstruct::reconstruct(&run, &input, &out, count, force, compute.device)?;
            println!(
                "wrote {} ({drawn} originals above their reconstructions)",
                out.display()
            );
        }
        Command::Pca {
            data,
            components,
            compute,
        } => {
            setup(&compute)?;
            let device = aekit::device::plain_device(compute.device)?;
            let (train, test) = aekit::data::config::load_dataset_path(&data, false)?;
            let pca = aekit::pca::fit(&train, components, &device)?;
            let split = if test.is_some() { "test" } else { "training" };
            let m = pca.metrics(test.as_ref().unwrap_or(&train), &device);
            println!(
                "PCA with {components} components, fitted on {} training samples, on the {split} split ({} samples):",
                train.len(),
                m.samples
            );
            println!(
                "MSE:      {:.6} per value, {:.4} per sample",
                m.mse, m.squared_error_per_sample
            );
            println!(
                "BCE:      {:.6} per value (reconstructions clipped into (0, 1))",
                m.bce
            );
            println!("PSNR:     {:.2} dB", m.psnr);
        }
        Command::Bench { command } => match command {
            BenchCommand::Quality(args) => bench_quality(args)?,
            BenchCommand::Speed(args) => bench_speed(args)?,
        },
        Command::Data { command } => match command {
            DataCommand::Fetch {
                name,
                dir,
                base_url,
            } => {
                let files = aekit::data::fetch::fetch(&name, &dir, base_url.as_deref())?;
                for file in files {
                    println!("{}", file.display());
                }
            }
            DataCommand::Info { path, strict } => {
                println!("{}", aekit::data::info::describe(&path, strict)?);
            }
        },
    }
    Ok(())
}

/// The CPU model and core count, for benchmark reports.
fn machine_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today_utc() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn bench_quality(args: QualityArgs) -> anyhow::Result<()> {
    let QualityArgs {
        configs,
        runs_dir,
        data,
        max_epochs,
        set,
        only,
        out,
        quiet,
        compute,
    } = args;
    setup(&compute)?;
    if let Some(out) = &out
        && out.exists()
    {
        anyhow::bail!(
            "{}: the report file exists already; choose another --out or remove it",
            out.display()
        );
    }
    let options = aekit::quality::QualityOptions {
        configs_dir: configs,
        runs_dir,
        data,
        overrides: set,
        max_epochs,
        only,
        device: compute.device,
        quiet,
    };
    let rows = aekit::quality::run(&options, |row| {
        eprintln!(
            "{} ({}): code {}, {} epochs, test sq.err/image {:.3} (PCA {}), BCE {:.6}",
            row.name,
            row.provenance,
            row.code,
            row.epochs,
            row.metrics.squared_error_per_sample,
            row.pca.map_or("exact".into(), |p| format!(
                "{:.3}",
                p.squared_error_per_sample
            )),
            row.metrics.bce
        )
    })?;
    let table = aekit::quality::table(&rows);
    println!("{table}");
    if let Some(out) = out {
        let command: Vec<String> = std::env::args().collect();
        let report = format!(
            "aekit quality benchmark\ncommand: {}\nmachine: {}\ndate: {} (UTC)\n\n{table}",
            command.join(" "),
            machine_description(),
            today_utc()
        );
        std::fs::write(&out, report)
            .map_err(|e| anyhow::anyhow!("{}: cannot write the report: {e}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn bench_speed(args: SpeedArgs) -> anyhow::Result<()> {
    setup(&args.compute)?;
    let config = RunConfig::from_file(&args.config, &args.set)?;
    if let Some(dir) = &args.export_check {
        if args.compute.device != DeviceChoice::Cpu {
            anyhow::bail!(
                "--export-check computes the reference loss on the CPU: drop --device gpu"
            );
        }
        let manifest = aekit::speed::export_check(&config, args.batch, args.seed, dir)?;
        println!(
            "{}: wrote {} parameters, a batch of {} and aekit's loss {:.7} to {}",
            config.name,
            manifest.parameters.len(),
            args.batch,
            manifest.loss,
            dir.display()
        );
        if let Some(path) = &args.json {
            aekit::run_dir::write_json(path, &manifest)?;
        }
        return Ok(());
    }
    if let Some(epochs) = args.epochs_memory {
        let report = aekit::speed::epoch_memory(&config, epochs, args.compute.device)?;
        println!(
            "{}: peak resident memory per epoch (MiB, batch {}){}:",
            report.name,
            report.batch_size,
            if report.per_epoch_peaks {
                ""
            } else {
                " (cumulative: the peak could not be reset)"
            }
        );
        for row in &report.rows {
            println!(
                "epoch {:3}  peak {:8.1}  at end {:8.1}  train loss {:.5}  {:.0} samples/s",
                row.epoch, row.peak_mib, row.end_mib, row.train_loss, row.samples_per_sec
            );
        }
        if let Some(growth) = report.growth_mib {
            println!(
                "growth of the last epoch's peak over the smallest later peak: {growth:+.1} MiB"
            );
        }
        if let Some(path) = &args.json {
            aekit::run_dir::write_json(path, &report)?;
        }
        return Ok(());
    }
    let options = aekit::speed::SpeedOptions {
        steps: args.steps.max(1),
        warmup: args.warmup,
        batch_size: args.batch,
        infer_steps: args.infer_steps.unwrap_or(args.steps).max(1),
        seed: args.seed,
        device: args.compute.device,
    };
    let report = aekit::speed::run(&config, &options)?;
    if let Some(note) = &report.data.note {
        eprintln!("note: random data: {note}");
    }
    let compute = if report.device == "cpu" {
        format!("{} threads", report.threads)
    } else {
        report.device.clone()
    };
    println!(
        "{} ({} model, {} parameters, {compute}, batch {}): train {:.0} samples/s, inference {:.0} samples/s, peak memory {}",
        report.name,
        report.kind,
        report.parameters,
        report.batch_size,
        report.train_samples_per_s,
        report.infer_samples_per_s,
        report
            .peak_rss_mib
            .map_or("unknown".to_string(), |m| format!("{m:.1} MiB"))
    );
    if let Some(path) = &args.json {
        aekit::run_dir::write_json(path, &report)?;
    }
    Ok(())
}
