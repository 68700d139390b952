#!/usr/bin/env python3
"""PyTorch reference for the Keras blog "seed" dense autoencoder.

Model: 784 -> Dense(32, relu) -> Dense(784, sigmoid), trained like the blog's
Keras code: Adam(lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
binary cross-entropy averaged per element, batch 256, shuffle every epoch,
50 epochs, validation on the MNIST test split.

The network outputs logits; the loss is F.binary_cross_entropy_with_logits
(numerically stable), which equals BCE on the sigmoid outputs.

Modes:
  default      train on MNIST (IDX gzip files under --data) and report
               per-epoch train loss, test BCE, seconds, train samples/s.
  --steps N    time N training steps on in-memory random data (no MNIST
               needed) and print samples/s, for throughput comparisons.
"""
import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "mnist"

IN_DIM = 784
CODE_DIM = 32


# ----------------------------------------------------------------- data --
def read_idx_images(path):
    """Read an IDX3 u8 image file (gzip) into float32 (n, rows*cols) / 255."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051:
        raise ValueError(f"{path}: bad magic {magic}, expected 2051")
    data = np.frombuffer(raw, dtype=np.uint8, offset=16)
    if data.size != n * rows * cols:
        raise ValueError(f"{path}: expected {n*rows*cols} pixels, got {data.size}")
    return data.reshape(n, rows * cols).astype(np.float32) / 255.0


def load_mnist(folder):
    folder = Path(folder)
    train = read_idx_images(folder / "train-images-idx3-ubyte.gz")
    test = read_idx_images(folder / "t10k-images-idx3-ubyte.gz")
    return train, test


# ---------------------------------------------------------------- model --
def make_model(init):
    model = nn.Sequential(
        nn.Linear(IN_DIM, CODE_DIM),
        nn.ReLU(),
        nn.Linear(CODE_DIM, IN_DIM),  # logits; sigmoid is folded into the loss
    )
    if init == "keras":
        # Keras Dense default: glorot_uniform kernel, zeros bias.
        # limit = sqrt(6 / (fan_in + fan_out)), symmetric in fan_in/fan_out,
        # so the (out, in) vs (in, out) layout does not matter.
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    elif init != "torch":
        raise ValueError(init)
    # init == "torch": keep nn.Linear's default (kaiming_uniform a=sqrt(5),
    # i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases).
    return model


def make_optimizer(model, lr):
    # Keras Adam defaults. Note: Keras adds epsilon to sqrt(v) before bias
    # correction, PyTorch after it; with eps=1e-7 the difference is negligible.
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)


def train_step(model, opt, xb):
    logits = model(xb)
    loss = F.binary_cross_entropy_with_logits(logits, xb)  # mean per element
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


@torch.no_grad()
def evaluate(model, x, batch=10000):
    total = 0.0
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        loss = F.binary_cross_entropy_with_logits(model(xb), xb, reduction="sum")
        total += loss.item()
    return total / x.numel()


# ---------------------------------------------------------------- modes --
def run_steps(args, info):
    g = torch.Generator().manual_seed(args.seed)
    model = make_model(args.init)
    opt = make_optimizer(model, args.lr)
    # A pool of random "images" so batches are not all identical.
    pool = torch.rand(max(args.batch * 8, 2048), IN_DIM, generator=g)
    nb = pool.shape[0] // args.batch
    batches = [pool[i * args.batch:(i + 1) * args.batch] for i in range(nb)]
    for i in range(min(args.warmup, args.steps)):
        train_step(model, opt, batches[i % nb])
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = train_step(model, opt, batches[i % nb])
    loss.item()
    dt = time.perf_counter() - t0
    sps = args.steps * args.batch / dt
    print(f"steps={args.steps} batch={args.batch} threads={torch.get_num_threads()} "
          f"seconds={dt:.3f} ms_per_step={1000 * dt / args.steps:.3f}")
    print(f"final test_bce=nan train_samples_per_s={sps:.1f}")
    info.update(mode="steps", steps=args.steps, warmup=args.warmup, seconds=dt,
                train_samples_per_s=sps, final_test_bce=None)
    return info


def run_train(args, info):
    torch.manual_seed(args.seed)
    t_load = time.perf_counter()
    train_np, test_np = load_mnist(args.data)
    x_train = torch.from_numpy(train_np)
    x_test = torch.from_numpy(test_np)
    print(f"data: {args.data} train={tuple(x_train.shape)} test={tuple(x_test.shape)} "
          f"({time.perf_counter() - t_load:.2f}s)")

    model = make_model(args.init)
    opt = make_optimizer(model, args.lr)
    n = x_train.shape[0]
    g = torch.Generator().manual_seed(args.seed)

    init_bce = evaluate(model, x_test)
    print(f"init={args.init} threads={torch.get_num_threads()} batch={args.batch} "
          f"epochs={args.epochs} initial test_bce={init_bce:.6f}")

    epochs = []
    total_train_s = 0.0
    for ep in range(1, args.epochs + 1):
        t_ep = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        loss_sum = torch.zeros((), dtype=torch.float64)
        t_tr = time.perf_counter()
        for i in range(0, n, args.batch):
            xb = x_train[perm[i:i + args.batch]]
            loss = train_step(model, opt, xb)
            # sample-weighted running mean, like Keras's epoch "loss"
            loss_sum += loss.detach().double() * xb.shape[0]
        train_loss = loss_sum.item() / n
        train_s = time.perf_counter() - t_tr
        total_train_s += train_s
        test_bce = evaluate(model, x_test)
        ep_s = time.perf_counter() - t_ep
        sps = n / train_s
        epochs.append(dict(epoch=ep, train_loss=train_loss, test_bce=test_bce,
                           seconds=ep_s, train_seconds=train_s,
                           train_samples_per_s=sps))
        print(f"epoch {ep:3d}/{args.epochs} train_loss={train_loss:.6f} "
              f"test_bce={test_bce:.6f} seconds={ep_s:.2f} "
              f"train_samples_per_s={sps:.0f}", flush=True)

    final_sps = n * args.epochs / total_train_s
    final_bce = epochs[-1]["test_bce"] if epochs else init_bce
    print(f"final test_bce={final_bce:.6f} train_samples_per_s={final_sps:.1f}")
    info.update(mode="train", data=str(args.data), initial_test_bce=init_bce,
                epochs=epochs, final_test_bce=final_bce,
                train_samples_per_s=final_sps, total_train_seconds=total_train_s)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="folder with MNIST IDX .gz files (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--init", choices=["keras", "torch"], default="keras")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None,
                   help="throughput mode: time N training steps on random data")
    p.add_argument("--warmup", type=int, default=10,
                   help="untimed warm-up steps in --steps mode (default 10)")
    p.add_argument("--json", default=None, help="write results to this file")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    info = dict(script="seed_dense.py", argv=sys.argv[1:], torch=torch.__version__,
                numpy=np.__version__, python=platform.python_version(),
                machine=platform.machine(), cpu_count=os.cpu_count(),
                threads=torch.get_num_threads(), init=args.init, seed=args.seed,
                batch=args.batch, lr=args.lr, adam=dict(betas=[0.9, 0.999], eps=1e-7),
                epochs_requested=args.epochs)
    if args.steps is not None:
        info = run_steps(args, info)
    else:
        info = run_train(args, info)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(info, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
