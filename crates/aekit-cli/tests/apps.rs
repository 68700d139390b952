//! End-to-end tests of the applications of a trained run (`encode`, `decode`, `latent-map`,
//! `cluster`, `sample`, `interpolate`, `manifold`, `eval --noise`, `denoise`,
//! `activations`, `report`): each runs the real binary on a small model trained on the
//! built-in shapes, checks what lands on disk, and that bad input is one clear error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;

use common::{aekit, clean_error, ok, text};

/// Two runs trained once for all tests: a dense autoencoder with an 8-value code and a VAE
/// with a 2-D code, on 16x16 shapes.
struct Runs {
    dir: tempfile::TempDir,
}

impl Runs {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = "[data]\nkind = \"shapes\"\nsamples = 800\nsize = 16\nvalidation = \"test\"\n";
        let train = "[train]\nepochs = 4\nbatch_size = 32\nlearning_rate = 2e-3\n";
        for (name, model) in [
            ("dense", "kind = \"dense\"\nhidden = [64]\ncode = 8"),
            (
                "vae",
                "kind = \"vae\"\nhidden = [64]\nlatent = 2\nwarmup_epochs = 2",
            ),
        ] {
            let config = dir.path().join(format!("{name}.toml"));
            std::fs::write(
                &config,
                format!("name = \"{name}\"\n{data}[model]\n{model}\n{train}"),
            )
            .unwrap();
            ok(aekit(
                dir.path(),
                &["train", config.to_str().unwrap(), "--quiet"],
            ));
        }
        Runs { dir }
    })
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn run_path(name: &str) -> String {
    runs().path().join("runs").join(name).display().to_string()
}

#[test]
fn encode_and_decode_round_trip_through_npy_and_csv() {
    let tmp = scratch();
    let dense = run_path("dense");
    let out = ok(aekit(
        tmp.path(),
        &["encode", &dense, "--input", "shapes", "--out", "codes.npy"],
    ));
    assert!(out.contains("codes of 8 values"), "{out}");
    let bytes = std::fs::read(tmp.path().join("codes.npy")).unwrap();
    assert!(bytes.starts_with(b"\x93NUMPY"), "a real .npy file");
    let index = std::fs::read_to_string(tmp.path().join("codes.index.csv")).unwrap();
    assert!(index.starts_with("id,label,class,path\n0,"), "{index}");
    // Train then test split of shapes at size 16 (1000 + 200 samples).
    assert_eq!(index.lines().count(), 1 + 1200, "one index row per code");
    ok(aekit(
        tmp.path(),
        &[
            "encode",
            &dense,
            "--input",
            "shapes",
            "--split",
            "test",
            "--out",
            "codes.csv",
        ],
    ));
    let csv = std::fs::read_to_string(tmp.path().join("codes.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",z7"), "{csv}");
    assert_eq!(csv.lines().count(), 201);
    clean_error(
        aekit(
            tmp.path(),
            &["encode", &dense, "--input", "shapes", "--out", "codes.csv"],
        ),
        "already exists",
    );
    for (codes, out) in [("codes.npy", "grid.png"), ("codes.csv", "decoded")] {
        ok(aekit(
            tmp.path(),
            &["decode", &dense, "--codes", codes, "--out", out],
        ));
    }
    assert!(image::open(tmp.path().join("grid.png")).unwrap().width() > 100);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("decoded"))
            .unwrap()
            .count(),
        200
    );
    // Codes of the wrong width, and files that are not codes.
    let vae = run_path("vae");
    clean_error(
        aekit(
            tmp.path(),
            &["decode", &vae, "--codes", "codes.npy", "--out", "v.png"],
        ),
        "codes of 8 values, but the model's code has 2",
    );
    std::fs::write(tmp.path().join("table.csv"), "a,b\n1,2\n").unwrap();
    clean_error(
        aekit(
            tmp.path(),
            &["decode", &dense, "--codes", "table.csv", "--out", "t.png"],
        ),
        "not a codes file",
    );
    clean_error(
        aekit(
            tmp.path(),
            &["encode", &dense, "--input", "shapes", "--out", "codes.txt"],
        ),
        ".npy or .csv",
    );
}

