//! Codes to files and back: a data set's codes with their sample ids, labels and file paths
//! (`aekit encode`), and the model's outputs for codes read from such a file (`aekit
//! decode`).
//!
//! Two formats: `.npy` (a `float32` array `[samples, code]` that `numpy.load` reads, plus a
//! sidecar `<name>.index.csv` with `id,label,class,path` per row), and `.csv` (one row per
//! sample: `id,label,class,path,z0,z1,...`).

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::stats::npy;
use crate::trained::TrainedModel;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The codes of a data set, one row per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Codes {
    /// Values per code.
    pub width: usize,
    /// All codes, one after another.
    pub values: Vec<f32>,
    /// Each row's sample index in the data it came from.
    pub ids: Vec<usize>,
    /// Each row's label, when the data has labels.
    pub labels: Option<Vec<u32>>,
    /// Names of the label values.
    pub class_names: Vec<String>,
    /// Each row's file, when the samples came from files.
    pub paths: Vec<PathBuf>,
}

impl Codes {
    /// Number of codes.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Code `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

/// Encodes every sample of `data`.
pub fn encode_dataset(model: &TrainedModel, data: &Dataset) -> Result<Codes> {
    Ok(Codes {
        width: model.code_len(),
        values: model.encode(&data.values)?,
        ids: (0..data.len()).collect(),
        labels: data.labels.clone(),
        class_names: data.class_names.clone(),
        paths: data.paths.clone(),
    })
}

/// Writes `codes` to `path` (`.npy` with its sidecar index, or `.csv`); returns the files
/// written. Existing files are replaced only with `force`.
pub fn write_codes(path: &Path, codes: &Codes, force: bool) -> Result<Vec<PathBuf>> {
    let extension = super::check_extension(path, &["npy", "csv"])?;
    super::check_output(path, force)?;
    if extension == "npy" {
        let index = index_path(path);
        super::check_output(&index, force)?;
        npy::write_npy_f32(path, codes.len(), codes.width, &codes.values)
            .map_err(|e| Error::data(path, e))?;
        crate::run_dir::write_atomic(&index, index_csv(codes, false).as_bytes())?;
        Ok(vec![path.to_path_buf(), index])
    } else {
        crate::run_dir::write_atomic(path, index_csv(codes, true).as_bytes())?;
        Ok(vec![path.to_path_buf()])
    }
}

/// The sidecar index of a `.npy` codes file: `codes.npy` -> `codes.index.csv`.
pub fn index_path(path: &Path) -> PathBuf {
    path.with_extension("index.csv")
}

/// `id,label,class,path` rows, with the code values after them when `with_values`.
fn index_csv(codes: &Codes, with_values: bool) -> String {
    let mut text = String::from("id,label,class,path");
    if with_values {
        for j in 0..codes.width {
            let _ = write!(text, ",z{j}");
        }
    }
    text.push('\n');
    for i in 0..codes.len() {
        let label = codes.labels.as_ref().map(|l| l[i]);
        let class = label
            .and_then(|l| codes.class_names.get(l as usize))
            .cloned()
            .unwrap_or_default();
        let path = codes
            .paths
            .get(i)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let _ = write!(
            text,
            "{},{},{},{}",
            codes.ids[i],
            label.map(|l| l.to_string()).unwrap_or_default(),
            csv_field(&class),
            csv_field(&path)
        );
        if with_values {
            for v in codes.row(i) {
                let _ = write!(text, ",{v}");
            }
        }
        text.push('\n');
    }
    text
}

/// Quotes a CSV field when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Reads codes from a `.npy` or `.csv` file written by [`write_codes`] (or any `.npy`
/// holding a 2-D float array, or a CSV whose code columns are named `z0, z1, ...`), and
/// checks that each has `width` values.
pub fn read_codes(path: &Path, width: usize) -> Result<(usize, Vec<f32>)> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let (rows, cols, values) = match extension.as_str() {
        "npy" => npy::read_npy_f32_2d(path).map_err(|e| Error::data(path, e))?,
        "csv" => read_codes_csv(path)?,
        _ => {
            return Err(Error::data(
                path,
                "not a codes file: expected a .npy or .csv file written by `aekit encode`",
            ));
        }
    };
    if cols != width {
        return Err(Error::data(
            path,
            format!("holds codes of {cols} values, but the model's code has {width}"),
        ));
    }
    if rows == 0 {
        return Err(Error::data(path, "holds no codes"));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            path,
            format!(
                "code {} holds a non-finite value ({})",
                i / width,
                values[i]
            ),
        ));
    }
    Ok((rows, values))
}

/// The `z0, z1, ...` columns of a CSV codes file.
fn read_codes_csv(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| Error::data(path, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::data(path, e.to_string()))?
        .clone();
    let columns: Vec<usize> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| is_code_column(h))
        .map(|(i, _)| i)
        .collect();
    if columns.is_empty() {
        return Err(Error::data(
            path,
            "not a codes file: no code columns (z0, z1, ...) in its header",
        ));
    }
    let mut values = Vec::new();
    let mut rows = 0;
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::data(path, e.to_string()))?;
        for &c in &columns {
            let cell = record.get(c).unwrap_or("");
            let value: f32 = cell.trim().parse().map_err(|_| {
                Error::data(
                    path,
                    format!(
                        "line {}, column {}: `{cell}` is not a number",
                        line + 2,
                        &headers[c]
                    ),
                )
            })?;
            values.push(value);
        }
        rows += 1;
    }
    Ok((rows, columns.len(), values))
}

fn is_code_column(name: &str) -> bool {
    name.strip_prefix('z')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> Codes {
        Codes {
            width: 2,
            values: vec![0.5, -1.0, 2.0, 3.25],
            ids: vec![0, 1],
            labels: Some(vec![1, 0]),
            class_names: vec!["zero".into(), "one, or so".into()],
            paths: vec![],
        }
    }

    #[test]
    fn codes_round_trip_through_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["c.npy", "c.csv"] {
            let path = dir.path().join(name);
            let written = write_codes(&path, &codes(), false).unwrap();
            assert!(written.iter().all(|p| p.is_file()));
            let (rows, values) = read_codes(&path, 2).unwrap();
            assert_eq!((rows, values), (2, codes().values), "{name}");
            let error = write_codes(&path, &codes(), false).unwrap_err().to_string();
            assert!(error.contains("already exists"), "{error}");
        }
        let index = std::fs::read_to_string(dir.path().join("c.index.csv")).unwrap();
        assert_eq!(
            index,
            "id,label,class,path\n0,1,\"one, or so\",\n1,0,zero,\n"
        );
    }

    #[test]
    fn wrong_codes_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.npy");
        write_codes(&path, &codes(), false).unwrap();
        let error = read_codes(&path, 3).unwrap_err().to_string();
        assert!(
            error.contains("2 values") && error.contains("has 3"),
            "{error}"
        );
        let text = dir.path().join("notes.csv");
        std::fs::write(&text, "a,b\n1,2\n").unwrap();
        let error = read_codes(&text, 2).unwrap_err().to_string();
        assert!(error.contains("not a codes file"), "{error}");
        let other = dir.path().join("codes.txt");
        std::fs::write(&other, "1 2").unwrap();
        assert!(
            read_codes(&other, 2)
                .unwrap_err()
                .to_string()
                .contains("not a codes file")
        );
        let fake = dir.path().join("fake.npy");
        std::fs::write(&fake, "not numpy").unwrap();
        assert!(
            read_codes(&fake, 2)
                .unwrap_err()
                .to_string()
                .contains("fake.npy")
        );
    }
}
