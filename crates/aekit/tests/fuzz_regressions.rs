//! Inputs kept from the fuzz targets (`fuzz/fuzz_targets/*.rs`), replayed through the same
//! library calls: `tests/fuzz_regressions/<target>/<name>`, in the target's input layout.
//!
//! Every input must come back (`Ok` or `Err`) without a panic, and any error must name the
//! file it concerns. Names say what else is expected:
//! - `ok-*`: a valid seed; the call must succeed.
//! - `crash-*`, `oom-*`, `timeout-*`, `slow-*`: an input a fuzzer found failing; the call
//!   must now return an error naming the file.
//!
//! For `model_json` the same bytes are written as `model.json`, `summary.json`,
//! `history.csv` and `scaler.json`; the expectation applies to the reader of the file whose
//! name ends the input's name (`ok-vae-model.json`), the others only must not panic.

use aekit::config::RunConfig;
use aekit::data::config::Color;
use aekit::data::idx;
use aekit::data::images::{self, ImageOptions};
use aekit::data::table::{self, TableOptions};
use aekit::run_dir::{RunDir, read_json};
use aekit::train::checkpoint;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What an input's name says about the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    Err,
    Any,
}

impl Expect {
    fn of(name: &str) -> Self {
        if name.starts_with("ok-") {
            Expect::Ok
        } else if ["crash-", "oom-", "timeout-", "slow-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            Expect::Err
        } else {
            Expect::Any
        }
    }

    /// Checks one result; `named` is what an error must mention (the file's name).
    fn check<T>(self, input: &Path, result: aekit::Result<T>, named: &str) {
        match result {
            Ok(_) => assert!(
                self != Expect::Err,
                "{}: expected an error, got Ok",
                input.display()
            ),
            Err(error) => {
                let text = error.to_string();
                assert!(
                    self != Expect::Ok,
                    "{}: expected Ok, got: {text}",
                    input.display()
                );
                assert!(
                    text.contains(named),
                    "{}: the error does not name `{named}`: {text}",
                    input.display()
                );
            }
        }
    }
}

/// The kept inputs of `target`, with their names; at least one `ok-` seed each.
fn inputs(target: &str) -> Vec<(PathBuf, String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            (path, name, bytes)
        })
        .collect();
    found.sort();
    assert!(
        found.iter().any(|(_, name, _)| name.starts_with("ok-")),
        "{}: no ok- seed",
        dir.display()
    );
    found
}

#[test]
fn idx() {
    for (input, name, bytes) in inputs("idx") {
        let expect = Expect::of(&name);
        let Some((&flags, rest)) = bytes.split_first() else {
            continue;
        };
        let bytes = if flags & 1 == 1 {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(rest).unwrap();
            encoder.finish().unwrap()
        } else {
            rest.to_vec()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-images-idx3-ubyte.gz");
        std::fs::write(&path, &bytes).unwrap();
        let file = "train-images-idx3-ubyte.gz";
        let any = |r: aekit::Result<_>| Expect::Any.check(&input, r, file);
        any(idx::read_maybe_gzip(&path).map(|_| ()));
        // `ok-` and failing inputs name the reader they are for: `...-labels...` or images.
        if name.contains("labels") {
            expect.check(&input, idx::read_labels(&path), file);
            any(idx::read_images(&path).map(|_| ()));
        } else {
            expect.check(&input, idx::read_images(&path), file);
            any(idx::read_labels(&path).map(|_| ()));
        }
    }
}

#[test]
fn csv_table() {
    for (input, name, bytes) in inputs("csv_table") {
        let expect = Expect::of(&name);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.csv");
        std::fs::write(&path, &bytes).unwrap();
        // Per combination: header on/off, with/without the label column.
        let mut succeeded = Vec::new();
        for (has_header, label_column) in [
            (true, None),
            (false, None),
            (true, Some("label")),
            (false, Some("label")),
        ] {
            let options = TableOptions {
                label_column: label_column.map(str::to_string),
                has_header,
            };
            let result = table::load_csv(&path, &options);
            succeeded.push(result.is_ok());
            if let Ok(table) = &result {
                // As the fuzz target checks: one label per sample, one name per class.
                if let Some(labels) = &table.labels {
                    assert_eq!(labels.len(), table.len(), "{}", input.display());
                    assert!(
                        labels
                            .iter()
                            .all(|&l| (l as usize) < table.class_names.len())
                    );
                    let mut names = table.class_names.clone();
                    names.sort();
                    names.dedup();
                    assert_eq!(
                        names.len(),
                        table.class_names.len(),
                        "{}: class names repeat: {:?}",
                        input.display(),
                        table.class_names
                    );
                }
            }
            // A failing input fails with every combination; any error names the file.
            let each = if expect == Expect::Err {
                Expect::Err
            } else {
                Expect::Any
            };
            each.check(&input, result, "table.csv");
        }
        if expect == Expect::Ok {
            // A valid seed reads with its header, and with its label column when it has one.
            let combination = if has_label(&bytes) { 2 } else { 0 };
            assert!(
                succeeded[combination],
                "{}: not read with a header (and label column)",
                input.display()
            );
        }
    }
}

fn has_label(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .is_some_and(|header| header.split(',').any(|h| h.trim() == "label"))
}

#[test]
fn image_header() {
    for (input, name, bytes) in inputs("image_header") {
        let expect = Expect::of(&name);
        let Some((&flags, rest)) = bytes.split_first() else {
            continue;
        };
        let file = if flags & 1 == 1 {
            "image.jpg"
        } else {
            "image.png"
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, rest).unwrap();
        let size = if flags & 4 == 4 { [5, 7] } else { [8, 8] };
        let color = if flags & 2 == 2 {
            Color::Rgb
        } else {
            Color::Grey
        };
        let options = ImageOptions {
            size: Some(size),
            color,
            strict: true,
        };
        let result = images::load_file(&path, &options);
        if let Ok(image) = &result {
            assert_eq!(image.values.len(), color.channels() * size[0] * size[1]);
        }
        expect.check(&input, result, file);
    }
}

#[test]
fn config_toml() {
    for (input, name, bytes) in inputs("config_toml") {
        let expect = Expect::of(&name);
        let (text, overrides) = match bytes.iter().position(|&b| b == 0) {
            Some(at) => (
                &bytes[..at],
                vec![String::from_utf8_lossy(&bytes[at + 1..]).into_owned()],
            ),
            None => (&bytes[..], Vec::new()),
        };
        let text = String::from_utf8_lossy(text);
        let result = RunConfig::parse(&text, "fuzz.toml", &overrides);
        if let Ok(config) = &result {
            config.validate("fuzz.toml").unwrap();
            let written = config.to_toml();
            let again = RunConfig::parse(&written, "written.toml", &[]).unwrap();
            assert_eq!(again.to_toml(), written, "{}", input.display());
        }
        // An error names the config file, or the `--set` override it comes from.
        let named = if overrides.is_empty() {
            "fuzz.toml"
        } else {
            match &result {
                Err(e) if !e.to_string().contains("fuzz.toml") => "--set",
                _ => "fuzz.toml",
            }
        };
        expect.check(&input, result, named);
    }
}

#[test]
fn checkpoint_state() {
    for (input, name, bytes) in inputs("checkpoint_state") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.json"), &bytes).unwrap();
        let result = checkpoint::load_state(dir.path());
        Expect::of(&name).check(&input, result, "state.json");
    }
}

