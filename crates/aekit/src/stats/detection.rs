//! How well scores separate anomalies from normal samples: the area under the ROC curve (the
//! probability that a random anomaly scores above a random normal sample, ties counting
//! half), average precision (scikit-learn's step-wise area under the precision-recall
//! curve), and precision, recall and F1 of the flags a threshold gives.

use serde::{Deserialize, Serialize};

/// AUROC of `scores` for the positives `anomalous`; `None` when only one class occurs (the
/// area is undefined then).
pub fn auroc(scores: &[f64], anomalous: &[bool]) -> Option<f64> {
    let positives = anomalous.iter().filter(|&&a| a).count();
    let negatives = anomalous.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Mann-Whitney U from average ranks (ties share their mean rank).
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0f64;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end + 1) as f64 / 2.0;
        rank_sum += mean_rank * order[start..end].iter().filter(|&&i| anomalous[i]).count() as f64;
        start = end;
    }
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Some(u / (positives as f64 * negatives as f64))
}

/// Average precision: `sum_n (R_n - R_{n-1}) P_n` over the distinct score thresholds from
/// the highest down, as scikit-learn's `average_precision_score`; `None` without positives.
pub fn average_precision(scores: &[f64], anomalous: &[bool]) -> Option<f64> {
    let positives = anomalous.iter().filter(|&&a| a).count();
    if positives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut true_pos, mut seen, mut previous_recall, mut area) = (0usize, 0usize, 0.0, 0.0);
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        true_pos += order[start..end].iter().filter(|&&i| anomalous[i]).count();
        seen += end - start;
        let recall = true_pos as f64 / positives as f64;
        area += (recall - previous_recall) * true_pos as f64 / seen as f64;
        previous_recall = recall;
        start = end;
    }
    Some(area)
}

/// The four counts of flags against the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    /// Anomalies flagged.
    pub true_positives: usize,
    /// Normal samples flagged.
    pub false_positives: usize,
    /// Normal samples not flagged.
    pub true_negatives: usize,
    /// Anomalies not flagged.
    pub false_negatives: usize,
}

impl Confusion {
    /// Counts `flags` against `anomalous`.
    pub fn count(flags: &[bool], anomalous: &[bool]) -> Confusion {
        let mut c = Confusion::default();
        for (&flag, &truth) in flags.iter().zip(anomalous) {
            match (flag, truth) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        c
    }

    /// Flagged anomalies among the flagged (0 when nothing is flagged).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Flagged anomalies among the anomalies (0 without anomalies).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// The harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels and scores with ties; the expected figures are scikit-learn's
    /// (`roc_auc_score`, `average_precision_score`, version 1.x).
    const LABELS: [u8; 10] = [0, 0, 1, 1, 0, 1, 0, 0, 1, 0];
    const SCORES: [f64; 10] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2, 0.55, 0.55, 0.05];

    fn truth() -> Vec<bool> {
        LABELS.iter().map(|&l| l == 1).collect()
    }

    #[test]
    fn auroc_and_average_precision_match_scikit_learn() {
        let auc = auroc(&SCORES, &truth()).unwrap();
        assert!((auc - 0.854_166_666_666_666_6).abs() < 1e-12, "{auc}");
        let ap = average_precision(&SCORES, &truth()).unwrap();
        assert!((ap - 0.830_357_142_857_142_8).abs() < 1e-12, "{ap}");
    }

    #[test]
    fn one_class_only_has_no_auroc() {
        assert_eq!(auroc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(average_precision(&[0.1, 0.2], &[false, false]), None);
        let perfect = auroc(&[0.1, 0.9], &[false, true]).unwrap();
        assert_eq!(perfect, 1.0);
    }

    #[test]
    fn confusion_counts_precision_recall_f1() {
        let flags: Vec<bool> = SCORES.iter().map(|&s| s >= 0.5).collect();
        let c = Confusion::count(&flags, &truth());
        assert_eq!(
            (
                c.true_positives,
                c.false_positives,
                c.true_negatives,
                c.false_negatives
            ),
            (3, 1, 5, 1)
        );
        assert!((c.precision() - 0.75).abs() < 1e-12);
        assert!((c.recall() - 0.75).abs() < 1e-12);
        assert!((c.f1() - 0.75).abs() < 1e-12);
    }
}
