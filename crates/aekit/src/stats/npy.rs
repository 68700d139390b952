//! NumPy `.npy` files: writes embeddings and labels that Python reads with `numpy.load`, and
//! reads float32/float64 matrices back.
//!
//! Built on `npyz` 0.9 (maintained fork of `npy`, no ndarray and no zip dependency; unlike
//! `ndarray-npy` 0.10 it does not pull a second `ndarray`): `numpy.load` reads its files with the
//! right shape, dtype and values, and numpy's float32/float64 files (10,000 x 32) read back.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar, WriterBuilder};

/// Writes a 2-D `rows x cols` matrix (`values` row-major) as C-order little-endian float32 (`<f4`).
pub fn write_npy_f32(path: &Path, rows: usize, cols: usize, values: &[f32]) -> Result<(), String> {
    let expected = rows
        .checked_mul(cols)
        .ok_or_else(|| format!("{}: shape {rows} x {cols} overflows", path.display()))?;
    if values.len() != expected {
        return Err(format!(
            "{}: {} values do not fill a {rows} x {cols} matrix ({expected} values)",
            path.display(),
            values.len()
        ));
    }
    write_values(
        path,
        "<f4",
        &[rows as u64, cols as u64],
        values.iter().copied(),
    )
}

/// Writes a 1-D array as little-endian int64 (`<i8`), e.g. labels or cluster assignments.
pub fn write_npy_i64(path: &Path, values: &[i64]) -> Result<(), String> {
    write_values(path, "<i8", &[values.len() as u64], values.iter().copied())
}

/// Reads a 2-D C-order float32 or float64 array as `(rows, cols, row-major values)`; float64 is
/// narrowed to f32. Any other file (not npy, other dtype, other rank, Fortran order) is an error
/// naming the file and what it holds.
pub fn read_npy_f32_2d(path: &Path) -> Result<(usize, usize, Vec<f32>), String> {
    let name = path.display();
    let file = File::open(path).map_err(|e| format!("{name}: cannot open: {e}"))?;
    let npy = NpyFile::new(BufReader::new(file))
        .map_err(|e| format!("{name}: not a readable .npy file: {e}"))?;
    let (rows, cols) = matrix_shape(&npy).map_err(|e| format!("{name}: {e}"))?;
    let values = read_as_f32(npy).map_err(|e| format!("{name}: {e}"))?;
    if values.len() != rows * cols {
        return Err(format!(
            "{name}: holds {} values, shape says {rows} x {cols}",
            values.len()
        ));
    }
    Ok((rows, cols, values))
}

/// Writes one npy file with the given dtype string and shape, C order.
fn write_values<T, I>(path: &Path, dtype: &str, shape: &[u64], values: I) -> Result<(), String>
where
    T: npyz::Serialize,
    I: IntoIterator<Item = T>,
{
    let name = path.display();
    let type_str = dtype
        .parse()
        .map_err(|e| format!("{name}: dtype {dtype}: {e}"))?;
    let file = File::create(path).map_err(|e| format!("{name}: cannot create: {e}"))?;
    let mut out = BufWriter::new(file);
    let io_error = |e: std::io::Error| format!("{name}: write failed: {e}");
    let mut writer = npyz::WriteOptions::new()
        .dtype(DType::Plain(type_str))
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .map_err(io_error)?;
    writer.extend(values).map_err(io_error)?;
    writer.finish().map_err(io_error)?;
    out.flush().map_err(io_error)
}

/// The `(rows, cols)` of a 2-D C-order array, or a description of why it is not one.
fn matrix_shape<R: std::io::Read>(npy: &NpyFile<R>) -> Result<(usize, usize), String> {
    let shape = npy.shape();
    let [rows, cols] = shape else {
        return Err(format!(
            "expected a 2-D array, found shape {shape:?} (dtype {})",
            npy.dtype().descr()
        ));
    };
    if npy.order() == Order::Fortran && *rows > 1 && *cols > 1 {
        return Err(format!(
            "expected C order, found a Fortran-order {rows} x {cols} array"
        ));
    }
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| format!("dimension {v} too large"));
    Ok((to_usize(*rows)?, to_usize(*cols)?))
}

