//! End-to-end tests of anomaly detection: the one-class protocol on generated images and a
//! generated table with known anomalies, and the bad inputs of `aekit anomaly`.

use std::path::Path;

mod common;

use common::{aekit, clean_error, ok};

fn auroc(output: &str) -> f64 {
    common::figure(output, "AUROC:")
}

/// A dense autoencoder trained on the circles of the 16x16 shapes only.
fn circles_run(dir: &Path) -> String {
    std::fs::write(
        dir.join("circles.toml"),
        "name = \"circles\"\n[data]\nkind = \"shapes\"\nsamples = 1200\nsize = 16\n\
         train_classes = [\"circle\"]\nvalidation = 0.1\n[model]\nkind = \"dense\"\n\
         hidden = [64]\ncode = 8\n[train]\nepochs = 15\nbatch_size = 32\nloss = \"mse\"\n\
         learning_rate = 3e-3\n",
    )
    .unwrap();
    let out = ok(aekit(dir, &["train", "circles.toml", "--quiet"]));
    assert!(out.contains("runs/circles"), "{out}");
    "runs/circles".into()
}

#[test]
fn the_one_class_protocol_on_generated_images_fits_scores_and_explains() {
    let tmp = tempfile::tempdir().unwrap();
    let run = circles_run(tmp.path());
    // Validation kept to the trained class: 120 circles of the 1200 training images' tenth.
    let history = std::fs::read_to_string(tmp.path().join(&run).join("history.csv")).unwrap();
    assert!(history.lines().count() > 1);
    clean_error(
        aekit(
            tmp.path(),
            &[
                "anomaly", "score", &run, "--input", "shapes", "--out", "s.csv",
            ],
        ),
        "aekit anomaly fit",
    );
    let fit = ok(aekit(
        tmp.path(),
        &["anomaly", "fit", &run, "--score", "mse"],
    ));
    assert!(
        fit.contains("flags 5."),
        "contamination 0.05 flags 5 % of training: {fit}"
    );
    clean_error(aekit(tmp.path(), &["anomaly", "fit", &run]), "--force");
    let out = ok(aekit(
        tmp.path(),
        &[
            "anomaly",
            "score",
            &run,
            "--input",
            "shapes",
            "--out",
            "s.csv",
            "--explain",
            "why",
        ],
    ));
    let auc = auroc(&out);
    assert!(auc > 80.0, "circles against the other shapes: {out}");
    assert!(
        out.contains("precision") && out.contains("flagged:"),
        "{out}"
    );
    let csv = std::fs::read_to_string(tmp.path().join("s.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "index,id,label,score,flagged,p_linear,p_unify,percentile"
    );
    assert_eq!(csv.lines().count(), 1 + 200, "the shapes' test split");
    for name in [
        "error-maps.png",
        "most-and-least.png",
        "histogram.png",
        "report.json",
    ] {
        assert!(tmp.path().join("why").join(name).is_file(), "{name}");
    }
    let maps = image::open(tmp.path().join("why/error-maps.png")).unwrap();
    assert!(maps.height() > 2 * maps.width() / 10, "three rows of ten");
    // The same files again without --force are refused.
    clean_error(
        aekit(
            tmp.path(),
            &[
                "anomaly", "score", &run, "--input", "shapes", "--out", "s.csv",
            ],
        ),
        "s.csv",
    );
}

#[test]
fn bad_anomaly_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let run = circles_run(tmp.path());
    for bad in [
        "contamination:1.5",
        "quantile:0",
        "contamination:abc",
        "median",
        "top:0.1",
    ] {
        let out = aekit(tmp.path(), &["anomaly", "fit", &run, "--threshold", bad]);
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(bad) && !err.contains("panicked"), "{err}");
    }
    clean_error(
        aekit(tmp.path(), &["anomaly", "fit", &run, "--score", "iw"]),
        "variational",
    );
    ok(aekit(
        tmp.path(),
        &["anomaly", "fit", &run, "--threshold", "auto"],
    ));
    // Unlabelled images (loose files): metrics asked for are an error, scores alone are not.
    let loose = tmp.path().join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    for i in 0..3 {
        image::GrayImage::from_pixel(16, 16, image::Luma([40 * i as u8]))
            .save(loose.join(format!("{i}.png")))
            .unwrap();
    }
    clean_error(
        aekit(
            tmp.path(),
            &[
                "anomaly",
                "score",
                &run,
                "--input",
                "loose",
                "--out",
                "a.csv",
                "--anomaly-classes",
                "1",
            ],
        ),
        "has no labels",
    );
    let out = ok(aekit(
        tmp.path(),
        &[
            "anomaly", "score", &run, "--input", "loose", "--out", "b.csv",
        ],
    ));
    assert!(!out.contains("AUROC"), "{out}");
    // Images of another size.
    image::GrayImage::from_pixel(20, 20, image::Luma([0]))
        .save(tmp.path().join("big.png"))
        .unwrap();
    clean_error(
        aekit(
            tmp.path(),
            &[
                "anomaly", "score", &run, "--input", "big.png", "--out", "c.csv",
            ],
        ),
        "--resize",
    );
    // Only normal samples: AUROC is undefined, and said so.
    let circles = tmp.path().join("only-circles/circle");
    std::fs::create_dir_all(&circles).unwrap();
    ok(aekit(
        tmp.path(),
        &[
            "data",
            "make-images",
            "--out",
            "all",
            "--count",
            "40",
            "--size",
            "16",
        ],
    ));
    for entry in std::fs::read_dir(tmp.path().join("all/circle")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), circles.join(entry.file_name())).unwrap();
    }
    let out = ok(aekit(
        tmp.path(),
        &[
            "anomaly",
            "score",
            &run,
            "--input",
            "only-circles",
            "--out",
            "d.csv",
        ],
    ));
    assert!(out.contains("AUROC:    undefined: only normal"), "{out}");
    assert!(!out.contains("NaN"), "{out}");
    // A class filter that leaves nothing to train on.
    std::fs::write(
        tmp.path().join("none.toml"),
        "name = \"none\"\n[data]\nkind = \"shapes\"\nsamples = 100\nsize = 16\n\
         train_classes = [\"hexagon\"]\n[model]\nkind = \"dense\"\ncode = 4\n",
    )
    .unwrap();
    clean_error(
        aekit(tmp.path(), &["train", "none.toml"]),
        "data.train_classes",
    );
}

