//! End-to-end tests of learned compression (`aekit compress`, `aekit decompress`) with a
//! small codec trained on the built-in shapes: exact round trips (the same bytes twice, the
//! same pixels on 1 and 2 threads, any image size) and every bad input the codec issue
//! lists: a corrupted, truncated or foreign `.aez` file, one made by another model, an image
//! of the wrong channel count.

use std::path::Path;

mod common;

use common::{aekit, clean_error, ok};

/// Trains a small codec `name` on 16x16 grey shapes in `dir`.
fn train(dir: &Path, name: &str, seed: u64) -> String {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "name = \"{name}\"\n[data]\nkind = \"shapes\"\nsamples = 400\nsize = 16\n\
             validation = \"test\"\n[model]\nkind = \"codec\"\nfilters = [8]\n\
             latent_channels = 4\nkernel_size = 3\n[train]\nseed = {seed}\nepochs = 3\n\
             batch_size = 32\nlearning_rate = 2e-3\n"
        ),
    )
    .unwrap();
    ok(aekit(dir, &["train", config.to_str().unwrap(), "--quiet"]));
    format!("runs/{name}")
}

/// A grey (or RGB) PNG of `w` x `h` with a gradient and a bar.
fn picture(path: &Path, w: u32, h: u32, rgb: bool) {
    let value = |x: u32, y: u32| {
        ((x * 255 / w.max(1)) as u8).max(if y.is_multiple_of(5) { 200 } else { 0 })
    };
    if rgb {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([value(x, y), 0, 255 - value(x, y)]))
            .save(path)
            .unwrap();
    } else {
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([value(x, y)]))
            .save(path)
            .unwrap();
    }
}

#[test]
fn compression_round_trips_exactly_at_any_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = train(dir, "codec", 0);
    let history = std::fs::read_to_string(dir.join("runs/codec/history.csv")).unwrap();
    assert!(history.lines().next().unwrap().contains("rate_bpp") && history.contains("psnr_db"));
    // An odd size: padded for the transforms, cropped back.
    picture(&dir.join("odd.png"), 13, 10, false);
    let out = ok(aekit(dir, &["compress", &run, "odd.png", "--out", "a.aez"]));
    assert!(out.contains("bits per pixel"), "{out}");
    assert!(dir.join("runs/codec/entropy-tables-best.json").is_file());
    ok(aekit(dir, &["compress", &run, "odd.png", "--out", "b.aez"]));
    let (a, b) = (
        std::fs::read(dir.join("a.aez")).unwrap(),
        std::fs::read(dir.join("b.aez")).unwrap(),
    );
    assert_eq!(a, b, "compressing twice gives the same bytes");
    for threads in ["1", "2"] {
        let out = format!("t{threads}.png");
        ok(aekit(
            dir,
            &[
                "decompress",
                &run,
                "a.aez",
                "--out",
                &out,
                "--threads",
                threads,
            ],
        ));
    }
    let one = image::open(dir.join("t1.png")).unwrap().to_luma8();
    let two = image::open(dir.join("t2.png")).unwrap().to_luma8();
    assert_eq!((one.width(), one.height()), (13, 10));
    assert_eq!(
        one.as_raw(),
        two.as_raw(),
        "1 and 2 threads decode the same pixels"
    );
    // A folder in, a folder out.
    std::fs::create_dir_all(dir.join("many")).unwrap();
    std::fs::create_dir_all(dir.join("packed")).unwrap();
    std::fs::create_dir_all(dir.join("restored")).unwrap();
    for i in 0..3 {
        picture(&dir.join(format!("many/p{i}.png")), 16 + i, 16, false);
    }
    ok(aekit(dir, &["compress", &run, "many", "--out", "packed"]));
    ok(aekit(
        dir,
        &["decompress", &run, "packed", "--out", "restored"],
    ));
    let restored = image::open(dir.join("restored/p2.png")).unwrap();
    assert_eq!((restored.width(), restored.height()), (18, 16));
    clean_error(
        aekit(dir, &["compress", &run, "odd.png", "--out", "a.aez"]),
        "already exists",
    );
}

