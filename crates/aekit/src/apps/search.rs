//! Similar-sample search on codes (`aekit index`, `aekit similar`, `aekit bench search`): a
//! data set's codes with their ids, labels and the model that made them, searchable by exact
//! k-nearest neighbours (blocked matrix products) or approximately (an HNSW graph from
//! `hnsw_rs`), saved as one checksummed file.
//!
//! - [`VectorIndex`]: vectors of one width and their exact Euclidean neighbours, for codes
//!   and equally for raw pixels or PCA projections (the benchmark's baselines).
//! - [`ApproximateIndex`]: an HNSW graph over a [`VectorIndex`]'s vectors.
//! - [`CodeIndex`]: a [`VectorIndex`] of codes plus an [`IndexHeader`] (ids, labels, source,
//!   the model's [`ModelStamp`]); [`CodeIndex::save`] / [`CodeIndex::load`].
//! - [`precision_at_k`] and [`recall_at_k`]: the benchmark's figures.
//!
//! The file: `AEKITIDX`, the format version (u32 LE), the header's length (u64 LE) and the
//! header as JSON, the codes' byte length (u64 LE) and the codes (f32 LE), then the sha256
//! of everything before it. A reader checks each length against the file before it reads,
//! so a truncated or corrupted file is an error naming it, never a wrong answer.

use crate::data::Dataset;
use crate::data::config::Split;
use crate::error::{Error, Result};
use crate::kernels::matmul::{Matrix, product};
use crate::stats::knn::squared_norms;
use crate::trained::TrainedModel;
use hnsw_rs::prelude::{DistL2, Hnsw};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The first bytes of an index file.
pub const MAGIC: &[u8; 8] = b"AEKITIDX";
/// The version of the index file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Up to this many vectors [`MethodChoice::Auto`] searches exactly; above it, approximately.
/// Exact search of 10,000 queries over 60,000 codes of 32 values takes well under a second
/// here, and its cost grows with the product of both counts.
pub const EXACT_LIMIT: usize = 200_000;

/// Queries per block of the exact search.
const QUERY_BLOCK: usize = 256;
/// Base vectors per block of the exact search (one block's distances: 256 x 8192 floats).
const BASE_BLOCK: usize = 8192;

/// How an index is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchMethod {
    /// Every distance computed: the true k nearest.
    Exact,
    /// An HNSW graph: most of the k nearest, much faster on large sets.
    Approximate,
}

impl std::fmt::Display for SearchMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SearchMethod::Exact => "exact",
            SearchMethod::Approximate => "approximate",
        })
    }
}

/// The method asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodChoice {
    /// Exact up to [`EXACT_LIMIT`] vectors, approximate above.
    #[default]
    Auto,
    /// Always exact.
    Exact,
    /// Always approximate.
    Approximate,
}

impl MethodChoice {
    /// The method for an index of `count` vectors.
    pub fn resolve(self, count: usize) -> SearchMethod {
        match self {
            MethodChoice::Exact => SearchMethod::Exact,
            MethodChoice::Approximate => SearchMethod::Approximate,
            MethodChoice::Auto if count > EXACT_LIMIT => SearchMethod::Approximate,
            MethodChoice::Auto => SearchMethod::Exact,
        }
    }
}

impl std::str::FromStr for MethodChoice {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(MethodChoice::Auto),
            "exact" => Ok(MethodChoice::Exact),
            "approximate" | "hnsw" => Ok(MethodChoice::Approximate),
            other => Err(Error::Input(format!(
                "unknown search method `{other}`: expected `auto`, `exact` or `approximate`"
            ))),
        }
    }
}

/// The HNSW graph's settings (Malkov and Yashunin's M, efConstruction and ef).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswSettings {
    /// Links per node (M).
    pub connections: usize,
    /// Candidates kept while inserting (efConstruction).
    pub ef_construction: usize,
    /// Candidates kept while searching (ef; at least k).
    pub ef_search: usize,
}

