//! What a classifier gets right and wrong, per class: the confusion matrix, precision,
//! recall, F1, top-5 accuracy and ROC AUC, computed from every sample's probabilities.

use serde::Serialize;

use crate::train::{SamplePredictions, Tta};

/// Precision, recall, F1 and support of one class (or their average over classes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    /// The class, or `macro avg` / `weighted avg`.
    pub class: String,
    /// Of the samples predicted as the class, the fraction that are (0 when none are).
    pub precision: f64,
    /// Of the samples of the class, the fraction predicted as it (0 when it has none).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Samples of the class.
    pub support: u64,
}

/// A pair of classes the model mixes up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfusedPair {
    /// The samples' true class.
    pub actual: String,
    /// The class they were predicted as.
    pub predicted: String,
    /// How many.
    pub count: u64,
}

/// Everything [`ClassificationMetrics::compute`] measures; it is `metrics.json` of an
/// evaluation report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassificationMetrics {
    /// Samples measured.
    pub count: usize,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Mean loss per sample.
    pub loss: f64,
    /// The test-time augmentation the probabilities (and so every figure) come from.
    pub tta: Tta,
    /// Fraction whose true class is among the 5 most probable, for more than 5 classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top5_accuracy: Option<f64>,
    /// Area under the ROC curve of class 1's probability, for two classes (absent when the
    /// data holds only one of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    /// Class names, in the model's order.
    pub classes: Vec<String>,
    /// `confusion[actual][predicted]`: sample counts. Rows sum to each class's support and
    /// the whole matrix to `count`.
    pub confusion: Vec<Vec<u64>>,
    /// Scores of each class, in class order.
    pub per_class: Vec<ClassScores>,
    /// Unweighted mean of the classes' scores.
    pub macro_avg: ClassScores,
    /// Mean of the classes' scores weighted by their support.
    pub weighted_avg: ClassScores,
    /// Off-diagonal cells of the confusion matrix, most frequent first (at most 10, none
    /// that are empty).
    pub most_confused: Vec<ConfusedPair>,
}

impl ClassificationMetrics {
    /// Measures `samples` against their labels; `classes` names the model's outputs.
    pub fn compute(samples: &SamplePredictions, classes: &[String]) -> ClassificationMetrics {
        let k = classes.len();
        let mut confusion = vec![vec![0u64; k]; k];
        for i in 0..samples.len() {
            confusion[samples.labels[i]][samples.predicted(i)] += 1;
        }
        let per_class: Vec<ClassScores> = (0..k)
            .map(|c| {
                let support: u64 = confusion[c].iter().sum();
                let predicted: u64 = confusion.iter().map(|row| row[c]).sum();
                let hits = confusion[c][c];
                scores(
                    classes[c].clone(),
                    ratio(hits, predicted),
                    ratio(hits, support),
                    support,
                )
            })
            .collect();
        let total: u64 = per_class.iter().map(|s| s.support).sum();
        let average = |name: &str, weight: &dyn Fn(&ClassScores) -> f64| {
            let norm: f64 = per_class
                .iter()
                .map(weight)
                .sum::<f64>()
                .max(f64::MIN_POSITIVE);
            let mean = |f: fn(&ClassScores) -> f64| {
                per_class.iter().map(|s| f(s) * weight(s)).sum::<f64>() / norm
            };
            ClassScores {
                class: name.to_owned(),
                precision: mean(|s| s.precision),
                recall: mean(|s| s.recall),
                f1: mean(|s| s.f1),
                support: total,
            }
        };
        let macro_avg = average("macro avg", &|_| 1.0);
        let weighted_avg = average("weighted avg", &|s| s.support as f64);
        let mut most_confused: Vec<ConfusedPair> = (0..k)
            .flat_map(|a| (0..k).map(move |p| (a, p)))
            .filter(|&(a, p)| a != p && confusion[a][p] > 0)
            .map(|(a, p)| ConfusedPair {
                actual: classes[a].clone(),
                predicted: classes[p].clone(),
                count: confusion[a][p],
            })
            .collect();
        // Stable: equal counts keep class order.
        most_confused.sort_by_key(|pair| std::cmp::Reverse(pair.count));
        most_confused.truncate(10);
        ClassificationMetrics {
            count: samples.len(),
            accuracy: samples.accuracy(),
            loss: samples.mean_loss(),
            tta: samples.tta,
            top5_accuracy: (k > 5).then(|| top_k_accuracy(samples, 5)),
            roc_auc: if k == 2 { roc_auc(samples) } else { None },
            classes: classes.to_vec(),
            confusion,
            per_class,
            macro_avg,
            weighted_avg,
            most_confused,
        }
    }

