//! The distance from each query to its k-th nearest reference sample (squared Euclidean
//! distances through one matrix product per block of queries: `|q|^2 + |r|^2 - 2 q.r`), the
//! classic nearest-neighbour anomaly score and a baseline for the autoencoders' scores.

use crate::kernels::matmul::{Matrix, product};

/// Queries per block (bounds the memory of one block's distance matrix).
const QUERY_BLOCK: usize = 1000;

/// The squared Euclidean norm of every row of `width` values (in parallel over rows).
pub(crate) fn squared_norms(rows: &[f32], width: usize) -> Vec<f32> {
    use rayon::prelude::*;
    rows.par_chunks(width.max(1))
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// For each of the `queries` (rows of `d` values), the Euclidean distance to its `k`-th
/// nearest row of `reference` (`k` counted from 1; capped at the number of references).
pub fn kth_neighbour_distance(reference: &[f32], queries: &[f32], d: usize, k: usize) -> Vec<f64> {
    let d = d.max(1);
    let n = reference.len() / d;
    if n == 0 {
        return vec![f64::INFINITY; queries.len() / d];
    }
    let k = k.clamp(1, n);
    let reference_norms = squared_norms(reference, d);
    let mut out = Vec::with_capacity(queries.len() / d);
    for block in queries.chunks(QUERY_BLOCK * d) {
        let m = block.len() / d;
        let query_norms = squared_norms(block, d);
        let mut dots = vec![0f32; m * n];
        product(
            &mut dots,
            [m, n, d],
            Matrix::row_major(block, d),
            Matrix::row_major(reference, d).transposed(),
            |_, _| {},
        );
        for (i, row) in dots.chunks_mut(n).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (query_norms[i] + reference_norms[j] - 2.0 * *v).max(0.0);
            }
            let (_, kth, _) = row.select_nth_unstable_by(k - 1, f32::total_cmp);
            out.push(f64::from(*kth).sqrt());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_to_the_kth_neighbour() {
        // References on a line at 0, 1, 3, 7; queries at 0.5 and 10.
        let reference = [0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 7.0, 0.0];
        let queries = [0.5, 0.0, 10.0, 0.0];
        let first = kth_neighbour_distance(&reference, &queries, 2, 1);
        assert!(
            (first[0] - 0.5).abs() < 1e-5 && (first[1] - 3.0).abs() < 1e-5,
            "{first:?}"
        );
        let third = kth_neighbour_distance(&reference, &queries, 2, 3);
        assert!(
            (third[0] - 2.5).abs() < 1e-5 && (third[1] - 9.0).abs() < 1e-5,
            "{third:?}"
        );
    }
}
