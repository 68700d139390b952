#!/usr/bin/env python3
"""PyTorch twin of `aekit bench speed`: the same model, the same loss, the same measurements.

The model is built from the resolved config aekit writes with
`aekit bench speed --config FILE --export-check DIR` (DIR/manifest.json), so both sides read
the one TOML file through aekit's own parser and defaults. Supported families: `dense`
(no penalties), `conv` (no batch norm or dropout) and `vae` (dense, or a conv VAE with a
`[model.conv]` table, no batch norm). The layers, activations, weight initialisation scheme,
Adam settings and loss are aekit's:

  dense/conv  loss = BCE on the logits, mean per element (or MSE / L1 on the activated output)
  vae         loss = (sum of BCE on the logits + KL weight * closed-form KL) / batch size

Loss check: the initial weights, one batch and (VAE) the reparameterisation noise aekit
exported are loaded into the twin, and its loss is compared with aekit's (relative
difference; the check passes at <= 1e-4).

Timing: `--steps` training steps after `--warmup` untimed ones (batches drawn in a shuffled
order from the data held in memory, `loss.item()` every step as aekit's loop reads its loss),
then `--infer-steps` batches of encode + decode (output activation applied) under
`torch.inference_mode()`. Peak memory: VmHWM of this process.

  /work/torch-venv/bin/python bench/pytorch/speed.py --spec /tmp/check-dense --threads 1
"""
import argparse
import gzip
import json
import math
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


# ----------------------------------------------------------------- data --
def read_idx_images(path):
    """An IDX3 u8 image file (gzip or raw) as float32 (n, rows*cols) in [0, 1]."""
    path = Path(path)
    if not path.exists() and Path(str(path) + ".gz").exists():
        path = Path(str(path) + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051:
        raise ValueError(f"{path}: bad magic {magic}, expected 2051")
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    out = pixels.astype(np.float32)
    out /= 255.0  # in place: no second full-size copy
    return out


def load_data(manifest, override=None):
    """The training and validation samples aekit used: the config's IDX folder, or uniform
    random values when aekit fell back to them."""
    data = manifest["data"]
    c, h, w = data["shape"]
    if data["kind"] == "random":
        rng = np.random.default_rng(1)
        train = rng.random((data["train_samples"], c * h * w), dtype=np.float32)
        valid = rng.random((data["valid_samples"], c * h * w), dtype=np.float32)
        return train, valid, "random (as aekit: " + (data.get("note") or "") + ")"
    folder = Path(override or data["path"])
    train = read_idx_images(folder / "train-images-idx3-ubyte.gz")[: data["train_samples"]]
    valid = read_idx_images(folder / "t10k-images-idx3-ubyte.gz")[: data["valid_samples"]]
    return np.ascontiguousarray(train), np.ascontiguousarray(valid), str(folder)


# ---------------------------------------------------------------- model --
def activation(name):
    return {
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "linear": lambda x: x,
        "identity": lambda x: x,
        "leaky-relu": lambda x: F.leaky_relu(x, 0.01),
        "elu": F.elu,
        "softplus": F.softplus,
    }[name]


def init_layer(layer, scheme):
    """aekit's WeightInit on a Linear / Conv2d / ConvTranspose2d (fans as PyTorch counts
    them, which is how aekit counts them too); biases zero except `torch-default`."""
    if scheme == "torch-default":
        layer.reset_parameters()
        return
    w = layer.weight
    if scheme in ("glorot-uniform", "xavier-uniform"):
        nn.init.xavier_uniform_(w)
    elif scheme in ("glorot-normal", "xavier-normal"):
        nn.init.xavier_normal_(w)
    elif scheme in ("kaiming-uniform", "he-uniform"):
        nn.init.kaiming_uniform_(w, nonlinearity="relu")
    elif scheme in ("kaiming-normal", "he-normal"):
        nn.init.kaiming_normal_(w, nonlinearity="relu")
    else:
        raise ValueError(f"unknown init {scheme}")
    nn.init.zeros_(layer.bias)


class Dense(nn.Module):
    """aekit's DenseAutoencoder: encoder layers to the code, decoder layers back."""

    def __init__(self, cfg, inputs):
        super().__init__()
        for key in ("sparsity", "contractive", "corruption"):
            if cfg.get(key):
                raise NotImplementedError(f"dense twin: [model.{key}] is not supported")
        hidden = cfg.get("hidden", [])
        dec = cfg.get("decoder_hidden")
        dec = list(reversed(hidden)) if dec is None else dec
        enc_sizes = [inputs] + hidden + [cfg["code"]]
        dec_sizes = [cfg["code"]] + dec + [inputs]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(enc_sizes, enc_sizes[1:]))
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec_sizes, dec_sizes[1:]))
        layers = list(self.encoder) + list(self.decoder)
        per_layer = cfg.get("layer_init") or [cfg.get("init", "glorot-uniform")] * len(layers)
        for layer, scheme in zip(layers, per_layer):
            init_layer(layer, scheme)
        self.act = activation(cfg.get("activation", "relu"))
        self.code_act = activation(cfg.get("code_activation", "relu"))

    def encode(self, x):
        last = len(self.encoder) - 1
        for i, layer in enumerate(self.encoder):
            x = (self.code_act if i == last else self.act)(layer(x))
        return x

    def decode_logits(self, z):
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            z = layer(z)
            if i != last:
                z = self.act(z)
        return z

    def loss(self, x, target, loss_name, output_act, noise=None):
        return reconstruction_loss(self.decode_logits(self.encode(x)), target, loss_name,
                                   output_act)

    def infer_logits(self, x):
        return self.decode_logits(self.encode(x))