    /// The confusion matrix with each row divided by its sum (a class without samples
    /// stays 0): the fraction of each class predicted as each class.
    pub fn row_normalised(&self) -> Vec<Vec<f64>> {
        self.confusion
            .iter()
            .map(|row| {
                let sum: u64 = row.iter().sum();
                row.iter().map(|&v| ratio(v, sum)).collect()
            })
            .collect()
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

fn scores(class: String, precision: f64, recall: f64, support: u64) -> ClassScores {
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    ClassScores {
        class,
        precision,
        recall,
        f1,
        support,
    }
}

/// Fraction of samples whose true class's probability is among the `k` largest (a class
/// tied with the k-th counts as in, as Keras' `top_k_categorical_accuracy` does).
fn top_k_accuracy(samples: &SamplePredictions, k: usize) -> f64 {
    let hits = (0..samples.len())
        .filter(|&i| {
            let row = &samples.probabilities[i];
            let own = row[samples.labels[i]];
            row.iter().filter(|&&p| p > own).count() < k
        })
        .count();
    ratio(hits as u64, samples.len() as u64)
}

/// ROC AUC of class 1's probability: the chance that a random sample of class 1 scores
/// above a random sample of class 0, ties counting half (the Mann-Whitney statistic, equal
/// to the trapezoidal area under the ROC curve). `None` unless both classes occur.
fn roc_auc(samples: &SamplePredictions) -> Option<f64> {
    let mut scored: Vec<(f64, bool)> = (0..samples.len())
        .map(|i| (samples.probabilities[i][1], samples.labels[i] == 1))
        .collect();
    let positives = scored.iter().filter(|s| s.1).count() as f64;
    let negatives = scored.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' ranks (1-based), tied scores sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < scored.len() {
        let end = start
            + scored[start..]
                .iter()
                .take_while(|s| s.0 == scored[start].0)
                .count();
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += mean_rank * scored[start..end].iter().filter(|s| s.1).count() as f64;
        start = end;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rows: &[(&[f64], usize)]) -> SamplePredictions {
        SamplePredictions {
            probabilities: rows.iter().map(|r| r.0.to_vec()).collect(),
            losses: vec![0.5; rows.len()],
            labels: rows.iter().map(|r| r.1).collect(),
            tta: Default::default(),
        }
    }

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn scores_match_scikit_learns_classification_report() {
        // y_true = [0,0,0,1,1,2], y_pred = [0,0,1,1,2,2]: scikit-learn gives
        // precision [1, .5, .5], recall [.667, .5, 1], f1 [.8, .5, .667],
        // macro f1 .6556, weighted f1 .6778.
        let s = samples(&[
            (&[0.8, 0.1, 0.1], 0),
            (&[0.6, 0.3, 0.1], 0),
            (&[0.2, 0.7, 0.1], 0),
            (&[0.1, 0.8, 0.1], 1),
            (&[0.1, 0.2, 0.7], 1),
            (&[0.1, 0.1, 0.8], 2),
        ]);
        let m = ClassificationMetrics::compute(&s, &names(3));
        assert_eq!(
            m.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert_eq!(m.confusion.iter().flatten().sum::<u64>(), 6);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
        let p: Vec<f64> = m.per_class.iter().map(|s| s.precision).collect();
        let r: Vec<f64> = m.per_class.iter().map(|s| s.recall).collect();
        assert!(
            close(p[0], 1.0) && close(p[1], 0.5) && close(p[2], 0.5),
            "{p:?}"
        );
        assert!(
            close(r[0], 0.6667) && close(r[1], 0.5) && close(r[2], 1.0),
            "{r:?}"
        );
        assert!(close(m.macro_avg.f1, 0.6556), "{}", m.macro_avg.f1);
        assert!(close(m.weighted_avg.f1, 0.6778), "{}", m.weighted_avg.f1);
        assert!(close(m.accuracy, 4.0 / 6.0));
        assert_eq!(m.per_class[0].support, 3);
        assert_eq!(m.macro_avg.support, 6);
        assert_eq!(m.top5_accuracy, None);
        assert_eq!(m.roc_auc, None);
        assert_eq!(m.most_confused.len(), 2);
        assert_eq!(m.most_confused[0].actual, "c0");
        assert_eq!(m.most_confused[0].predicted, "c1");
        let rows = m.row_normalised();
        assert!(close(rows[0][0], 2.0 / 3.0) && close(rows[1][2], 0.5));
    }

    #[test]
    fn roc_auc_counts_pairs_and_halves_ties() {
        // scikit-learn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
        let s = samples(&[
            (&[0.9, 0.1], 0),
            (&[0.6, 0.4], 0),
            (&[0.65, 0.35], 1),
            (&[0.2, 0.8], 1),
        ]);
        let auc = ClassificationMetrics::compute(&s, &names(2))
            .roc_auc
            .unwrap();
        assert!((auc - 0.75).abs() < 1e-12, "{auc}");
        let tied = samples(&[(&[0.5, 0.5], 0), (&[0.5, 0.5], 1)]);
        assert_eq!(
            ClassificationMetrics::compute(&tied, &names(2)).roc_auc,
            Some(0.5)
        );
        let one_class = samples(&[(&[0.5, 0.5], 1)]);
        assert_eq!(
            ClassificationMetrics::compute(&one_class, &names(2)).roc_auc,
            None
        );
    }

    #[test]
    fn top5_accuracy_for_more_than_five_classes() {
        let row = [0.3, 0.2, 0.15, 0.1, 0.09, 0.08, 0.08];
        let s = samples(&[(&row, 4), (&row, 5), (&row, 0)]);
        let m = ClassificationMetrics::compute(&s, &names(7));
        // class 4 is 5th (in), class 5 is tied 6th-7th (out), class 0 is 1st.
        assert!((m.top5_accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_class_never_predicted_scores_zero_not_nan() {
        let s = samples(&[(&[0.9, 0.1], 0), (&[0.8, 0.2], 1)]);
        let m = ClassificationMetrics::compute(&s, &names(2));
        assert_eq!(m.per_class[1].precision, 0.0);
        assert_eq!(m.per_class[1].f1, 0.0);
        assert!(serde_json::to_string(&m).unwrap().contains("\"roc_auc\""));
    }
}
