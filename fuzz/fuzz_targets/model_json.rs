//! The files a run directory is read back from (`aekit::run_dir::RunDir`): the input is
//! written as `model.json`, `summary.json`, `history.csv` and `scaler.json` of one run
//! folder (whose `config.toml` scales its data, so the scaler is read), and each is read.
#![no_main]

use aekit::config::RunConfig;
use aekit::run_dir::{ModelMeta, RunDir, read_json};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CONFIG: &str = r#"
name = "fuzz"
[data]
kind = "csv"
path = "table.csv"
scale = "standard"
[model]
kind = "dense"
code = 2
"#;

fn run() -> &'static (RunDir, RunConfig) {
    static RUN: OnceLock<(RunDir, RunConfig)> = OnceLock::new();
    RUN.get_or_init(|| {
        let path = aekit_fuzz::write("model_json", "config.toml", CONFIG.as_bytes());
        let run = RunDir::open(path.parent().unwrap()).unwrap();
        let config = run.load_config().unwrap();
        (run, config)
    })
}

fuzz_target!(|data: &[u8]| {
    let (run, config) = run();
    for path in [
        run.model_meta_path(),
        run.summary_path(),
        run.history_path(),
        run.scaler_path(),
    ] {
        std::fs::write(&path, data).unwrap();
    }
    let check = |error: aekit::Error, path: std::path::PathBuf| {
        aekit_fuzz::assert_names_file(&error, &path);
    };
    if let Err(e) = run.load_meta() {
        check(e, run.model_meta_path());
    }
    if let Err(e) = read_json::<ModelMeta>(&run.model_meta_path()) {
        check(e, run.model_meta_path());
    }
    if let Err(e) = run.read_summary() {
        check(e, run.summary_path());
    }
    if let Err(e) = run.read_history() {
        check(e, run.history_path());
    }
    if let Err(e) = run.load_scaler(config) {
        check(e, run.scaler_path());
    }
});
