//! PNG and JPEG files (`aekit::data::images::load_file`), resized to a small size.
//!
//! Input: one flag byte, then the file. Flag bit 0: `.jpg` name (else `.png`; the content,
//! not the name, decides the decoder); bit 1: RGB (else grey); bit 2: 5x7 (else 8x8).
#![no_main]

use aekit::data::config::Color;
use aekit::data::images::{ImageOptions, load_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let name = if flags & 1 == 1 {
        "image.jpg"
    } else {
        "image.png"
    };
    let path = aekit_fuzz::write("image_header", name, rest);
    let options = ImageOptions {
        size: Some(if flags & 4 == 4 { [5, 7] } else { [8, 8] }),
        color: if flags & 2 == 2 {
            Color::Rgb
        } else {
            Color::Grey
        },
        strict: true,
    };
    match load_file(&path, &options) {
        Ok(image) => {
            let [height, width] = options.size.unwrap();
            assert_eq!(
                image.values.len(),
                options.color.channels() * height * width
            );
            assert!(image.values.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        Err(error) => aekit_fuzz::assert_names_file(&error, &path),
    }
});