impl Default for HnswSettings {
    fn default() -> Self {
        Self {
            connections: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

/// One neighbour found: its position in the index and its Euclidean distance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hit {
    /// Position of the vector in the index (0-based).
    pub index: usize,
    /// Euclidean distance to the query.
    pub distance: f32,
}

/// Vectors of one width, searched exactly.
#[derive(Debug, Clone)]
pub struct VectorIndex {
    width: usize,
    vectors: Vec<f32>,
    norms: Vec<f32>,
}

impl VectorIndex {
    /// An index of `vectors` (consecutive rows of `width` values).
    pub fn new(vectors: Vec<f32>, width: usize) -> Result<Self> {
        if width == 0 || !vectors.len().is_multiple_of(width) {
            return Err(Error::Input(format!(
                "{} values are not whole vectors of {width}",
                vectors.len()
            )));
        }
        if let Some(i) = vectors.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "vector {} holds a non-finite value ({})",
                i / width,
                vectors[i]
            )));
        }
        let norms = squared_norms(&vectors, width);
        Ok(Self {
            width,
            vectors,
            norms,
        })
    }

    /// Values per vector.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.norms.len()
    }
    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }
    /// The vectors, row after row.
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }
    /// Vector `i`.
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.width..(i + 1) * self.width]
    }

    /// The `k` nearest vectors of every query (rows of [`Self::width`] values), nearest
    /// first, ties by position; `k` is capped at the index's size.
    ///
    /// Squared distances come from `|q|^2 + |v|^2 - 2 q.v` with one matrix product per block
    /// of queries and base vectors; the `k` kept are then measured again directly, so the
    /// distances returned are exact and their order does not suffer from the cancellation
    /// of the expanded form.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        check_queries(queries, self.width)?;
        let k = k.min(self.len());
        let mut out = Vec::with_capacity(queries.len() / self.width);
        if k == 0 {
            out.resize(queries.len() / self.width, Vec::new());
            return Ok(out);
        }
        let d = self.width;
        let mut dots = Vec::new();
        for block in queries.chunks(QUERY_BLOCK * d) {
            let m = block.len() / d;
            let query_norms = squared_norms(block, d);
            let mut tops: Vec<Vec<Hit>> = vec![Vec::with_capacity(k + 1); m];
            for (b, base) in self.vectors.chunks(BASE_BLOCK * d).enumerate() {
                let first = b * BASE_BLOCK;
                let n = base.len() / d;
                // One buffer for every block (the product overwrites it).
                dots.resize(m * n, 0.0);
                product(
                    &mut dots,
                    [m, n, d],
                    Matrix::row_major(block, d),
                    Matrix::row_major(base, d).transposed(),
                    |_, _| {},
                );
                let norms = &self.norms[first..first + n];
                tops.par_iter_mut()
                    .zip(dots.par_chunks(n))
                    .zip(query_norms.par_iter())
                    .for_each(|((top, row), &qn)| {
                        for (j, (&dot, &vn)) in row.iter().zip(norms).enumerate() {
                            keep_nearest(top, k, first + j, qn + vn - 2.0 * dot);
                        }
                    });
            }
            tops.par_iter_mut()
                .zip(block.par_chunks(d))
                .for_each(|(top, query)| {
                    for hit in top.iter_mut() {
                        hit.distance = euclidean(query, self.vector(hit.index));
                    }
                    top.sort_by(|a, b| {
                        a.distance
                            .total_cmp(&b.distance)
                            .then(a.index.cmp(&b.index))
                    });
                });
            out.extend(tops);
        }
        Ok(out)
    }

    /// The `k` nearest neighbours of vector `i` of the index itself, without it.
    pub fn neighbours_of(&self, i: usize, k: usize) -> Result<Vec<Hit>> {
        if i >= self.len() {
            return Err(Error::Input(format!(
                "no vector {i}: the index holds {}",
                self.len()
            )));
        }
        let mut hits = self.search(self.vector(i), k + 1)?.remove(0);
        match hits.iter().position(|h| h.index == i) {
            Some(at) => {
                hits.remove(at);
            }
            None => {
                hits.pop();
            }
        }
        Ok(hits)
    }

    /// An HNSW graph over these vectors.
    pub fn approximate(&self, settings: HnswSettings) -> ApproximateIndex {
        ApproximateIndex::build(self, settings)
    }
}