#[test]
fn latent_maps_and_clusters_of_the_codes() {
    let tmp = scratch();
    let dense = run_path("dense");
    let out = ok(aekit(
        tmp.path(),
        &[
            "latent-map",
            &dense,
            "--method",
            "tsne",
            "--perplexity",
            "10",
            "--out",
            "map.png",
        ],
    ));
    assert!(out.contains("t-SNE of 160 codes"), "{out}");
    let map = image::open(tmp.path().join("map.png")).unwrap();
    assert_eq!(map.width(), 1400, "codes' and inputs' maps side by side");
    let csv = std::fs::read_to_string(tmp.path().join("map.csv")).unwrap();
    assert!(
        csv.starts_with("id,label,code_x,code_y,input_x,input_y\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 161);
    clean_error(
        aekit(
            tmp.path(),
            &["latent-map", &dense, "--method", "none", "--out", "n.png"],
        ),
        "needs a 2-D code",
    );
    ok(aekit(
        tmp.path(),
        &[
            "latent-map",
            &run_path("vae"),
            "--method",
            "none",
            "--out",
            "vae.png",
        ],
    ));
    let out = ok(aekit(
        tmp.path(),
        &[
            "cluster", &dense, "--k", "4", "--on-map", "pca", "--json", "c.json",
        ],
    ));
    assert!(out.contains("NMI") && out.contains("raw inputs"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("c.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "codes, their map, raw inputs");
    for row in rows {
        let nmi = row["nmi"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&nmi), "{row}");
    }
    clean_error(aekit(tmp.path(), &["cluster", &dense, "--k", "1"]), "--k");
}

#[test]
fn generation_from_a_vae_and_from_a_fitted_gaussian() {
    let tmp = scratch();
    let vae = run_path("vae");
    let out = ok(aekit(
        tmp.path(),
        &["sample", &vae, "--n", "16", "--out", "s.png"],
    ));
    assert!(out.contains("prior"), "{out}");
    let out = ok(aekit(
        tmp.path(),
        &["sample", &run_path("dense"), "--n", "16", "--out", "d.png"],
    ));
    assert!(
        out.contains("fitted"),
        "a non-VAE says where its codes come from: {out}"
    );
    ok(aekit(
        tmp.path(),
        &[
            "interpolate",
            &vae,
            "--from",
            "0",
            "--to",
            "1",
            "--steps",
            "6",
            "--spherical",
            "--out",
            "i.png",
        ],
    ));
    let strip = image::open(tmp.path().join("i.png")).unwrap();
    assert!(strip.width() > 5 * strip.height(), "one row of six images");
    ok(aekit(
        tmp.path(),
        &["manifold", &vae, "--grid", "5", "--out", "m.png"],
    ));
    let grid = image::open(tmp.path().join("m.png")).unwrap();
    assert_eq!(grid.width(), grid.height(), "a square grid");
    clean_error(
        aekit(
            tmp.path(),
            &["manifold", &vae, "--dims", "0,5", "--out", "m2.png"],
        ),
        "--dims 0,5",
    );
    clean_error(
        aekit(
            tmp.path(),
            &[
                "interpolate",
                &vae,
                "--from",
                "0",
                "--to",
                "99999",
                "--out",
                "x.png",
            ],
        ),
        "past the end",
    );
    clean_error(
        aekit(tmp.path(), &["sample", &vae, "--out", "s.png"]),
        "already exists",
    );
}

/// A folder of `count` grey PNGs of `size` x `size`.
fn image_folder(dir: &Path, count: usize, size: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let image = image::GrayImage::from_fn(size, size, |x, y| {
            image::Luma([if (x + y + i as u32).is_multiple_of(5) {
                255
            } else {
                0
            }])
        });
        image.save(dir.join(format!("img-{i}.png"))).unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn denoising_reports_psnr_and_ssim_and_writes_files() {
    let tmp = scratch();
    let dense = run_path("dense");
    let out = ok(aekit(
        tmp.path(),
        &[
            "eval",
            &dense,
            "--noise",
            "gaussian:0.5",
            "--seed",
            "3",
            "--picture",
            "n.png",
        ],
    ));
    assert!(
        out.contains("PSNR noisy") && out.contains("SSIM noisy"),
        "{out}"
    );
    let eval: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs().path().join("runs/dense/eval.json")).unwrap(),
    )
    .unwrap();
    let noise = &eval["noise"];
    assert!(noise["denoised_psnr"].as_f64().unwrap() > noise["noisy_psnr"].as_f64().unwrap());
    assert!(noise["noisy_ssim"].as_f64().unwrap() < 1.0);
    clean_error(
        aekit(tmp.path(), &["eval", &dense, "--noise", "blur:2"]),
        "unknown noise",
    );

    let noisy = image_folder(&tmp.path().join("noisy"), 3, 16);
    let out = ok(aekit(
        tmp.path(),
        &[
            "denoise",
            &dense,
            "--input",
            noisy.to_str().unwrap(),
            "--out",
            "clean",
        ],
    ));
    assert!(out.contains("3 denoised images"), "{out}");
    assert!(tmp.path().join("clean/img-0.png").is_file());
    clean_error(
        aekit(
            tmp.path(),
            &["denoise", &dense, "--input", "noisy", "--out", "clean"],
        ),
        "already exists",
    );
    let big = image_folder(&tmp.path().join("big"), 2, 20);
    clean_error(
        aekit(
            tmp.path(),
            &[
                "denoise",
                &dense,
                "--input",
                big.to_str().unwrap(),
                "--out",
                "b",
            ],
        ),
        "--resize",
    );
    ok(aekit(
        tmp.path(),
        &[
            "denoise", &dense, "--input", "big", "--out", "b", "--resize",
        ],
    ));
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    clean_error(
        aekit(
            tmp.path(),
            &["denoise", &dense, "--input", "empty", "--out", "e"],
        ),
        "no images",
    );
}

#[test]
fn activations_and_the_report() {
    let tmp = scratch();
    let dense = run_path("dense");
    let out = ok(aekit(
        tmp.path(),
        &["activations", &dense, "--count", "12", "--out", "a.png"],
    ));
    assert!(
        out.contains("12 inputs, 8 code units") && out.contains("active"),
        "{out}"
    );
    assert_eq!(
        image::open(tmp.path().join("a.png")).unwrap().width(),
        12 * 28
    );
    for run in ["dense", "vae"] {
        let page = format!("{run}.html");
        ok(aekit(
            tmp.path(),
            &["report", &run_path(run), "--out", &page],
        ));
        let html = std::fs::read_to_string(tmp.path().join(&page)).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains("<script")
        );
        let pictures = html.matches("src=\"data:image/png;base64,").count();
        assert!(
            pictures >= if run == "vae" { 5 } else { 3 },
            "{run}: {pictures} pictures"
        );
    }
    check_in_chromium(&tmp.path().join("vae.html"));
}

/// Loads the page in headless Chromium (Debian's `chromium`; installed by `.ci/run`): it
/// must load with no console errors, and the screenshot must show more than a blank page.
fn check_in_chromium(page: &Path) {
    let Some(browser) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromium is not installed"
        );
        eprintln!("note: chromium not found; the report's page check is skipped");
        return;
    };
    let shot = page.with_extension("png");
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,2400",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", page.display()),
        ])
        .output()
        .unwrap();
    let log = text(&output.stderr);
    assert!(
        !log.lines()
            .any(|l| l.contains("CONSOLE") || l.contains("Uncaught")),
        "console messages: {log}"
    );
    let image = image::open(&shot).unwrap().to_luma8();
    let dark = image.pixels().filter(|p| p.0[0] < 128).count();
    assert!(
        dark > 10_000,
        "the screenshot shows pictures ({dark} dark pixels)"
    );
}

