#!/usr/bin/env python3
"""Writes seed inputs for every fuzz target into fuzz/corpus/<target>/ (not committed).

Seeds are small valid inputs in each target's input layout (see the comment at the top of
each fuzz_targets/*.rs), built here or copied from the repository's configs and from run
folders under /work/runs (RUNS to point elsewhere), when there are any."""

import glob
import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUNS = os.environ.get("RUNS", "/work/runs")


def put(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def idx_images(count, rows, columns):
    pixels = bytes((i * 7) % 256 for i in range(count * rows * columns))
    return struct.pack(">IIII", 0x803, count, rows, columns) + pixels


def idx_labels(count):
    return struct.pack(">II", 0x801, count) + bytes(i % 10 for i in range(count))


def png(width, height, grey=True, bits=8):
    """A minimal PNG: grey or RGB, 8 or 16 bits, no filter."""
    channels = 1 if grey else 3
    color_type = 0 if grey else 2
    row = bytes(((x * 37) % 256) for x in range(width * channels * bits // 8))
    raw = b"".join(b"\x00" + row for _ in range(height))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, bits, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# idx: flag byte (bit 0: gzip the rest), then the file.
put("idx", "images-raw", b"\x00" + idx_images(3, 4, 5))
put("idx", "labels-raw", b"\x00" + idx_labels(7))
put("idx", "images-gzipped-by-target", b"\x01" + idx_images(2, 28, 28))
put("idx", "labels-gzip-file", b"\x00" + gzip.compress(idx_labels(12)))
put("idx", "images-gzip-file", b"\x00" + gzip.compress(idx_images(1, 3, 3)))

# csv_table: the file as it is.
put("csv_table", "header-label", b"x,label,y\n0.5,2,1\n1.5, 0 ,-2\n3,2,4e-1\n")
put("csv_table", "text-labels", b"a,label\n1,setosa\n2,virginica\n3,setosa\n")
put("csv_table", "no-header", b"1,2,3\n4,5,6\n")
put("csv_table", "quoted", b'"a","b"\n"1.0","2"\n\n3,4\n')
for path in sorted(glob.glob(os.path.join(ROOT, "**", "*.csv"), recursive=True))[:3]:
    if "/target/" not in path and "/fuzz/" not in path and os.path.getsize(path) < 8192:
        put("csv_table", "repo-" + os.path.basename(path), open(path, "rb").read())

# image_header: flag byte (bit 0 .jpg name, bit 1 RGB, bit 2 5x7), then the file.
put("image_header", "grey-png", b"\x00" + png(4, 3))
put("image_header", "rgb-png", b"\x02" + png(9, 6, grey=False))
put("image_header", "grey16-png", b"\x04" + png(3, 3, bits=16))
put("image_header", "png-named-jpg", b"\x01" + png(2, 2))
for i, path in enumerate(glob.glob("/root/.pyenv/versions/*/lib/python3*/test/**/*.jpg",
                                   recursive=True)[:1]):
    put("image_header", f"jpeg-{i}", b"\x03" + open(path, "rb").read())

# config_toml: the TOML text, then optionally NUL and one `key=value` override.
for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.toml"))):
    text = open(path, "rb").read()
    name = os.path.basename(path)
    put("config_toml", name, text)
put("config_toml", "quickstart-set-epochs",
    open(os.path.join(ROOT, "configs", "quickstart.toml"), "rb").read() + b"\x00train.epochs=3")
# Windows line endings and non-ASCII comments, as an edited copy may have.
quickstart = open(os.path.join(ROOT, "configs", "quickstart.toml"), encoding="utf-8").read()
put("config_toml", "quickstart-crlf-utf8-comments",
    quickstart.replace("\n", "  # café\n").replace("\n", "\r\n").encode("utf-8"))
put("config_toml", "quickstart-set-path",
    open(os.path.join(ROOT, "configs", "quickstart.toml"), "rb").read() + b"\x00data.path=../x")

# checkpoint_state and model_json: files from real runs.
for path in sorted(glob.glob(os.path.join(RUNS, "*", "checkpoints", "*", "state.json")))[:6]:
    run, _, epoch = path.split(os.sep)[-4:-1]
    put("checkpoint_state", f"{run}-{epoch}", open(path, "rb").read())
for name in ["model.json", "summary.json", "history.csv", "scaler.json"]:
    for path in sorted(glob.glob(os.path.join(RUNS, "*", name)))[:3]:
        run = path.split(os.sep)[-2]
        put("model_json", f"{run}-{name}", open(path, "rb").read())
put("model_json", "meta-minimal",
    b'{"sample_shape":{"channels":1,"height":1,"width":3},"kind":"dense","parameters":9}')
put("model_json", "scaler-minimal", b'{"kind":"standard","offset":[0.5],"spread":[2.0]}')
put("checkpoint_state", "fresh",
    b'{"epochs_done":0,"step_in_epoch":0,"partial_loss_sum":0.0,"partial_samples":0,'
    b'"partial_seconds":0.0,"history":[],"best_valid_loss":1e300,"best_epoch":0,'
    b'"epochs_without_improvement":0}')



def index_body(codes, code_len, labels=True):
    """An index file without its trailing sha256 (the index_file target's flag 1 adds it)."""
    import json
    count = len(codes) // code_len
    header = {
        "model": {"run": "/runs/x", "weights": "model-best.bpk", "kind": "dense",
                  "fingerprint": "ab" * 32},
        "source": "shapes", "split": "test", "resize": False, "code_len": code_len,
        "ids": [str(i) for i in range(count)],
        "labels": [i % 3 for i in range(count)] if labels else None,
        "class_names": ["a", "b", "c"], "method": "exact",
        "hnsw": {"connections": 16, "ef_construction": 200, "ef_search": 64},
    }
    text = json.dumps(header).encode()
    values = struct.pack("<%df" % len(codes), *codes)
    return (b"AEKITIDX" + struct.pack("<I", 1) + struct.pack("<Q", len(text)) + text
            + struct.pack("<Q", len(values)) + values)


put("index_file", "ok-four-codes", b"\x01" + index_body([0.5 * i for i in range(12)], 3))
put("index_file", "ok-no-labels", b"\x01" + index_body([1.0, -2.0, 3.0, 0.25], 2, labels=False))
put("index_file", "empty-index", b"\x01" + index_body([], 4))
put("index_file", "raw-with-checksum-missing", index_body([1.0, 2.0], 2))

def varint(v):
    out = b""
    while True:
        low = v & 0x7F
        v >>= 7
        if v == 0:
            return out + bytes([low])
        out += bytes([low | 0x80])


def aez(width, height, payload, channels=1):
    """A .aez file (its CRC-32 is rewritten by the aez_file target's flag 1 anyway)."""
    head = (b"AZ" + bytes([(2 << 4) | channels]) + bytes(range(4)) + varint(width)
            + varint(height) + varint(len(payload)))
    body = head + payload
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


put("aez_file", "ok-28x28", b"\x01" + aez(28, 28, bytes([0x12, 0x34, 0x56, 0x78] * 8)))
put("aez_file", "ok-rgb-odd", b"\x00" + aez(13, 7, bytes(16), channels=3))
put("aez_file", "ok-large", b"\x01" + aez(300, 65535, bytes(200)))
put("aez_file", "empty-payload", b"\x01" + aez(4, 4, b""))

for target in sorted(os.listdir(os.path.join(HERE, "corpus"))):
    print(target, len(os.listdir(os.path.join(HERE, "corpus", target))))
