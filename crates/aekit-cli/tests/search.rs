//! End-to-end tests of similar-sample search (`aekit index`, `aekit similar`) on a small
//! dense model trained on the built-in shapes, and of every bad input the search issue
//! lists: a corrupted, truncated or foreign index, one built with another model, k larger
//! than the index, an empty input.

use std::path::Path;

mod common;

use common::{aekit, clean_error, ok, text};

/// Trains `name` (a dense model with an 8-value code on 16x16 shapes) in `dir`.
fn train(dir: &Path, name: &str, seed: u64) -> String {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "name = \"{name}\"\n[data]\nkind = \"shapes\"\nsamples = 600\nsize = 16\n\
             validation = \"test\"\n[model]\nkind = \"dense\"\nhidden = [64]\ncode = 8\n\
             [train]\nseed = {seed}\nepochs = 4\nbatch_size = 32\nlearning_rate = 2e-3\n"
        ),
    )
    .unwrap();
    ok(aekit(dir, &["train", config.to_str().unwrap(), "--quiet"]));
    format!("runs/{name}")
}

/// A folder of `count` grey 16x16 PNGs: bars at `count` positions.
fn image_folder(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let image = image::GrayImage::from_fn(16, 16, |x, _| {
            image::Luma([if x as usize == i { 255 } else { 0 }])
        });
        image.save(dir.join(format!("bar-{i:02}.png"))).unwrap();
    }
}

/// `aekit similar shapes.aeidx --index-of 3 --k 5` with `extra` arguments.
fn nearest_5_of_3(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["similar", "shapes.aeidx", "--index-of", "3", "--k", "5"];
    args.extend_from_slice(extra);
    aekit(dir, &args)
}

#[test]
fn an_index_finds_neighbours_by_id_and_by_image() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = train(dir, "dense", 0);
    let out = ok(aekit(
        dir,
        &[
            "index",
            &run,
            "--input",
            "shapes",
            "--split",
            "train",
            "--out",
            "shapes.aeidx",
        ],
    ));
    assert!(out.contains("indexed ") && out.contains("exact"), "{out}");

    // By id: JSON with k hits, nearest first, the query left out.
    let json = ok(nearest_5_of_3(dir, &["--json"]));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let hits = value["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["index"] != 3));
    let distances: Vec<f64> = hits
        .iter()
        .map(|h| h["distance"].as_f64().unwrap())
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(hits.iter().all(|h| h["class"].is_string()));
    // The approximate graph agrees on the nearest of this small set.
    let approx = ok(nearest_5_of_3(dir, &["--json", "--method", "approximate"]));
    let approx: serde_json::Value = serde_json::from_str(&approx).unwrap();
    assert_eq!(approx["hits"][0]["index"], hits[0]["index"]);

    // The picture: the query and 5 hits side by side.
    let table = ok(nearest_5_of_3(dir, &["--out", "hits.png"]));
    assert!(
        table.contains("rank  distance") && table.contains("wrote hits.png"),
        "{table}"
    );
    let picture = image::open(dir.join("hits.png")).unwrap();
    assert!(
        picture.width() > 6 * 96 && picture.height() > 96,
        "{}x{}",
        picture.width(),
        picture.height()
    );
    clean_error(
        aekit(
            dir,
            &[
                "similar",
                "shapes.aeidx",
                "--index-of",
                "3",
                "--out",
                "hits.png",
            ],
        ),
        "already exists",
    );

    // An image folder: ids are paths, and an image file is a query; its own file is its
    // nearest code.
    image_folder(&dir.join("bars"), 12);
    ok(aekit(
        dir,
        &["index", &run, "--input", "bars", "--out", "bars.aeidx"],
    ));
    let json = ok(aekit(
        dir,
        &[
            "similar",
            "bars.aeidx",
            "bars/bar-04.png",
            "--k",
            "3",
            "--json",
            "--out",
            "bars.png",
        ],
    ));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        value["hits"][0]["id"]
            .as_str()
            .unwrap()
            .ends_with("bar-04.png"),
        "{json}"
    );
    assert_eq!(value["hits"][0]["distance"].as_f64().unwrap(), 0.0);
    assert!(dir.join("bars.png").is_file());
}

#[test]
fn bad_indexes_and_queries_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = train(dir, "a", 0);
    let other = train(dir, "b", 1);
    let out = ok(aekit(
        dir,
        &["index", &run, "--input", "shapes", "--out", "a.aeidx"],
    ));
    let count: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let bytes = std::fs::read(dir.join("a.aeidx")).unwrap();

    // Corrupted, truncated, foreign.
    let mut flipped = bytes.clone();
    let middle = bytes.len() - 100;
    flipped[middle] ^= 0x40;
    std::fs::write(dir.join("flipped.aeidx"), &flipped).unwrap();
    clean_error(
        aekit(dir, &["similar", "flipped.aeidx", "--index-of", "0"]),
        "checksum",
    );
    std::fs::write(dir.join("cut.aeidx"), &bytes[..bytes.len() / 2]).unwrap();
    clean_error(
        aekit(dir, &["similar", "cut.aeidx", "--index-of", "0"]),
        "truncated",
    );
    std::fs::copy(dir.join("runs/a/loss.png"), dir.join("png.aeidx")).unwrap();
    clean_error(
        aekit(dir, &["similar", "png.aeidx", "--index-of", "0"]),
        "not an aekit index",
    );

    // Another model: refused by its fingerprint, naming the command to run.
    image_folder(&dir.join("bars"), 3);
    let query = "bars/bar-01.png";
    let output = aekit(dir, &["similar", "a.aeidx", query, "--run", &other]);
    clean_error(output, "another model");
    let output = aekit(dir, &["similar", "a.aeidx", query, "--run", &other]);
    assert!(text(&output.stderr).contains("aekit index"));
    // The same run with its final weights is another model too (best ones made the index).
    ok(aekit(
        dir,
        &[
            "index",
            &run,
            "--input",
            "shapes",
            "--weights",
            "final",
            "--out",
            "f.aeidx",
        ],
    ));
    let final_index = std::fs::read(dir.join("f.aeidx")).unwrap();
    assert_ne!(final_index, bytes);

    // k larger than the index; k = 0; no query.
    let k = count.to_string(); // one more than the samples besides the query

    clean_error(
        aekit(dir, &["similar", "a.aeidx", "--index-of", "0", "--k", &k]),
        "holds only",
    );
    clean_error(
        aekit(dir, &["similar", "a.aeidx", "--index-of", "0", "--k", "0"]),
        "--k",
    );
    clean_error(aekit(dir, &["similar", "a.aeidx"]), "--index-of");
    clean_error(
        aekit(dir, &["similar", "a.aeidx", "--index-of", "99999"]),
        "no sample `99999`",
    );
    // A query that is not one image.
    clean_error(
        aekit(dir, &["similar", "a.aeidx", "bars"]),
        "holds 3 samples",
    );

    // An empty input, and a wrong extension.
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let output = aekit(
        dir,
        &["index", &run, "--input", "empty", "--out", "e.aeidx"],
    );
    clean_error(output, "empty");
    assert!(!dir.join("e.aeidx").exists());
    clean_error(
        aekit(dir, &["index", &run, "--input", "shapes", "--out", "a.npy"]),
        ".aeidx",
    );
}
