//! Image-to-image models end to end on the built-in shapes: super-resolution against
//! bicubic, segmentation with pixel accuracy and IoU, colourisation and inpainting with
//! their input / output / target pictures, pairs read from folders, and the bad inputs the
//! issue lists (target names that do not match, mask classes beyond the model's).

mod common;

use common::{aekit, clean_error, ok, shipped};
use std::path::Path;

/// `aekit train CONFIG` with the given overrides, into `dir/runs`.
fn train(dir: &Path, config: &str, sets: &[&str]) -> std::process::Output {
    let runs = format!("runs_dir={}", dir.join("runs").display());
    let config = if config.ends_with(".toml") && !config.contains('/') {
        shipped(config)
    } else {
        config.to_string()
    };
    let mut args = vec!["train", config.as_str(), "--quiet", "--set", runs.as_str()];
    for set in sets {
        args.extend(["--set", set]);
    }
    aekit(dir, &args)
}

/// The configs anneal their rate over their own length; runs of a few epochs keep it.
const SHORT_RUN: &str = "train.lr_schedule=\"constant\"";

fn eval_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap()
}

#[test]
fn super_resolution_beats_bicubic_and_segmentation_beats_background() {
    let tmp = tempfile::tempdir().unwrap();
    ok(train(
        tmp.path(),
        "super-resolution.toml",
        &["data.samples=1500", "train.epochs=4", SHORT_RUN],
    ));
    let run = tmp.path().join("runs/super-resolution");
    let shown = ok(aekit(tmp.path(), &["eval", run.to_str().unwrap()]));
    assert!(shown.contains("bicubic: PSNR"), "{shown}");
    let report = eval_json(&run);
    let pairs = &report["pairs"];
    assert_eq!(pairs["kind"], "image");
    assert_eq!(pairs["target"], "upscale:2");
    let model = pairs["output"]["psnr"].as_f64().unwrap();
    let bicubic = pairs["input"]["psnr"].as_f64().unwrap();
    assert!(
        model > bicubic + 1.0,
        "model {model} dB, bicubic {bicubic} dB"
    );
    // The 4x pairs of the same images are harder for bicubic.
    ok(train(
        tmp.path(),
        "super-resolution.toml",
        &[
            "data.samples=300",
            "train.epochs=1",
            "data.target=\"upscale:4\"",
            "name=\"sr4\"",
        ],
    ));
    ok(aekit(
        tmp.path(),
        &["eval", tmp.path().join("runs/sr4").to_str().unwrap()],
    ));
    let four = eval_json(&tmp.path().join("runs/sr4"));
    assert!(four["pairs"]["input"]["psnr"].as_f64().unwrap() < bicubic - 2.0);

    ok(train(
        tmp.path(),
        "segmentation.toml",
        &["data.samples=3000", "train.epochs=5", SHORT_RUN],
    ));
    let run = tmp.path().join("runs/segmentation");
    let shown = ok(aekit(tmp.path(), &["eval", run.to_str().unwrap()]));
    assert!(shown.contains("per-pixel cross-entropy"), "{shown}");
    assert!(shown.contains("triangle: IoU"), "{shown}");
    let pairs = &eval_json(&run)["pairs"];
    assert_eq!(pairs["kind"], "segmentation");
    let classes = pairs["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 5, "background and four shapes");
    let background: f64 = classes[0]["pixels"].as_f64().unwrap()
        / classes
            .iter()
            .map(|c| c["pixels"].as_f64().unwrap())
            .sum::<f64>();
    let accuracy = pairs["pixel_accuracy"].as_f64().unwrap();
    assert!(
        accuracy > background + 0.02,
        "pixel accuracy {accuracy} against {background} for all-background"
    );
    assert!(pairs["mean_iou"].as_f64().unwrap() > 0.3);
    let model = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(run.join("model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(model["output_shape"]["channels"], 5);
    assert_eq!(model["pixel_classes"][1], "circle");
}

#[test]
fn colourise_and_inpaint_draw_input_output_and_target_rows() {
    let tmp = tempfile::tempdir().unwrap();
    for (config, run) in [
        ("colourise.toml", "colourise"),
        ("inpainting.toml", "inpainting"),
    ] {
        ok(train(
            tmp.path(),
            config,
            &["data.samples=1500", "train.epochs=4", SHORT_RUN],
        ));
        let run = tmp.path().join("runs").join(run);
        // Ten samples: one block of three rows (inputs, outputs, targets).
        let picture = run.join("reconstructions.png");
        let (_, height) = image::image_dimensions(&picture).unwrap();
        let out = tmp.path().join(format!("{}.png", config));
        ok(aekit(
            tmp.path(),
            &[
                "reconstruct",
                run.to_str().unwrap(),
                "--input",
                "shapes",
                "--out",
                out.to_str().unwrap(),
                "--count",
                "20",
            ],
        ));
        let (_, twenty) = image::image_dimensions(&out).unwrap();
        // Rows of tiles 84 + 2 pixels high and a 2-pixel border: 3 rows, then 6.
        assert_eq!(height, 3 * 86 + 2, "{config}");
        assert_eq!(twenty, 6 * 86 + 2, "{config}");
        let colours = image::open(&picture).unwrap().to_rgb8();
        if config.starts_with("colourise") {
            // The target row is coloured: some pixel has channels far apart.
            let coloured = (0..colours.width()).any(|x| {
                (2 * 86 + 2..3 * 86).any(|y| {
                    let [r, g, b] = colours.get_pixel(x, y).0;
                    r.max(g).max(b) - r.min(g).min(b) > 100
                })
            });
            assert!(coloured, "the colourise targets are coloured");
        }
        ok(aekit(tmp.path(), &["eval", run.to_str().unwrap()]));
        let pairs = &eval_json(&run)["pairs"];
        assert!(pairs["output"]["psnr"].as_f64().unwrap() > 10.0, "{config}");
        if config.starts_with("inpainting") {
            let holed = pairs["input"]["psnr"].as_f64().unwrap();
            assert!(pairs["output"]["psnr"].as_f64().unwrap() > holed, "{pairs}");
        } else {
            assert!(
                pairs["input"].is_null(),
                "a grey input is no colour baseline"
            );
        }
    }
}

/// Writes `count` shapes as a class-folder tree under `dir`, and returns its path.
fn shape_folder(dir: &Path, name: &str, count: usize) -> std::path::PathBuf {
    let folder = dir.join(name);
    let count = count.to_string();
    ok(aekit(
        dir,
        &[
            "data",
            "make-images",
            "--out",
            folder.to_str().unwrap(),
            "--count",
            &count,
        ],
    ));
    folder
}

/// Every PNG under `dir`, relative to it.
fn pngs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(
                pngs(&path)
                    .into_iter()
                    .map(|p| Path::new(path.file_name().unwrap()).join(p)),
            );
        } else {
            found.push(path.file_name().unwrap().into());
        }
    }
    found
}

