//! The compressed-image file and its payload (`aekit::codec::container::Compressed::from_bytes`
//! and `aekit::codec::entropy::decode`, what `aekit decompress` reads). Input: a flag byte,
//! then the file. With bit 0 set the target writes the correct CRC-32 over the file's last
//! 4 bytes itself, so that mutations reach the payload decoder behind the checksum. A file
//! that reads is then decoded with fixed tables (two channels of a Laplace-like prior); the
//! decoder must return symbols or an error, never panic.
#![no_main]

use aekit::codec::container::Compressed;
use aekit::codec::entropy::{self, ChannelTable};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn tables() -> &'static [ChannelTable] {
    static TABLES: OnceLock<Vec<ChannelTable>> = OnceLock::new();
    TABLES.get_or_init(|| {
        (1..=2)
            .map(|scale| {
                let masses: Vec<f64> = (-8i32..=8)
                    .map(|v| (-(v.abs() as f64) / scale as f64).exp() * 0.3)
                    .collect();
                ChannelTable::from_masses(-8, &masses).unwrap()
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if flags & 1 == 1 && bytes.len() >= 4 {
        let end = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
    }
    let path = Path::new("fuzz.aez");
    match Compressed::from_bytes(&bytes, path) {
        Err(error) => aekit_fuzz::assert_names_file(&error, path),
        Ok(file) => {
            assert_eq!(file.to_bytes().unwrap(), bytes, "a file that reads writes back the same");
            let count = (usize::from(file.width) * usize::from(file.height)).min(4096);
            let plane = (count / 2).max(1);
            if let Ok(symbols) = entropy::decode(tables(), &file.payload, count, |i| (i / plane).min(1)) {
                assert_eq!(symbols.len(), count);
            }
        }
    }
});