/// Reads the data of a float32 or float64 array as f32.
fn read_as_f32<R: std::io::Read>(npy: NpyFile<R>) -> Result<Vec<f32>, String> {
    let dtype = npy.dtype();
    let float_size = match &dtype {
        DType::Plain(t) if t.type_char() == TypeChar::Float => Some(t.size_field()),
        _ => None,
    };
    let read_error = |e: std::io::Error| format!("cannot read the data: {e}");
    match float_size {
        Some(4) => npy.into_vec::<f32>().map_err(read_error),
        Some(8) => {
            let wide = npy.into_vec::<f64>().map_err(read_error)?;
            Ok(wide.into_iter().map(|v| v as f32).collect())
        }
        _ => Err(format!(
            "expected dtype float32 or float64, found {} (shape {:?})",
            dtype.descr(),
            npy.shape()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
        dir.path().join(name)
    }

    /// A hand-made npy v1.0 file with the given header dict and raw data.
    fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn f32_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "m.npy");
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        write_npy_f32(&path, 3, 4, &values).unwrap();
        assert_eq!(read_npy_f32_2d(&path).unwrap(), (3, 4, values));
    }

    #[test]
    fn f32_header_is_little_endian_c_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "h.npy");
        write_npy_f32(&path, 2, 1, &[1.0, 2.0]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("'descr': '<f4'"), "{text}");
        assert!(text.contains("'fortran_order': False"), "{text}");
        assert!(text.contains("'shape': (2, 1"), "{text}");
        assert_eq!(
            &bytes[bytes.len() - 8..],
            &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]
        );
    }

    #[test]
    fn empty_matrix_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "e.npy");
        write_npy_f32(&path, 0, 5, &[]).unwrap();
        assert_eq!(read_npy_f32_2d(&path).unwrap(), (0, 5, vec![]));
    }

    #[test]
    fn wrong_value_count_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_npy_f32(&temp_path(&dir, "w.npy"), 2, 2, &[1.0]).unwrap_err();
        assert!(err.contains("do not fill"), "{err}");
    }

    #[test]
    fn i64_file_is_one_dimensional_and_rejected_as_matrix() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "l.npy");
        write_npy_i64(&path, &[3, -1, 7]).unwrap();
        let npy = NpyFile::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(npy.shape(), &[3]);
        assert_eq!(npy.into_vec::<i64>().unwrap(), vec![3, -1, 7]);
        let err = read_npy_f32_2d(&path).unwrap_err();
        assert!(
            err.contains("2-D") && err.contains("[3]") && err.contains("<i8"),
            "{err}"
        );
        assert!(err.contains("l.npy"), "{err}");
    }

    #[test]
    fn float64_and_big_endian_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "d.npy");
        let data: Vec<u8> = [1.5f64, -2.0, 3.25, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        std::fs::write(&path, raw_npy(dict, &data)).unwrap();
        assert_eq!(
            read_npy_f32_2d(&path).unwrap(),
            (2, 2, vec![1.5, -2.0, 3.25, 4.0])
        );
        let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let dict = "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), }";
        std::fs::write(&path, raw_npy(dict, &data)).unwrap();
        assert_eq!(read_npy_f32_2d(&path).unwrap(), (1, 2, vec![1.0, 2.0]));
    }

    #[test]
    fn other_dtypes_and_orders_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "x.npy");
        let dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }";
        std::fs::write(&path, raw_npy(dict, &[0; 8])).unwrap();
        let err = read_npy_f32_2d(&path).unwrap_err();
        assert!(
            err.contains("float32 or float64") && err.contains("<i4"),
            "{err}"
        );
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
        std::fs::write(&path, raw_npy(dict, &[0; 16])).unwrap();
        let err = read_npy_f32_2d(&path).unwrap_err();
        assert!(err.contains("Fortran"), "{err}");
    }

    #[test]
    fn non_npy_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "t.npy");
        std::fs::write(&path, b"hello, this is text").unwrap();
        let err = read_npy_f32_2d(&path).unwrap_err();
        assert!(
            err.contains("t.npy") && err.contains("not a readable .npy"),
            "{err}"
        );
        let err = read_npy_f32_2d(&temp_path(&dir, "missing.npy")).unwrap_err();
        assert!(
            err.contains("missing.npy") && err.contains("cannot open"),
            "{err}"
        );
    }

    #[test]
    fn truncated_data_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "short.npy");
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        std::fs::write(&path, raw_npy(dict, &[0; 6])).unwrap();
        let err = read_npy_f32_2d(&path).unwrap_err();
        assert!(err.contains("short.npy"), "{err}");
    }
}
