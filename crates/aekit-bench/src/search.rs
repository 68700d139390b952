//! The similar-image search benchmark behind `aekit bench search`: the MNIST training split
//! is the base and every test image a query. For the codes of each reference model, for
//! raw pixels and for PCA at each model's code size: precision@k (the share of the k
//! nearest training images with the query's label) by exact search, and the queries per
//! second of the exact search; for the codes, also the HNSW index's recall@k against the
//! exact neighbours, its precision@k, its build time and queries per second.
//!
//! Runs are kept and reused as `bench quality`'s are.

use aekit::apps::search::{self, HnswSettings, VectorIndex};
use aekit::config::RunConfig;
use aekit::data::{self, Dataset};
use aekit::device::{self, DeviceChoice};
use aekit::error::{Error, Result};
use aekit::run_dir::WeightsChoice;
use aekit::trained::TrainedModel;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// What the benchmark runs.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// The folder holding the configs.
    pub configs_dir: PathBuf,
    /// The configs (file stems) whose models' codes are searched.
    pub configs: Vec<String>,
    /// The folder the benchmark's runs go into.
    pub runs_dir: PathBuf,
    /// The MNIST folder, in place of the configs' `data.path`.
    pub data: Option<PathBuf>,
    /// Neighbours per query.
    pub k: usize,
    /// Use only the first this many test images as queries (all when `None`).
    pub queries: Option<usize>,
    /// The approximate index's settings.
    pub hnsw: HnswSettings,
    /// Where the models compute.
    pub device: DeviceChoice,
    /// No training progress output.
    pub quiet: bool,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRow {
    /// What is searched (`mnist-dense codes`, `raw pixels`, `PCA-32`).
    pub method: String,
    /// Values per vector.
    pub dims: usize,
    /// precision@k of the exact search.
    pub precision: f64,
    /// Queries per second of the exact search (all queries in one call).
    pub exact_qps: f64,
    /// Queries per second of the exact search asked one query at a time (as `aekit similar`
    /// or a server answering single requests does).
    pub exact_single_qps: f64,
    /// The approximate index, when it was built for this row.
    pub approximate: Option<ApproximateFigures>,
}

/// What the approximate index achieved on one row's vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApproximateFigures {
    /// The share of the exact k nearest it found.
    pub recall: f64,
    /// Its precision@k.
    pub precision: f64,
    /// Seconds to build the graph.
    pub build_seconds: f64,
    /// Queries per second (all queries in one call, searched in parallel).
    pub qps: f64,
    /// Queries per second, one query at a time.
    pub single_qps: f64,
}

/// Runs the benchmark; `on_row` is called after each row.
pub fn run(options: &SearchOptions, mut on_row: impl FnMut(&SearchRow)) -> Result<Vec<SearchRow>> {
    if options.k == 0 {
        return Err(Error::config("--k", "must be at least 1"));
    }
    let plain = device::plain_device(options.device)?;
    let (train, test) = raw_splits(options)?;
    let (base_labels, query_labels) = (labels(&train)?, labels(&test)?);
    let mut rows = Vec::new();
    let mut record = |row: SearchRow, rows: &mut Vec<SearchRow>| {
        on_row(&row);
        rows.push(row);
    };
    let figures =
        |name: String, base: Vec<f32>, queries: &[f32], dims: usize, approximate: bool| {
            measure(
                name,
                base,
                queries,
                dims,
                approximate,
                options,
                (&base_labels, &query_labels),
            )
        };
    let pixels = train.shape.len();
    record(
        figures(
            "raw pixels".into(),
            train.values.clone(),
            &test.values,
            pixels,
            false,
        )?,
        &mut rows,
    );
    let mut pca_sizes = Vec::new();
    for name in &options.configs {
        let model = trained(options, name)?;
        let base = model.encode(&train.values)?;
        let queries = model.encode(&test.values)?;
        let dims = model.code_len();
        record(
            figures(format!("{name} codes"), base, &queries, dims, true)?,
            &mut rows,
        );
        if !pca_sizes.contains(&dims) {
            pca_sizes.push(dims);
        }
    }
    for dims in pca_sizes {
        let pca = aekit::pca::fit(&train, dims, &plain)?;
        let project = |d: &Dataset| -> Result<Vec<f32>> {
            let x = aekit::eval::rows_tensor(d.values.clone(), pixels, &plain);
            pca.encode(x)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Input(format!("PCA projection: {e:?}")))
        };
        let (base, queries) = (project(&train)?, project(&test)?);
        record(
            figures(format!("PCA-{dims}"), base, &queries, dims, false)?,
            &mut rows,
        );
    }
    Ok(rows)
}