#[test]
fn image_applications_refuse_a_table_model_and_final_weights_can_be_chosen() {
    let tmp = scratch();
    // A table with two correlated features and a label column.
    let mut table = String::from("a,b,c,label\n");
    for i in 0..200 {
        let x = (i as f32 * 0.37).sin();
        table.push_str(&format!("{x},{},{},{}\n", 0.5 * x, x * x, i % 2));
    }
    std::fs::write(tmp.path().join("table.csv"), table).unwrap();
    std::fs::write(
        tmp.path().join("t.toml"),
        "name = \"t\"\n[data]\nkind = \"csv\"\npath = \"table.csv\"\nlabel_column = \"label\"\n\
         validation = 0.2\n[model]\nkind = \"dense\"\ncode = 2\noutput_activation = \"linear\"\n\
         [train]\nepochs = 2\nbatch_size = 20\nloss = \"mse\"\n",
    )
    .unwrap();
    ok(aekit(tmp.path(), &["train", "t.toml", "--quiet"]));
    clean_error(
        aekit(tmp.path(), &["sample", "runs/t", "--out", "s.png"]),
        "table rows",
    );
    clean_error(
        aekit(tmp.path(), &["manifold", "runs/t", "--out", "m.png"]),
        "table rows",
    );
    ok(aekit(
        tmp.path(),
        &["encode", "runs/t", "--input", "table.csv", "--out", "c.csv"],
    ));
    let out = ok(aekit(
        tmp.path(),
        &[
            "decode",
            "runs/t",
            "--codes",
            "c.csv",
            "--out",
            "rows.csv",
            "--weights",
            "final",
        ],
    ));
    assert!(out.contains("200 decoded rows"), "{out}");
    clean_error(
        aekit(
            tmp.path(),
            &[
                "decode",
                "runs/t",
                "--codes",
                "c.csv",
                "--out",
                "grid.png",
                "--weights",
                "newest",
            ],
        ),
        "expected `best` or `final`",
    );
}

