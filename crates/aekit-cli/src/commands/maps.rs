//! `aekit latent-map`, `aekit cluster` and `aekit activations`: what the codes of a data set
//! look like, how they group, and which units fire.

use super::RunArgs;
use aekit::apps::cluster::{ClusterOptions, cluster};
use aekit::apps::latent_map::{self, MapMethod};
use aekit::apps::{self, activations};
use aekit::data::Dataset;
use aekit::stats::tsne::TsneOptions;
use aekit::trained::TrainedModel;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// Which samples a command looks at.
#[derive(Args, Clone)]
pub struct DataChoice {
    /// The data (a data folder or file, or `shapes`; its test split when it has one);
    /// default: the run's validation split.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use at most this many samples, drawn at random (seeded) across the data.
    #[arg(long)]
    limit: Option<usize>,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// Seed of every random choice (samples drawn, t-SNE, k-means).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl DataChoice {
    /// The chosen samples.
    fn load(&self, model: &TrainedModel, default_limit: Option<usize>) -> anyhow::Result<Dataset> {
        let data = match &self.data {
            Some(path) => model.load_data(path, self.resize)?,
            None => model.validation_data()?,
        };
        Ok(match self.limit.or(default_limit) {
            Some(limit) if limit < data.len() => data.seeded_sample(limit, self.seed),
            _ => data,
        })
    }
}

/// How to lay codes out in 2-D.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// Barnes-Hut t-SNE.
    Tsne,
    /// The first two principal components.
    Pca,
    /// The code itself (2-D codes only).
    None,
}

/// t-SNE's settings.
#[derive(Args, Clone)]
pub struct TsneArgs {
    /// t-SNE perplexity (about the number of close neighbours each point keeps).
    #[arg(long, default_value_t = 30.0)]
    perplexity: f32,
    /// t-SNE iterations.
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
}

fn method(name: MethodName, tsne: &TsneArgs, seed: u64) -> MapMethod {
    match name {
        MethodName::Tsne => MapMethod::Tsne(TsneOptions {
            perplexity: tsne.perplexity,
            epochs: tsne.iterations,
            seed,
            ..TsneOptions::default()
        }),
        MethodName::Pca => MapMethod::Pca,
        MethodName::None => MapMethod::None,
    }
}

/// `aekit latent-map`.
#[derive(Args)]
#[command(
    after_help = "Writes the map (PNG: the codes' map beside the raw inputs') and its coordinates\n(a CSV beside it: id,label,code_x,code_y,input_x,input_y).\n\nExamples:\n  aekit latent-map runs/mnist-dense --out map.png                       # t-SNE of 10,000 validation codes\n  aekit latent-map runs/mnist-dense --method pca --limit 2000 --out map.png\n  aekit latent-map runs/vae-2d --method none --out map.png              # a 2-D code as it is"
)]
pub struct LatentMapArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    data: DataChoice,
    /// How to lay the codes out in 2-D.
    #[arg(long, value_enum, default_value = "tsne")]
    method: MethodName,
    #[command(flatten)]
    tsne: TsneArgs,
    /// Leave out the raw inputs' map.
    #[arg(long)]
    no_inputs: bool,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit latent-map`.
pub fn latent_map(args: LatentMapArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["png"])?;
    let csv = args.out.with_extension("csv");
    apps::check_output(&args.out, args.force)?;
    apps::check_output(&csv, args.force)?;
    let model = args.run.open()?;
    let data = args.data.load(&model, Some(10_000))?;
    let method = method(args.method, &args.tsne, args.data.seed);
    let bar = super::spinner(&format!(
        "laying out {} samples with {}",
        data.len(),
        method.name()
    ));
    let map = latent_map::latent_map(&model, &data, &method, !args.no_inputs)?;
    bar.finish_and_clear();
    latent_map::draw(&map, &args.out)?;
    aekit::run_dir::write_atomic(&csv, latent_map::map_csv(&map).as_bytes())?;
    println!(
        "{} of {} codes in {:.1} s{}; wrote {} and {}",
        map.method,
        data.len(),
        map.codes.seconds,
        map.inputs.as_ref().map_or(String::new(), |i| format!(
            ", of the {} in {:.1} s",
            i.of, i.seconds
        )),
        args.out.display(),
        csv.display()
    );
    Ok(())
}

/// `aekit cluster`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit cluster runs/mnist-dense --k 10                        # codes and raw pixels, validation split\n  aekit cluster runs/mnist-dense --k 10 --on-map tsne          # also the codes' t-SNE map (as N2D)\n  aekit cluster runs/mnist-dense --k 10 --json cluster.json"
)]
pub struct ClusterArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    data: DataChoice,
    /// Clusters.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// k-means restarts (the lowest inertia is kept).
    #[arg(long, default_value_t = 10)]
    n_init: usize,
    /// Also cluster the codes' 2-D map made this way.
    #[arg(long, value_enum)]
    on_map: Option<MethodName>,
    #[command(flatten)]
    tsne: TsneArgs,
    /// Leave out k-means on the raw inputs.
    #[arg(long)]
    no_inputs: bool,
    /// Also write the table as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write each sample's clusters (id,label,codes[,map][,inputs]) as CSV here.
    #[arg(long)]
    assignments: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit cluster`.
