//! How well a clustering agrees with ground-truth classes: normalised mutual information,
//! the adjusted Rand index and cluster accuracy (the best one-to-one matching of clusters to
//! classes, found with the Hungarian algorithm).
//!
//! The definitions and their degenerate cases follow scikit-learn
//! (`normalized_mutual_info_score` with `average_method='arithmetic'`, `adjusted_rand_score`),
//! so the numbers can be compared with published results. Label values are arbitrary
//! (`3, 7, 100` is as good as `0, 1, 2`): only which samples share a label matters.

use std::collections::BTreeMap;

/// The contingency table of two labelings: `counts[class][cluster]` is how many samples have
/// that true class and that predicted cluster.
struct Contingency {
    counts: Vec<Vec<u64>>,
    class_sizes: Vec<u64>,
    cluster_sizes: Vec<u64>,
    samples: u64,
}

/// Normalised mutual information between `truth` and `predicted`, natural log, normalised by
/// the arithmetic mean of the two entropies (scikit-learn's default).
///
/// Both labelings having a single cluster counts as a perfect match (1.0); a zero mutual
/// information gives 0.0 whatever the entropies. Errors when the lengths differ or the
/// input is empty.
pub fn normalized_mutual_information(truth: &[usize], predicted: &[usize]) -> Result<f64, String> {
    let table = Contingency::new(truth, predicted)?;
    if table.class_sizes.len() == 1 && table.cluster_sizes.len() == 1 {
        return Ok(1.0);
    }
    let mutual_information = table.mutual_information();
    // Only a single-cluster labeling pair can have zero MI and still be a perfect match, and
    // that case is handled above.
    if mutual_information == 0.0 {
        return Ok(0.0);
    }
    let mean_entropy = (entropy(&table.class_sizes) + entropy(&table.cluster_sizes)) / 2.0;
    Ok(mutual_information / mean_entropy)
}

/// Adjusted Rand index between `truth` and `predicted` (scikit-learn's `adjusted_rand_score`):
/// 1.0 for identical partitions, about 0.0 for independent ones, negative when worse than
/// chance.
///
/// As in scikit-learn, a pair of labelings with no disagreeing pairs at all (for example both
/// single-cluster, or both all-singletons) scores 1.0. Errors when the lengths differ or the
/// input is empty.
pub fn adjusted_rand_index(truth: &[usize], predicted: &[usize]) -> Result<f64, String> {
    let table = Contingency::new(truth, predicted)?;
    let pairs = PairCounts::from_table(&table);
    if pairs.split_in_predicted == 0 && pairs.split_in_truth == 0 {
        return Ok(1.0);
    }
    Ok(pairs.adjusted_rand_index())
}

/// Cluster accuracy: the fraction of samples whose cluster is matched to their class under
/// the one-to-one matching of clusters to classes that matches the most samples.
///
/// The number of clusters may differ from the number of classes; unmatched clusters (or
/// classes) count as wrong. Errors when the lengths differ or the input is empty.
pub fn cluster_accuracy(truth: &[usize], predicted: &[usize]) -> Result<f64, String> {
    let table = Contingency::new(truth, predicted)?;
    let weights: Vec<Vec<i64>> = table
        .counts
        .iter()
        .map(|row| row.iter().map(|&count| count as i64).collect())
        .collect();
    let assignment = hungarian_max(&weights);
    let matched: i64 = assignment
        .iter()
        .enumerate()
        .filter_map(|(row, column)| column.map(|column| weights[row][column]))
        .sum();
    Ok(matched as f64 / table.samples as f64)
}

/// Maximum-weight assignment of rows to columns (Hungarian algorithm, `O(n^2 m)`).
///
/// `weights` is a rectangular `rows x columns` table. Returns, for each row, the column it is
/// assigned to; every column is used at most once, so when there are more rows than columns
/// some rows get `None`. The total weight of the assigned cells is the largest possible.
///
/// # Panics
///
/// Panics if the rows of `weights` have different lengths.
pub fn hungarian_max(weights: &[Vec<i64>]) -> Vec<Option<usize>> {
    let rows = weights.len();
    let columns = weights.first().map_or(0, Vec::len);
    assert!(
        weights.iter().all(|row| row.len() == columns),
        "hungarian_max: every row must have {columns} columns"
    );
    if rows == 0 || columns == 0 {
        return vec![None; rows];
    }
    if rows <= columns {
        // Maximising the weight is minimising its negation.
        let cost = negated(rows, columns, |r, c| weights[r][c]);
        return min_cost_assignment(&cost, columns)
            .into_iter()
            .map(Some)
            .collect();
    }
    // The algorithm needs rows <= columns, so solve the transposed problem and invert it.
    let cost = negated(columns, rows, |r, c| weights[c][r]);
    let mut assignment = vec![None; rows];
    for (column, row) in min_cost_assignment(&cost, rows).into_iter().enumerate() {
        assignment[row] = Some(column);
    }
    assignment
}

