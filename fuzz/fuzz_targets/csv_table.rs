//! CSV tables (`aekit::data::table::load_csv`), read with each option combination: header
//! on and off, with and without a label column.
#![no_main]

use aekit::data::table::{TableOptions, load_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = aekit_fuzz::write("csv_table", "table.csv", data);
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
        match load_csv(&path, &options) {
            Ok(table) => {
                // What a loaded table promises: whole samples, one label per sample.
                let width = table.shape.len();
                assert!(width > 0);
                assert_eq!(table.values.len() % width, 0);
                if let Some(labels) = &table.labels {
                    assert_eq!(labels.len(), table.len());
                    assert!(
                        labels
                            .iter()
                            .all(|&l| (l as usize) < table.class_names.len())
                    );
                    // One name per class: no two classes share a name.
                    let mut names = table.class_names.clone();
                    names.sort();
                    names.dedup();
                    assert_eq!(
                        names.len(),
                        table.class_names.len(),
                        "{:?}",
                        table.class_names
                    );
                }
            }
            Err(error) => aekit_fuzz::assert_names_file(&error, &path),
        }
    }
});