/// Refuses queries that are not whole vectors of `width` values.
fn check_queries(queries: &[f32], width: usize) -> Result<()> {
    if !queries.len().is_multiple_of(width) {
        return Err(Error::Input(format!(
            "the queries hold {} values, not whole vectors of the index's {width}",
            queries.len()
        )));
    }
    Ok(())
}

/// Keeps `top` the `k` smallest `(distance, index)` seen so far, sorted; equal distances
/// keep the earlier index first.
fn keep_nearest(top: &mut Vec<Hit>, k: usize, index: usize, distance: f32) {
    if top.len() == k && top.last().is_some_and(|last| distance >= last.distance) {
        return;
    }
    let at = top.partition_point(|h| h.distance <= distance);
    top.insert(at, Hit { index, distance });
    top.truncate(k);
}

fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(x - y);
            d * d
        })
        .sum::<f64>()
        .sqrt() as f32
}

/// An HNSW graph over an index's vectors (`hnsw_rs`). Built from the vectors in memory:
/// the graph is not stored in the index file.
pub struct ApproximateIndex {
    graph: Hnsw<'static, f32, DistL2>,
    width: usize,
    settings: HnswSettings,
}

impl ApproximateIndex {
    /// Inserts every vector of `index` (in parallel).
    pub fn build(index: &VectorIndex, settings: HnswSettings) -> Self {
        let count = index.len().max(1);
        // The graph's layer count: log base M of the size, as hnsw_rs's examples choose it.
        let layers = 16
            .min(
                ((count as f64).ln() / (settings.connections.max(2) as f64).ln()).ceil() as usize
                    + 1,
            )
            .max(1);
        let graph = Hnsw::<f32, DistL2>::new(
            settings.connections.max(2),
            count,
            layers,
            settings.ef_construction.max(1),
            DistL2 {},
        );
        let items: Vec<(&[f32], usize)> = index
            .vectors
            .chunks(index.width)
            .enumerate()
            .map(|(i, v)| (v, i))
            .collect();
        graph.parallel_insert_slice(&items);
        let mut graph = graph;
        graph.set_searching_mode(true);
        Self {
            graph,
            width: index.width,
            settings,
        }
    }

    /// The (approximately) `k` nearest vectors of every query, nearest first.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        check_queries(queries, self.width)?;
        let ef = self.settings.ef_search.max(k);
        Ok(queries
            .par_chunks(self.width)
            .map(|q| {
                self.graph
                    .search(q, k, ef)
                    .into_iter()
                    .map(|n| Hit {
                        index: n.d_id,
                        distance: n.distance,
                    })
                    .collect()
            })
            .collect())
    }
}

/// A hit with what the index knows of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedHit {
    /// 1 for the nearest.
    pub rank: usize,
    /// Position in the index.
    pub index: usize,
    /// The sample's id (its path for image folders).
    pub id: String,
    /// Its label, when the data had labels.
    pub label: Option<u32>,
    /// The label's name.
    pub class: Option<String>,
    /// Euclidean distance to the query.
    pub distance: f32,
}

/// A query's result, as `aekit similar --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SimilarResult {
    /// The index file.
    pub index: PathBuf,
    /// The query: an image's path, or the id of a sample of the index.
    pub query: String,
    /// How it was searched.
    pub method: SearchMethod,
    /// Neighbours asked for.
    pub k: usize,
    /// The neighbours, nearest first.
    pub hits: Vec<NamedHit>,
}