class Vae(nn.Module):
    """aekit's Vae: encoder, mean and log-variance heads, decoder; negative ELBO per sample.

    With a `[model.conv]` table it is aekit's conv VAE: the conv family's encoder levels
    (the VAE's activation and init) turn the image into maps, which are flattened into the
    dense encoder; the dense decoder (every layer activated, the last one too) goes back to
    the maps' size, which the conv family's decoder levels and output convolution take back
    to the image. The conv levels are registered first, as aekit's `Vae` holds them first,
    so that the parameters come in aekit's order."""

    def __init__(self, cfg, shape, kl_weight):
        super().__init__()
        inputs = shape[0] * shape[1] * shape[2]
        hidden = cfg.get("hidden", [400])
        latent = cfg["latent"]
        scheme = cfg.get("init", "glorot-uniform")
        self.act = activation(cfg.get("activation", "relu"))
        conv = cfg.get("conv")
        if conv is not None:
            # VaeConvConfig::conv_config: the VAE's activation and init, no dropout or code.
            conv_cfg = dict(dict(downsample="stride", upsample="transposed"), **conv)
            conv_cfg.update(activation=cfg.get("activation", "relu"), init=scheme)
            self.conv = Conv(conv_cfg, shape)
            outer = int(np.prod(self.conv.code_shape))
        else:
            self.conv = None
            outer = inputs
        enc = [outer] + hidden
        dec = [latent] + list(reversed(hidden)) + [outer]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(enc, enc[1:]))
        self.mean = nn.Linear(enc[-1], latent)
        self.log_variance = nn.Linear(enc[-1], latent)
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec, dec[1:]))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                init_layer(m, scheme)
        self.kl_weight = kl_weight

    def posterior(self, x):
        if self.conv is not None:
            x = self.conv.encode(x).reshape(x.shape[0], -1)
        for layer in self.encoder:
            x = self.act(layer(x))
        return self.mean(x), self.log_variance(x)

    def decode_logits(self, z):
        if self.conv is not None:
            for layer in self.decoder:
                z = self.act(layer(z))
            return self.conv.decode_logits(z.reshape(z.shape[0], *self.conv.code_shape))
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            z = layer(z)
            if i != last:
                z = self.act(z)
        return z

    def loss(self, x, target, loss_name, output_act, noise=None):
        batch = x.shape[0]
        mean, log_var = self.posterior(x)
        eps = torch.randn_like(mean) if noise is None else noise
        z = mean + torch.exp(0.5 * log_var) * eps
        logits = self.decode_logits(z)
        if loss_name == "bce":
            nll = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        elif loss_name == "mse":
            d = output_act(logits) - target
            nll = (0.5 * d * d + 0.5 * math.log(2 * math.pi)).sum()
        else:
            nll = ((output_act(logits) - target).abs() + math.log(2.0)).sum()
        kl = -0.5 * torch.sum(1 + log_var - mean * mean - log_var.exp())
        return nll / batch + self.kl_weight * (kl / batch)

    def infer_logits(self, x):
        return self.decode_logits(self.posterior(x)[0])


