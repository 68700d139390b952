//! Downloading MNIST and Fashion-MNIST (`aekit data fetch`): the four gzip-compressed IDX
//! files of a data set, each checked against a known checksum before it is kept.
//!
//! A file is downloaded into a temporary file in the target folder, checked, and only then
//! renamed to its final name, so a failed or interrupted download never leaves a bad file
//! under the name the loaders look for. A file already there with the right checksum is not
//! downloaded again; one with a wrong checksum is an error and is left untouched (it may be
//! the user's own file).
//!
//! MNIST is checked by the sha256 of the decompressed bytes, because mirrors re-compress the
//! files (the gzip bytes differ, the data does not). Fashion-MNIST is checked by the md5 of
//! the `.gz` files that Zalando publishes.

use super::idx;
use crate::error::{Error, Result};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The data sets that can be fetched.
pub const KNOWN: [&str; 2] = ["mnist", "fashion-mnist"];

/// Default address of the MNIST files.
pub const MNIST_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
/// Default address of the Fashion-MNIST files.
pub const FASHION_MNIST_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// How a downloaded file is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checksum {
    /// sha256 (hex) of the decompressed content.
    Sha256Decompressed(&'static str),
    /// md5 (hex) of the file as downloaded.
    Md5(&'static str),
}

impl Checksum {
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Checksum::Sha256Decompressed(sum) => ("sha256 of the decompressed data", sum),
            Checksum::Md5(sum) => ("md5", sum),
        }
    }
}