#[test]
fn an_rgb_codec_round_trips_colour_images() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let images = dir.join("colour");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..40u32 {
        image::RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([
                ((x * 16 + i) % 256) as u8,
                ((y * 16) % 256) as u8,
                (i * 6) as u8,
            ])
        })
        .save(images.join(format!("c{i:02}.png")))
        .unwrap();
    }
    let config = dir.join("rgb.toml");
    std::fs::write(
        &config,
        "name = \"rgb\"\n[data]\nkind = \"images\"\npath = \"colour\"\ncolor = \"rgb\"\n\
         validation = 0.2\n[model]\nkind = \"codec\"\nfilters = [8]\nlatent_channels = 4\n\
         kernel_size = 3\n[train]\nepochs = 2\nbatch_size = 8\n",
    )
    .unwrap();
    ok(aekit(dir, &["train", config.to_str().unwrap(), "--quiet"]));
    picture(&dir.join("in.png"), 21, 11, true);
    ok(aekit(
        dir,
        &["compress", "runs/rgb", "in.png", "--out", "in.aez"],
    ));
    ok(aekit(
        dir,
        &["decompress", "runs/rgb", "in.aez", "--out", "out.png"],
    ));
    let out = image::open(dir.join("out.png")).unwrap();
    assert_eq!((out.width(), out.height()), (21, 11));
    assert!(out.color().has_color(), "an RGB codec writes RGB");
    picture(&dir.join("grey.png"), 16, 16, false);
    clean_error(
        aekit(dir, &["compress", "runs/rgb", "grey.png", "--out", "g.aez"]),
        "1 colour channel",
    );
}

#[test]
fn bad_compressed_files_and_images_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = train(dir, "a", 0);
    let other = train(dir, "b", 1);
    picture(&dir.join("grey.png"), 16, 16, false);
    ok(aekit(
        dir,
        &["compress", &run, "grey.png", "--out", "g.aez"],
    ));
    let bytes = std::fs::read(dir.join("g.aez")).unwrap();

    let mut flipped = bytes.clone();
    let middle = bytes.len() / 2;
    flipped[middle] ^= 0x10;
    std::fs::write(dir.join("flipped.aez"), &flipped).unwrap();
    clean_error(
        aekit(dir, &["decompress", &run, "flipped.aez", "--out", "x.png"]),
        "checksum",
    );
    std::fs::write(dir.join("cut.aez"), &bytes[..bytes.len() - 3]).unwrap();
    clean_error(
        aekit(dir, &["decompress", &run, "cut.aez", "--out", "x.png"]),
        "truncated",
    );
    std::fs::copy(dir.join("grey.png"), dir.join("png.aez")).unwrap();
    clean_error(
        aekit(dir, &["decompress", &run, "png.aez", "--out", "x.png"]),
        "not an aekit compressed image",
    );
    assert!(!dir.join("x.png").exists(), "no picture from a bad file");

    // Another model: it has no tables yet, then once it has, the fingerprint refuses.
    clean_error(
        aekit(dir, &["decompress", &other, "g.aez", "--out", "x.png"]),
        "entropy tables",
    );
    ok(aekit(
        dir,
        &["compress", &other, "grey.png", "--out", "o.aez"],
    ));
    clean_error(
        aekit(dir, &["decompress", &other, "g.aez", "--out", "x.png"]),
        "another model",
    );

    // The wrong channel count, and a model that is not a codec.
    picture(&dir.join("rgb.png"), 16, 16, true);
    clean_error(
        aekit(dir, &["compress", &run, "rgb.png", "--out", "c.aez"]),
        "3 colour channels",
    );
    let config = dir.join("dense.toml");
    std::fs::write(
        &config,
        "name = \"dense\"\n[data]\nkind = \"shapes\"\nsamples = 100\nsize = 16\n\
         validation = \"test\"\n[model]\nkind = \"dense\"\ncode = 4\n[train]\nepochs = 1\n",
    )
    .unwrap();
    ok(aekit(dir, &["train", config.to_str().unwrap(), "--quiet"]));
    clean_error(
        aekit(
            dir,
            &["compress", "runs/dense", "grey.png", "--out", "d.aez"],
        ),
        "does not compress",
    );
    clean_error(
        aekit(dir, &["compress", &run, "grey.png", "--out", "g.png"]),
        ".aez",
    );
}
