//! End-to-end tests of the `aekit` command: each runs the real binary in a temporary folder,
//! on the built-in shapes data, and checks what a user would see and what lands on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::aekit;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A small, fast shapes config; `extra` lines go into `[train]`, replacing the defaults
/// they name.
fn write_config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let mut train: Vec<&str> = vec!["epochs = 3", "batch_size = 32"];
    let key = |line: &str| {
        line.split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let given: Vec<String> = extra.lines().map(key).collect();
    train.retain(|line| !given.contains(&key(line)));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\n[data]\nkind = \"shapes\"\nsamples = 1200\nsize = 16\n\
             [model]\nkind = \"dense\"\nhidden = [64]\ncode = 8\n[train]\n{}\n{extra}\n",
            train.join("\n")
        ),
    )
    .unwrap();
    path
}

/// An error is one clear line: no panic, no backtrace.
fn assert_clean_error(output: &Output, needle: &str) {
    let err = stderr(output);
    assert!(
        !output.status.success(),
        "expected a failure, got success: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "not a clean error: {err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    assert!(
        line.contains(needle),
        "error line `{line}` does not mention `{needle}`"
    );
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn train_writes_a_complete_run_directory_and_eval_reproduces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "basic", "");
    let out = aekit(tmp.path(), &["train", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = tmp.path().join("runs/basic");
    for file in [
        "config.toml",
        "model.json",
        "model.bpk",
        "history.csv",
        "loss.png",
        "reconstructions.png",
        "summary.json",
        "checkpoints/latest",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 4, "{history}");
    assert!(history.starts_with("epoch,train_loss,valid_loss,seconds,samples_per_sec"));
    // Where each epoch's time went: the parts add up to the total, the steps take time.
    let timings = std::fs::read_to_string(run.join("timings.csv")).unwrap();
    assert_eq!(timings.lines().count(), 4, "{timings}");
    for line in timings.lines().skip(1) {
        let cells: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        assert!(
            cells[3] > 0.0 && cells[5] > 0.0,
            "steps and validation: {line}"
        );
        let parts: f64 = cells[3..7].iter().sum();
        assert!((parts - cells[7]).abs() < 1e-3, "{line}");
    }
    let s = summary(&run);
    assert_eq!(s["status"], "completed");
    assert_eq!(s["epochs_completed"], 3);
    let first: f64 = history
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let last = s["final_train_loss"].as_f64().unwrap();
    assert!(last < first, "the loss went down: {first} -> {last}");

    let out = aekit(tmp.path(), &["eval", "runs/basic"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let trained = s["final_valid_metrics"]["bce"].as_f64().unwrap();
    let evaluated = eval["metrics"]["bce"].as_f64().unwrap();
    assert!(
        (trained - evaluated).abs() < 1e-6,
        "eval {evaluated} vs training {trained}"
    );
    assert!(stdout(&out).contains("PSNR"));

    let out = aekit(
        tmp.path(),
        &[
            "reconstruct",
            "runs/basic",
            "--input",
            "shapes",
            "--out",
            "r.png",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let image = image::open(tmp.path().join("r.png")).unwrap();
    assert!(image.width() > image.height());
    // Never overwritten without --force.
    let out = aekit(
        tmp.path(),
        &[
            "reconstruct",
            "runs/basic",
            "--input",
            "shapes",
            "--out",
            "r.png",
        ],
    );
    assert_clean_error(&out, "already exists");
}

#[test]
fn an_existing_run_directory_is_never_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "twice", "epochs = 1");
    let config = config.to_str().unwrap();
    assert!(aekit(tmp.path(), &["train", config]).status.success());
    let model = tmp.path().join("runs/twice/model.bpk");
    let before = std::fs::read(&model).unwrap();
    let out = aekit(tmp.path(), &["train", config]);
    assert_clean_error(&out, "already exists");
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "the run was touched"
    );
    let out = aekit(tmp.path(), &["train", config, "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn config_errors_name_the_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "typo", "learnin_rate = 0.1");
    let out = aekit(tmp.path(), &["train", config.to_str().unwrap()]);
    assert_clean_error(&out, "learnin_rate");
    assert!(stderr(&out).contains("line 13"), "{}", stderr(&out));

    let config = write_config(tmp.path(), "wrongtype", "batch_size = \"big\"");
    let out = aekit(tmp.path(), &["train", config.to_str().unwrap()]);
    assert_clean_error(&out, "line");
    assert!(
        !tmp.path().join("runs").exists(),
        "nothing is created for a bad config"
    );
}

#[test]
fn a_layer_size_that_does_not_match_the_data_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "mismatch", "");
    let out = aekit(
        tmp.path(),
        &[
            "train",
            config.to_str().unwrap(),
            "--set",
            "model.input=784",
        ],
    );
    assert_clean_error(&out, "256 values");
}

#[test]
fn a_loss_that_explodes_without_a_nan_is_divergence_and_the_first_epoch_has_no_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "boom", "learning_rate = 1e6\nepochs = 3");
    let out = aekit(tmp.path(), &["train", config.to_str().unwrap()]);
    assert_clean_error(&out, "learning rate");
    let err = stderr(&out);
    assert!(err.contains("No checkpoint was written"), "{err}");
    assert!(
        err.contains("lower train.learning_rate") && !err.contains("--resume"),
        "nothing to resume, so no resume command: {err}"
    );
    assert_eq!(summary(&tmp.path().join("runs/boom"))["status"], "failed");
}

#[test]
fn a_diverging_learning_rate_stops_with_a_message_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "nan", "epochs = 1");
    let config = config.to_str().unwrap();
    assert!(aekit(tmp.path(), &["train", config]).status.success());
    let run = tmp.path().join("runs/nan");
    let good = std::fs::read(run.join("checkpoints/epoch-0001/model.bpk")).unwrap();
    // Continue the good run with an absurd learning rate and no Adam normalisation.
    let out = aekit(
        tmp.path(),
        &[
            "train",
            "--resume",
            "runs/nan",
            "--set",
            "train.epochs=3",
            "--set",
            "train.optimizer=\"sgd\"",
            "--set",
            "train.learning_rate=1e12",
        ],
    );
    assert_clean_error(&out, "learning rate");
    assert!(stderr(&out).contains("too high"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("last good checkpoint is kept in")
            && stderr(&out).contains("--resume runs/nan --set train.learning_rate="),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(run.join("checkpoints/epoch-0001/model.bpk")).unwrap(),
        good
    );
    assert_eq!(
        std::fs::read(run.join("model.bpk")).unwrap(),
        good,
        "the final model is the last good one"
    );
    assert_eq!(summary(&run)["status"], "failed");
}

#[test]
fn resume_after_sigkill_ends_where_an_uninterrupted_run_ends() {
    let tmp = tempfile::tempdir().unwrap();
    // Enough epochs that even an optimised build is still training when the first
    // checkpoint appears and the kill follows.
    let extra = "epochs = 40\nbatch_size = 8";
    let whole = write_config(tmp.path(), "whole", extra);
    let killed = write_config(tmp.path(), "killed", extra);
    assert!(
        aekit(
            tmp.path(),
            &["train", whole.to_str().unwrap(), "--threads", "1"]
        )
        .status
        .success()
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args([
            "train",
            killed.to_str().unwrap(),
            "--threads",
            "1",
            "--quiet",
        ])
        .current_dir(tmp.path())
        .spawn()
        .unwrap();
    let latest = tmp.path().join("runs/killed/checkpoints/latest");
    let started = std::time::Instant::now();
    // Kill it mid-way through the second epoch, once the first checkpoint exists.
    while !latest.exists() {
        assert!(started.elapsed().as_secs() < 120, "no checkpoint appeared");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("training ended before it could be killed: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_ne!(
        summary_status(&tmp.path().join("runs/killed")),
        Some("completed".into()),
        "killed too late"
    );

    let out = aekit(
        tmp.path(),
        &["train", "--resume", "runs/killed", "--threads", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let a = summary(&tmp.path().join("runs/whole"))["final_valid_loss"]
        .as_f64()
        .unwrap();
    let b = summary(&tmp.path().join("runs/killed"))["final_valid_loss"]
        .as_f64()
        .unwrap();
    assert!(
        (a - b).abs() <= 0.01 * a,
        "uninterrupted {a} vs resumed {b}"
    );
    let history = std::fs::read_to_string(tmp.path().join("runs/killed/history.csv")).unwrap();
    assert_eq!(
        history.lines().count(),
        41,
        "the history continues: {history}"
    );
}

fn summary_status(run: &Path) -> Option<String> {
    let text = std::fs::read_to_string(run.join("summary.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["status"].as_str().map(String::from)
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "sigint", "epochs = 50\nbatch_size = 8");
    let child = Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(["train", config.to_str().unwrap(), "--quiet"])
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let latest = tmp.path().join("runs/sigint/checkpoints/latest");
    let started = std::time::Instant::now();
    while !latest.exists() {
        assert!(started.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    let run = tmp.path().join("runs/sigint");
    assert_eq!(summary(&run)["status"], "interrupted");
    // Usually a mid-epoch checkpoint (`epoch-0002-step-000123`); an epoch boundary's when the
    // signal lands between epochs.
    let pointer = std::fs::read_to_string(&latest).unwrap();
    let checkpoint = run.join("checkpoints").join(pointer.trim());
    assert!(checkpoint.join("state.json").is_file(), "{pointer}");
    let out = aekit(
        tmp.path(),
        &[
            "train",
            "--resume",
            "runs/sigint",
            "--set",
            "train.epochs=2",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary(&run)["status"], "completed");
}

#[test]
fn data_info_describes_the_built_in_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = aekit(tmp.path(), &["data", "info", "shapes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("circle") && text.contains("28"), "{text}");
}

#[test]
fn missing_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    assert_clean_error(&aekit(tmp.path(), &["train", "nope.toml"]), "nope.toml");
    assert_clean_error(&aekit(tmp.path(), &["eval", "runs/none"]), "runs/none");
    assert_clean_error(
        &aekit(tmp.path(), &["data", "info", "missing-folder"]),
        "missing-folder",
    );
}

/// The repository root and the shared MNIST folder, which must exist when `CI=true`.
/// `--device gpu` in a build without a GPU backend (the default) is one clear line naming
/// the features and `--device cpu`, for training and for the speed benchmark, and leaves no
/// run directory behind. In a `vulkan`/`wgpu` build on a machine without a usable GPU it is
/// one clear line too (the feature's own message); with a GPU the run trains.
#[test]
fn device_gpu_is_a_clear_error_without_a_gpu() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "gpu", "epochs = 1");
    let gpu_build = cfg!(any(feature = "vulkan", feature = "wgpu"));
    let out = aekit(
        tmp.path(),
        &["train", config.to_str().unwrap(), "--device", "gpu"],
    );
    if out.status.success() {
        assert!(gpu_build, "--device gpu trained without a GPU backend");
        assert!(
            stderr(&out).contains("computing on the GPU: "),
            "{}",
            stderr(&out)
        );
        return;
    }
    if gpu_build {
        assert_clean_error(&out, "--device cpu");
    } else {
        assert_clean_error(&out, "this build of aekit has no GPU backend");
        assert_clean_error(&out, "--features vulkan");
        assert_clean_error(&out, "--device cpu");
    }
    assert!(!tmp.path().join("runs/gpu").exists());
    let out = aekit(
        tmp.path(),
        &[
            "bench",
            "speed",
            "--config",
            config.to_str().unwrap(),
            "--steps",
            "1",
            "--batch",
            "8",
            "--device",
            "gpu",
        ],
    );
    if !gpu_build {
        assert_clean_error(&out, "this build of aekit has no GPU backend");
    } else if !out.status.success() {
        assert_clean_error(&out, "--device cpu");
    }
}

fn repo_root_and_mnist() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mnist = root.join("../shared/data/mnist");
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(mnist.is_dir(), "CI=true but {} is missing", mnist.display());
    }
    (root, mnist)
}

#[test]
fn every_shipped_config_trains() {
    // Each config under configs/ runs briefly, on the built-in data where it names MNIST
    // and MNIST is not at hand, so that no example rots.
    let (root, mnist) = repo_root_and_mnist();
    let tmp = tempfile::tempdir().unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(root.join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        count += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let mut args = vec![
            "train".to_string(),
            path.to_str().unwrap().to_string(),
            "--quiet".into(),
            "--set".into(),
            "train.epochs=1".into(),
            "--set".into(),
            format!("runs_dir={}", tmp.path().display()),
        ];
        if text.contains("kind = \"idx\"") {
            if mnist.is_dir() {
                args.extend([
                    "--set".into(),
                    format!("data.path={}", mnist.display()),
                    "--set".into(),
                    "data.limit=2000".into(),
                    "--set".into(),
                    "data.valid_limit=500".into(),
                ]);
            } else {
                eprintln!(
                    "note: {} not found; {} runs on the built-in shapes",
                    mnist.display(),
                    path.display()
                );
                args.extend([
                    "--set".into(),
                    "data.kind=shapes".into(),
                    "--set".into(),
                    "data.samples=500".into(),
                ]);
            }
        } else if text.contains("kind = \"images\"") {
            // Image-folder configs train on the shapes written as a class-folder tree.
            let folder = tmp.path().join("images");
            if !folder.exists() {
                let folder_arg = folder.to_str().unwrap();
                let made = aekit(
                    tmp.path(),
                    &["data", "make-images", "--out", folder_arg, "--count", "200"],
                );
                assert!(made.status.success(), "{}", stderr(&made));
            }
            args.extend(["--set".into(), format!("data.path={}", folder.display())]);
        } else if text.contains("kind = \"csv\"") {
            // Table configs train on the generated table with known structure.
            let table = tmp.path().join("table.csv");
            if !table.exists() {
                let table_arg = table.to_str().unwrap();
                let made = aekit(
                    tmp.path(),
                    &["data", "make-table", "--out", table_arg, "--rows", "300"],
                );
                assert!(made.status.success(), "{}", stderr(&made));
            }
            args.extend(["--set".into(), format!("data.path={}", table.display())]);
        } else {
            args.extend(["--set".into(), "data.samples=500".into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = aekit(tmp.path(), &args);
        assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
        // Each run directory goes once it has trained: two dozen of them (checkpoints with
        // optimizer state) would otherwise hold a quarter of a gigabyte at the end.
        for entry in std::fs::read_dir(tmp.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() && entry.file_name() != "images" {
                std::fs::remove_dir_all(entry.path()).unwrap();
            }
        }
    }
    assert!(count >= 2, "configs/ holds the shipped configs");
}

#[test]
fn pca_baseline_reports_reconstruction_on_the_test_split() {
    let tmp = tempfile::tempdir().unwrap();
    let out = aekit(tmp.path(), &["pca", "shapes", "--components", "16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("16 components") && text.contains("test split"),
        "{text}"
    );
    let per_sample: f64 = text
        .lines()
        .find(|l| l.starts_with("MSE:"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(per_sample > 0.0 && per_sample < 100.0, "{per_sample}");
    assert_clean_error(
        &aekit(tmp.path(), &["pca", "shapes", "--components", "5000"]),
        "--components",
    );
}

#[test]
fn bench_quality_trains_reuses_and_never_overwrites() {
    let (root, mnist) = repo_root_and_mnist();
    let data: Vec<String> = if mnist.is_dir() {
        vec![
            format!("data.path={}", mnist.display()),
            "data.limit=2000".into(),
            "data.valid_limit=500".into(),
        ]
    } else {
        eprintln!(
            "note: {} not found; the benchmark runs on the built-in shapes",
            mnist.display()
        );
        vec!["data.kind=shapes".into(), "data.samples=500".into()]
    };
    let tmp = tempfile::tempdir().unwrap();
    let configs = root.join("configs");
    let report = tmp.path().join("quality.md");
    let mut args: Vec<String> = [
        "bench",
        "quality",
        "--configs",
        configs.to_str().unwrap(),
        "--runs-dir",
        "qruns",
        "--only",
        "linear,deep",
        "--max-epochs",
        "1",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    for set in &data {
        args.extend(["--set".into(), set.clone()]);
    }
    let with_out = |extra: &[&str]| -> Vec<String> {
        let mut all = args.clone();
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        aekit(tmp.path(), &args)
    };

    let out = run(&with_out(&["--out", report.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for row in ["| linear | linear | 32 | 1*", "| deep | dense | 32 | 1*"] {
        assert!(table.contains(row), "no `{row}` in\n{table}");
    }
    assert!(table.contains("capped at 1 epochs"), "{table}");
    let written = std::fs::read_to_string(&report).unwrap();
    assert!(
        written.contains("command: ") && written.contains("| linear |"),
        "{written}"
    );
    // Every row holds finite figures and a PCA value beside them.
    for line in table
        .lines()
        .filter(|l| l.starts_with("| linear") || l.starts_with("| deep"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        for cell in &cells[5..9] {
            let value: f64 = cell.parse().unwrap_or_else(|_| panic!("{line}"));
            assert!(value.is_finite() && value > 0.0, "{line}");
        }
    }

    // The second time the finished runs are reused, not trained again.
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("linear (reused a finished run)"), "{log}");
    assert!(log.contains("deep (reused a finished run)"), "{log}");

    // An existing report is never overwritten.
    assert_clean_error(
        &run(&with_out(&["--out", report.to_str().unwrap()])),
        "the report file exists already",
    );
    // Unknown names are listed with the choices.
    let mut bogus = args.clone();
    let only = bogus.iter().position(|a| a == "linear,deep").unwrap();
    bogus[only] = "lineer".into();
    assert_clean_error(
        &run(&bogus),
        "`lineer` is not a reference config; choose from linear",
    );
}

#[test]
fn bench_speed_reports_throughput_exports_a_check_and_memory_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "speedy", "");
    let config = config.to_str().unwrap();
    let out = aekit(
        dir.path(),
        &[
            "bench",
            "speed",
            "--config",
            config,
            "--steps",
            "3",
            "--warmup",
            "1",
            "--batch",
            "16",
            "--threads",
            "1",
            "--json",
            "speed.json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("samples/s"), "{}", stdout(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("speed.json")).unwrap())
            .unwrap();
    assert!(report["train_samples_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["infer_samples_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(report["threads"], 1);

    let out = aekit(
        dir.path(),
        &[
            "bench",
            "speed",
            "--config",
            config,
            "--batch",
            "16",
            "--export-check",
            "check",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("check/manifest.json").is_file());
    assert!(dir.path().join("check/tensors.bin").is_file());

    let out = aekit(
        dir.path(),
        &["bench", "speed", "--config", config, "--epochs-memory", "2"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("epoch   2"), "{}", stdout(&out));
    // The temporary run directory is gone; nothing lands in the working folder.
    assert!(!dir.path().join("runs").exists());
}

/// `--export-check` for a VAE: the exported loss is the negative ELBO of the exported weights
/// on the exported batch with the exported noise, i.e. the noise is the one `loss_parts` drew.
/// (Run through the binary: the random generator is global to a process.)
#[test]
fn bench_speed_vae_check_exports_the_noise_its_loss_used() {
    use aekit::models::{ModelConfig, VaeConfig};
    use aekit_bench::speed::{CheckManifest, ExportedTensor};
    use burn::module::{Module, ModuleMapper, Param};
    use burn::tensor::{Device, Tensor, TensorData};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vae.toml");
    std::fs::write(
        &path,
        "name = \"v\"\n[data]\nkind = \"shapes\"\nsamples = 200\nsize = 16\n\
         [model]\nkind = \"vae\"\nhidden = [24]\nlatent = 3\ninit = \"torch-default\"\n",
    )
    .unwrap();
    let out = aekit(
        dir.path(),
        &[
            "bench",
            "speed",
            "--config",
            path.to_str().unwrap(),
            "--batch",
            "8",
            "--export-check",
            "check",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: CheckManifest = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("check/manifest.json")).unwrap(),
    )
    .unwrap();
    let floats: Vec<f32> = std::fs::read(dir.path().join("check/tensors.bin"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let ModelConfig::Vae(config) =
        serde_json::from_value::<ModelConfig>(manifest.model.clone()).unwrap()
    else {
        panic!("a VAE config")
    };

    struct Load<'a>(std::slice::Iter<'a, ExportedTensor>, &'a [f32]);
    impl ModuleMapper for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let entry = self.0.next().unwrap();
            let n: usize = entry.shape.iter().product();
            let values = self.1[entry.offset..entry.offset + n].to_vec();
            param.map(|t| {
                assert_eq!(t.dims().to_vec(), entry.shape);
                Tensor::from_data(TensorData::new(values, t.shape()), &t.device())
            })
        }
    }
    let device = Device::flex();
    let vae = VaeConfig::init(&config, aekit::data::SampleShape::features(256), &device)
        .unwrap()
        .map(&mut Load(manifest.parameters.iter(), &floats));
    let take = |t: &ExportedTensor| {
        let n: usize = t.shape.iter().product();
        Tensor::<2>::from_data(
            TensorData::new(
                floats[t.offset..t.offset + n].to_vec(),
                [t.shape[0], t.shape[1]],
            ),
            &device,
        )
    };
    let (x, noise) = (
        take(&manifest.batch),
        take(manifest.noise.as_ref().unwrap()),
    );
    let (mean, log_variance) = vae.posterior(x.clone());
    let z = mean.clone() + log_variance.clone().mul_scalar(0.5).exp() * noise;
    let nll = aekit::loss::bce_with_logits(vae.decode_logits(z), x)
        .sum()
        .into_scalar::<f32>() as f64
        / 8.0;
    let kl = (log_variance.clone().add_scalar(1.0) - mean.clone() * mean - log_variance.exp())
        .sum()
        .into_scalar::<f32>() as f64
        * -0.5
        / 8.0;
    assert!(
        (nll + kl - manifest.loss).abs() <= 1e-5 * manifest.loss.abs(),
        "recomputed {} (nll {nll}, kl {kl}), exported {} {:?}",
        nll + kl,
        manifest.loss,
        manifest.terms
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(["data", "info", "shapes"])
        .current_dir(tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command prints (it generates the shapes first).
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn config_check_validates_without_training_and_config_reference_is_the_doc() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/mnist-dense.toml");
    let config = config.to_str().unwrap();
    let out = aekit(tmp.path(), &["config", "check", config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("valid; it trains into runs/mnist-dense"));
    assert!(stdout(&out).contains("learning_rate"), "defaults filled in");
    assert!(!tmp.path().join("runs").exists(), "nothing trained");
    let bad = aekit(
        tmp.path(),
        &["config", "check", config, "--set", "train.epochs=abc"],
    );
    assert_clean_error(&bad, "train.epochs");
    let reference = aekit(tmp.path(), &["config", "reference"]);
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config-reference.md"),
    )
    .unwrap();
    assert_eq!(stdout(&reference), doc);
}
