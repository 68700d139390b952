//! `aekit data info PATH`: what a data path holds, as aekit sees it: the kind detected and,
//! per split, the number of samples, their shape, the range of their values and how many
//! samples each class has.

use super::config::{self, DataKind};
use super::table::TableOptions;
use super::{Dataset, SampleShape};
use crate::error::Result;
use serde::Serialize;
use std::path::Path;

/// At most this many classes are listed one by one in the text description.
const LISTED_CLASSES: usize = 40;

/// A description of a data source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataInfo {
    /// The path as given (`shapes` for the built-in set).
    pub path: String,
    /// The kind of source detected.
    pub kind: DataKind,
    /// The splits it holds: `train`, and `test` when it has one.
    pub splits: Vec<SplitInfo>,
}

/// A description of one split of a data source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitInfo {
    /// `train` or `test`.
    pub split: String,
    /// Number of samples.
    pub samples: usize,
    /// Shape of one sample.
    pub shape: SampleShape,
    /// Smallest value over all samples.
    pub min: f32,
    /// Largest value over all samples.
    pub max: f32,
    /// Samples per class, when labelled.
    pub classes: Option<Vec<ClassCount>>,
}

/// How many samples of a split have one label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    /// The label value.
    pub label: u32,
    /// Its name (the label itself when the source names none).
    pub name: String,
    /// Number of samples with this label.
    pub count: usize,
}

/// Loads the data at `path` (`shapes` = the built-in set) and describes it. `strict` makes
/// non-image files in an image folder errors, as in training; a CSV file is read with
/// `table`'s label column (counted as labels, not as a feature) and header setting.
pub fn describe(path: &Path, strict: bool, table: &TableOptions) -> Result<DataInfo> {
    let config = config::source_config(path, strict, table);
    let (kind, train, test) = config::load_source(&config)?;
    Ok(summarize(
        &path.display().to_string(),
        kind,
        &train,
        test.as_ref(),
    ))
}

/// Describes already loaded splits.
pub fn summarize(path: &str, kind: DataKind, train: &Dataset, test: Option<&Dataset>) -> DataInfo {
    let splits = [("train", Some(train)), ("test", test)]
        .into_iter()
        .filter_map(|(name, data)| data.map(|d| split_info(name, d)))
        .collect();
    DataInfo {
        path: path.to_string(),
        kind,
        splits,
    }
}

fn split_info(split: &str, data: &Dataset) -> SplitInfo {
    let (min, max) = if data.is_empty() {
        (0.0, 0.0)
    } else {
        data.value_range()
    };
    let classes = data.label_counts().map(|counts| {
        // Named classes with no sample in this split are listed too (count 0).
        let classes = counts.len().max(data.class_names.len());
        (0..classes)
            .map(|label| ClassCount {
                label: label as u32,
                name: data
                    .class_names
                    .get(label)
                    .cloned()
                    .unwrap_or_else(|| label.to_string()),
                count: counts.get(label).copied().unwrap_or(0),
            })
            .collect()
    });
    SplitInfo {
        split: split.to_string(),
        samples: data.len(),
        shape: data.shape,
        min,
        max,
        classes,
    }
}

impl std::fmt::Display for DataInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "path:   {}", self.path)?;
        write!(f, "kind:   {}", self.kind)?;
        for split in &self.splits {
            write!(f, "\n{split}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for SplitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let label = format!("{}:", self.split);
        write!(
            f,
            "{label:<7} {} samples of {}, values {} to {}",
            self.samples, self.shape, self.min, self.max
        )?;
        let Some(classes) = &self.classes else {
            return write!(f, "\n        no labels");
        };
        write!(f, "\n        {} classes:", classes.len())?;
        // Wrapped into lines of a readable width.
        let mut line_len = usize::MAX;
        for class in classes.iter().take(LISTED_CLASSES) {
            let item = if class.name == class.label.to_string() {
                format!("{}: {}", class.name, class.count)
            } else {
                format!("{} {}: {}", class.label, class.name, class.count)
            };
            if line_len.saturating_add(item.len()) > 72 {
                write!(f, "\n          {item}")?;
                line_len = item.len();
            } else {
                write!(f, ", {item}")?;
                line_len += item.len() + 2;
            }
        }
        if classes.len() > LISTED_CLASSES {
            write!(
                f,
                "\n          ... and {} more",
                classes.len() - LISTED_CLASSES
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_builtin_shapes() {
        let info = describe(Path::new("shapes"), false, &TableOptions::default()).unwrap();
        assert_eq!(info.kind, DataKind::Shapes);
        assert_eq!(info.splits.len(), 2);
        let train = &info.splits[0];
        assert_eq!(
            (train.samples, train.shape),
            (6000, SampleShape::image(1, 28, 28))
        );
        assert_eq!((train.min, train.max), (0.0, 1.0));
        let classes = train.classes.as_ref().unwrap();
        assert_eq!(classes.len(), 4);
        assert_eq!(classes.iter().map(|c| c.count).sum::<usize>(), 6000);
        let text = info.to_string();
        assert!(text.contains("kind:   shapes"), "{text}");
        assert!(
            text.contains("train:  6000 samples of 1x28x28, values 0 to 1"),
            "{text}"
        );
        assert!(text.contains("test:   1200 samples"), "{text}");
        assert!(text.contains("0 circle: 1500"), "{text}");
    }

    #[test]
    fn describes_a_csv_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "a,b\n-1,2\n3,4.5\n").unwrap();
        let info = describe(&path, false, &TableOptions::default()).unwrap();
        assert_eq!(info.kind, DataKind::Csv);
        assert_eq!(info.splits.len(), 1);
        let text = info.to_string();
        assert!(
            text.contains("2 samples of 2 features, values -1 to 4.5"),
            "{text}"
        );
        assert!(text.contains("no labels"), "{text}");
    }

    #[test]
    fn describes_real_mnist() {
        let Some(dir) = super::super::shared_mnist_dir() else {
            return;
        };
        let info = describe(&dir, false, &TableOptions::default()).unwrap();
        assert_eq!(info.kind, DataKind::Idx);
        let text = info.to_string();
        assert!(text.contains("train:  60000 samples of 1x28x28"), "{text}");
        assert!(text.contains("test:   10000 samples"), "{text}");
        assert!(text.contains("10 classes:"), "{text}");
        assert!(text.contains("1: 6742"), "{text}");
    }
}
