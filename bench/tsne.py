#!/usr/bin/env python3
"""t-SNE of a run's codes: aekit's `latent-map` against scikit-learn's Barnes-Hut TSNE on the
very same codes, same perplexity, same threads, in one run.

    python3 bench/tsne.py runs/mnist-dense --data ../shared/data/mnist [--threads 2] [--save]

aekit encodes the data's test split (`aekit encode --split test`), then both lay the codes out:
`aekit latent-map --method tsne --no-inputs` (the whole command is timed, and the t-SNE step
it reports) and `sklearn.manifold.TSNE(perplexity=30, n_jobs=threads)` with scikit-learn's
defaults (init="pca") and with init="random" (aekit's start). scikit-learn comes from
$AEKIT_SKLEARN_PYTHON (a python with scikit-learn), else this python.
"""
import argparse, json, os, subprocess, sys, tempfile, time, datetime, platform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--aekit", default=os.path.join(ROOT, "target/release/aekit"))
    p.add_argument("--save", action="store_true", help="write bench/results/<date>-tsne.txt")
    a = p.parse_args()
    sk_python = os.environ.get("AEKIT_SKLEARN_PYTHON", sys.executable)
    tmp = tempfile.mkdtemp()
    codes = os.path.join(tmp, "codes.npy")
    t = time.perf_counter()
    enc = subprocess.run([a.aekit, "encode", a.run, "--input", a.data, "--split", "test",
                          "--out", codes, "--threads", str(a.threads)],
                         check=True, capture_output=True, text=True).stdout.strip()
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    out = subprocess.run([a.aekit, "latent-map", a.run, "--data", a.data, "--method", "tsne",
                          "--perplexity", str(a.perplexity), "--no-inputs", "--threads",
                          str(a.threads), "--out", os.path.join(tmp, "map.png")],
                         check=True, capture_output=True, text=True).stdout.strip()
    command_s = time.perf_counter() - t
    tsne_s = float(out.split(" in ")[1].split(" s")[0])
    rows = []
    for init in ["pca", "random"]:
        code = (
            "import numpy, time, threadpoolctl\n"
            "from sklearn.manifold import TSNE\n"
            f"x = numpy.load({codes!r})\n"
            f"with threadpoolctl.threadpool_limits({a.threads}):\n"
            "    t = time.perf_counter()\n"
            f"    TSNE(n_components=2, perplexity={a.perplexity}, init={init!r}, n_jobs={a.threads},"
            " random_state=0).fit_transform(x)\n"
            "    print(time.perf_counter() - t)\n")
        env = dict(os.environ)
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
        s = float(subprocess.run([sk_python, "-c", code], check=True, capture_output=True,
                                 text=True, env=env).stdout.strip().splitlines()[-1])
        rows.append((init, s))
    version = subprocess.run([sk_python, "-c", "import sklearn; print(sklearn.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    lines = [
        "t-SNE of a run's codes: aekit latent-map vs scikit-learn TSNE (Barnes-Hut)",
        "command: " + " ".join(sys.argv),
        f"machine: {cpu_model()}, {os.cpu_count()} cores; "
        f"threads {a.threads}; scikit-learn {version}",
        f"date: {datetime.date.today()} (UTC)",
        "",
        f"aekit encode (test split): {encode_s:.2f} s whole command ({enc})",
        f"aekit latent-map --method tsne --no-inputs: {command_s:.1f} s whole command, "
        f"t-SNE step {tsne_s:.1f} s ({out})",
    ]
    for init, s in rows:
        lines.append(f"scikit-learn TSNE(perplexity={a.perplexity}, init={init!r}, n_jobs={a.threads}): "
                     f"{s:.1f} s; aekit t-SNE / scikit-learn = {tsne_s / s:.3f}")
    report = "\n".join(lines) + "\n"
    print(report)
    if a.save:
        path = os.path.join(ROOT, "bench/results", f"{datetime.date.today()}-tsne.txt")
        n = 2
        while os.path.exists(path):
            path = os.path.join(ROOT, "bench/results", f"{datetime.date.today()}-tsne-{n}.txt")
            n += 1
        open(path, "w").write(report)
        print("wrote", path)


if __name__ == "__main__":
    main()