impl SimilarResult {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The model an index was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStamp {
    /// The run directory (absolute).
    pub run: PathBuf,
    /// The weight file's name (`model-best.bpk` or `model.bpk`).
    pub weights: String,
    /// The model family.
    pub kind: String,
    /// [`TrainedModel::fingerprint`].
    pub fingerprint: String,
}

impl ModelStamp {
    /// The stamp of `model`.
    pub fn of(model: &TrainedModel) -> Result<Self> {
        Ok(Self {
            // Absolute, so that the index can be used from another folder.
            run: absolute(model.run().path()),
            weights: model
                .weights_path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kind: model.kind().to_string(),
            fingerprint: model.fingerprint()?,
        })
    }
}

/// What an index file says about its codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexHeader {
    /// The model that made the codes.
    pub model: ModelStamp,
    /// The data the codes are of (absolute, unless a built-in source).
    pub source: PathBuf,
    /// Which split of it (`test`, `train` or `all`).
    pub split: String,
    /// Whether images of another size were resized.
    pub resize: bool,
    /// Values per code.
    pub code_len: usize,
    /// An id per code: the file path for image folders, else the sample's position.
    pub ids: Vec<String>,
    /// A label per code, when the data had labels.
    pub labels: Option<Vec<u32>>,
    /// The names of the labels.
    pub class_names: Vec<String>,
    /// How the index is searched by default.
    pub method: SearchMethod,
    /// The approximate graph's settings.
    pub hnsw: HnswSettings,
}

/// A data set's codes with their ids, labels and model.
#[derive(Debug, Clone)]
pub struct CodeIndex {
    /// Ids, labels, source and model.
    pub header: IndexHeader,
    /// The codes.
    pub codes: VectorIndex,
}