/// Writes, for every image of `inputs`, a target under `targets` made by `map` from its
/// grey pixels (grey or colour, as `map` returns).
fn write_targets<P>(inputs: &Path, targets: &Path, map: impl Fn(u8) -> P)
where
    P: image::Pixel<Subpixel = u8> + image::PixelWithColorType,
{
    for relative in pngs(inputs) {
        let grey = image::open(inputs.join(&relative)).unwrap().to_luma8();
        let target = image::ImageBuffer::from_fn(grey.width(), grey.height(), |x, y| {
            map(grey.get_pixel(x, y).0[0])
        });
        let path = targets.join(&relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        target.save(path).unwrap();
    }
}

fn folder_config(dir: &Path, inputs: &Path, target: &str, extra: &str) -> std::path::PathBuf {
    let config = dir.join(format!("pairs-{}.toml", extra.len()));
    std::fs::write(
        &config,
        format!(
            "name = \"pairs\"\n[data]\nkind = \"images\"\npath = \"{}\"\ntarget = \"{target}\"\n\
             {extra}\n[model]\nkind = \"dense\"\nhidden = [128]\ncode = 32\n\
             [train]\nepochs = 3\nbatch_size = 32\nloss = \"mse\"\n",
            inputs.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn pairs_read_from_folders_train_and_mismatches_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = shape_folder(tmp.path(), "inputs", 120);
    // Targets: the inverted images, by the same names.
    let inverted = tmp.path().join("inverted");
    write_targets(&inputs, &inverted, |v| image::Luma([255 - v]));
    let target = format!("folder:{}", inverted.display());
    let config = folder_config(tmp.path(), &inputs, &target, "");
    ok(train(tmp.path(), config.to_str().unwrap(), &[]));
    let run = tmp.path().join("runs/pairs");
    ok(aekit(tmp.path(), &["eval", run.to_str().unwrap()]));
    let pairs = &eval_json(&run)["pairs"];
    assert_eq!(pairs["kind"], "image");
    // The inputs are the targets' negatives: far from them, while the model is close.
    let input = pairs["input"]["psnr"].as_f64().unwrap();
    assert!(input < 5.0 && pairs["output"]["psnr"].as_f64().unwrap() > input + 5.0);

    // Colour targets for grey inputs (colourising photos): `target_color = "rgb"`.
    let coloured = tmp.path().join("coloured");
    write_targets(&inputs, &coloured, |v| image::Rgb([v, v / 2, 0]));
    let config = folder_config(
        tmp.path(),
        &inputs,
        &format!("folder:{}", coloured.display()),
        "target_color = \"rgb\"",
    );
    ok(train(
        tmp.path(),
        config.to_str().unwrap(),
        &["name=\"coloured\""],
    ));
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/coloured/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(model["output_shape"]["channels"], 3);
    let config = folder_config(tmp.path(), &inputs, &target, "");

    // One target missing: the error names the input without a target.
    let first = pngs(&inverted).into_iter().next().unwrap();
    std::fs::remove_file(inverted.join(&first)).unwrap();
    clean_error(
        train(tmp.path(), config.to_str().unwrap(), &["name=\"pairs2\""]),
        "no target for 1 input(s)",
    );
    let name = first.to_string_lossy().replace('\\', "/");
    let output = train(tmp.path(), config.to_str().unwrap(), &["name=\"pairs2\""]);
    assert!(common::text(&output.stderr).contains(&name), "names {name}");

    // Masks whose classes go past `target_classes`: the file and the pixel are named.
    let masks = tmp.path().join("masks");
    write_targets(&inputs, &masks, |v| {
        image::Luma([if v > 127 { 3 } else { 0 }])
    });
    let config = folder_config(
        tmp.path(),
        &inputs,
        &format!("masks:{}", masks.display()),
        "target_classes = 3",
    );
    clean_error(
        train(tmp.path(), config.to_str().unwrap(), &[]),
        "has class 3, but `data.target_classes` is 3",
    );
    // With room for class 3 the masks train a segmentation model.
    ok(train(
        tmp.path(),
        config.to_str().unwrap(),
        &["data.target_classes=4", "name=\"masks\""],
    ));
    let shown = ok(aekit(
        tmp.path(),
        &["eval", tmp.path().join("runs/masks").to_str().unwrap()],
    ));
    assert!(shown.contains("mean IoU"), "{shown}");
}

#[test]
fn bad_targets_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "super-resolution.toml",
            &["data.target=\"blur\""],
            "`blur` is no target",
        ),
        ("super-resolution.toml", &["data.size=27"], "multiples of 2"),
        (
            "super-resolution.toml",
            &["data.target=\"upscale:1\""],
            "from 2 to 8",
        ),
        // A VAE learns targets of its input's shape (inpainting), not others.
        (
            "vae.toml",
            &["data.kind=\"shapes\"", "data.target=\"colourise\""],
            "kind = \"dense\" or",
        ),
        (
            "segmentation.toml",
            &["data.binarize=\"dynamic\""],
            "data.binarize",
        ),
        (
            "vae.toml",
            &["data.kind=\"shapes\"", "data.target=\"segment\""],
            "segmentation targets are learned by",
        ),
    ];
    for (config, sets, needle) in cases {
        let mut sets = sets.to_vec();
        sets.push("data.samples=50");
        clean_error(train(tmp.path(), config, &sets), needle);
    }
}