impl Contingency {
    /// Builds the table, mapping arbitrary label values to dense indices in sorted order.
    fn new(truth: &[usize], predicted: &[usize]) -> Result<Self, String> {
        check_lengths(truth, predicted)?;
        let (classes, class_count) = dense_labels(truth);
        let (clusters, cluster_count) = dense_labels(predicted);
        let mut counts = vec![vec![0u64; cluster_count]; class_count];
        for (&class, &cluster) in classes.iter().zip(&clusters) {
            counts[class][cluster] += 1;
        }
        let class_sizes = counts.iter().map(|row| row.iter().sum()).collect();
        let cluster_sizes = (0..cluster_count)
            .map(|cluster| counts.iter().map(|row| row[cluster]).sum())
            .collect();
        Ok(Self {
            counts,
            class_sizes,
            cluster_sizes,
            samples: truth.len() as u64,
        })
    }

    /// Mutual information in nats, computed term by term as scikit-learn does (terms below
    /// machine epsilon dropped, the sum clipped at zero) so near-independent labelings give
    /// the same exact zero.
    fn mutual_information(&self) -> f64 {
        if self.class_sizes.len() == 1 || self.cluster_sizes.len() == 1 {
            return 0.0;
        }
        let log_samples = (self.samples as f64).ln();
        let mut total = 0.0;
        for (class, row) in self.counts.iter().enumerate() {
            for (cluster, &count) in row.iter().enumerate().filter(|(_, count)| **count > 0) {
                let outer = (self.class_sizes[class] * self.cluster_sizes[cluster]) as f64;
                let share = count as f64 / self.samples as f64;
                let term = share * ((count as f64).ln() - log_samples)
                    + share * (2.0 * log_samples - outer.ln());
                if term.abs() >= f64::EPSILON {
                    total += term;
                }
            }
        }
        total.max(0.0)
    }
}

/// The pair-confusion counts behind the Rand index (scikit-learn's `pair_confusion_matrix`):
/// ordered pairs of distinct samples, classified by whether each labeling puts them together.
struct PairCounts {
    /// Together in both labelings.
    together_in_both: i128,
    /// Apart in both labelings.
    apart_in_both: i128,
    /// Together in `truth`, apart in `predicted`.
    split_in_predicted: i128,
    /// Apart in `truth`, together in `predicted`.
    split_in_truth: i128,
}

impl PairCounts {
    /// Counts the pairs from the contingency table (`i128` so no realistic size overflows).
    fn from_table(table: &Contingency) -> Self {
        let samples = i128::from(table.samples);
        let mut sum_squares = 0i128;
        let mut weighted_by_cluster = 0i128;
        let mut weighted_by_class = 0i128;
        for (class, row) in table.counts.iter().enumerate() {
            for (cluster, &count) in row.iter().enumerate() {
                let count = i128::from(count);
                sum_squares += count * count;
                weighted_by_cluster += count * i128::from(table.cluster_sizes[cluster]);
                weighted_by_class += count * i128::from(table.class_sizes[class]);
            }
        }
        let split_in_truth = weighted_by_cluster - sum_squares;
        let split_in_predicted = weighted_by_class - sum_squares;
        Self {
            together_in_both: sum_squares - samples,
            apart_in_both: samples * samples - split_in_truth - split_in_predicted - sum_squares,
            split_in_predicted,
            split_in_truth,
        }
    }

    /// The adjusted Rand index from the pair counts (Hubert and Arabie's closed form).
    fn adjusted_rand_index(&self) -> f64 {
        let (tp, tn) = (self.together_in_both, self.apart_in_both);
        let (fn_, fp) = (self.split_in_predicted, self.split_in_truth);
        let numerator = 2 * (tp * tn - fn_ * fp);
        let denominator = (tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn);
        numerator as f64 / denominator as f64
    }
}

/// Entropy in nats of the distribution given by `sizes` (all positive).
fn entropy(sizes: &[u64]) -> f64 {
    if sizes.len() == 1 {
        return 0.0;
    }
    let total = sizes.iter().sum::<u64>() as f64;
    let log_total = total.ln();
    -sizes
        .iter()
        .map(|&size| size as f64 / total * ((size as f64).ln() - log_total))
        .sum::<f64>()
}