#[test]
fn model_json() {
    const CONFIG: &str = "name = \"fuzz\"\n[data]\nkind = \"csv\"\npath = \"table.csv\"\n\
                          scale = \"standard\"\n[model]\nkind = \"dense\"\ncode = 2\n";
    for (input, name, bytes) in inputs("model_json") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
        let run = RunDir::open(dir.path()).unwrap();
        let config = run.load_config().unwrap();
        let files = ["model.json", "summary.json", "history.csv", "scaler.json"];
        for file in files {
            std::fs::write(dir.path().join(file), &bytes).unwrap();
        }
        let expect = |file: &str| {
            if name.ends_with(file) {
                Expect::of(&name)
            } else {
                Expect::Any
            }
        };
        expect("model.json").check(&input, run.load_meta(), "model.json");
        Expect::Any.check(
            &input,
            read_json::<aekit::run_dir::ModelMeta>(&run.model_meta_path()),
            "model.json",
        );
        expect("summary.json").check(&input, run.read_summary(), "summary.json");
        expect("history.csv").check(&input, run.read_history(), "history.csv");
        let scaler = run.load_scaler(&config);
        if name.ends_with("scaler.json") && Expect::of(&name) == Expect::Ok {
            assert!(matches!(scaler, Ok(Some(_))), "{}", input.display());
        }
        expect("scaler.json").check(&input, scaler, "scaler.json");
    }
}

#[test]
fn index_file() {
    use aekit::apps::search::CodeIndex;
    use sha2::{Digest, Sha256};
    for (input, name, bytes) in inputs("index_file") {
        // The target's layout: a flag byte (bit 0: append the sha256), then the file.
        let Some((&flags, body)) = bytes.split_first() else {
            continue;
        };
        let mut file = body.to_vec();
        if flags & 1 == 1 {
            let digest = Sha256::digest(&file);
            file.extend_from_slice(&digest);
        }
        let result = CodeIndex::from_bytes(&file, Path::new("fuzz.aeidx"));
        if let Ok(index) = &result {
            assert_eq!(index.header.ids.len(), index.len(), "{}", input.display());
        }
        Expect::of(&name).check(&input, result, "fuzz.aeidx");
    }
}

#[test]
fn aez_file() {
    use aekit::codec::container::Compressed;
    for (input, name, bytes) in inputs("aez_file") {
        // The target's layout: a flag byte (bit 0: rewrite the CRC-32), then the file.
        let Some((&flags, body)) = bytes.split_first() else {
            continue;
        };
        let mut file = body.to_vec();
        if flags & 1 == 1 && file.len() >= 4 {
            let end = file.len() - 4;
            let crc = crc32fast::hash(&file[..end]);
            file[end..].copy_from_slice(&crc.to_le_bytes());
        }
        let result = Compressed::from_bytes(&file, Path::new("fuzz.aez"));
        if let Ok(read) = &result {
            assert_eq!(read.to_bytes().unwrap(), file, "{}", input.display());
        }
        Expect::of(&name).check(&input, result, "fuzz.aez");
    }
}
