//! Generated tables with known structure, so that table examples and tests run anywhere:
//! rows drawn from a low-rank Gaussian (a few latent factors mixed into many features, plus
//! a little noise), optionally with columns on very different scales, and a label column
//! (which half of the first factor a row lies in); and the built-in shapes written as an
//! image folder with one sub-folder per class, to try the image-folder workflow on.

use rand::SeedableRng;
use rand_distr::{Distribution, Normal, StandardNormal};
use std::fmt::Write as _;

/// What [`correlated_table`] draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableSpec {
    /// Rows.
    pub rows: usize,
    /// Feature columns.
    pub features: usize,
    /// Latent factors the features are mixed from (the table's rank, before noise).
    pub factors: usize,
    /// Standard deviation of the noise added to every feature (before column scaling).
    pub noise: f64,
    /// Column `j` is multiplied by `10^(j mod 5)` (scales from 1 to 10^4) and shifted by
    /// `j`, as measured quantities in different units are.
    pub mixed_scales: bool,
    /// Seed of every draw.
    pub seed: u64,
    /// Anomalous rows added among the normal ones (0: none). Half lie far out along the
    /// manifold (factors four times as large: only their code is unusual), half off it
    /// (ten times the noise: their reconstruction is poor). With anomalies, the label
    /// column says which rows are anomalous (1) and which normal (0).
    pub anomalies: usize,
}

impl Default for TableSpec {
    fn default() -> Self {
        Self {
            rows: 2000,
            features: 30,
            factors: 5,
            noise: 0.05,
            mixed_scales: true,
            seed: 0,
            anomalies: 0,
        }
    }
}

/// The rows of a table drawn as `spec` says, row-major, and each row's label (0 or 1: the
/// sign of its first factor; with anomalies, whether the row is one).
pub fn correlated_rows(spec: &TableSpec) -> (Vec<f32>, Vec<u32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    let mixing: Vec<f64> = (0..spec.factors * spec.features)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let noise = Normal::new(0.0, spec.noise.max(0.0)).expect("a valid spread");
    let loud = Normal::new(0.0, 10.0 * spec.noise.max(1e-3)).expect("a valid spread");
    let total = spec.rows + spec.anomalies;
    // Which rows are anomalous: a seeded choice, spread through the table.
    let mut anomalous = vec![false; total];
    if spec.anomalies > 0 {
        for i in rand::seq::index::sample(&mut rng, total, spec.anomalies.min(total)) {
            anomalous[i] = true;
        }
    }
    let mut values = Vec::with_capacity(total * spec.features);
    let mut labels = Vec::with_capacity(total);
    let mut seen_anomalies = 0usize;
    for &is_anomaly in &anomalous {
        let mut z: Vec<f64> = (0..spec.factors)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let off_manifold = is_anomaly && seen_anomalies % 2 == 1;
        if is_anomaly && !off_manifold {
            z.iter_mut().for_each(|v| *v *= 4.0);
        }
        seen_anomalies += usize::from(is_anomaly);
        labels.push(if spec.anomalies > 0 {
            u32::from(is_anomaly)
        } else {
            u32::from(z.first().is_some_and(|&v| v > 0.0))
        });
        for j in 0..spec.features {
            let signal: f64 = (0..spec.factors)
                .map(|f| z[f] * mixing[f * spec.features + j])
                .sum();
            let jitter = if off_manifold {
                loud.sample(&mut rng)
            } else {
                noise.sample(&mut rng)
            };
            let value = signal + jitter;
            let value = if spec.mixed_scales {
                value * 10f64.powi((j % 5) as i32) + j as f64
            } else {
                value
            };
            values.push(value as f32);
        }
    }
    (values, labels)
}

/// The table as CSV text: a header `f0,...,f{n-1},label`, then one row per line.
pub fn correlated_table(spec: &TableSpec) -> String {
    let (values, labels) = correlated_rows(spec);
    let mut text: String = (0..spec.features)
        .map(|j| format!("f{j},"))
        .collect::<String>();
    text.push_str("label\n");
    for (row, label) in values.chunks(spec.features.max(1)).zip(labels) {
        for v in row {
            let _ = write!(text, "{v},");
        }
        let _ = writeln!(text, "{label}");
    }
    text
}

/// Writes `count` generated shapes of `size` pixels as grey PNGs into `dir/<class>/`
/// (`circle`, `square`, ...); returns the files written. Existing files are refused.
pub fn shapes_folder(
    dir: &std::path::Path,
    count: usize,
    size: usize,
    seed: u64,
) -> crate::Result<Vec<std::path::PathBuf>> {
    let data = super::shapes::generate(count, size, seed);
    let labels = data.labels.clone().unwrap_or_default();
    let mut written = Vec::with_capacity(data.len());
    for (i, label) in labels.iter().enumerate() {
        let class = dir.join(&data.class_names[*label as usize]);
        std::fs::create_dir_all(&class).map_err(|e| crate::Error::io(&class, e))?;
        let path = class.join(format!("{i:05}.png"));
        if path.exists() {
            return Err(crate::Error::data(
                &path,
                "already exists; choose an empty folder",
            ));
        }
        crate::plots::save_sample_png(&path, data.shape, data.sample(i))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_its_rank_its_scales_and_a_label() {
        let spec = TableSpec {
            rows: 400,
            ..TableSpec::default()
        };
        let (values, labels) = correlated_rows(&spec);
        assert_eq!(values.len(), 400 * 30);
        assert!(labels.contains(&0) && labels.contains(&1));
        let spread = |j: usize| {
            let column: Vec<f32> = values.iter().skip(j).step_by(30).copied().collect();
            let mean = column.iter().sum::<f32>() / column.len() as f32;
            (column.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / column.len() as f32).sqrt()
        };
        assert!(
            spread(4) > 1000.0 * spread(0),
            "columns differ in scale by 10^4"
        );
        let text = correlated_table(&spec);
        assert!(text.starts_with("f0,f1,"));
        assert_eq!(text.lines().count(), 401);
        assert_eq!(correlated_table(&spec), text, "seeded");
    }
}
