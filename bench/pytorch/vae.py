#!/usr/bin/env python3
"""PyTorch twin of aekit's configs/vae.toml: the PyTorch-examples VAE (784-400-20, relu,
Bernoulli likelihood, Adam 1e-3, batch 128), trained on MNIST in [0, 1] and evaluated on the
test split. Prints per epoch the train loss and the test negative ELBO (nats per image, one
posterior sample per image, as the PyTorch example's test loss), then a final line.

  /work/torch-venv/bin/python bench/pytorch/vae.py --epochs 10 --threads 2
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_dense import DEFAULT_DATA, load_mnist  # noqa: E402


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def loss_function(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train, test = load_mnist(a.data)
    train, test = torch.from_numpy(train), torch.from_numpy(test)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for epoch in range(1, a.epochs + 1):
        model.train()
        perm = torch.randperm(len(train))
        total, seconds = 0.0, 0.0
        for i in range(0, len(train), a.batch):
            x = train[perm[i:i + a.batch]]
            t0 = time.perf_counter()
            opt.zero_grad()
            logits, mu, logvar = model(x)
            loss = loss_function(logits, x, mu, logvar)
            loss.backward()
            opt.step()
            seconds += time.perf_counter() - t0
            total += loss.item()
        model.eval()
        with torch.no_grad():
            test_total = 0.0
            for i in range(0, len(test), 1000):
                x = test[i:i + 1000]
                logits, mu, logvar = model(x)
                test_total += loss_function(logits, x, mu, logvar).item()
        row = dict(epoch=epoch, train_loss=total / len(train), test_neg_elbo=test_total / len(test),
                   train_samples_per_s=len(train) / seconds)
        history.append(row)
        print(f"epoch {epoch}: train {row['train_loss']:.3f} test -ELBO {row['test_neg_elbo']:.3f} "
              f"{row['train_samples_per_s']:.0f} samples/s", flush=True)
    last = history[-1]
    print(f"final test_neg_elbo={last['test_neg_elbo']:.4f} "
          f"train_samples_per_s={np.median([r['train_samples_per_s'] for r in history]):.0f}")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(torch=torch.__version__, history=history), indent=1))


if __name__ == "__main__":
    main()
