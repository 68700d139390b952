//! What the CLI's end-to-end test files share: running the real `aekit` binary.

// Each test file uses a part of these helpers.
#![allow(dead_code)]

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

/// The path of a config shipped under `configs/`.
pub fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name)
        .display()
        .to_string()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// An error is one clear line naming `needle`: no panic, no backtrace.
pub fn clean_error(output: Output, needle: &str) {
    let err = text(&output.stderr);
    assert!(!output.status.success(), "expected a failure: {err}");
    assert!(!err.contains("panicked"), "not a clean error: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    assert!(
        line.contains(needle),
        "`{line}` does not mention `{needle}`"
    );
}

/// The number after `prefix` at the start of a line of a command's output (`AUROC:    96.3`).
pub fn figure(output: &str, prefix: &str) -> f64 {
    let line = output
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line: {output}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