impl CodeIndex {
    /// Encodes `data` (loaded from `source`'s `split`) with `model`.
    pub fn build(
        model: &TrainedModel,
        data: &Dataset,
        source: (&Path, Split, bool),
        method: MethodChoice,
    ) -> Result<Self> {
        let (path, split, resize) = source;
        if data.is_empty() {
            return Err(Error::data(path, "holds no samples to index"));
        }
        let codes = VectorIndex::new(model.encode(&data.values)?, model.code_len())?;
        let ids = (0..data.len())
            .map(|i| {
                data.paths
                    .get(i)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| i.to_string())
            })
            .collect();
        let header = IndexHeader {
            model: ModelStamp::of(model)?,
            source: absolute(path),
            split: split_name(split).into(),
            resize,
            code_len: model.code_len(),
            ids,
            labels: data.labels.clone(),
            class_names: data.class_names.clone(),
            method: method.resolve(data.len()),
            hnsw: HnswSettings::default(),
        };
        Ok(Self { header, codes })
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.codes.len()
    }
    /// Whether the index holds no codes.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The position of the code with id `id` (or, when no id matches, `id` read as a
    /// position).
    pub fn position_of(&self, id: &str) -> Result<usize> {
        if let Some(i) = self.header.ids.iter().position(|x| x == id) {
            return Ok(i);
        }
        match id.parse::<usize>() {
            Ok(i) if i < self.len() => Ok(i),
            _ => Err(Error::Input(format!(
                "no sample `{id}` in the index (ids are {}; positions 0 to {})",
                if self
                    .header
                    .ids
                    .first()
                    .is_some_and(|f| f.parse::<usize>().is_err())
                {
                    "file paths"
                } else {
                    "positions"
                },
                self.len().saturating_sub(1)
            ))),
        }
    }

    /// `hits` with their ids, labels and class names, ranked from 1.
    pub fn describe(&self, hits: &[Hit]) -> Vec<NamedHit> {
        hits.iter()
            .enumerate()
            .map(|(rank, hit)| {
                let label = self.header.labels.as_ref().map(|l| l[hit.index]);
                NamedHit {
                    rank: rank + 1,
                    index: hit.index,
                    id: self.header.ids[hit.index].clone(),
                    label,
                    class: label.and_then(|l| self.header.class_names.get(l as usize).cloned()),
                    distance: hit.distance,
                }
            })
            .collect()
    }

    /// Refuses `model` unless it is the model the codes were made with.
    pub fn check_model(&self, model: &TrainedModel, path: &Path) -> Result<()> {
        let fingerprint = model.fingerprint()?;
        if fingerprint != self.header.model.fingerprint {
            return Err(Error::data(
                path,
                format!(
                    "was built with another model ({} with {}, fingerprint {}), not {} with {} \
                     (fingerprint {}): its codes mean nothing to this one; build the index \
                     again with `aekit index {}`",
                    self.header.model.run.display(),
                    self.header.model.weights,
                    short(&self.header.model.fingerprint),
                    model.run().path().display(),
                    model
                        .weights_path()
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    short(&fingerprint),
                    model.run().path().display()
                ),
            ));
        }
        Ok(())
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = serde_json::to_vec(&self.header)
            .map_err(|e| Error::Input(format!("cannot write the index header: {e}")))?;
        let codes = self.codes.vectors();
        let mut bytes = Vec::with_capacity(8 + 4 + 8 + header.len() + 8 + codes.len() * 4 + 32);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&((codes.len() * 4) as u64).to_le_bytes());
        for v in codes {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        Ok(bytes)
    }

    /// Reads an index from its file's bytes; `path` names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |what: String| Error::data(path, what);
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad(
                "is not an aekit index (it does not start with AEKITIDX)".into(),
            ));
        }
        let mut reader = Reader {
            bytes,
            at: MAGIC.len(),
        };
        let version = u32::from_le_bytes(
            reader
                .take(4)
                .ok_or_else(|| truncated(path))?
                .try_into()
                .expect("4 bytes"),
        );
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "is an index of format version {version}; this aekit reads version {FORMAT_VERSION}: \
                 build it again with `aekit index`"
            )));
        }
        let header_len = reader.length().ok_or_else(|| truncated(path))?;
        let header_bytes = reader.take(header_len).ok_or_else(|| truncated(path))?;
        let codes_len = reader.length().ok_or_else(|| truncated(path))?;
        let code_bytes = reader.take(codes_len).ok_or_else(|| truncated(path))?;
        let body_end = reader.at;
        let digest = reader.take(32).ok_or_else(|| truncated(path))?;
        if reader.at != bytes.len() {
            return Err(bad(format!(
                "has {} bytes after its end: it is corrupted",
                bytes.len() - reader.at
            )));
        }
        if Sha256::digest(&bytes[..body_end]).as_slice() != digest {
            return Err(bad(
                "is corrupted: its checksum does not match its content".into()
            ));
        }
        let header: IndexHeader = serde_json::from_slice(header_bytes)
            .map_err(|e| bad(format!("has an unreadable header: {e}")))?;
        if !codes_len.is_multiple_of(4) || header.code_len == 0 {
            return Err(bad("has codes of no whole number of values".into()));
        }
        let values: Vec<f32> = code_bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        if !values.len().is_multiple_of(header.code_len) {
            return Err(bad(format!(
                "holds {} values, not whole codes of {}",
                values.len(),
                header.code_len
            )));
        }
        let count = values.len() / header.code_len;
        if header.ids.len() != count || header.labels.as_ref().is_some_and(|l| l.len() != count) {
            return Err(bad(format!(
                "disagrees with itself: {count} codes, {} ids, {} labels",
                header.ids.len(),
                header.labels.as_ref().map_or(0, |l| l.len())
            )));
        }
        let codes = VectorIndex::new(values, header.code_len).map_err(|e| bad(e.to_string()))?;
        Ok(Self { header, codes })
    }

    /// Writes the index to `path` (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::run_dir::write_atomic(path, &self.to_bytes()?)
    }

    /// Reads the index at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }
}

/// `path` made absolute when it exists (a built-in source such as `shapes` stays a name).
fn absolute(path: &Path) -> PathBuf {
    if path.exists() {
        std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    }
}

fn truncated(path: &Path) -> Error {
    Error::data(path, "is truncated: it ends before its content does")
}

fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(12)]
}

fn split_name(split: Split) -> &'static str {
    match split {
        Split::Test => "test",
        Split::Train => "train",
        Split::All => "all",
    }
}

/// Reads lengths and byte ranges, refusing any that runs past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
    fn length(&mut self) -> Option<usize> {
        let bytes = self.take(8)?;
        usize::try_from(u64::from_le_bytes(bytes.try_into().ok()?)).ok()
    }
}

