#!/usr/bin/env python3
"""aekit's speed suite (issue 4): aekit against PyTorch on the reference models.

Run from the repository root (Python 3.8+, standard library only):

    python3 bench/speed.py                    # all models, 200 steps, 1 and 2 threads
    python3 bench/speed.py --save             # ... and keep bench/results/<date>-speed.txt
    python3 bench/speed.py --models mnist-dense --threads 1,2 --repeat 3

For every model it
  1. builds aekit (`cargo build --release`, unless --no-build),
  2. runs `aekit bench speed --export-check DIR` (initial weights, one batch, aekit's loss)
     and `bench/pytorch/speed.py --check` on them: both sides must compute the same loss
     (relative difference <= 1e-4; the VAE with the same fixed noise),
  3. for every thread count, alternately runs `aekit bench speed` and `bench/pytorch/speed.py`
     (one process per model and thread count, so peak memory belongs to that model): training
     samples/s over --steps steps (batch --batch, Adam as the config says), inference
     (encode + decode, no grad) samples/s, peak resident memory (VmHWM),
  4. runs `aekit bench speed --epochs-memory N` (the real training loop, N epochs) for the
     --memory-models and reports the peak resident memory of every epoch.

PyTorch is the interpreter in $AEKIT_TORCH_PYTHON, else /work/torch-venv/bin/python, else
`python3`, if it can `import torch`; otherwise the report says PyTorch is not installed and
gives aekit's figures alone. Data: the configs' MNIST folder (../shared/data/mnist); when it is
missing both sides use random data of MNIST's shape and the report says so.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AEKIT = ROOT / "target" / "release" / "aekit"
TORCH_SCRIPT = ROOT / "bench" / "pytorch" / "speed.py"
DEFAULT_TORCH = "/work/torch-venv/bin/python"

# (short name, what it is, config). A config that is not in the tree is reported as
# "not available" rather than replaced by something else.
MODELS = [
    ("mnist-dense", "seed dense 784-32-784", "configs/mnist-dense.toml"),
    ("deep", "Keras deep 784-128-64-32", "configs/deep.toml"),
    ("hinton-deep", "Hinton 784-1000-500-250-30", "configs/hinton-deep.toml"),
    ("conv", "Keras conv AE 16-8-8", "configs/conv.toml"),
    ("vae", "PyTorch-examples VAE 784-400-20", "configs/vae.toml"),
    ("conv-vae", "Keras conv VAE 32-64-256-16", "configs/conv-vae.toml"),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, **kw)


def torch_python():
    """(interpreter, torch version) or (None, why not)."""
    candidates = []
    if os.environ.get("AEKIT_TORCH_PYTHON"):
        candidates.append(os.environ["AEKIT_TORCH_PYTHON"])
    candidates += [DEFAULT_TORCH, "python3"]
    reasons = []
    for py in candidates:
        if not (Path(py).exists() or shutil.which(py)):
            reasons.append(f"{py}: not found")
            continue
        r = subprocess.run([py, "-c", "import torch, numpy; print(torch.__version__)"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return py, r.stdout.strip()
        reasons.append(f"{py}: cannot import torch")
    return None, "; ".join(reasons)


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return dict(nproc=os.cpu_count(), cpu=cpu, memory=mem, load=load,
                commit=commit + ("+" if dirty else ""), system=platform.platform())


def aekit_speed(config, threads, args, out):
    cmd = [AEKIT, "bench", "speed", "--config", config, "--steps", args.steps, "--warmup",
           args.warmup, "--batch", args.batch, "--threads", threads, "--json", out]
    r = run(cmd)
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip().splitlines()[-1:]
    return json.loads(Path(out).read_text()), None


def torch_speed(py, spec, threads, args, out):
    cmd = [py, TORCH_SCRIPT, "--spec", spec, "--steps", args.steps, "--warmup", args.warmup,
           "--batch", args.batch, "--threads", threads, "--json", out]
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    r = run(cmd, env=env)
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip().splitlines()[-1:]
    return json.loads(Path(out).read_text()), None


def aekit_epochs(config, name, threads, args, runs):
    """`aekit train` for --whole-epochs epochs at the config's batch size: the training
    samples/s of every epoch, from the run's history.csv."""
    cmd = [AEKIT, "train", config, "--quiet", "--threads", threads, "--set",
           f"train.epochs={args.whole_epochs}", "--set", f"runs_dir=\"{runs}\"", "--set",
           f"name=\"{name}\"", "--set", "train.patience=1000000"]
    if args.epoch_limit > 0:
        # Validation shrinks with training, keeping MNIST's 6:1, so that its share of an
        # epoch is the full data's.
        cmd += ["--set", f"data.limit={args.epoch_limit}", "--set",
                f"data.valid_limit={max(1, args.epoch_limit // 6)}"]
    r = run(cmd)
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip().splitlines()[-1:]
    rows = (Path(runs) / name / "history.csv").read_text().strip().splitlines()
    column = rows[0].split(",").index("samples_per_sec")
    return [float(line.split(",")[column]) for line in rows[1:]], None


