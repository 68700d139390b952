//! `aekit bench`: the reference configs' quality beside PCA, and a config's training and
//! inference speed (the logic is in the `aekit-bench` crate).

use super::Compute;
use aekit::config::RunConfig;
use aekit::device::DeviceChoice;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Train the reference config of every family (or reuse its finished run), evaluate it on
    /// the test split and print one table beside PCA at the same code size.
    #[command(
        after_help = "Runs go into --runs-dir and are reused: a finished run is only evaluated, an \
                      unfinished one is resumed.\n\nExamples:\n  aekit bench quality --out bench/results/quality.md\n  \
                      aekit bench quality --only deep,sparse-l1 --max-epochs 2\n  \
                      aekit bench quality --data /data/mnist"
    )]
    Quality(QualityArgs),
    /// The one-class anomaly benchmark on MNIST: train on one digit, score the whole test
    /// split, AUROC per digit and mean for each family's config and score kind, beside PCA
    /// reconstruction error and k-nearest-neighbour distance on raw pixels.
    #[command(
        after_help = "Runs go into --runs-dir and are reused like bench quality's.\n\nExamples:\n  aekit bench anomaly --out bench/results/anomaly.md\n  aekit bench anomaly --families conv,pca,knn --classes 0-4\n  aekit bench anomaly --families dense --classes 3 --max-epochs 2"
    )]
    Anomaly(AnomalyArgs),
    /// Similar-image search on MNIST (training split the base, test images the queries):
    /// precision@k of each model's codes beside raw pixels and PCA at the same size, and the
    /// HNSW index's recall@k and speed against exact search.
    #[command(
        after_help = "Runs go into --runs-dir and are reused like bench quality's.\n\nExamples:\n  aekit bench search --out bench/results/search.md\n  aekit bench search --configs mnist-dense --queries 1000"
    )]
    Search(SearchArgs),
    /// Learned compression on MNIST test images: bits per pixel, PSNR and SSIM of trained
    /// codecs beside PNG, JPEG and WebP, sizes from the real files with and without headers,
    /// and a rate-distortion plot.
    #[command(
        after_help = "Examples:\n  aekit bench codec --runs runs/codec,runs/codec-l0.03 --data ../shared/data/mnist --out report.md --plot rd.png"
    )]
    Codec(CodecArgs),
    /// Training and inference samples/s and peak memory of a config's model.
    #[command(
        after_help = "Examples:\n  aekit bench speed --config configs/mnist-dense.toml --threads 1\n  aekit bench speed --config configs/conv.toml --steps 50 --json conv.json\n  aekit bench speed --config configs/vae.toml --export-check /tmp/vae-check   # for bench/pytorch/speed.py --check\n  aekit bench speed --config configs/mnist-dense.toml --epochs-memory 10      # peak memory per epoch"
    )]
    Speed(SpeedArgs),
}

#[derive(Args)]
pub struct QualityArgs {
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
pub struct AnomalyArgs {
    /// The folder holding anomaly-<family>.toml.
    #[arg(long, default_value = "configs")]
    configs: PathBuf,
    /// The folder the benchmark's runs go into.
    #[arg(long, default_value = "runs/anomaly")]
    runs_dir: PathBuf,
    /// The MNIST folder, in place of the configs' `data.path`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Families and baselines, comma-separated: dense, conv, vae, pca, knn.
    #[arg(long, value_delimiter = ',', default_value = "dense,conv,vae,pca,knn")]
    families: Vec<String>,
    /// The normal classes: a range `0-9` or a list `1,3,7`.
    #[arg(long, default_value = "0-9")]
    classes: String,
    /// Train at most this many epochs per run (a quick look).
    #[arg(long)]
    max_epochs: Option<usize>,
    /// Principal components of the PCA baseline.
    #[arg(long, default_value_t = 32)]
    pca_components: usize,
    /// The k of the k-nearest-neighbour baseline.
    #[arg(long, default_value_t = 1)]
    knn_k: usize,
    /// Importance samples of the VAE's iw score (0 leaves it out).
    #[arg(long, default_value_t = 0)]
    iw: usize,
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
pub struct SearchArgs {
    /// The folder holding the configs.
    #[arg(long, default_value = "configs")]
    config_dir: PathBuf,
    /// The configs whose models' codes are searched (names without .toml, comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mnist-dense,deep,vae,conv-bottleneck"
    )]
    configs: Vec<String>,
    /// The folder the benchmark's runs go into.
    #[arg(long, default_value = "runs/search")]
    runs_dir: PathBuf,
    /// The MNIST folder, in place of the configs' `data.path`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Only the first this many test images are queries (default: all 10,000).
    #[arg(long)]
    queries: Option<usize>,
    /// HNSW links per node (M).
    #[arg(long, default_value_t = 16)]
    hnsw_m: usize,
    /// HNSW candidates while searching (ef).
    #[arg(long, default_value_t = 64)]
    hnsw_ef: usize,
    /// HNSW candidates while inserting (efConstruction).
    #[arg(long, default_value_t = 200)]
    hnsw_ef_construction: usize,
    /// Also write the report (command, machine, date, table) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No training progress output.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    compute: Compute,
}

