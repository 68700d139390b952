#!/usr/bin/env python3
"""This CPU's fp32 matrix-product peak as PyTorch reaches it: the best median GFLOP/s of
`torch.mm` on square matrices (1024, 2048, 3072), 2 n^3 flops per product, on --threads
threads. The speed suite sets the Hinton model's training flop rate against it.

    python bench/pytorch/gemm_peak.py --threads 2 --json out.json
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = {}
    for n in (1024, 2048, 3072):
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)  # warm-up
        rates = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            rates.append(2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
        sizes[n] = statistics.median(rates)
    best = max(sizes.values())
    info = dict(threads=torch.get_num_threads(), torch=torch.__version__,
                gflops_by_size={str(k): v for k, v in sizes.items()}, peak_gflops=best)
    print(f"fp32 GEMM peak on {info['threads']} threads: {best:.1f} GFLOP/s ("
          + ", ".join(f"{k}: {v:.1f}" for k, v in sizes.items()) + ")")
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
