//! CSV tables: one sample per row, one feature per column, with an optional label column.
//!
//! Values are used as they are: no scaling or standardisation is applied, so a table meant
//! for a model with a sigmoid output (or a binary cross-entropy loss) must already hold
//! values in [0, 1], and features of very different scales should be standardised before.
//! Every feature cell must be a finite number; anything else is an error naming the file,
//! the line and the column.

use super::{Dataset, SampleShape};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Integer labels up to this value are used as they are; larger ones (ids, years) are
/// mapped to 0..k like text labels, so that a class list stays small.
const MAX_DIRECT_LABEL: u32 = 65_535;

/// How a CSV file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// The column (by header name) holding the labels; without it every column is a feature.
    pub label_column: Option<String>,
    /// Whether the first row names the columns.
    pub has_header: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            label_column: None,
            has_header: true,
        }
    }
}

/// Loads a CSV file: features as the sample values, the label column (if any) as labels.
///
/// Labels that are all small non-negative integers are used as they are (class names
/// `"0"`, `"1"`, ...); other labels are mapped to 0..k in sorted order (numeric order when
/// they are all numbers), the class names being the original values.
pub fn load_csv(path: &Path, options: &TableOptions) -> Result<Dataset> {
    if path.is_dir() {
        return Err(Error::data(
            path,
            "is a folder, but data.kind = \"csv\" reads one .csv file: point data.path at the \
             file, or use kind = \"images\" (or \"auto\") for a folder of images",
        ));
    }
    let csv_error = |e: csv::Error| {
        if !e.is_io_error() {
            return Error::data(path, e.to_string());
        }
        match e.into_kind() {
            csv::ErrorKind::Io(e) => Error::io(path, e),
            other => Error::data(path, format!("{other:?}")),
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(options.has_header)
        // Ragged rows are checked here, to report them with the expected width.
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(csv_error)?;
    let headers: Option<Vec<String>> = if options.has_header {
        let headers = reader.headers().map_err(csv_error)?;
        if headers.is_empty() {
            return Err(Error::data(path, "the table is empty: no header, no rows"));
        }
        Some(headers.iter().map(str::to_string).collect())
    } else {
        None
    };
    let label_index = match (&options.label_column, &headers) {
        (None, _) => None,
        (Some(name), Some(headers)) => {
            Some(headers.iter().position(|h| h == name).ok_or_else(|| {
                Error::data(
                    path,
                    format!(
                        "has no column named `{name}` for the labels (its columns are: {})",
                        list_columns(headers)
                    ),
                )
            })?)
        }
        (Some(name), None) => {
            return Err(Error::data(
                path,
                format!(
                    "the label column `{name}` is named by the header, but the table is read \
                     without one (has_header = false)"
                ),
            ));
        }
    };

    let mut width = headers.as_ref().map(Vec::len);
    let mut values = Vec::new();
    let mut raw_labels = Vec::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        let expected = *width.get_or_insert(record.len());
        if record.len() != expected {
            return Err(Error::data(
                path,
                format!(
                    "line {line} has {} fields, but the table has {expected} columns",
                    record.len()
                ),
            ));
        }
        for (index, cell) in record.iter().enumerate() {
            if Some(index) == label_index {
                raw_labels.push(cell.to_string());
                continue;
            }
            values.push(parse_cell(cell).map_err(|problem| {
                let column = match &headers {
                    Some(headers) => format!("column {} (`{}`)", index + 1, headers[index]),
                    None => format!("column {}", index + 1),
                };
                Error::data(path, format!("line {line}, {column}: {problem}"))
            })?);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::data(path, "the table holds no data rows"));
    }
    let features = width.unwrap_or(0) - usize::from(label_index.is_some());
    if features == 0 {
        return Err(Error::data(
            path,
            "the table has no feature columns besides the label column",
        ));
    }
    let (labels, class_names) = match label_index {
        Some(_) => {
            let (labels, names) = encode_labels(&raw_labels);
            (Some(labels), names)
        }
        None => (None, Vec::new()),
    };
    Ok(Dataset {
        name: path.display().to_string(),
        shape: SampleShape::features(features),
        values,
        labels,
        class_names,
        paths: Vec::new(),
        targets: Vec::new(),
        paired: None,
        unrotated: None,
    })
}

/// Parses one feature cell; the error says what is wrong with it.
fn parse_cell(cell: &str) -> std::result::Result<f32, String> {
    if cell.is_empty() {
        return Err("the cell is empty, expected a number".into());
    }
    match cell.parse::<f32>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(format!("`{cell}` is not a finite number")),
        Err(_) => Err(format!("`{cell}` is not a number")),
    }
}