/// The generated mixed-scale table (30 features on scales 1 to 10^4, a label column) and a
/// run of `configs/table.toml` on it, with `extra` overrides.
fn table_run(dir: &Path, name: &str, extra: &[&str]) -> String {
    if !dir.join("table.csv").exists() {
        ok(aekit(
            dir,
            &["data", "make-table", "--out", "table.csv", "--rows", "2000"],
        ));
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/table.toml");
    let name_arg = format!("name={name}");
    let mut args = vec![
        "train",
        config.to_str().unwrap(),
        "--quiet",
        "--set",
        "data.path=table.csv",
        "--set",
        &name_arg,
    ];
    for e in extra {
        args.extend(["--set", e]);
    }
    ok(aekit(dir, &args));
    format!("runs/{name}")
}

fn mse(output: &str) -> f64 {
    common::figure(output, "MSE:")
}

fn r_squared(eval_output: &str) -> f64 {
    common::figure(eval_output, "R^2:")
}

#[test]
fn tables_are_second_class_no_more_scaling_label_column_and_table_metrics() {
    let tmp = scratch();
    let scaled = table_run(tmp.path(), "scaled", &[]);
    assert!(
        tmp.path().join("runs/scaled/scaler.json").is_file(),
        "the scaling is stored in the run"
    );
    // The very file the model was trained on: its label column is not a feature.
    let out = ok(aekit(tmp.path(), &["eval", &scaled, "--data", "table.csv"]));
    assert!(
        out.contains("MAE:") && out.contains("original units"),
        "{out}"
    );
    assert!(
        !out.contains("BCE:") && !out.contains("PSNR:"),
        "no metrics for [0, 1] data: {out}"
    );
    // Within 1.5x of PCA at the same code size on the same standardised columns, both
    // measured in the table's own units.
    let pca = ok(aekit(
        tmp.path(),
        &[
            "pca",
            "table.csv",
            "--label-column",
            "label",
            "--components",
            "5",
            "--scale",
            "standard",
        ],
    ));
    let (model_mse, pca_mse) = (mse(&out), mse(&pca));
    assert!(
        model_mse <= 1.5 * pca_mse,
        "autoencoder MSE {model_mse} vs standardised PCA-5 {pca_mse}"
    );
    let standardised = r_squared(&out);
    let raw = table_run(
        tmp.path(),
        "raw",
        &["data.scale=\"none\"", "train.learning_rate=1e-3"],
    );
    let unscaled = r_squared(&ok(aekit(
        tmp.path(),
        &["eval", &raw, "--data", "table.csv"],
    )));
    assert!(
        standardised > 0.95 && unscaled < 0.5,
        "standardised R^2 {standardised} vs unscaled {unscaled}"
    );
    // Decoded rows come back in the table's own units.
    ok(aekit(
        tmp.path(),
        &["encode", &scaled, "--input", "table.csv", "--out", "c.csv"],
    ));
    ok(aekit(
        tmp.path(),
        &["decode", &scaled, "--codes", "c.csv", "--out", "rows.csv"],
    ));
    let rows = std::fs::read_to_string(tmp.path().join("rows.csv")).unwrap();
    let first: Vec<f64> = rows
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        first[4].abs() > 100.0,
        "column 4 is on a scale of 10^4: {first:?}"
    );
    clean_error(aekit(tmp.path(), &["train", "t.toml"]), "t.toml");
}