def aekit_timings(runs, name):
    """The run's timings.csv (where each epoch's time went) as dicts, one per epoch."""
    path = Path(runs) / name / "timings.csv"
    if not path.exists():
        return []
    rows = path.read_text().strip().splitlines()
    header = rows[0].split(",")
    return [dict(zip(header, map(float, line.split(",")))) for line in rows[1:]]


def loop_breakdown(timings):
    """Medians over the epochs after the first: each part's share of the epoch, the steps'
    and the whole epoch's training samples/s, and the validation pass's samples/s."""
    rows = timings[1:] if len(timings) > 1 else timings
    if not rows:
        return None
    share = lambda key: median([r[key] / r["total_seconds"] for r in rows])
    return dict(
        steps=share("steps_seconds"), waiting=share("waiting_seconds"),
        validation=share("validation_seconds"), saving=share("saving_seconds"),
        steps_samples_per_s=median([r["samples"] / r["steps_seconds"] for r in rows]),
        epoch_samples_per_s=median([r["samples"] / r["total_seconds"] for r in rows]),
        valid_samples_per_s=median([r["valid_samples"] / r["validation_seconds"]
                                    for r in rows]))


def config_batch(config):
    """The config's train.batch_size (the default 256 when it gives none)."""
    for line in (ROOT / config).read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "batch_size":
            return int(value.split("#")[0].strip())
    return 256


def torch_epochs(py, spec, threads, args, out):
    manifest = json.loads((Path(spec) / "manifest.json").read_text())
    batch = manifest["train"].get("batch_size", args.batch)
    cmd = [py, TORCH_SCRIPT, "--spec", spec, "--epochs", args.whole_epochs, "--batch", batch,
           "--limit", args.epoch_limit, "--threads", threads, "--json", out]
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    r = run(cmd, env=env)
    if r.returncode != 0:
        return None, (r.stderr or r.stdout).strip().splitlines()[-1:]
    return json.loads(Path(out).read_text())["epoch_samples_per_s"], None


