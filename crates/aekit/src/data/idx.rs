//! The IDX format of MNIST and Fashion-MNIST: reading image and label files (raw or
//! gzip-compressed), and recognising a folder that holds the four standard files.
//!
//! An IDX file is a big-endian header (a magic number saying the element type and the
//! number of dimensions, then one `u32` size per dimension) followed by the elements. Only
//! the two layouts these data sets use are read: `u8` images (`0x00000803`, count x rows x
//! columns) and `u8` labels (`0x00000801`, count).

use super::{Dataset, SampleShape};
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of `u8` values in three dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` values in one dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The standard file names (without `.gz`): training images, training labels, test images,
/// test labels.
pub const STANDARD_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The IDX files found in a data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxFiles {
    /// Training images.
    pub train_images: PathBuf,
    /// Training labels.
    pub train_labels: PathBuf,
    /// Test images and labels, when the folder holds both.
    pub test: Option<(PathBuf, PathBuf)>,
}

/// The images of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows (height) of every image.
    pub rows: usize,
    /// Columns (width) of every image.
    pub columns: usize,
    /// All pixels, one image after another, row by row.
    pub pixels: Vec<u8>,
}

/// Finds the standard IDX files in `dir`, gzip-compressed or not. Answers `None` unless at
/// least the training images and labels are there; the test split is optional.
pub fn find_files(dir: &Path) -> Option<IdxFiles> {
    let find = |name: &str| -> Option<PathBuf> {
        // Some copies (Kaggle's, for one) spell the names with a dot before `idx`.
        let dotted = name.replacen("-idx", ".idx", 1);
        [name, dotted.as_str()]
            .iter()
            .flat_map(|base| [base.to_string(), format!("{base}.gz")])
            .map(|file| dir.join(file))
            .find(|path| path.is_file())
    };
    let train_images = find(STANDARD_NAMES[0])?;
    let train_labels = find(STANDARD_NAMES[1])?;
    let test = find(STANDARD_NAMES[2]).zip(find(STANDARD_NAMES[3]));
    Some(IdxFiles {
        train_images,
        train_labels,
        test,
    })
}

/// Loads an IDX folder: the training samples and, when the folder has them, the test
/// samples, both labelled. Pixels are scaled from 0..=255 to [0, 1].
pub fn load_folder(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    let files = find_files(dir).ok_or_else(|| {
        let expected = STANDARD_NAMES[..2]
            .iter()
            .map(|n| format!("{n}[.gz]"))
            .collect::<Vec<_>>()
            .join(" and ");
        Error::data(
            dir,
            format!("is not an IDX data folder: expected {expected} in it"),
        )
    })?;
    let mut train = load_pair(&files.train_images, &files.train_labels)?;
    let mut test = match &files.test {
        Some((images, labels)) => Some(load_pair(images, labels)?),
        None => None,
    };
    if let Some(test) = &test
        && test.shape != train.shape
    {
        return Err(Error::data(
            dir,
            format!(
                "training images are {} but test images are {}",
                train.shape, test.shape
            ),
        ));
    }
    // Both splits get the same class names, even when one of them lacks the last class.
    let classes = [Some(&train), test.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|d| d.labels.as_ref())
        .flat_map(|labels| labels.iter().max())
        .max()
        .map_or(0, |&max| max as usize + 1);
    let class_names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
    train.class_names = class_names.clone();
    if let Some(test) = &mut test {
        test.class_names = class_names;
    }
    Ok((train, test))
}

/// Loads an image file and its label file as one labelled data set.
pub fn load_pair(images_path: &Path, labels_path: &Path) -> Result<Dataset> {
    let images = read_images(images_path)?;
    let labels = read_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(Error::data(
            images_path,
            format!(
                "holds {} images but {} holds {} labels; the counts must agree",
                images.count,
                labels_path.display(),
                labels.len()
            ),
        ));
    }
    let classes = labels.iter().max().map_or(0, |&max| max as usize + 1);
    Ok(Dataset {
        name: images_path.display().to_string(),
        shape: SampleShape::image(1, images.rows, images.columns),
        values: images
            .pixels
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect(),
        labels: Some(labels.into_iter().map(u32::from).collect()),
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        paths: Vec::new(),
        targets: Vec::new(),
        paired: None,
        unrotated: None,
    })
}

/// Reads an IDX image file (`u8`, count x rows x columns).
pub fn read_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gzip(path)?;
    let dims = parse_header(path, &bytes, IMAGES_MAGIC, "image")?;
    let (count, rows, columns) = (dims[0], dims[1], dims[2]);
    if rows == 0 || columns == 0 {
        return Err(Error::data(
            path,
            format!("header says images of {rows}x{columns} pixels; both sides must be positive"),
        ));
    }
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(columns))
        .ok_or_else(|| {
            Error::data(
                path,
                format!("header sizes {count}x{rows}x{columns} are too large"),
            )
        })?;
    let data = &bytes[16..];
    check_length(
        path,
        data.len(),
        expected,
        &format!("{count} images of {rows}x{columns}"),
    )?;
    Ok(IdxImages {
        count,
        rows,
        columns,
        pixels: data.to_vec(),
    })
}

/// Reads an IDX label file (`u8`, count).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gzip(path)?;
    let dims = parse_header(path, &bytes, LABELS_MAGIC, "label")?;
    let data = &bytes[8..];
    check_length(path, data.len(), dims[0], &format!("{} labels", dims[0]))?;
    Ok(data.to_vec())
}

/// Writes an IDX image file (gzip-compressed when `gzip`); `pixels` holds `count` images of
/// `rows x columns`. For tests and for tools that make IDX data.
pub fn write_images(
    path: &Path,
    rows: usize,
    columns: usize,
    pixels: &[u8],
    gzip: bool,
) -> Result<()> {
    let side = rows * columns;
    if side == 0 || !pixels.len().is_multiple_of(side) {
        return Err(Error::data(
            path,
            format!(
                "{} pixels do not make whole images of {rows}x{columns}",
                pixels.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(16 + pixels.len());
    for value in [IMAGES_MAGIC as usize, pixels.len() / side, rows, columns] {
        bytes.extend_from_slice(&header_u32(path, value)?.to_be_bytes());
    }
    bytes.extend_from_slice(pixels);
    write_maybe_gzip(path, &bytes, gzip)
}

/// Writes an IDX label file (gzip-compressed when `gzip`).
pub fn write_labels(path: &Path, labels: &[u8], gzip: bool) -> Result<()> {
    let mut bytes = Vec::with_capacity(8 + labels.len());
    bytes.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    bytes.extend_from_slice(&header_u32(path, labels.len())?.to_be_bytes());
    bytes.extend_from_slice(labels);
    write_maybe_gzip(path, &bytes, gzip)
}

fn header_u32(path: &Path, value: usize) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| Error::data(path, format!("{value} does not fit an IDX header")))
}

fn write_maybe_gzip(path: &Path, bytes: &[u8], gzip: bool) -> Result<()> {
    let result = if gzip {
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        encoder
            .write_all(bytes)
            .and_then(|_| encoder.finish())
            .map(|_| ())
    } else {
        std::fs::write(path, bytes)
    };
    result.map_err(|e| Error::io(path, e))
}

/// Reads a whole file, decompressing it when it starts with the gzip magic bytes (the name
/// is not trusted: copies are often unpacked but keep their `.gz` name, or the reverse).
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut decompressed = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut decompressed)
        .map_err(|e| {
            Error::data(
                path,
                format!("gzip data is corrupt or truncated ({e}); download the file again"),
            )
        })?;
    Ok(decompressed)
}

/// Whether `bytes` start with the gzip magic bytes.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Checks the magic number and reads the dimension sizes of an IDX header.
fn parse_header(path: &Path, bytes: &[u8], magic: u32, what: &str) -> Result<Vec<usize>> {
    let read_u32 = |at: usize| -> Option<u32> {
        let word: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_be_bytes(word))
    };
    let found = read_u32(0).ok_or_else(|| {
        Error::data(
            path,
            format!(
                "file is truncated: {} bytes are too few for an IDX header",
                bytes.len()
            ),
        )
    })?;
    if found != magic {
        let hint = match found {
            IMAGES_MAGIC => " (that is an IDX image file)",
            LABELS_MAGIC => " (that is an IDX label file)",
            _ => "",
        };
        return Err(Error::data(
            path,
            format!(
                "not an IDX {what} file: expected magic number {magic:#010x} ({magic}), found \
                 {found:#010x} ({found}){hint}"
            ),
        ));
    }
    let dimensions = (magic & 0xff) as usize;
    (0..dimensions)
        .map(|d| {
            read_u32(4 + 4 * d).map(|v| v as usize).ok_or_else(|| {
                Error::data(
                    path,
                    format!(
                        "file is truncated: {} bytes are too few for an IDX header of {dimensions} \
                         dimensions",
                        bytes.len()
                    ),
                )
            })
        })
        .collect()
}

/// Checks that the data after the header is exactly as long as the header says.
fn check_length(path: &Path, found: usize, expected: usize, what: &str) -> Result<()> {
    if found < expected {
        return Err(Error::data(
            path,
            format!("file is truncated: header says {what} = {expected} bytes, found {found}"),
        ));
    }
    if found > expected {
        return Err(Error::data(
            path,
            format!(
                "header says {what} = {expected} bytes, but {} more bytes follow them",
                found - expected
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a small IDX folder with `count` training and `count / 2` test images of
    /// 3x4 pixels; pixel values encode the image index.
    fn write_folder(dir: &Path, count: usize, gzip: bool) -> Vec<u8> {
        let suffix = if gzip { ".gz" } else { "" };
        let pixels: Vec<u8> = (0..count * 12).map(|i| (i * 7 % 256) as u8).collect();
        let labels: Vec<u8> = (0..count).map(|i| (i % 3) as u8).collect();
        let name = |n: &str| dir.join(format!("{n}{suffix}"));
        write_images(&name(STANDARD_NAMES[0]), 3, 4, &pixels, gzip).unwrap();
        write_labels(&name(STANDARD_NAMES[1]), &labels, gzip).unwrap();
        write_images(
            &name(STANDARD_NAMES[2]),
            3,
            4,
            &pixels[..count / 2 * 12],
            gzip,
        )
        .unwrap();
        write_labels(&name(STANDARD_NAMES[3]), &labels[..count / 2], gzip).unwrap();
        pixels
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        for gzip in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let pixels = write_folder(dir.path(), 10, gzip);
            let first = std::fs::read(dir.path().join(if gzip {
                "train-images-idx3-ubyte.gz"
            } else {
                "train-images-idx3-ubyte"
            }))
            .unwrap();
            assert_eq!(is_gzip(&first), gzip);
            let (train, test) = load_folder(dir.path()).unwrap();
            let test = test.unwrap();
            assert_eq!(train.len(), 10);
            assert_eq!(test.len(), 5);
            assert_eq!(train.shape, SampleShape::image(1, 3, 4));
            assert_eq!(train.labels.as_deref().unwrap()[..4], [0, 1, 2, 0]);
            assert_eq!(train.class_names, ["0", "1", "2"]);
            assert_eq!(test.class_names, train.class_names);
            for (value, pixel) in train.values.iter().zip(&pixels) {
                assert_eq!(*value, f32::from(*pixel) / 255.0);
            }
        }
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        // A raw file with a .gz name and a gzip file without one both load.
        let raw_named_gz = dir.path().join("a.gz");
        write_labels(&raw_named_gz, &[1, 2, 3], false).unwrap();
        assert_eq!(read_labels(&raw_named_gz).unwrap(), [1, 2, 3]);
        let gzip_named_raw = dir.path().join("b");
        write_labels(&gzip_named_raw, &[4, 5], true).unwrap();
        assert_eq!(read_labels(&gzip_named_raw).unwrap(), [4, 5]);
    }

    #[test]
    fn wrong_magic_names_file_expected_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels");
        write_labels(&labels, &[1, 2, 3], false).unwrap();
        let error = read_images(&labels).unwrap_err().to_string();
        assert!(error.contains(&labels.display().to_string()), "{error}");
        assert!(
            error.contains("expected magic number 0x00000803"),
            "{error}"
        );
        assert!(error.contains("found 0x00000801"), "{error}");

        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"hello world, not idx").unwrap();
        let error = read_labels(&junk).unwrap_err().to_string();
        assert!(
            error.contains("expected magic number 0x00000801"),
            "{error}"
        );
        assert!(error.contains("found 0x68656c6c"), "{error}");
    }

    #[test]
    fn truncated_file_says_how_many_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images");
        write_images(&path, 28, 28, &vec![0; 3 * 784], false).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let error = read_images(&path).unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            error.contains(
                "file is truncated: header says 3 images of 28x28 = 2352 bytes, found 2252"
            ),
            "{error}"
        );

        std::fs::write(&path, &bytes[..10]).unwrap();
        let error = read_images(&path).unwrap_err().to_string();
        assert!(error.contains("file is truncated"), "{error}");

        // A gzip file cut short is reported as such, not as garbage.
        let gz = dir.path().join("images.gz");
        write_images(&gz, 28, 28, &vec![7; 30 * 784], true).unwrap();
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let error = read_images(&gz).unwrap_err().to_string();
        assert!(error.contains("truncated"), "{error}");
    }

    #[test]
    fn image_and_label_counts_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join(STANDARD_NAMES[0]);
        let labels = dir.path().join(STANDARD_NAMES[1]);
        write_images(&images, 2, 2, &[0; 5 * 4], false).unwrap();
        write_labels(&labels, &[0; 4], false).unwrap();
        let error = load_folder(dir.path()).unwrap_err().to_string();
        assert!(error.contains("holds 5 images"), "{error}");
        assert!(error.contains("holds 4 labels"), "{error}");
        assert!(error.contains(STANDARD_NAMES[1]), "{error}");
    }

    #[test]
    fn folder_without_files_names_what_it_expected() {
        let dir = tempfile::tempdir().unwrap();
        assert!(find_files(dir.path()).is_none());
        let error = load_folder(dir.path()).unwrap_err().to_string();
        assert!(error.contains("train-images-idx3-ubyte[.gz]"), "{error}");
    }

    #[test]
    fn real_mnist_loads() {
        let Some(dir) = super::super::shared_mnist_dir() else {
            return;
        };
        let (train, test) = load_folder(&dir).unwrap();
        let test = test.expect("MNIST has a test split");
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        assert_eq!(train.shape, SampleShape::image(1, 28, 28));
        assert_eq!(train.class_names.len(), 10);
        assert_eq!(train.value_range(), (0.0, 1.0));
        assert_eq!(test.value_range(), (0.0, 1.0));
        let counts = train.label_counts().unwrap();
        assert_eq!(counts.len(), 10);
        assert_eq!(counts.iter().sum::<usize>(), 60_000);
        // Known class counts of the MNIST training set.
        assert_eq!(counts[0], 5923);
        assert_eq!(counts[1], 6742);
        assert_eq!(test.label_counts().unwrap().len(), 10);
    }
}
