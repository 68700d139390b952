//! The index file of similar-sample search (`aekit::apps::search::CodeIndex::from_bytes`,
//! what `aekit similar` reads). Input: a flag byte, then the file. With bit 0 set the target
//! appends the correct sha256 itself, so that mutations reach the parsing behind the
//! checksum (the header JSON, the lengths, the codes) instead of all failing at it.
#![no_main]

use aekit::apps::search::CodeIndex;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if flags & 1 == 1 {
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
    }
    let path = Path::new("fuzz.aeidx");
    match CodeIndex::from_bytes(&bytes, path) {
        Err(error) => aekit_fuzz::assert_names_file(&error, path),
        Ok(index) => {
            // What a success promises: one id (and label) per whole code, finite values,
            // and a file that reads back the same.
            let n = index.len();
            assert_eq!(index.header.ids.len(), n);
            assert!(index.header.labels.as_ref().is_none_or(|l| l.len() == n));
            assert_eq!(index.codes.vectors().len(), n * index.header.code_len);
            assert!(index.codes.vectors().iter().all(|v| v.is_finite()));
            let again = CodeIndex::from_bytes(&index.to_bytes().unwrap(), path).unwrap();
            assert_eq!(again.header, index.header);
            if n > 0 {
                let hits = index.codes.search(index.codes.vector(0), 3).unwrap();
                assert_eq!(hits[0].len(), n.min(3));
            }
        }
    }
});