fn search(args: SearchArgs) -> anyhow::Result<()> {
    args.compute.setup()?;
    refuse_existing_report(args.out.as_deref())?;
    let hnsw = aekit::apps::search::HnswSettings {
        connections: args.hnsw_m,
        ef_search: args.hnsw_ef,
        ef_construction: args.hnsw_ef_construction,
    };
    let options = aekit_bench::search::SearchOptions {
        configs_dir: args.config_dir,
        configs: args.configs,
        runs_dir: args.runs_dir,
        data: args.data,
        k: args.k,
        queries: args.queries,
        hnsw,
        device: args.compute.device,
        quiet: args.quiet,
    };
    let rows = aekit_bench::search::run(&options, |row| {
        eprintln!(
            "{}: precision@{} {:.4}",
            row.method, options.k, row.precision
        );
    })?;
    let table = aekit_bench::search::table(&rows, options.k);
    println!("{table}");
    if let Some(out) = args.out {
        let notes = format!(
            "Base: the MNIST training split (60,000 images); queries: {} test images. \
             precision@{k}: the share of the {k} nearest training images with the query's label. \
             Exact search: blocked matrix products, all queries in one call. HNSW (hnsw_rs): M={}, \
             efConstruction={}, ef={}, built in parallel; recall@{k} against the exact {k} nearest. \
             Codes: each config's run (best weights), trained by this command or reused. PCA fitted on \
             the training split at each code size.\n",
            options
                .queries
                .map_or("all 10,000".to_string(), |n| n.to_string()),
            hnsw.connections,
            hnsw.ef_construction,
            hnsw.ef_search,
            k = options.k
        );
        write_report(
            &out,
            "aekit similar-image search benchmark",
            &format!("{notes}\n{table}"),
        )?;
    }
    Ok(())
}

#[derive(Args)]
pub struct CodecArgs {
    /// Trained codec runs, comma-separated (one point each).
    #[arg(long, value_delimiter = ',', required = true)]
    runs: Vec<PathBuf>,
    /// The MNIST folder.
    #[arg(long, default_value = "../shared/data/mnist")]
    data: PathBuf,
    /// The first this many test images.
    #[arg(long, default_value_t = 10000)]
    images: usize,
    /// JPEG qualities, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,30,50,75,90")]
    jpeg: Vec<u8>,
    /// WebP qualities, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,30,50,75,90")]
    webp: Vec<u8>,
    /// Also write the report (command, machine, date, table) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Draw the rate-distortion plot into this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    compute: Compute,
}

fn codec(args: CodecArgs) -> anyhow::Result<()> {
    args.compute.setup()?;
    refuse_existing_report(args.out.as_deref())?;
    if let Some(plot) = &args.plot {
        aekit::apps::check_output(plot, false)?;
    }
    let options = aekit_bench::codec::CodecOptions {
        runs: args.runs,
        data: args.data,
        images: args.images,
        jpeg_qualities: args.jpeg,
        webp_qualities: args.webp,
        device: args.compute.device,
    };
    let points = aekit_bench::codec::run(&options)?;
    let table = aekit_bench::codec::table(&points);
    println!("{table}");
    if let Some(plot) = &args.plot {
        aekit_bench::codec::plot(&points, plot)?;
        eprintln!("wrote {}", plot.display());
    }
    if let Some(out) = args.out {
        let notes = format!(
            "The first {} MNIST test images, one file each. bpp: 8 x bytes / pixels over all \
             files. \"No header\": without each format's fixed header (aekit: its header and \
             checksum, 14 or 15 bytes at 28x28; PNG: 57 bytes of signature and chunk framing; JPEG: up to the end of \
             the start-of-scan segment, and EOI; WebP: 30 bytes of RIFF/VP8 headers). PSNR: \
             10 log10(1 / mean MSE) over all images, 8-bit pixels in [0, 1]; SSIM: mean, 11x11 \
             Gaussian. JPEG: the image crate's encoder (grey); WebP: libwebp (webp crate), grey \
             as RGB. Speeds: one image at a time.\n",
            options.images,
        );
        write_report(
            &out,
            "aekit learned-compression benchmark",
            &format!("{notes}\n{table}"),
        )?;
    }
    Ok(())
}

