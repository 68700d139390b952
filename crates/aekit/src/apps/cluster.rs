//! Clustering with codes: k-means on a data set's codes (and, as N2D does, on the codes'
//! 2-D map), beside k-means on the raw inputs, each scored against the labels with NMI, ARI
//! and cluster accuracy (Hungarian matching of clusters to classes).

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::stats::cluster_metrics::{
    adjusted_rand_index, cluster_accuracy, normalized_mutual_information,
};
use crate::stats::kmeans::kmeans;
use crate::trained::TrainedModel;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What `aekit cluster` clusters.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Clusters.
    pub k: usize,
    /// k-means restarts (the best inertia is kept).
    pub n_init: usize,
    /// Seed of the initialisations (and of a t-SNE map).
    pub seed: u64,
    /// Also cluster the codes' 2-D map made this way.
    pub map: Option<super::latent_map::MapMethod>,
    /// Also cluster the raw inputs (the baseline).
    pub inputs: bool,
}

/// One clustering and how well it agrees with the labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRow {
    /// What was clustered (`codes`, `codes' t-SNE map`, `raw inputs`).
    pub on: String,
    /// Values per clustered point.
    pub dimensions: usize,
    /// Normalised mutual information with the labels (arithmetic normalisation).
    pub nmi: Option<f64>,
    /// Adjusted Rand index with the labels.
    pub ari: Option<f64>,
    /// Accuracy of the best one-to-one matching of clusters to classes.
    pub accuracy: Option<f64>,
    /// Sum of squared distances to the nearest centroid.
    pub inertia: f64,
    /// Seconds (the map's layout included).
    pub seconds: f64,
    /// Each sample's cluster.
    #[serde(skip)]
    pub assignments: Vec<usize>,
}

/// The clusterings of one data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// The run.
    pub run: String,
    /// The data clustered.
    pub data: String,
    /// Samples clustered.
    pub samples: usize,
    /// Clusters.
    pub k: usize,
    /// One row per clustering.
    pub rows: Vec<ClusterRow>,
}

impl std::fmt::Display for ClusterReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "k-means with k = {} on {} samples of {} (run {})",
            self.k, self.samples, self.data, self.run
        )?;
        writeln!(
            f,
            "{:<28} {:>6} {:>7} {:>7} {:>9} {:>8}",
            "clustered", "dims", "NMI", "ARI", "accuracy", "seconds"
        )?;
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        for row in &self.rows {
            writeln!(
                f,
                "{:<28} {:>6} {:>7} {:>7} {:>9} {:>8.1}",
                row.on,
                row.dimensions,
                show(row.nmi),
                show(row.ari),
                show(row.accuracy),
                row.seconds
            )?;
        }
        if self.rows.iter().all(|r| r.nmi.is_none()) {
            write!(f, "(the data has no labels: no agreement figures)")?;
        }
        Ok(())
    }
}

/// Clusters `data`'s codes (and what `options` adds) and scores each clustering.
pub fn cluster(
    model: &TrainedModel,
    data: &Dataset,
    options: &ClusterOptions,
) -> Result<ClusterReport> {
    if options.k < 2 || options.k > data.len() {
        return Err(Error::Input(format!(
            "--k must be between 2 and the number of samples ({}), not {}",
            data.len(),
            options.k
        )));
    }
    let codes = model.encode(&data.values)?;
    let mut rows = vec![cluster_rows(
        "codes",
        &codes,
        model.code_len(),
        data,
        options,
        0.0,
    )?];
    if let Some(method) = &options.map {
        let started = Instant::now();
        let points = super::latent_map::layout(&codes, model.code_len(), method, model.device())?;
        let flat: Vec<f32> = points.iter().flat_map(|p| *p).collect();
        let name = format!("codes' {} map", method.name());
        rows.push(cluster_rows(
            &name,
            &flat,
            2,
            data,
            options,
            started.elapsed().as_secs_f64(),
        )?);
    }
    if options.inputs {
        rows.push(cluster_rows(
            "raw inputs",
            &data.values,
            data.shape.len(),
            data,
            options,
            0.0,
        )?);
    }
    Ok(ClusterReport {
        run: model.run().path().display().to_string(),
        data: data.name.clone(),
        samples: data.len(),
        k: options.k,
        rows,
    })
}

fn cluster_rows(
    on: &str,
    points: &[f32],
    dim: usize,
    data: &Dataset,
    options: &ClusterOptions,
    extra_seconds: f64,
) -> Result<ClusterRow> {
    let started = Instant::now();
    let result = kmeans(points, dim, options.k, options.n_init.max(1), options.seed)
        .map_err(|e| Error::Input(format!("k-means on the {on}: {e}")))?;
    let seconds = started.elapsed().as_secs_f64() + extra_seconds;
    let (nmi, ari, accuracy) = match &data.labels {
        Some(labels) => {
            let truth: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
            let score = |f: fn(&[usize], &[usize]) -> std::result::Result<f64, String>| {
                f(&truth, &result.assignments).map_err(Error::Input)
            };
            (
                Some(score(normalized_mutual_information)?),
                Some(score(adjusted_rand_index)?),
                Some(score(cluster_accuracy)?),
            )
        }
        None => (None, None, None),
    };
    Ok(ClusterRow {
        on: on.to_string(),
        dimensions: dim,
        nmi,
        ari,
        accuracy,
        inertia: result.inertia,
        seconds,
        assignments: result.assignments,
    })
}
