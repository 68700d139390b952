//! IDX images and labels (`aekit::data::idx`), raw or gzip-compressed.
//!
//! Input: one flag byte, then the file. Flag bit 0 set: the rest is gzip-compressed before
//! it is written (so the header parser is reached through the decompressor too); clear: it
//! is written as it is (and a raw input starting with 1f 8b exercises corrupt gzip data).
#![no_main]

use aekit::data::idx;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let bytes = if flags & 1 == 1 {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(rest).unwrap();
        encoder.finish().unwrap()
    } else {
        rest.to_vec()
    };
    let path = aekit_fuzz::write("idx", "train-images-idx3-ubyte.gz", &bytes);
    for error in [
        idx::read_maybe_gzip(&path).err(),
        idx::read_images(&path).err(),
        idx::read_labels(&path).err(),
    ]
    .into_iter()
    .flatten()
    {
        aekit_fuzz::assert_names_file(&error, &path);
    }
});