def same_padding(size, kernel, stride):
    """aekit's (Burn's) "same" padding: (start, end), the odd pad at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Module):
    """A "same"-padded Conv2d as Burn pads it (asymmetric when needed)."""

    def __init__(self, cin, cout, k, stride, scheme):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride)
        init_layer(self.conv, scheme)
        self.k, self.stride = k, stride

    def forward(self, x):
        h, w = x.shape[-2:]
        (t, b), (l, r) = same_padding(h, self.k, self.stride), same_padding(w, self.k, self.stride)
        if t == b and l == r:
            return F.conv2d(x, self.conv.weight, self.conv.bias, self.stride, (t, l))
        return self.conv(F.pad(x, (l, r, t, b)))


class Conv(nn.Module):
    """aekit's ConvAutoencoder (no batch norm, no dropout)."""

    def __init__(self, cfg, shape):
        super().__init__()
        if cfg.get("batch_norm") or cfg.get("dropout", 0.0) > 0.0 or cfg.get("corruption"):
            raise NotImplementedError("conv twin: batch_norm, dropout, corruption not supported")
        c, h, w = shape
        k = cfg.get("kernel_size", 3)
        scheme = cfg.get("init", "glorot-uniform")
        self.down = cfg.get("downsample", "pool")
        self.up = cfg.get("upsample", "nearest")
        filters = cfg["filters"]
        dec = cfg.get("decoder_filters") or list(reversed(filters))
        self.sizes = [(h, w)]
        for _ in filters:
            ph, pw = self.sizes[-1]
            self.sizes.append((-(-ph // 2), -(-pw // 2)))
        stride = 1 if self.down == "pool" else 2
        self.encoder = nn.ModuleList()
        ch = c
        for f in filters:
            self.encoder.append(SameConv(ch, f, k, stride, scheme))
            ch = f
        self.code_shape = (ch,) + self.sizes[-1]
        self.decoder = nn.ModuleList()
        for f in dec:
            if self.up == "nearest":
                self.decoder.append(SameConv(ch, f, k, 1, scheme))
            else:
                pad, pad_out = ((k - 1) // 2, 1) if k % 2 == 1 else ((k - 2) // 2, 0)
                t = nn.ConvTranspose2d(ch, f, k, stride=2, padding=pad, output_padding=pad_out)
                init_layer(t, scheme)
                self.decoder.append(t)
            ch = f
        self.output = SameConv(ch, c, k, 1, scheme)
        self.shape = shape
        self.act = activation(cfg.get("activation", "relu"))

    def encode(self, x):
        x = x.reshape(x.shape[0], *self.shape)
        for conv in self.encoder:
            x = self.act(conv(x))
            if self.down == "pool":
                h, w = x.shape[-2:]
                (t, b), (l, r) = same_padding(h, 2, 2), same_padding(w, 2, 2)
                if b or r or t or l:
                    x = F.pad(x, (l, r, t, b), value=float("-inf"))
                x = F.max_pool2d(x, 2)
        return x

    def decode_logits(self, x):
        levels = len(self.sizes) - 1
        for j, level in enumerate(self.decoder):
            h, w = self.sizes[levels - 1 - j]
            if self.up == "nearest":
                x = self.act(level(x))
                x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
                x = x[:, :, :h, :w]
            else:
                x = self.act(level(x)[:, :, :h, :w])
        return self.output(x).reshape(x.shape[0], -1)

    def loss(self, x, target, loss_name, output_act, noise=None):
        return reconstruction_loss(self.decode_logits(self.encode(x)), target, loss_name,
                                   output_act)

    def infer_logits(self, x):
        return self.decode_logits(self.encode(x))


def reconstruction_loss(logits, target, loss_name, output_act):
    if loss_name == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)  # mean per element
    if loss_name == "mse":
        return F.mse_loss(output_act(logits), target)
    return F.l1_loss(output_act(logits), target)


def build(manifest):
    cfg = manifest["model"]
    shape = manifest["sample_shape"]
    inputs = shape[0] * shape[1] * shape[2]
    kind = cfg["kind"]
    if kind == "dense":
        return Dense(cfg, inputs)
    if kind == "conv":
        return Conv(cfg, shape)
    if kind == "vae":
        beta, warmup = cfg.get("beta", 1.0), cfg.get("warmup_epochs", 0)
        return Vae(cfg, shape, beta if warmup == 0 else beta * min(1.0 / warmup, 1.0))
    raise NotImplementedError(f"no PyTorch twin for model kind `{kind}`")


def optimizer(model, train):
    if train.get("optimizer", "adam") != "adam":
        raise NotImplementedError("only Adam is twinned")
    return torch.optim.Adam(model.parameters(), lr=train["learning_rate"],
                            betas=(train["beta1"], train["beta2"]), eps=train["epsilon"],
                            weight_decay=train.get("weight_decay", 0.0))


# ----------------------------------------------------------- loss check --
def load_check(model, spec, manifest):
    """Loads aekit's exported weights into `model` (same order; a dense layer's weight is
    stored `[in, out]` by aekit and transposed here, while Burn's convolution weights have
    PyTorch's layouts: Conv2d `[out, in, kh, kw]`, ConvTranspose2d `[in, out, kh, kw]`);
    returns the batch and the noise."""
    flat = np.fromfile(Path(spec) / "tensors.bin", dtype="<f4")

    def tensor(entry):
        n = int(np.prod(entry["shape"]))
        values = flat[entry["offset"]:entry["offset"] + n]
        return torch.from_numpy(values.copy()).reshape(entry["shape"])

    params = list(model.named_parameters())
    exported = manifest["parameters"]
    if len(params) != len(exported):
        raise ValueError(f"aekit exported {len(exported)} parameters, the twin has {len(params)}")
    with torch.no_grad():
        for (name, p), entry in zip(params, exported):
            t = tensor(entry)
            owner = model.get_submodule(name.rsplit(".", 1)[0])
            if isinstance(owner, nn.Linear) and t.dim() == 2:
                t = t.t()
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(f"{entry['name']} {entry['shape']} does not fit {name} "
                                 f"{tuple(p.shape)}")
            p.copy_(t)
    noise = tensor(manifest["noise"]) if manifest.get("noise") else None
    return tensor(manifest["batch"]), noise


def check(spec, manifest):
    torch.manual_seed(0)
    model = build(manifest)
    x, noise = load_check(model, spec, manifest)
    loss_name = manifest["train"]["loss"]
    out_act = activation(manifest["model"].get("output_activation", "sigmoid"))
    with torch.no_grad():
        torch_loss = model.loss(x, x, loss_name, out_act, noise).item()
        exact = model.double().loss(x.double(), x.double(), loss_name, out_act,
                                    None if noise is None else noise.double()).item()
    aekit = manifest["loss"]
    rel = abs(torch_loss - aekit) / max(abs(aekit), 1e-30)
    return dict(aekit_loss=aekit, torch_loss=torch_loss, float64_loss=exact,
                relative_difference=rel, aekit_relative_error=abs(aekit - exact) / abs(exact),
                torch_relative_error=abs(torch_loss - exact) / abs(exact), ok=rel <= 1e-4)


# --------------------------------------------------------------- timing --
def peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def batches(data, batch, seed):
    g = torch.Generator().manual_seed(seed)
    n = data.shape[0]
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - batch + 1, batch):
            yield data[perm[i:i + batch]]


def measure(args, manifest):
    torch.manual_seed(args.seed)
    train_np, valid_np, source = load_data(manifest, args.data)
    train_x, valid_x = torch.from_numpy(train_np), torch.from_numpy(valid_np)
    model = build(manifest)
    opt = optimizer(model, manifest["train"])
    loss_name = manifest["train"]["loss"]
    out_act = activation(manifest["model"].get("output_activation", "sigmoid"))
    stream = batches(train_x, args.batch, args.seed)

    def step():
        xb = next(stream)
        loss = model.loss(xb, xb, loss_name, out_act)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    train_s = time.perf_counter() - t0

    infer_steps = args.infer_steps or args.steps
    stream = batches(valid_x, args.batch, args.seed)
    with torch.inference_mode():
        for _ in range(min(args.warmup, infer_steps)):
            out_act(model.infer_logits(next(stream)))
        t0 = time.perf_counter()
        for _ in range(infer_steps):
            out_act(model.infer_logits(next(stream)))
        infer_s = time.perf_counter() - t0
    return dict(
        data=source, train_samples=train_x.shape[0], valid_samples=valid_x.shape[0],
        parameters=sum(p.numel() for p in model.parameters()),
        threads=torch.get_num_threads(), batch_size=args.batch, steps=args.steps,
        warmup=args.warmup, train_seconds=train_s,
        train_samples_per_s=args.steps * args.batch / train_s,
        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
        infer_steps=infer_steps, infer_seconds=infer_s,
        infer_samples_per_s=infer_steps * args.batch / infer_s, peak_rss_mib=peak_rss_mib())


def measure_epochs(args, manifest):
    """Whole epochs as a user's loop runs them: each epoch a shuffled pass over the training
    images in batches of --batch, each batch gathered, its loss computed and stepped, and
    its value read (`loss.item()`); timed per epoch over the training steps only, as aekit's
    `history.csv` counts them."""
    torch.manual_seed(args.seed)
    train_np, _, source = load_data(manifest, args.data)
    train_x = torch.from_numpy(train_np[: args.limit] if args.limit else train_np)
    model = build(manifest)
    opt = optimizer(model, manifest["train"])
    loss_name = manifest["train"]["loss"]
    out_act = activation(manifest["model"].get("output_activation", "sigmoid"))
    g = torch.Generator().manual_seed(args.seed)
    n = train_x.shape[0]
    per_epoch, last = [], None
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=g)
        t0 = time.perf_counter()
        for i in range(0, n, args.batch):
            xb = train_x[perm[i:i + args.batch]]
            loss = model.loss(xb, xb, loss_name, out_act)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = loss.item()
        per_epoch.append(n / (time.perf_counter() - t0))
    return dict(data=source, train_samples=n, batch_size=args.batch,
                threads=torch.get_num_threads(), epochs=args.epochs,
                epoch_samples_per_s=per_epoch, last_loss=last, peak_rss_mib=peak_rss_mib())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True,
                   help="folder written by `aekit bench speed --export-check DIR`")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--infer-steps", type=int, default=None)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="IDX folder instead of the config's")
    p.add_argument("--check", action="store_true",
                   help="also compare the loss on aekit's exported weights and batch")
    p.add_argument("--no-time", action="store_true", help="only the loss check")
    p.add_argument("--epochs", type=int, default=0,
                   help="time this many whole epochs instead of --steps steps")
    p.add_argument("--limit", type=int, default=0, help="--epochs: the first N training images")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    manifest = json.loads((Path(args.spec) / "manifest.json").read_text())
    info = dict(script="speed.py", name=manifest["name"], kind=manifest["kind"],
                torch=torch.__version__, python=platform.python_version(),
                threads=torch.get_num_threads())
    if args.check or args.no_time:
        info["check"] = check(args.spec, manifest)
        c = info["check"]
        print(f"{manifest['name']}: loss check aekit {c['aekit_loss']:.7f} PyTorch "
              f"{c['torch_loss']:.7f} (float64 {c['float64_loss']:.7f}) relative difference "
              f"{c['relative_difference']:.2e}: {'ok' if c['ok'] else 'MISMATCH'}")
    if args.epochs > 0:
        info.update(measure_epochs(args, manifest))
        print(f"{manifest['name']}: whole epochs ({info['train_samples']} images, batch "
              f"{args.batch}, {info['threads']} threads), samples/s: "
              + " ".join(f"{v:.0f}" for v in info["epoch_samples_per_s"]))
    elif not args.no_time:
        info.update(measure(args, manifest))
        print(f"{manifest['name']} ({manifest['kind']} model, {info['parameters']} parameters, "
              f"{info['threads']} threads, batch {args.batch}): train "
              f"{info['train_samples_per_s']:.0f} samples/s, inference "
              f"{info['infer_samples_per_s']:.0f} samples/s, peak memory "
              f"{info['peak_rss_mib']:.1f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")
    if "check" in info and not info["check"]["ok"]:
        sys.exit(2)


if __name__ == "__main__":
    main()