#[test]
fn a_standardised_dense_autoencoder_beats_pca_on_a_table_with_anomalies() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    ok(aekit(
        tmp.path(),
        &[
            "data",
            "make-table",
            "--out",
            "data/anomaly-table.csv",
            "--anomalies",
            "200",
        ],
    ));
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/anomaly-table.toml");
    ok(aekit(
        tmp.path(),
        &["train", config.to_str().unwrap(), "--quiet"],
    ));
    ok(aekit(
        tmp.path(),
        &[
            "anomaly",
            "fit",
            "runs/anomaly-table",
            "--score",
            "combined",
        ],
    ));
    let out = ok(aekit(
        tmp.path(),
        &[
            "anomaly",
            "score",
            "runs/anomaly-table",
            "--input",
            "data/anomaly-table.csv",
            "--out",
            "scores.csv",
            "--explain",
            "why",
        ],
    ));
    let model = auroc(&out);
    // PCA at the same code size on the same standardised normal rows, scored by its
    // reconstruction error.
    let path = tmp.path().join("data/anomaly-table.csv");
    let table = aekit::data::table::load_csv(
        &path,
        &aekit::data::table::TableOptions {
            label_column: Some("label".into()),
            has_header: true,
        },
    )
    .unwrap();
    let labels = table.labels.clone().unwrap();
    let normal: Vec<usize> = (0..table.len()).filter(|&i| labels[i] == 0).collect();
    let train = table.subset(&normal);
    let scaler =
        aekit::data::scaling::FeatureScaler::fit(&train, aekit::data::scaling::Scale::Standard)
            .unwrap();
    let (mut train, mut all) = (train, table.clone());
    scaler.apply(&mut train.values);
    scaler.apply(&mut all.values);
    let device = burn::tensor::Device::flex();
    let pca = aekit::pca::fit(&train, 5, &device).unwrap();
    let outputs = pca.reconstruct(&all, &device);
    let width = all.shape.len();
    let scores: Vec<f64> = all
        .values
        .chunks(width)
        .zip(outputs.chunks(width))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(a, b)| f64::from((a - b) * (a - b)))
                .sum()
        })
        .collect();
    let truth: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
    let pca_auc = 100.0 * aekit::stats::detection::auroc(&scores, &truth).unwrap();
    assert!(
        model > pca_auc && model > 95.0,
        "autoencoder AUROC {model} vs PCA-5 {pca_auc}: {out}"
    );
    let csv = std::fs::read_to_string(tmp.path().join("scores.csv")).unwrap();
    assert!(
        csv.lines().next().unwrap().ends_with(",top_features"),
        "{csv}"
    );
    assert!(tmp.path().join("why/contributions.csv").is_file());
    // A non-finite cell is named by row and column.
    std::fs::write(tmp.path().join("bad.csv"), "a,b,label\n1,2,0\n3,nan,1\n").unwrap();
    clean_error(
        aekit(
            tmp.path(),
            &[
                "anomaly",
                "score",
                "runs/anomaly-table",
                "--input",
                "bad.csv",
                "--out",
                "x.csv",
            ],
        ),
        "bad.csv",
    );
}