/// Refuses to start a benchmark whose report would replace a file.
fn refuse_existing_report(out: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let Some(out) = out
        && out.exists()
    {
        anyhow::bail!(
            "{}: the report file exists already; choose another --out or remove it",
            out.display()
        );
    }
    Ok(())
}

/// `0-9` or `1,3,7`.
fn parse_classes(text: &str) -> anyhow::Result<Vec<u32>> {
    let bad = || {
        anyhow::anyhow!("--classes `{text}`: expected a range such as 0-9 or a list such as 1,3,7")
    };
    if let Some((a, b)) = text.split_once('-') {
        let (a, b): (u32, u32) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b {
            return Err(bad());
        }
        return Ok((a..=b).collect());
    }
    text.split(',')
        .map(|c| c.trim().parse().map_err(|_| bad()))
        .collect()
}

fn anomaly(args: AnomalyArgs) -> anyhow::Result<()> {
    args.compute.setup()?;
    refuse_existing_report(args.out.as_deref())?;
    let classes = parse_classes(&args.classes)?;
    let options = aekit_bench::anomaly::AnomalyOptions {
        configs_dir: args.configs,
        runs_dir: args.runs_dir,
        data: args.data,
        families: args.families,
        classes: classes.clone(),
        max_epochs: args.max_epochs,
        pca_components: args.pca_components,
        knn_k: args.knn_k,
        iw_samples: args.iw,
        device: args.compute.device,
        quiet: args.quiet,
    };
    let rows = aekit_bench::anomaly::run(&options, |class, rows| {
        let line: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{} {:.1}",
                    r.method,
                    r.auroc.last().copied().unwrap_or(f64::NAN)
                )
            })
            .collect();
        eprintln!("normal digit {class}: {}", line.join(", "));
    })?;
    let table = aekit_bench::anomaly::table(&rows, &classes);
    println!("{table}");
    if let Some(out) = args.out {
        let mut notes = format!(
            "AUROC (%) of the one-class protocol: train on one digit's training images, score the \
             whole test split (the other nine digits are the anomalies). Weights: best on a tenth \
             of the normal training images. PCA-{} fitted on the same images; {}-NN: distance to \
             the k-th nearest training image, raw pixels.\n",
            options.pca_components, options.knn_k
        );
        if let Some(cap) = options.max_epochs {
            notes.push_str(&format!(
                "Training capped at {cap} epochs (--max-epochs).\n"
            ));
        }
        write_report(
            &out,
            "aekit one-class anomaly benchmark",
            &format!("{notes}\n{table}"),
        )?;
    }
    Ok(())
}

/// Writes a benchmark report: its header (command, machine, date), then `body`.
fn write_report(out: &std::path::Path, title: &str, body: &str) -> anyhow::Result<()> {
    let report = format!("{}\n{body}", aekit_bench::report::header(title));
    std::fs::write(out, report)
        .map_err(|e| anyhow::anyhow!("{}: cannot write the report: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

#[derive(Args)]
pub struct SpeedArgs {
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

/// Runs `aekit bench ...`.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Quality(args) => quality(args),
        BenchCommand::Anomaly(args) => anomaly(args),
        BenchCommand::Search(args) => search(args),
        BenchCommand::Codec(args) => codec(args),
        BenchCommand::Speed(args) => speed(args),
    }
}

fn quality(args: QualityArgs) -> anyhow::Result<()> {
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
    compute.setup()?;
    refuse_existing_report(out.as_deref())?;
    let options = aekit_bench::quality::QualityOptions {
        configs_dir: configs,
        runs_dir,
        data,
        overrides: set,
        max_epochs,
        only,
        device: compute.device,
        quiet,
    };
    let rows = aekit_bench::quality::run(&options, |row| {
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
    let table = aekit_bench::quality::table(&rows);
    println!("{table}");
    if let Some(out) = out {
        write_report(&out, "aekit quality benchmark", &table)?;
    }
    Ok(())
}

fn speed(args: SpeedArgs) -> anyhow::Result<()> {
    args.compute.setup()?;
    let config = RunConfig::from_file(&args.config, &args.set)?;
    if let Some(dir) = &args.export_check {
        if args.compute.device != DeviceChoice::Cpu {
            anyhow::bail!(
                "--export-check computes the reference loss on the CPU: drop --device gpu"
            );
        }
        let manifest = aekit_bench::speed::export_check(&config, args.batch, args.seed, dir)?;
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
        let report = aekit_bench::speed::epoch_memory(&config, epochs, args.compute.device)?;
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
    let options = aekit_bench::speed::SpeedOptions {
        steps: args.steps.max(1),
        warmup: args.warmup,
        batch_size: args.batch,
        infer_steps: args.infer_steps.unwrap_or(args.steps).max(1),
        seed: args.seed,
        device: args.compute.device,
    };
    let report = aekit_bench::speed::run(&config, &options)?;
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