/// Exact (and optionally approximate) search of `queries` in `base`.
fn measure(
    method: String,
    base: Vec<f32>,
    queries: &[f32],
    dims: usize,
    approximate: bool,
    options: &SearchOptions,
    (base_labels, query_labels): (&[u32], &[u32]),
) -> Result<SearchRow> {
    let index = VectorIndex::new(base, dims)?;
    let started = Instant::now();
    let exact = index.search(queries, options.k)?;
    let exact_qps = exact.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let precision = search::precision_at_k(&exact, query_labels, base_labels);
    let singles = &queries[..queries.len().min(SINGLE_QUERIES * dims)];
    let exact_single_qps = one_at_a_time(singles, dims, |q| index.search(q, options.k))?;
    let approximate = if approximate {
        let started = Instant::now();
        let graph = index.approximate(options.hnsw);
        let build_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let hits = graph.search(queries, options.k)?;
        let qps = hits.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let single_qps = one_at_a_time(singles, dims, |q| graph.search(q, options.k))?;
        Some(ApproximateFigures {
            recall: search::recall_at_k(&hits, &exact),
            precision: search::precision_at_k(&hits, query_labels, base_labels),
            build_seconds,
            qps,
            single_qps,
        })
    } else {
        None
    };
    Ok(SearchRow {
        method,
        dims,
        precision,
        exact_qps,
        exact_single_qps,
        approximate,
    })
}

/// Queries timed one at a time.
const SINGLE_QUERIES: usize = 500;

/// Queries per second of `search` called once per query of `queries`.
fn one_at_a_time<T>(
    queries: &[f32],
    dims: usize,
    search: impl Fn(&[f32]) -> Result<T>,
) -> Result<f64> {
    let started = Instant::now();
    let mut count = 0;
    for query in queries.chunks(dims) {
        std::hint::black_box(search(query)?);
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// The raw training split (the base) and the test split (the queries, capped).
fn raw_splits(options: &SearchOptions) -> Result<(Dataset, Dataset)> {
    let path = options
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/data/mnist"));
    let (train, test) = data::config::load_dataset_path(&path, false, &Default::default())?;
    let mut test = test.ok_or_else(|| Error::data(&path, "has no test split"))?;
    if let Some(n) = options.queries
        && n < test.len()
    {
        test.values.truncate(n * test.shape.len());
        if let Some(labels) = &mut test.labels {
            labels.truncate(n);
        }
        test.paths.truncate(n);
    }
    Ok((train, test))
}

fn labels(data: &Dataset) -> Result<Vec<u32>> {
    data.labels
        .clone()
        .ok_or_else(|| Error::Input("the benchmark needs labelled data".into()))
}

/// The trained run of config `name` (trained first, or reused).
fn trained(options: &SearchOptions, name: &str) -> Result<TrainedModel> {
    let config_path = options.configs_dir.join(format!("{name}.toml"));
    let mut overrides = vec![format!(
        "runs_dir={}",
        crate::quality::toml_string(&options.runs_dir)
    )];
    if let Some(data) = &options.data {
        overrides.push(format!("data.path={}", crate::quality::toml_string(data)));
    }
    let config = RunConfig::from_file(&config_path, &overrides)?;
    crate::quality::train_or_reuse(&config, options.device, options.quiet)?;
    TrainedModel::open(&config.run_dir(), options.device, WeightsChoice::Best)
}

/// The rows as a Markdown table.
pub fn table(rows: &[SearchRow], k: usize) -> String {
    let mut text = format!(
        "| searched | dims | precision@{k} exact | exact q/s batch | exact q/s single | HNSW recall@{k} | HNSW precision@{k} | HNSW q/s batch | HNSW q/s single | speed-up batch | speed-up single | HNSW build s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for row in rows {
        let _ = write!(
            text,
            "| {} | {} | {:.4} | {:.0} | {:.0} |",
            row.method, row.dims, row.precision, row.exact_qps, row.exact_single_qps
        );
        match row.approximate {
            Some(a) => {
                let _ = writeln!(
                    text,
                    " {:.4} | {:.4} | {:.0} | {:.0} | {:.1}x | {:.1}x | {:.2} |",
                    a.recall,
                    a.precision,
                    a.qps,
                    a.single_qps,
                    a.qps / row.exact_qps.max(1e-9),
                    a.single_qps / row.exact_single_qps.max(1e-9),
                    a.build_seconds
                );
            }
            None => text.push_str(" | | | | | | |\n"),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_line_per_row_and_blanks_without_an_index() {
        let rows = vec![
            SearchRow {
                method: "raw pixels".into(),
                dims: 784,
                precision: 0.9,
                exact_qps: 1000.0,
                exact_single_qps: 100.0,
                approximate: None,
            },
            SearchRow {
                method: "x codes".into(),
                dims: 32,
                precision: 0.95,
                exact_qps: 5000.0,
                exact_single_qps: 500.0,
                approximate: Some(ApproximateFigures {
                    recall: 0.99,
                    precision: 0.94,
                    build_seconds: 1.5,
                    qps: 50000.0,
                    single_qps: 10000.0,
                }),
            },
        ];
        let table = table(&rows, 10);
        assert_eq!(table.lines().count(), 4);
        assert!(
            table.contains("| raw pixels | 784 | 0.9000 | 1000 | 100 | | | | | | | |\n"),
            "{table}"
        );
        assert!(
            table.contains("| 0.9900 | 0.9400 | 50000 | 10000 | 10.0x | 20.0x | 1.50 |"),
            "{table}"
        );
    }
}
