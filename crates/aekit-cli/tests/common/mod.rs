//! What the CLI's end-to-end test files share: running the real `aekit` binary.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `aekit ARGS` in `dir`, with backtraces on so that a panic would show.
pub fn aekit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the aekit binary runs")
}
