//! `aekit index` and `aekit similar`: an index of a data set's codes, and the nearest
//! neighbours of a query in it.

use super::{Compute, RunArgs};
use aekit::apps::search::{CodeIndex, Hit, MethodChoice, NamedHit, SearchMethod, SimilarResult};
use aekit::apps::{self};
use aekit::data::config::Split;
use aekit::plots::{self, Tile};
use aekit::run_dir::WeightsChoice;
use aekit::trained::TrainedModel;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `aekit index`.
#[derive(Args)]
#[command(
    after_help = "The index holds the codes with ids, labels and the model's fingerprint; `aekit similar`\nsearches it. Up to 200,000 codes are searched exactly by default, more approximately (HNSW).\n\nExamples:\n  aekit index runs/mnist-dense --input ../shared/data/mnist --split train --out train.aeidx\n  aekit index runs/conv --input photos/ --resize --out photos.aeidx --method approximate"
)]
pub struct IndexArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The data to index: a data folder or file, an image folder, or `shapes`.
    #[arg(long)]
    input: PathBuf,
    /// Which split of a source that has two: `all` (training then test), `train` or `test`.
    #[arg(long, default_value = "all")]
    split: Split,
    /// Resize images of another size to the model's (else they are refused).
    #[arg(long)]
    resize: bool,
    /// How `similar` searches it by default: `auto` (exact up to 200,000 codes), `exact` or
    /// `approximate`.
    #[arg(long, default_value = "auto")]
    method: MethodChoice,
    /// The index file to write (.aeidx).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs `aekit index`.
pub fn index(args: IndexArgs) -> anyhow::Result<()> {
    apps::check_extension(&args.out, &["aeidx"])?;
    apps::check_output(&args.out, args.force)?;
    let model = args.run.open()?;
    let data = model.load_split(&args.input, args.split, args.resize)?;
    let bar = super::spinner(&format!("encoding {} samples", data.len()));
    let started = Instant::now();
    let index = CodeIndex::build(
        &model,
        &data,
        (&args.input, args.split, args.resize),
        args.method,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    index.save(&args.out)?;
    bar.finish_and_clear();
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "indexed {} codes of {} values in {seconds:.2} s; searched {} by default; wrote {} ({:.1} MB)",
        index.len(),
        index.header.code_len,
        index.header.method,
        args.out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}

/// `aekit similar`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  aekit similar train.aeidx digit.png --k 10 --out hits.png\n  aekit similar train.aeidx --index-of 123 --k 5 --json\n  aekit similar photos.aeidx --index-of photos/cat/01.jpg --method exact --out hits.png"
)]
pub struct SimilarArgs {
    /// The index (.aeidx, from `aekit index`).
    index: PathBuf,
    /// The query: an image file (or a one-sample data file). Omit it with --index-of.
    query: Option<PathBuf>,
    /// Use the sample of the index with this id (a position, or a path for image folders)
    /// as the query; it is left out of its own hits.
    #[arg(long, conflicts_with = "query")]
    index_of: Option<String>,
    /// Neighbours to find.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// `exact`, `approximate`, or `auto`: the method the index was built for.
    #[arg(long, default_value = "auto")]
    method: MethodChoice,
    /// The run that made the index (default: the one it records); it must be that model.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Resize a query image of another size to the model's.
    #[arg(long)]
    resize: bool,
    /// Write the query and its hits, with distances, into this PNG.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the hits as JSON (for programs) instead of a table.
    #[arg(long)]
    json: bool,
    /// Replace --out if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    compute: Compute,
}