/// Turns label cells into label indices and class names.
fn encode_labels(raw: &[String]) -> (Vec<u32>, Vec<String>) {
    let direct: Option<Vec<u32>> = raw.iter().map(|l| l.parse::<u32>().ok()).collect();
    if let Some(labels) = direct
        && labels.iter().all(|&l| l <= MAX_DIRECT_LABEL)
    {
        let classes = labels.iter().max().map_or(0, |&m| m + 1);
        return (labels, (0..classes).map(|c| c.to_string()).collect());
    }
    let mut names: Vec<&String> = raw.iter().collect();
    let numeric: Option<Vec<f64>> = raw.iter().map(|l| l.parse::<f64>().ok()).collect();
    if numeric.is_some() {
        // Ties broken by the text, so that equal labels end up next to each other for
        // `dedup` even among numerically equal ones (`1`, `1.0`, `1`).
        names.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        names.sort();
    }
    names.dedup();
    let index: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i as u32))
        .collect();
    // Every label is in `index`; the fallback only avoids a panic path.
    let labels = raw
        .iter()
        .map(|l| index.get(l.as_str()).copied().unwrap_or(0))
        .collect();
    let class_names: Vec<String> = names.into_iter().cloned().collect();
    (labels, class_names)
}

/// The column names for a message, shortened when there are many.
fn list_columns(headers: &[String]) -> String {
    const SHOWN: usize = 12;
    let shown: Vec<&str> = headers.iter().take(SHOWN).map(String::as_str).collect();
    if headers.len() > SHOWN {
        format!("{}, ... ({} in all)", shown.join(", "), headers.len())
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("table.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn with_label(name: &str) -> TableOptions {
        TableOptions {
            label_column: Some(name.into()),
            has_header: true,
        }
    }

    #[test]
    fn label_column_gives_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "x,label,y\n0.5,2,1\n1.5, 0 ,-2\n3,2,4e-1\n");
        let data = load_csv(&path, &with_label("label")).unwrap();
        assert_eq!(data.shape, SampleShape::features(2));
        assert_eq!(data.values, [0.5, 1.0, 1.5, -2.0, 3.0, 0.4]);
        assert_eq!(data.labels.as_deref(), Some(&[2, 0, 2][..]));
        assert_eq!(data.class_names, ["0", "1", "2"]);

        let path = write(
            dir.path(),
            "a,kind\n1,setosa\n2,virginica\n3,setosa\n4,versicolor\n",
        );
        let data = load_csv(&path, &with_label("kind")).unwrap();
        assert_eq!(data.class_names, ["setosa", "versicolor", "virginica"]);
        assert_eq!(data.labels.as_deref(), Some(&[0, 2, 0, 1][..]));

        let path = write(dir.path(), "a,t\n1,10\n2,-1\n3,2.5\n");
        let data = load_csv(&path, &with_label("t")).unwrap();
        assert_eq!(data.class_names, ["-1", "2.5", "10"]);
        assert_eq!(data.labels.as_deref(), Some(&[2, 0, 1][..]));
    }

    #[test]
    fn without_header_or_label_every_column_is_a_feature() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "1,2,3\n4,5,6\n");
        let options = TableOptions {
            label_column: None,
            has_header: false,
        };
        let data = load_csv(&path, &options).unwrap();
        assert_eq!((data.len(), data.shape), (2, SampleShape::features(3)));
        assert!(data.labels.is_none());
    }

    #[test]
    fn non_numeric_cell_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a,b,c\n1,2,3\n4,five,6\n");
        let error = load_csv(&path, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("column 2 (`b`)"), "{error}");
        assert!(error.contains("`five` is not a number"), "{error}");

        let path = write(dir.path(), "1,2\n3,NaN\n");
        let options = TableOptions {
            label_column: None,
            has_header: false,
        };
        let error = load_csv(&path, &options).unwrap_err().to_string();
        assert!(
            error.contains("line 2, column 2: `NaN` is not a finite number"),
            "{error}"
        );

        let path = write(dir.path(), "a,b\n1,\n");
        let error = load_csv(&path, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 2, column 2 (`b`): the cell is empty"),
            "{error}"
        );
    }

    #[test]
    fn kind_csv_on_a_folder_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_csv(dir.path(), &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is a folder") && error.contains("data.path"),
            "{error}"
        );
    }

    #[test]
    fn empty_ragged_and_missing_label_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "");
        let error = load_csv(&path, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("empty"), "{error}");

        let path = write(dir.path(), "a,b\n");
        let error = load_csv(&path, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("no data rows"), "{error}");

        let path = write(dir.path(), "a,b\n1,2\n3\n");
        let error = load_csv(&path, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3 has 1 fields, but the table has 2 columns"),
            "{error}"
        );

        let path = write(dir.path(), "a,b\n1,2\n");
        let error = load_csv(&path, &with_label("y")).unwrap_err().to_string();
        assert!(error.contains("no column named `y`"), "{error}");
        assert!(error.contains("a, b"), "{error}");

        let path = write(dir.path(), "y\n1\n");
        let error = load_csv(&path, &with_label("y")).unwrap_err().to_string();
        assert!(error.contains("no feature columns"), "{error}");
    }
}