/// The mean over queries of the fraction of their hits whose label is the query's.
pub fn precision_at_k(hits: &[Vec<Hit>], query_labels: &[u32], base_labels: &[u32]) -> f64 {
    let per_query: Vec<f64> = hits
        .iter()
        .zip(query_labels)
        .filter(|(h, _)| !h.is_empty())
        .map(|(h, &label)| {
            h.iter()
                .filter(|hit| base_labels[hit.index] == label)
                .count() as f64
                / h.len() as f64
        })
        .collect();
    per_query.iter().sum::<f64>() / per_query.len().max(1) as f64
}

/// The mean over queries of the fraction of the exact neighbours that the approximate
/// search found too.
pub fn recall_at_k(approximate: &[Vec<Hit>], exact: &[Vec<Hit>]) -> f64 {
    let per_query: Vec<f64> = approximate
        .iter()
        .zip(exact)
        .filter(|(_, e)| !e.is_empty())
        .map(|(a, e)| {
            e.iter()
                .filter(|hit| a.iter().any(|h| h.index == hit.index))
                .count() as f64
                / e.len() as f64
        })
        .collect();
    per_query.iter().sum::<f64>() / per_query.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` pseudo-random vectors of `d` values (a fixed LCG).
    fn vectors(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n * d)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The k nearest by brute force in f64.
    fn brute_force(base: &[f32], query: &[f32], d: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<(f64, usize)> = base
            .chunks(d)
            .enumerate()
            .map(|(i, v)| {
                let d2: f64 = v
                    .iter()
                    .zip(query)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum();
                (d2, i)
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|(_, i)| i).collect()
    }

    #[test]
    fn exact_search_finds_the_brute_force_neighbours_across_blocks() {
        // More base vectors than one block and more queries than one block.
        let (n, d, k) = (BASE_BLOCK + 1234, 7, 5);
        let base = vectors(n, d, 1);
        let queries = vectors(QUERY_BLOCK + 3, d, 2);
        let index = VectorIndex::new(base.clone(), d).unwrap();
        let hits = index.search(&queries, k).unwrap();
        assert_eq!(hits.len(), QUERY_BLOCK + 3);
        for (q, h) in queries.chunks(d).zip(&hits) {
            let found: Vec<usize> = h.iter().map(|h| h.index).collect();
            assert_eq!(found, brute_force(&base, q, d, k));
            let direct = euclidean(q, index.vector(h[0].index));
            assert_eq!(h[0].distance, direct);
            assert!(h.windows(2).all(|w| w[0].distance <= w[1].distance));
        }
    }

    #[test]
    fn a_vector_is_its_own_nearest_and_neighbours_of_leaves_it_out() {
        let index = VectorIndex::new(vectors(300, 4, 3), 4).unwrap();
        let hits = index.search(index.vector(17), 3).unwrap();
        assert_eq!(
            hits[0][0],
            Hit {
                index: 17,
                distance: 0.0
            }
        );
        let others = index.neighbours_of(17, 3).unwrap();
        assert_eq!(others.len(), 3);
        assert!(others.iter().all(|h| h.index != 17));
        assert_eq!(others[0].index, hits[0][1].index);
        // k beyond the index is capped; a position beyond it is an error.
        assert_eq!(index.search(index.vector(0), 1000).unwrap()[0].len(), 300);
        let error = index.neighbours_of(300, 3).unwrap_err().to_string();
        assert!(
            error.contains("no vector 300") && error.contains("300"),
            "{error}"
        );
        let error = index.search(&[0.0; 5], 3).unwrap_err().to_string();
        assert!(error.contains("5 values") && error.contains("4"), "{error}");
        let error = VectorIndex::new(vec![0.0, f32::NAN], 2)
            .unwrap_err()
            .to_string();
        assert!(error.contains("non-finite"), "{error}");
    }

    #[test]
    fn the_approximate_index_recalls_most_exact_neighbours() {
        let d = 8;
        let index = VectorIndex::new(vectors(5000, d, 4), d).unwrap();
        let queries = vectors(200, d, 5);
        let exact = index.search(&queries, 10).unwrap();
        let approximate = index
            .approximate(HnswSettings::default())
            .search(&queries, 10)
            .unwrap();
        let recall = recall_at_k(&approximate, &exact);
        assert!(recall > 0.95, "recall@10 {recall}");
        // Its distances are Euclidean, as the exact search's.
        let first = &approximate[0][0];
        let direct = euclidean(&queries[..d], index.vector(first.index));
        assert!(
            (first.distance - direct).abs() < 1e-4,
            "{} vs {direct}",
            first.distance
        );
    }

    #[test]
    fn precision_and_recall_at_k_by_hand() {
        let hit = |index| Hit {
            index,
            distance: 0.0,
        };
        let hits = vec![vec![hit(0), hit(1)], vec![hit(2), hit(3)]];
        // Base labels 0 0 1 0; queries labelled 0 and 1: 2/2 and 1/2.
        assert_eq!(precision_at_k(&hits, &[0, 1], &[0, 0, 1, 0]), 0.75);
        let exact = vec![vec![hit(0), hit(1)], vec![hit(2), hit(1)]];
        assert_eq!(recall_at_k(&hits, &exact), 0.75);
    }

    fn small_index() -> CodeIndex {
        CodeIndex {
            header: IndexHeader {
                model: ModelStamp {
                    run: "runs/x".into(),
                    weights: "model-best.bpk".into(),
                    kind: "dense".into(),
                    fingerprint: "ab".repeat(32),
                },
                source: "shapes".into(),
                split: "test".into(),
                resize: false,
                code_len: 3,
                ids: vec!["0".into(), "1".into()],
                labels: Some(vec![1, 0]),
                class_names: vec!["a".into(), "b".into()],
                method: SearchMethod::Exact,
                hnsw: HnswSettings::default(),
            },
            codes: VectorIndex::new(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 3).unwrap(),
        }
    }

    #[test]
    fn index_files_round_trip_and_damage_is_named() {
        let index = small_index();
        let bytes = index.to_bytes().unwrap();
        let path = Path::new("codes.aeidx");
        let back = CodeIndex::from_bytes(&bytes, path).unwrap();
        assert_eq!(back.header, index.header);
        assert_eq!(back.codes.vectors(), index.codes.vectors());
        let error = |bytes: &[u8]| CodeIndex::from_bytes(bytes, path).unwrap_err().to_string();
        for cut in [0, 5, 12, 30, bytes.len() - 1] {
            let e = error(&bytes[..cut]);
            assert!(
                e.contains("codes.aeidx")
                    && (e.contains("truncated") || e.contains("not an aekit index")),
                "{cut}: {e}"
            );
        }
        let mut flipped = bytes.clone();
        let last_code = bytes.len() - 33;
        flipped[last_code] ^= 1;
        assert!(error(&flipped).contains("checksum"), "{}", error(&flipped));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(error(&longer).contains("after its end"));
        let mut version = bytes.clone();
        version[8] = 9;
        assert!(error(&version).contains("version 9"));
        assert!(error(b"PK\x03\x04 a zip file").contains("not an aekit index"));
        assert_eq!(index.position_of("1").unwrap(), 1);
        let e = index.position_of("7").unwrap_err().to_string();
        assert!(e.contains("no sample `7`") && e.contains("0 to 1"), "{e}");
    }

    #[test]
    fn method_choice_resolves_by_size() {
        assert_eq!(MethodChoice::Auto.resolve(EXACT_LIMIT), SearchMethod::Exact);
        assert_eq!(
            MethodChoice::Auto.resolve(EXACT_LIMIT + 1),
            SearchMethod::Approximate
        );
        assert_eq!(
            MethodChoice::Exact.resolve(EXACT_LIMIT + 1),
            SearchMethod::Exact
        );
        assert_eq!(
            "hnsw".parse::<MethodChoice>().unwrap(),
            MethodChoice::Approximate
        );
        assert!(
            "fast"
                .parse::<MethodChoice>()
                .unwrap_err()
                .to_string()
                .contains("`fast`")
        );
    }
}