/// Refuses labelings of different lengths or no samples, naming both lengths.
fn check_lengths(truth: &[usize], predicted: &[usize]) -> Result<(), String> {
    if truth.len() != predicted.len() {
        return Err(format!(
            "labelings differ in length: truth has {} labels, predicted has {}",
            truth.len(),
            predicted.len()
        ));
    }
    if truth.is_empty() {
        return Err("labelings are empty: truth has 0 labels, predicted has 0".to_string());
    }
    Ok(())
}

/// Maps label values to `0..distinct` in sorted order; returns the dense labels and the
/// number of distinct values.
fn dense_labels(labels: &[usize]) -> (Vec<usize>, usize) {
    let mut index: BTreeMap<usize, usize> = labels.iter().map(|&label| (label, 0)).collect();
    for (dense, slot) in index.values_mut().enumerate() {
        *slot = dense;
    }
    let dense = labels.iter().map(|label| index[label]).collect();
    (dense, index.len())
}

/// The `rows x columns` cost table `-weight(r, c)`, widened so no negation or potential
/// overflows.
fn negated(rows: usize, columns: usize, weight: impl Fn(usize, usize) -> i64) -> Vec<Vec<i128>> {
    (0..rows)
        .map(|r| (0..columns).map(|c| -i128::from(weight(r, c))).collect())
        .collect()
}

/// Minimum-cost assignment of every row of `cost` (rows <= `columns`) to a distinct column;
/// returns the column of each row. Shortest augmenting paths with row and column potentials
/// (the classic `O(n^2 m)` Hungarian algorithm).
fn min_cost_assignment(cost: &[Vec<i128>], columns: usize) -> Vec<usize> {
    let mut state = Potentials::new(cost.len(), columns);
    for row in 0..cost.len() {
        state.add_row(cost, row);
    }
    let mut assignment = vec![0; cost.len()];
    for column in 0..columns {
        if let Some(row) = state.row_of_column[column + 1] {
            assignment[row] = column;
        }
    }
    assignment
}

/// The Hungarian algorithm's state. Column index 0 is a virtual column that holds the row
/// being inserted; real column `c` is index `c + 1`.
struct Potentials {
    row_potential: Vec<i128>,
    column_potential: Vec<i128>,
    row_of_column: Vec<Option<usize>>,
    previous_column: Vec<usize>,
}

impl Potentials {
    /// No rows assigned yet, all potentials zero.
    fn new(rows: usize, columns: usize) -> Self {
        Self {
            row_potential: vec![0; rows],
            column_potential: vec![0; columns + 1],
            row_of_column: vec![None; columns + 1],
            previous_column: vec![0; columns + 1],
        }
    }

    /// Assigns `row`, re-routing earlier rows along the cheapest augmenting path.
    fn add_row(&mut self, cost: &[Vec<i128>], row: usize) {
        let columns = self.column_potential.len();
        self.row_of_column[0] = Some(row);
        let mut slack = vec![i128::MAX; columns];
        let mut visited = vec![false; columns];
        let mut current = 0;
        while let Some(current_row) = self.row_of_column[current] {
            visited[current] = true;
            let (delta, next) = self.relax(cost, current_row, current, &visited, &mut slack);
            self.shift_potentials(delta, &visited, &mut slack);
            current = next;
        }
        self.augment(current);
    }

    /// Updates the slack of every unvisited column through `row` (reached via column `from`)
    /// and returns the smallest slack and its column.
    fn relax(
        &mut self,
        cost: &[Vec<i128>],
        row: usize,
        from: usize,
        visited: &[bool],
        slack: &mut [i128],
    ) -> (i128, usize) {
        let mut best = (i128::MAX, 0);
        for column in 1..slack.len() {
            if visited[column] {
                continue;
            }
            let reduced =
                cost[row][column - 1] - self.row_potential[row] - self.column_potential[column];
            if reduced < slack[column] {
                slack[column] = reduced;
                self.previous_column[column] = from;
            }
            if slack[column] < best.0 {
                best = (slack[column], column);
            }
        }
        best
    }

    /// Moves the potentials by `delta` so the cheapest new edge becomes tight.
    fn shift_potentials(&mut self, delta: i128, visited: &[bool], slack: &mut [i128]) {
        for column in 0..slack.len() {
            if visited[column] {
                if let Some(row) = self.row_of_column[column] {
                    self.row_potential[row] += delta;
                }
                self.column_potential[column] -= delta;
            } else {
                slack[column] -= delta;
            }
        }
    }

