//! A checkpoint's loop state (`aekit::train::checkpoint::load_state`, `state.json`).
#![no_main]

use aekit::train::checkpoint::load_state;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = aekit_fuzz::write("checkpoint_state", "state.json", data);
    let folder = path.parent().unwrap();
    if let Err(error) = load_state(folder) {
        aekit_fuzz::assert_names_file(&error, &path);
    }
});