pub fn cluster_command(args: ClusterArgs) -> anyhow::Result<()> {
    for path in args.json.iter().chain(&args.assignments) {
        apps::check_output(path, args.force)?;
    }
    let model = args.run.open()?;
    let data = args.data.load(&model, None)?;
    let options = ClusterOptions {
        k: args.k,
        n_init: args.n_init,
        seed: args.data.seed,
        map: args.on_map.map(|m| method(m, &args.tsne, args.data.seed)),
        inputs: !args.no_inputs,
    };
    let bar = super::spinner(&format!("clustering {} samples", data.len()));
    let report = cluster(&model, &data, &options)?;
    bar.finish_and_clear();
    println!("{report}");
    if let Some(path) = &args.json {
        aekit::run_dir::write_json(path, &report)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.assignments {
        write_assignments(path, &report, &data)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn write_assignments(
    path: &Path,
    report: &aekit::apps::cluster::ClusterReport,
    data: &Dataset,
) -> anyhow::Result<()> {
    let mut text = String::from("id,label");
    for row in &report.rows {
        text.push(',');
        text.push_str(&row.on.replace([' ', '\''], "_"));
    }
    text.push('\n');
    for i in 0..data.len() {
        let label = data
            .labels
            .as_ref()
            .map(|l| l[i].to_string())
            .unwrap_or_default();
        text.push_str(&format!("{i},{label}"));
        for row in &report.rows {
            text.push_str(&format!(",{}", row.assignments[i]));
        }
        text.push('\n');
    }
    aekit::run_dir::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// `aekit activations`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit activations runs/sparse-l1 --out act.png                  # 20 validation samples\n  aekit activations runs/sparse-kl --input digits/ --count 12 --out act.png"
)]
pub struct ActivationsArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The inputs (an image, a folder, a data set; default: the run's validation split).
    #[arg(long)]
    input: Option<PathBuf>,
    /// How many inputs (drawn at random, seeded).
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// Seed of the inputs drawn.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit activations`.
pub fn activations_command(args: ActivationsArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["png"])?;
    apps::check_output(&args.out, args.force)?;
    let model = args.run.open()?;
    let choice = DataChoice {
        data: args.input.clone(),
        limit: Some(args.count.max(1)),
        resize: args.resize,
        seed: args.seed,
    };
    let data = choice.load(&model, None)?;
    let result = activations::activations(&model, &data)?;
    activations::draw(&result, &data, &args.out)?;
    println!("{result}");
    println!(
        "wrote {} (one column per input, one row per code unit; darker is larger)",
        args.out.display()
    );
    Ok(())
}