def epoch_summary(runs):
    """The median epoch throughput after the first over the runs, and the change from epoch
    2 to the last (median over the runs)."""
    runs = [r for r in runs or [] if r and len(r) >= 2]
    if not runs:
        return None, None
    after_first = median([v for r in runs for v in r[1:]])
    change = median([(r[-1] - r[1]) / r[1] for r in runs])
    return after_first, change


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="all",
                   help="comma-separated short names (" + ", ".join(m[0] for m in MODELS) + ")")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2 (the last one "
                   "is the main table's)")
    p.add_argument("--repeat", type=int, default=1, help="runs per side and thread count "
                   "(medians are reported)")
    p.add_argument("--epochs-memory", type=int, default=10,
                   help="epochs of the memory-per-epoch run (0: none)")
    p.add_argument("--memory-models", default="mnist-dense",
                   help="models of the memory-per-epoch run (comma-separated, or all)")
    p.add_argument("--memory-limit", type=int, default=0,
                   help="train the memory runs on the first N training images (--set data.limit=N; "
                        "0: all), so that slow models fit their 10 epochs in minutes")
    p.add_argument("--whole-epochs", type=int, default=0,
                   help="also time N whole epochs of `aekit train` against N whole epochs of "
                        "the PyTorch twin's loop, at each config's own batch size (0: off)")
    p.add_argument("--epoch-limit", type=int, default=0,
                   help="--whole-epochs: train on the first N training images and validate "
                        "on the first N/6 (0: all)")
    p.add_argument("--no-torch", action="store_true", help="aekit only")
    p.add_argument("--no-build", action="store_true", help="use target/release/aekit as is")
    p.add_argument("--aekit", default=None,
                   help="measure this aekit binary instead (e.g. an older build; implies --no-build)")
    p.add_argument("--save", action="store_true", help="also write bench/results/<date>-speed.txt (or -speed-2.txt, ... if it exists)")
    p.add_argument("--out", default=None, help="also write the report to this file")
    args = p.parse_args()

    global AEKIT
    if args.aekit:
        AEKIT = Path(args.aekit).resolve()
        args.no_build = True
    threads = [int(t) for t in args.threads.split(",")]
    wanted = None if args.models == "all" else set(args.models.split(","))
    models = [m for m in MODELS if wanted is None or m[0] in wanted]
    memory_models = (set(m[0] for m in MODELS) if args.memory_models == "all"
                     else set(args.memory_models.split(",")))
    command = "python3 bench/speed.py " + " ".join(sys.argv[1:])

    if not args.no_build:
        r = run(["cargo", "build", "--release"])
        if r.returncode != 0:
            sys.exit("cargo build --release failed:\n" + r.stderr[-3000:])
    if not AEKIT.exists():
        sys.exit(f"{AEKIT} is missing: run cargo build --release")
    py, torch_version = (None, "not run (--no-torch)") if args.no_torch else torch_python()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info = machine()
    date = datetime.date.today().isoformat()
    work = Path(tempfile.mkdtemp(prefix="aekit-speed-"))

    results = {}  # name -> dict
    notes = []
    gemm = None
    if py and any(m[0] == "hinton-deep" for m in models):
        out = work / "gemm-peak.json"
        r = run([py, ROOT / "bench" / "pytorch" / "gemm_peak.py", "--threads", threads[-1],
                 "--json", out])
        if out.exists():
            gemm = json.loads(out.read_text())
        else:
            notes.append("GEMM peak not measured: " + (r.stderr.strip().splitlines()
                                                       or ["failed"])[-1])
    for name, title, config in models:
        row = dict(title=title, config=config, aekit={}, torch={}, check=None, problems=[])
        results[name] = row
        if not (ROOT / config).exists():
            row["problems"].append(f"not available: {config} is not in this tree")
            continue
        spec = work / f"{name}-check"
        r = run([AEKIT, "bench", "speed", "--config", config, "--export-check", spec,
                 "--batch", args.batch, "--json", work / f"{name}-manifest.json"])
        if r.returncode != 0:
            row["problems"].append("aekit export failed: " + r.stderr.strip()[-300:])
            spec = None
        else:
            manifest = json.loads((spec / "manifest.json").read_text())
            row["data"] = manifest["data"]
            if manifest["data"]["kind"] == "random":
                notes.append(f"{name}: random data ({manifest['data']['note']})")
        if py and spec:
            out = work / f"{name}-check.json"
            r = run([py, TORCH_SCRIPT, "--spec", spec, "--no-time", "--json", out])
            if out.exists():
                row["check"] = json.loads(out.read_text()).get("check")
            else:
                row["problems"].append("PyTorch twin: " + (r.stderr.strip().splitlines()
                                                         or ["failed"])[-1])
        for t in threads:
            for i in range(args.repeat):
                a, err = aekit_speed(config, t, args, work / f"{name}-aekit-{t}-{i}.json")
                if err:
                    row["problems"].append(f"aekit ({t} threads): {err}")
                row["aekit"].setdefault(t, []).append(a)
                if py and spec and row["check"] is not None:
                    b, err = torch_speed(py, spec, t, args, work / f"{name}-torch-{t}-{i}.json")
                    if err:
                        row["problems"].append(f"PyTorch ({t} threads): {err}")
                    row["torch"].setdefault(t, []).append(b)

    if args.whole_epochs > 0:
        for name, title, config in models:
            row = results[name]
            if not (ROOT / config).exists():
                continue
            spec = work / f"{name}-check"
            batch = config_batch(config)
            for i in range(args.repeat):
                a, err = aekit_epochs(config, name, threads[-1], args, work / f"{name}-runs-{i}")
                if err:
                    row["problems"].append(f"aekit whole epochs: {err}")
                row.setdefault("aekit_epochs", []).append(a)
                row.setdefault("breakdown", []).append(
                    loop_breakdown(aekit_timings(work / f"{name}-runs-{i}", name)))
                # The step loop at the config's own batch size, to set the loop against.
                step_args = argparse.Namespace(**dict(vars(args), batch=batch))
                b, err = aekit_speed(config, threads[-1], step_args,
                                     work / f"{name}-aekit-batch-{batch}-{i}.json")
                if err:
                    row["problems"].append(f"aekit step loop at batch {batch}: {err}")
                row.setdefault("step_at_batch", []).append(b)
                if py and (spec / "manifest.json").exists():
                    b, err = torch_epochs(py, spec, threads[-1], args,
                                          work / f"{name}-torch-epochs-{i}.json")
                    if err:
                        row["problems"].append(f"PyTorch whole epochs: {err}")
                    row.setdefault("torch_epochs", []).append(b)

    memory = {}
    if args.epochs_memory > 0:
        for name, title, config in models:
            if name not in memory_models or not (ROOT / config).exists():
                continue
            out = work / f"{name}-memory.json"
            limit = (["--set", f"data.limit={args.memory_limit}"] if args.memory_limit > 0
                     else [])
            r = run([AEKIT, "bench", "speed", "--config", config, "--threads", threads[-1],
                     "--epochs-memory", args.epochs_memory, "--json", out] + limit)
            if r.returncode == 0:
                memory[name] = json.loads(out.read_text())
            else:
                notes.append(f"{name}: memory run failed: {r.stderr.strip()[-300:]}")

    def med(row, side, t, key):
        return median([(x or {}).get(key) for x in row[side].get(t, [])])

    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = []
    w = lines.append
    w(f"# aekit speed suite, {date}")
    w("")
    w(f"command: `{command}` (from the repository root)")
    w(f"machine: {info['nproc']} cores ({info['cpu']}), {info['memory']}, "
      f"load average at the start {load_start}, at the end {load_end}; {info['system']}")
    w(f"aekit:   {info['commit']} (release build, Burn flex backend)"
      + (f", binary {args.aekit}" if args.aekit else ""))
    w(f"PyTorch: {torch_version if py else 'NOT INSTALLED: ' + torch_version}"
      + (f" ({py}, OMP_WAIT_POLICY=PASSIVE)" if py else ""))
    w(f"setup:   {args.steps} timed training steps after {args.warmup} warm-up steps, batch "
      f"{args.batch}, Adam as each config says (lr 1e-3); inference = encode + decode with the "
      f"output activation, no autodiff, {args.steps} batches; medians of {args.repeat} run(s) "
      f"per side, aekit and PyTorch runs alternating; one process per model and thread count")
    data_kinds = {r.get("data", {}).get("kind") for r in results.values() if r.get("data")}
    w("data:    " + ("MNIST in memory (60000 training, 10000 test images)"
                     if data_kinds == {"config"} else
                     "RANDOM values of MNIST's shape where MNIST was missing (see notes)"))
    w("ratio:   aekit / PyTorch samples/s (above 1: aekit is faster)")
    main_t = threads[-1]
    w("")
    w(f"## Throughput and peak memory, {main_t} thread(s)")
    w("")
    w("| model | aekit train samples/s | PyTorch train samples/s | ratio | aekit infer "
      "samples/s | PyTorch infer samples/s | ratio | aekit peak MiB | PyTorch peak MiB |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, row in results.items():
        if not row["aekit"]:
            w(f"| {row['title']} | {row['problems'][0] if row['problems'] else 'n/a'} "
              "| | | | | | | |")
            continue
        at, tt = med(row, "aekit", main_t, "train_samples_per_s"), med(
            row, "torch", main_t, "train_samples_per_s")
        ai, ti = med(row, "aekit", main_t, "infer_samples_per_s"), med(
            row, "torch", main_t, "infer_samples_per_s")
        am, tm = med(row, "aekit", main_t, "peak_rss_mib"), med(row, "torch", main_t,
                                                                 "peak_rss_mib")
        w(f"| {row['title']} | {fmt(at)} | {fmt(tt)} | {ratio(at, tt)} | {fmt(ai)} | "
          f"{fmt(ti)} | {ratio(ai, ti)} | {fmt(am, 1)} | {fmt(tm, 1)} |")
    if len(threads) > 1:
        w("")
        w("## Thread scaling (training samples/s)")
        w("")
        head = " | ".join(f"aekit {t}t | PyTorch {t}t" for t in threads)
        w(f"| model | {head} | aekit {threads[-1]}t/{threads[0]}t | "
          f"PyTorch {threads[-1]}t/{threads[0]}t |")
        w("| --- |" + " ---: |" * (2 * len(threads) + 2))
        for name, row in results.items():
            if not row["aekit"]:
                continue
            cells = []
            for t in threads:
                cells += [fmt(med(row, "aekit", t, "train_samples_per_s")),
                          fmt(med(row, "torch", t, "train_samples_per_s"))]
            a0, a1 = (med(row, "aekit", t, "train_samples_per_s") for t in (threads[0],
                                                                            threads[-1]))
            t0, t1 = (med(row, "torch", t, "train_samples_per_s") for t in (threads[0],
                                                                            threads[-1]))
            w(f"| {row['title']} | " + " | ".join(cells) + f" | {ratio(a1, a0)} | "
              f"{ratio(t1, t0)} |")
    if args.whole_epochs > 0:
        w("")
        w(f"## Whole epochs: `aekit train` against the PyTorch twin's loop, "
          f"{args.whole_epochs} epochs at each config's batch size, {main_t} thread(s)"
          + (f", the first {args.epoch_limit} training images" if args.epoch_limit else ""))
        w("")
        w("Median training samples/s of the epochs after the first; the change from epoch 2 to "
          "the last (a fall of more than 10% is marked FAIL, for either side).")
        w("")
        w("| model | aekit | PyTorch | ratio | aekit epoch 2 -> last | PyTorch epoch 2 -> last |")
        w("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, row in results.items():
            a, da = epoch_summary(row.get("aekit_epochs"))
            t, dt = epoch_summary(row.get("torch_epochs"))
            mark = lambda d: "" if d is None else f"{100 * d:+.1f}%" + (
                " FAIL" if d < -0.10 else "")
            w(f"| {row['title']} | {fmt(a)} | {fmt(t)} | {ratio(a, t)} | {mark(da)} | "
              f"{mark(dt)} |")
    if args.whole_epochs > 0:
        w("")
        w("## The real loop against the step loop, at each config's batch size")
        w("")
        w("From the runs above: each part's median share of an epoch after the first (the "
          "run's timings.csv: optimizer steps, waiting for a batch, validation, saving "
          "weights, checkpoint, history and plot); whole-epoch training samples/s (training "
          "samples over the whole epoch) against `aekit bench speed`'s step loop at the same "
          "batch size, and the gap between them (at most 10% is the target); the validation "
          "pass's samples/s against the main table's inference (batch 256).")
        w("")
        w("| model | batch | step loop | loop's steps | whole epoch | gap | steps | waiting | "
          "validation | saving | validation samples/s | inference samples/s | ratio |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
          "---: |")
        for name, row in results.items():
            parts = [b for b in row.get("breakdown", []) if b]
            steps = [s for s in row.get("step_at_batch", []) if s]
            if not parts:
                continue
            pick = lambda key: median([b[key] for b in parts])
            step = median([s["train_samples_per_s"] for s in steps])
            epoch = pick("epoch_samples_per_s")
            gap = None if step is None else 1 - epoch / step
            infer = med(row, "aekit", main_t, "infer_samples_per_s")
            pct = lambda v: f"{100 * v:.1f}%"
            w(f"| {row['title']} | {config_batch(row['config'])} | {fmt(step)} | "
              f"{fmt(pick('steps_samples_per_s'))} | {fmt(epoch)} | "
              f"{'n/a' if gap is None else pct(gap) + (' FAIL' if gap > 0.10 else '')} | "
              f"{pct(pick('steps'))} | {pct(pick('waiting'))} | {pct(pick('validation'))} | "
              f"{pct(pick('saving'))} | {fmt(pick('valid_samples_per_s'))} | {fmt(infer)} | "
              f"{ratio(pick('valid_samples_per_s'), infer)} |")
    hinton = results.get("hinton-deep")
    if gemm and hinton:
        w("")
        w(f"## The Hinton model against this CPU's fp32 GEMM peak, {main_t} thread(s)")
        w("")
        w(f"Peak: {gemm['peak_gflops']:.1f} GFLOP/s, the best median of `torch.mm` on square "
          "matrices (" + ", ".join(f"{k}: {v:.1f}" for k, v in gemm["gflops_by_size"].items())
          + ") in this run. A training sample costs 6 flops per parameter (2 forward, 4 "
          "backward).")
        w("")
        w("| side | training samples/s | GFLOP/s | share of the peak |")
        w("| --- | ---: | ---: | ---: |")
        params = median([(x or {}).get("parameters") for x in hinton["aekit"].get(main_t, [])])
        sides = [("aekit step loop (batch 256)", med(hinton, "aekit", main_t,
                                                      "train_samples_per_s")),
                 ("PyTorch step loop (batch 256)", med(hinton, "torch", main_t,
                                                        "train_samples_per_s"))]
        a_epochs, _ = epoch_summary(hinton.get("aekit_epochs"))
        t_epochs, _ = epoch_summary(hinton.get("torch_epochs"))
        if a_epochs:
            sides.append(("aekit whole epochs", a_epochs))
        if t_epochs:
            sides.append(("PyTorch whole epochs", t_epochs))
        for side, rate in sides:
            if rate is None or params is None:
                continue
            gflops = 6 * params * rate / 1e9
            w(f"| {side} | {fmt(rate)} | {gflops:.1f} | "
              f"{100 * gflops / gemm['peak_gflops']:.0f}% |")
    w("")
    w("## Loss check (same weights, same batch; VAE with the same fixed noise)")
    w("")
    w("| model | aekit loss | PyTorch loss | float64 loss | relative difference | result |")
    w("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, row in results.items():
        c = row["check"]
        if c is None:
            why = "PyTorch not installed" if not py else (row["problems"] or ["not run"])[0]
            w(f"| {row['title']} | | | | | {why} |")
            continue
        w(f"| {row['title']} | {c['aekit_loss']:.7f} | {c['torch_loss']:.7f} | "
          f"{c['float64_loss']:.7f} | {c['relative_difference']:.1e} | "
          f"{'ok (<= 1e-4)' if c['ok'] else 'MISMATCH'} |")
    for name, rep in memory.items():
        w("")
        w(f"## Peak resident memory per epoch: {results[name]['title']}, real training loop "
          f"(`aekit bench speed --config {results[name]['config']} --epochs-memory "
          f"{args.epochs_memory}"
          + (f" --set data.limit={args.memory_limit}" if args.memory_limit > 0 else "")
          + f"`), batch {rep['batch_size']}, {main_t} thread(s)")
        w("")
        w("| epoch | peak MiB | resident at end MiB | train loss | samples/s |")
        w("| ---: | ---: | ---: | ---: | ---: |")
        for e in rep["rows"]:
            w(f"| {e['epoch']} | {e['peak_mib']:.1f} | {e['end_mib']:.1f} | "
              f"{e['train_loss']:.5f} | {e['samples_per_sec']:,.0f} |")
        kind = ("per epoch (peak reset between epochs; epoch 1 includes loading the data)"
                if rep["per_epoch_peaks"] else "cumulative (the peak could not be reset)")
        growth = rep.get("growth_mib")
        w("")
        w(f"Peaks are {kind}. Last epoch's peak minus the smallest peak of epochs 2.."
          f"{rep['epochs']}: {'n/a' if growth is None else f'{growth:+.1f} MiB'}.")
    problems = [f"{n}: {p}" for n, r in results.items() for p in r["problems"]]
    if notes or problems:
        w("")
        w("## Notes")
        w("")
        for n in notes + problems:
            w(f"- {n}")
    report = "\n".join(lines) + "\n"
    print(report)
    targets = [Path(args.out)] if args.out else []
    if args.save:
        # Never replace an earlier report of the same day: the first free name.
        results_dir = ROOT / "bench" / "results"
        saved = results_dir / f"{date}-speed.txt"
        n = 2
        while saved.exists():
            saved = results_dir / f"{date}-speed-{n}.txt"
            n += 1
        targets.append(saved)
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(report)
        log(f"wrote {t}")
    (work / "results.json").write_text(json.dumps(dict(results=results, memory=memory,
                                                       machine=info), indent=1, default=str))
    log(f"raw results: {work}")


if __name__ == "__main__":
    main()