/// Runs `aekit similar`.
pub fn similar(args: SimilarArgs) -> anyhow::Result<()> {
    if args.k == 0 {
        anyhow::bail!("--k must be at least 1");
    }
    if args.query.is_none() && args.index_of.is_none() {
        anyhow::bail!("give a query image, or --index-of ID for a sample of the index");
    }
    if let Some(out) = &args.out {
        apps::check_extension(out, &["png"])?;
        apps::check_output(out, args.force)?;
    }
    let index = CodeIndex::load(&args.index)?;
    let available = index.len() - usize::from(args.index_of.is_some());
    if args.k > available {
        anyhow::bail!(
            "--k {}: {} holds only {available} other samples{}",
            args.k,
            args.index.display(),
            if args.index_of.is_some() {
                " besides the query"
            } else {
                ""
            }
        );
    }
    // The model is needed to encode an image query and to read the hits' pixels.
    let model = if args.query.is_some() || args.out.is_some() {
        Some(open_model(&args, &index)?)
    } else {
        None
    };
    let (query, query_values, self_index) = match (&args.query, &args.index_of) {
        (Some(path), _) => {
            let model = model.as_ref().expect("opened for a query");
            let data = model.load_data(path, args.resize)?;
            if data.len() != 1 {
                anyhow::bail!(
                    "{}: holds {} samples; the query is one image (or use --index-of)",
                    path.display(),
                    data.len()
                );
            }
            (model.encode(&data.values)?, Some(data.values), None)
        }
        (None, Some(id)) => {
            let i = index.position_of(id)?;
            (index.codes.vector(i).to_vec(), None, Some(i))
        }
        (None, None) => unreachable!("checked above"),
    };
    let method = match args.method {
        MethodChoice::Auto => index.header.method,
        choice => choice.resolve(index.len()),
    };
    let started = Instant::now();
    let hits = search(&index, &query, args.k, method, self_index)?;
    let seconds = started.elapsed().as_secs_f64();
    let rows = index.describe(&hits);
    if args.json {
        let result = SimilarResult {
            index: args.index.clone(),
            query: match (&args.query, self_index) {
                (Some(path), _) => path.display().to_string(),
                (None, Some(i)) => index.header.ids[i].clone(),
                (None, None) => unreachable!("checked above"),
            },
            method,
            k: args.k,
            hits: rows.clone(),
        };
        println!("{}", result.to_json());
    } else {
        println!(
            "{} nearest of {} codes ({method} search, {:.1} ms):",
            rows.len(),
            index.len(),
            seconds * 1e3
        );
        println!("rank  distance  class  id");
        for row in &rows {
            println!(
                "{:>4}  {:>8.4}  {:>5}  {}",
                row.rank,
                row.distance,
                row.class.as_deref().unwrap_or("-"),
                row.id
            );
        }
    }
    if let (Some(out), Some(model)) = (&args.out, &model) {
        draw_hits(out, model, &index, query_values, self_index, &rows)?;
        if !args.json {
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

/// Opens the run the index records (or `--run`) with the weights it records, and refuses
/// it unless it is the model that made the codes.
fn open_model(args: &SimilarArgs, index: &CodeIndex) -> anyhow::Result<TrainedModel> {
    args.compute.setup()?;
    let run = args
        .run
        .clone()
        .unwrap_or_else(|| index.header.model.run.clone());
    let weights = if index.header.model.weights == "model.bpk" {
        WeightsChoice::Final
    } else {
        WeightsChoice::Best
    };
    let model = TrainedModel::open(&run, args.compute.device, weights).map_err(|e| {
        anyhow::anyhow!(
            "{e} (the run that made {}; give it with --run)",
            args.index.display()
        )
    })?;
    index.check_model(&model, &args.index)?;
    Ok(model)
}

fn search(
    index: &CodeIndex,
    query: &[f32],
    k: usize,
    method: SearchMethod,
    self_index: Option<usize>,
) -> anyhow::Result<Vec<Hit>> {
    Ok(match (method, self_index) {
        (SearchMethod::Exact, Some(i)) => index.codes.neighbours_of(i, k)?,
        (SearchMethod::Exact, None) => index.codes.search(query, k)?.remove(0),
        (SearchMethod::Approximate, _) => {
            let graph = index.codes.approximate(index.header.hnsw);
            let extra = usize::from(self_index.is_some());
            let mut hits = graph.search(query, k + extra)?.remove(0);
            hits.retain(|h| Some(h.index) != self_index);
            hits.truncate(k);
            hits
        }
    })
}

/// The query (framed) and its hits with distances, from the index's source data.
fn draw_hits(
    out: &Path,
    model: &TrainedModel,
    index: &CodeIndex,
    query_values: Option<Vec<f32>>,
    self_index: Option<usize>,
    rows: &[NamedHit],
) -> anyhow::Result<()> {
    let shape = model.sample_shape();
    if !shape.is_image() {
        anyhow::bail!(
            "--out: the model reads table rows, which make no picture; use --json for the hits"
        );
    }
    let split: Split = index
        .header
        .split
        .parse()
        .map_err(|e: String| anyhow::anyhow!("{}: split {e}", index.header.source.display()))?;
    let source = model
        .load_split(&index.header.source, split, index.header.resize)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the index's source to draw the hits: {e} (use --json for the hits \
                 alone)"
            )
        })?;
    if source.len() != index.len() {
        anyhow::bail!(
            "{} now holds {} samples, the index {}: it changed since the index was built; \
             build it again",
            index.header.source.display(),
            source.len(),
            index.len()
        );
    }
    let width = shape.len();
    let sample = |i: usize| &source.values[i * width..(i + 1) * width];
    let query_values = match (&query_values, self_index) {
        (Some(values), _) => &values[..],
        (None, Some(i)) => sample(i),
        (None, None) => unreachable!("a query is an image or a sample of the index"),
    };
    let query_caption = match self_index {
        Some(i) => caption(
            &index.describe(&[Hit {
                index: i,
                distance: 0.0,
            }])[0],
        ),
        None => "image".into(),
    };
    let mut tiles = vec![Tile {
        values: query_values,
        caption: ["query".into(), query_caption],
        framed: true,
    }];
    for row in rows {
        tiles.push(Tile {
            values: sample(row.index),
            caption: [format!("#{} d={:.3}", row.rank, row.distance), caption(row)],
            framed: false,
        });
    }
    plots::captioned_tiles(out, shape, &tiles, 11)?;
    Ok(())
}

/// A hit's second caption line: its class and id, or the id alone.
fn caption(hit: &NamedHit) -> String {
    match &hit.class {
        Some(class) => format!("{class} · id {}", short_id(&hit.id)),
        None => short_id(&hit.id),
    }
}

/// An id short enough for a caption: a path's file name.
fn short_id(id: &str) -> String {
    Path::new(id)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| id.to_string())
}