/// MNIST: sha256 of the decompressed IDX files (as in the official distribution).
const MNIST_SUMS: [Checksum; 4] = [
    Checksum::Sha256Decompressed(
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    Checksum::Sha256Decompressed(
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    Checksum::Sha256Decompressed(
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    Checksum::Sha256Decompressed(
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// Fashion-MNIST: md5 of the `.gz` files, as published by Zalando.
const FASHION_MNIST_SUMS: [Checksum; 4] = [
    Checksum::Md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    Checksum::Md5("25c81989df183df01b3e8a0aad5dffbe"),
    Checksum::Md5("bef4ecab320f06d8554ea6380940ec79"),
    Checksum::Md5("bb300cfdad3c16e7a12a480ee83cd310"),
];

/// Downloads data set `name` (`mnist` or `fashion-mnist`) into `dir`, from `base_url` or
/// the data set's default mirror. Returns the paths of the four `.gz` files, which
/// [`idx::load_folder`] then loads from `dir`.
pub fn fetch(name: &str, dir: &Path, base_url: Option<&str>) -> Result<Vec<PathBuf>> {
    let (default_url, sums) = match name {
        "mnist" => (MNIST_URL, MNIST_SUMS),
        "fashion-mnist" => (FASHION_MNIST_URL, FASHION_MNIST_SUMS),
        _ => {
            return Err(Error::data(
                name,
                format!(
                    "unknown data set; the ones that can be fetched are: {}",
                    KNOWN.join(", ")
                ),
            ));
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let base = base_url.unwrap_or(default_url).trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled connection fails; a slow but moving one is given the time it needs.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut paths = Vec::with_capacity(sums.len());
    for (standard, checksum) in idx::STANDARD_NAMES.iter().zip(sums) {
        let file = format!("{standard}.gz");
        let path = dir.join(&file);
        if path.exists() {
            if let Err(found) = verify(&path, checksum)? {
                let (what, expected) = checksum.describe();
                return Err(Error::data(
                    &path,
                    format!(
                        "is already there but is not the expected file: its {what} is {found}, \
                         not {expected}; it was left as it is (delete it to download it again)"
                    ),
                ));
            }
            tracing::info!("{} is already there and checks out", path.display());
        } else {
            download_checked(&agent, &format!("{base}/{file}"), dir, &file, checksum)?;
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Downloads `url` into `dir/file` by way of a temporary file, keeping it only if its
/// checksum is right.
fn download_checked(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    file: &str,
    checksum: Checksum,
) -> Result<()> {
    // Hidden and process-specific, so that it is never mistaken for data and two fetches
    // into one folder do not write into the same file.
    let part = dir.join(format!(".{file}.{}.part", std::process::id()));
    let result = download(agent, url, &part).and_then(|_| match verify(&part, checksum)? {
        Ok(()) => {
            let path = dir.join(file);
            std::fs::rename(&part, &path).map_err(|e| Error::io(&path, e))
        }
        Err(found) => {
            let (what, expected) = checksum.describe();
            Err(Error::Download {
                url: url.to_string(),
                message: format!(
                    "checksum mismatch for {file}: expected {what} {expected}, found {found}; \
                     the download was deleted"
                ),
            })
        }
    });
    if result.is_err() {
        // Best effort: the part file may not exist if the download failed early.
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// Streams the body at `url` into the file `to`.
fn download(agent: &ureq::Agent, url: &str, to: &Path) -> Result<()> {
    tracing::info!("downloading {url}");
    let download_error = |message: String| Error::Download {
        url: url.to_string(),
        message,
    };
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| download_error(e.to_string()))?;
    let mut file = std::fs::File::create(to).map_err(|e| Error::io(to, e))?;
    std::io::copy(&mut response.body_mut().as_reader(), &mut file)
        .map_err(|e| download_error(format!("the download broke off: {e}")))?;
    file.sync_all().map_err(|e| Error::io(to, e))
}

/// Checks a file against its checksum: `Ok(Err(found))` when it does not match, `found`
/// saying what was found instead.
fn verify(path: &Path, checksum: Checksum) -> Result<std::result::Result<(), String>> {
    let found = match checksum {
        Checksum::Md5(_) => {
            let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            let mut hasher = Md5::new();
            std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
            hex(&hasher.finalize())
        }
        Checksum::Sha256Decompressed(_) => match sha256_decompressed(path)? {
            Ok(sum) => sum,
            Err(problem) => return Ok(Err(problem)),
        },
    };
    let (_, expected) = checksum.describe();
    Ok(if found == expected {
        Ok(())
    } else {
        Err(found)
    })
}

/// sha256 of a file's content, decompressed when it is gzip data (a mirror serving the
/// files decompressed is accepted too). `Ok(Err(..))` when the gzip data is broken.
fn sha256_decompressed(path: &Path) -> Result<std::result::Result<String, String>> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let read = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    let head = std::io::Cursor::new(magic[..read].to_vec());
    let mut hasher = Sha256::new();
    if idx::is_gzip(&magic[..read]) {
        let mut decoder = flate2::read::MultiGzDecoder::new(head.chain(file));
        if let Err(e) = std::io::copy(&mut decoder, &mut hasher) {
            return Ok(Err(format!("data that is not valid gzip ({e})")));
        }
    } else {
        std::io::copy(&mut head.chain(file), &mut hasher).map_err(|e| Error::io(path, e))?;
    }
    Ok(Ok(hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A test-only HTTP server on 127.0.0.1 serving `files` by name (the last part of the
    /// request path); it counts the requests it answers.
    struct Server {
        url: String,
        requests: Arc<AtomicUsize>,
    }

    fn serve(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/data/", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                // A failed answer shows up as a download error in the test itself.
                let _ = answer(stream, &files);
            }
        });
        Server { url, requests }
    }

    fn answer(stream: TcpStream, files: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request = String::new();
        reader.read_line(&mut request)?;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                break;
            }
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let name = path.rsplit('/').next().unwrap_or("");
        let mut stream = stream;
        match files.get(name) {
            Some(body) => {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )?;
                stream.write_all(body)?;
            }
            None => write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?,
        }
        stream.flush()
    }

    fn gz_names() -> Vec<String> {
        idx::STANDARD_NAMES
            .iter()
            .map(|n| format!("{n}.gz"))
            .collect()
    }

    fn mnist_files(dir: &Path) -> HashMap<String, Vec<u8>> {
        gz_names()
            .into_iter()
            .map(|name| {
                let bytes = std::fs::read(dir.join(&name)).unwrap();
                (name, bytes)
            })
            .collect()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect()
    }

    #[test]
    fn fetches_real_mnist_from_a_local_server_once() {
        let Some(mnist) = super::super::shared_mnist_dir() else {
            return;
        };
        let server = serve(mnist_files(&mnist));
        let target = tempfile::tempdir().unwrap();
        let dir = target.path().join("mnist");
        let paths = fetch("mnist", &dir, Some(&server.url)).unwrap();
        assert_eq!(paths.len(), 4);
        assert!(paths.iter().all(|p| p.is_file()));
        assert_eq!(server.requests.load(Ordering::SeqCst), 4);
        assert!(leftovers(&dir).is_empty());
        let (train, test) = idx::load_folder(&dir).unwrap();
        assert_eq!((train.len(), test.unwrap().len()), (60_000, 10_000));

        // Files that are there and check out are not downloaded again.
        fetch("mnist", &dir, Some(&server.url)).unwrap();
        assert_eq!(server.requests.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn corrupted_mnist_file_fails_and_is_not_kept() {
        let Some(mnist) = super::super::shared_mnist_dir() else {
            return;
        };
        let mut files = mnist_files(&mnist);
        // Valid gzip around wrong data: only the checksum of the content can catch it.
        let name = "t10k-labels-idx1-ubyte.gz";
        let mut labels = idx::read_labels(&mnist.join(name)).unwrap();
        labels[17] = (labels[17] + 1) % 10;
        let scratch = tempfile::tempdir().unwrap();
        let corrupt = scratch.path().join(name);
        idx::write_labels(&corrupt, &labels, true).unwrap();
        files.insert(name.to_string(), std::fs::read(&corrupt).unwrap());

        let server = serve(files);
        let target = tempfile::tempdir().unwrap();
        let error = fetch("mnist", target.path(), Some(&server.url))
            .unwrap_err()
            .to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
        assert!(error.contains(name), "{error}");
        assert!(!target.path().join(name).exists());
        assert!(leftovers(target.path()).is_empty());
        // The good files before it were kept.
        assert!(target.path().join("t10k-images-idx3-ubyte.gz").is_file());
    }

    #[test]
    fn wrong_bytes_fail_the_checksum_for_both_data_sets() {
        let files: HashMap<String, Vec<u8>> = gz_names()
            .into_iter()
            .map(|n| (n, b"not the data you are looking for".to_vec()))
            .collect();
        let server = serve(files);
        for (name, what) in [("mnist", "sha256"), ("fashion-mnist", "md5")] {
            let target = tempfile::tempdir().unwrap();
            let error = fetch(name, target.path(), Some(&server.url))
                .unwrap_err()
                .to_string();
            assert!(error.contains("checksum mismatch"), "{error}");
            assert!(error.contains("train-images-idx3-ubyte.gz"), "{error}");
            assert!(error.contains(what), "{error}");
            assert!(!target.path().join("train-images-idx3-ubyte.gz").exists());
            assert!(leftovers(target.path()).is_empty());
        }
    }

    #[test]
    fn existing_bad_file_is_an_error_and_left_alone() {
        let server = serve(HashMap::new());
        let target = tempfile::tempdir().unwrap();
        let path = target.path().join("train-images-idx3-ubyte.gz");
        std::fs::write(&path, b"mine").unwrap();
        let error = fetch("fashion-mnist", target.path(), Some(&server.url))
            .unwrap_err()
            .to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("not the expected file"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"mine");
        assert_eq!(server.requests.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn missing_file_on_the_server_is_a_download_error() {
        let server = serve(HashMap::new());
        let target = tempfile::tempdir().unwrap();
        let error = fetch("mnist", target.path(), Some(&server.url)).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Download { .. }), "{text}");
        assert!(
            text.contains("train-images-idx3-ubyte.gz") && text.contains("404"),
            "{text}"
        );
        assert!(leftovers(target.path()).is_empty());
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let target = tempfile::tempdir().unwrap();
        let error = fetch("cifar", target.path(), None).unwrap_err().to_string();
        assert!(error.contains("cifar"), "{error}");
        assert!(error.contains("mnist, fashion-mnist"), "{error}");
    }
}