#[test]
fn data_info_and_pca_take_the_label_column() {
    let tmp = scratch();
    ok(aekit(
        tmp.path(),
        &[
            "data",
            "make-table",
            "--out",
            "t.csv",
            "--rows",
            "300",
            "--features",
            "12",
        ],
    ));
    let info = ok(aekit(
        tmp.path(),
        &["data", "info", "t.csv", "--label-column", "label"],
    ));
    assert!(info.contains("300 samples of 12 features"), "{info}");
    assert!(!info.contains("no labels"), "{info}");
    let counted = ok(aekit(tmp.path(), &["data", "info", "t.csv"]));
    assert!(
        counted.contains("of 13 features"),
        "without it the label is a feature: {counted}"
    );
    let pca = ok(aekit(
        tmp.path(),
        &[
            "pca",
            "t.csv",
            "--label-column",
            "label",
            "--components",
            "12",
        ],
    ));
    assert!(
        pca.contains("MAE:") && !pca.contains("BCE:") && !pca.contains("PSNR:"),
        "table metrics for a table: {pca}"
    );
    assert!(r_squared(&pca) > 0.9999, "all 12 components: {pca}");
    clean_error(
        aekit(
            tmp.path(),
            &[
                "pca",
                "t.csv",
                "--label-column",
                "nope",
                "--components",
                "3",
            ],
        ),
        "nope",
    );
}

#[test]
fn scaling_images_is_a_clear_error() {
    let tmp = scratch();
    std::fs::write(
        tmp.path().join("img.toml"),
        "name = \"img\"\n[data]\nkind = \"shapes\"\nsamples = 100\nsize = 12\nscale = \"standard\"\n\
         [model]\nkind = \"dense\"\ncode = 4\n",
    )
    .unwrap();
    clean_error(aekit(tmp.path(), &["train", "img.toml"]), "data.scale");
}

#[test]
fn reconstruct_count_is_what_is_drawn_and_folders_are_sampled_across_classes() {
    let tmp = scratch();
    let dense = run_path("dense");
    let out = ok(aekit(
        tmp.path(),
        &[
            "reconstruct",
            &dense,
            "--input",
            "shapes",
            "--count",
            "25",
            "--out",
            "r.png",
        ],
    ));
    assert!(out.contains("(25 originals"), "{out}");
    let grid = image::open(tmp.path().join("r.png")).unwrap();
    // 25 samples: three rows of originals, each above its reconstructions.
    let tile = grid.width() / 10;
    assert_eq!(
        grid.height() / tile,
        6,
        "{}x{}",
        grid.width(),
        grid.height()
    );
    clean_error(
        aekit(
            tmp.path(),
            &[
                "reconstruct",
                &dense,
                "--input",
                "shapes",
                "--count",
                "0",
                "--out",
                "z.png",
            ],
        ),
        "--count",
    );
    // A folder of two classes, the first holding many more images than asked for.
    for (class, count, value) in [("a", 12, 0u8), ("b", 12, 255u8)] {
        let dir = tmp.path().join("classes").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..count {
            image::GrayImage::from_pixel(16, 16, image::Luma([value]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }
    ok(aekit(
        tmp.path(),
        &[
            "reconstruct",
            &dense,
            "--input",
            "classes",
            "--count",
            "4",
            "--out",
            "c.png",
        ],
    ));
    let picture = image::open(tmp.path().join("c.png")).unwrap().to_luma8();
    // The originals' row holds white images (class b) as well as black ones (class a).
    let tile = picture.width() / 4;
    let centres: Vec<u8> = (0..4)
        .map(|i| picture.get_pixel(i * tile + tile / 2, tile / 2).0[0])
        .collect();
    assert!(
        centres.contains(&0) && centres.contains(&255),
        "{centres:?}"
    );
}

#[test]
fn train_out_names_the_run_directory() {
    let tmp = scratch();
    std::fs::write(
        tmp.path().join("o.toml"),
        "name = \"o\"\n[data]\nkind = \"shapes\"\nsamples = 100\nsize = 12\n[model]\nkind = \"dense\"\n\
         code = 4\n[train]\nepochs = 1\n",
    )
    .unwrap();
    let out = ok(aekit(
        tmp.path(),
        &["train", "o.toml", "--quiet", "--out", "elsewhere/run-1"],
    ));
    assert!(out.contains("elsewhere/run-1"), "{out}");
    assert!(tmp.path().join("elsewhere/run-1/.aekit-run").is_file());
    assert!(!tmp.path().join("runs").exists());
}