    /// Flips the assignments along the path that ends at the free column `end`.
    fn augment(&mut self, mut end: usize) {
        while end != 0 {
            let previous = self.previous_column[end];
            self.row_of_column[end] = self.row_of_column[previous];
            end = previous;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: f64 = 1e-9;

    /// One labeling pair and scikit-learn's scores for it.
    struct Reference {
        truth: Vec<usize>,
        predicted: Vec<usize>,
        nmi: f64,
        ari: f64,
        accuracy: f64,
    }

    /// Reference values from scikit-learn 1.9.1 (`normalized_mutual_info_score`,
    /// `adjusted_rand_score`), with accuracy from scipy 1.17.1's
    /// `linear_sum_assignment(contingency, maximize=True)`; numpy 2.4.6, Python 3.11.
    fn references() -> Vec<Reference> {
        let case = |truth: Vec<usize>, predicted: Vec<usize>, nmi, ari, accuracy| Reference {
            truth,
            predicted,
            nmi,
            ari,
            accuracy,
        };
        vec![
            // A perfect clustering with permuted, arbitrary cluster ids.
            case(
                vec![0, 0, 0, 1, 1, 1, 2, 2, 2],
                vec![5, 5, 5, 9, 9, 9, 1, 1, 1],
                1.0,
                1.0,
                1.0,
            ),
            // Independent labelings.
            case(vec![0, 0, 1, 1], vec![0, 1, 0, 1], 0.0, -0.5, 0.5),
            // Three classes with arbitrary ids, four clusters.
            case(
                vec![3, 3, 3, 7, 7, 7, 7, 100, 100, 100],
                vec![0, 0, 1, 1, 1, 2, 2, 2, 3, 3],
                0.5759466679735675,
                0.23728813559322035,
                0.6,
            ),
            case(
                (0..60).map(|i| (i * 7) % 5).collect(),
                (0..60).map(|i| ((i * i + i) / 3) % 5).collect(),
                0.5254395695738252,
                0.2741652021089631,
                0.4666666666666667,
            ),
            // Weakly related, four clusters for five classes.
            case(
                (0..60).map(|i| (i * 7) % 5).collect(),
                (0..60).map(|i| (i * 3 / 7) % 4).collect(),
                0.01674223768442892,
                -0.046581817146436603,
                0.26666666666666666,
            ),
            // Six clusters, independent of the classes (mutual information exactly zero).
            case(
                (0..60).map(|i| (i * 7) % 5).collect(),
                (0..60).map(|i| (i * i) % 6).collect(),
                0.0,
                -0.05642973412913728,
                0.2,
            ),
            // Fewer clusters (three) than classes (four).
            case(
                (0..40).map(|i| i % 4).collect(),
                (0..40)
                    .map(|i| (i % 4) / 2 + usize::from(i % 7 == 0))
                    .collect(),
                0.4293346134935515,
                0.3028214516476416,
                0.5,
            ),
            // A single true class.
            case(vec![2; 6], vec![0, 1, 1, 2, 2, 2], 0.0, 0.0, 0.5),
            // Both single-cluster.
            case(vec![4; 5], vec![9; 5], 1.0, 1.0, 1.0),
            // Both all-singletons.
            case((0..6).collect(), (0..6).collect(), 1.0, 1.0, 1.0),
        ]
    }

    fn assert_close(actual: f64, expected: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= TOLERANCE,
            "{what}: got {actual}, expected {expected}"
        );
    }

    #[test]
    fn nmi_matches_scikit_learn() {
        for (i, case) in references().iter().enumerate() {
            let nmi = normalized_mutual_information(&case.truth, &case.predicted).unwrap();
            assert_close(nmi, case.nmi, &format!("case {i} NMI"));
        }
    }

    #[test]
    fn ari_matches_scikit_learn() {
        for (i, case) in references().iter().enumerate() {
            let ari = adjusted_rand_index(&case.truth, &case.predicted).unwrap();
            assert_close(ari, case.ari, &format!("case {i} ARI"));
        }
    }

    #[test]
    fn accuracy_matches_linear_sum_assignment() {
        for (i, case) in references().iter().enumerate() {
            let accuracy = cluster_accuracy(&case.truth, &case.predicted).unwrap();
            assert_close(accuracy, case.accuracy, &format!("case {i} accuracy"));
        }
    }

    #[test]
    fn metrics_are_symmetric_in_their_arguments() {
        for case in references() {
            let forward = normalized_mutual_information(&case.truth, &case.predicted).unwrap();
            let backward = normalized_mutual_information(&case.predicted, &case.truth).unwrap();
            assert_close(forward, backward, "NMI symmetry");
            let forward = adjusted_rand_index(&case.truth, &case.predicted).unwrap();
            let backward = adjusted_rand_index(&case.predicted, &case.truth).unwrap();
            assert_close(forward, backward, "ARI symmetry");
        }
    }

    #[test]
    fn different_lengths_are_an_error_naming_both() {
        let truth = [0, 1, 2];
        let predicted = [0, 1];
        for result in [
            normalized_mutual_information(&truth, &predicted),
            adjusted_rand_index(&truth, &predicted),
            cluster_accuracy(&truth, &predicted),
        ] {
            let message = result.unwrap_err();
            assert!(message.contains('3') && message.contains('2'), "{message}");
        }
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(normalized_mutual_information(&[], &[]).is_err());
        assert!(adjusted_rand_index(&[], &[]).is_err());
        assert!(cluster_accuracy(&[], &[]).is_err());
    }

    #[test]
    fn dense_labels_keep_sorted_order() {
        assert_eq!(dense_labels(&[100, 3, 7, 3]), (vec![2, 0, 1, 0], 3));
    }

    /// Brute force over all injective row -> column maps, for checking the Hungarian result.
    fn best_total(weights: &[Vec<i64>], row: usize, used: &mut Vec<bool>) -> i64 {
        if row == weights.len() {
            return 0;
        }
        let columns = weights[0].len();
        let rows_left = weights.len() - row;
        let columns_left = used.iter().filter(|&&u| !u).count();
        // A row may stay unassigned only when there are more rows than columns.
        let mut best = if rows_left > columns_left {
            best_total(weights, row + 1, used)
        } else {
            i64::MIN
        };
        for column in 0..columns {
            if !used[column] {
                used[column] = true;
                let total = weights[row][column] + best_total(weights, row + 1, used);
                used[column] = false;
                best = best.max(total);
            }
        }
        best
    }

    fn assignment_total(weights: &[Vec<i64>], assignment: &[Option<usize>]) -> i64 {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for (row, column) in assignment.iter().enumerate() {
            if let Some(column) = *column {
                assert!(seen.insert(column), "column {column} assigned twice");
                total += weights[row][column];
            }
        }
        total
    }

    #[test]
    fn hungarian_square_known_optimum() {
        // scipy.optimize.linear_sum_assignment(maximize=True) gives rows -> [0, 2, 1], total 24.
        let weights = vec![vec![7, 5, 1], vec![2, 4, 8], vec![3, 9, 6]];
        let assignment = hungarian_max(&weights);
        assert_eq!(assignment, vec![Some(0), Some(2), Some(1)]);
        assert_eq!(assignment_total(&weights, &assignment), 24);
    }

    #[test]
    fn hungarian_rectangular_both_ways() {
        let wide = vec![vec![1, 9, 3, 4], vec![8, 7, 2, 1]];
        let assignment = hungarian_max(&wide);
        assert_eq!(assignment, vec![Some(1), Some(0)]);
        let tall: Vec<Vec<i64>> = (0..4)
            .map(|c| wide.iter().map(|r| r[c]).collect())
            .collect();
        let assignment = hungarian_max(&tall);
        assert_eq!(assignment, vec![Some(1), Some(0), None, None]);
    }

    #[test]
    fn hungarian_matches_brute_force() {
        for (rows, columns) in [(1, 1), (3, 3), (4, 5), (5, 3), (6, 6), (2, 6)] {
            for seed in 0..20i64 {
                let weights: Vec<Vec<i64>> = (0..rows as i64)
                    .map(|r| {
                        (0..columns as i64)
                            .map(|c| (r * 31 + c * 17 + seed * 13 + r * c * seed) % 23 - 7)
                            .collect()
                    })
                    .collect();
                let assignment = hungarian_max(&weights);
                assert_eq!(assignment.len(), rows);
                let expected = best_total(&weights, 0, &mut vec![false; columns]);
                assert_eq!(assignment_total(&weights, &assignment), expected);
                let assigned = assignment.iter().filter(|c| c.is_some()).count();
                assert_eq!(assigned, rows.min(columns));
            }
        }
    }

    #[test]
    fn hungarian_empty_tables() {
        assert!(hungarian_max(&[]).is_empty());
        assert_eq!(hungarian_max(&[vec![], vec![]]), vec![None, None]);
    }
}
