#!/usr/bin/python3
"""The benchmark's workloads W1, W2 and W5 written against nabla's Python
package (nabla from Python), matching bench_torch.py line for line: same
shapes, same inputs (bench_common.h's generator, as bench_torch.py
reimplements it with numpy), same step counts and timing method, and the
output lines

    <workload> py <metric> <value>

so that report.py puts them beside PyTorch eager (also from Python) and the C
programs.  Needs PYTHONPATH=<build>/python.

Usage: /usr/bin/python3 bench/bench_python.py [--threads N] [--quick] [--only W1,W2,W5]
"""
import argparse
import gzip
import os
import statistics
import struct
import time

import numpy as np

import nabla as nb
import nabla.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--only", default="")
ARGS = ap.parse_args()
nb.set_num_threads(ARGS.threads)

# ---- sizes, seeds and the generator: bench_common.h (as in bench_torch.py)
W1_STEPS, W1_W, W1_B, W1_Y0 = 3333, 0.5, 0.1, 1.0
W2_B, W2_IN, W2_HID, W2_OUT, W2_LR = 64, 64, 128, 10, 0.01
W5_BATCH, W5_LR = 64, 1e-3
W5_DATA_DIR = "/usr/share/datasets/fashion-mnist"
SEED_W2_X, SEED_W2_W1, SEED_W2_B1, SEED_W2_W2, SEED_W2_B2, SEED_W2_LABELS = 1, 2, 3, 4, 5, 6
SEED_W5_BASE = 20
M64 = (1 << 64) - 1


def mix(seed, idx):
    with np.errstate(over="ignore"):
        z = np.uint64((seed * 0xD1B54A32D192ED03) & M64) + \
            (idx.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(seed, n, lo=0.0, hi=1.0):
    u = (mix(seed, np.arange(n, dtype=np.uint64)) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return lo + (hi - lo) * u


def normal(seed, n):
    u = (mix(seed, np.arange(2 * n, dtype=np.uint64)) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    u1, u2 = u[0::2], u[1::2]
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(6.283185307179586 * u2)


def labels(seed, n, k):
    return np.minimum((uniform(seed, n) * k).astype(np.int64), k - 1)


def linear(fan_in, fan_out, seed_w, seed_b):
    lin = nb.nn.Linear(fan_in, fan_out)
    k = 1.0 / np.sqrt(fan_in)
    lin.weight = nb.tensor(uniform(seed_w, fan_out * fan_in, -k, k).reshape(fan_out, fan_in),
                           requires_grad=True)
    lin.bias = nb.tensor(uniform(seed_b, fan_out, -k, k), requires_grad=True)
    return lin


def want(name):
    return not ARGS.only or name in ARGS.only.split(",")


def reps(warm, n):
    return (1, 3) if ARGS.quick else (warm, n)


def timed(fn, warm, n):
    for _ in range(warm):
        fn()
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def out(*a):
    print(*a, flush=True)


# ---- W1: 3333 x y = tanh(y * w + b), then backward
def bench_w1():
    w = nb.tensor([W1_W], requires_grad=True)
    b = nb.tensor([W1_B], requires_grad=True)

    def run():
        w.zero_grad()
        b.zero_grad()
        y = nb.tensor([W1_Y0])
        for _ in range(W1_STEPS):
            y = (y * w + b).tanh()
        y.sum().backward()

    warm, n = reps(2, 7)
    med = timed(run, warm, n)
    out("W1 py ns_per_op %.4f" % (med * 1e9 / (3 * W1_STEPS)))
    out("W1 py check %.12g" % (w.grad.item() + b.grad.item()))


# ---- W2: one SGD step of a 64-128-10 MLP on a batch of 64
def bench_w2():
    X = nb.tensor(normal(SEED_W2_X, W2_B * W2_IN).reshape(W2_B, W2_IN))
    y = nb.tensor(labels(SEED_W2_LABELS, W2_B, W2_OUT))
    l1 = linear(W2_IN, W2_HID, SEED_W2_W1, SEED_W2_B1)
    l2 = linear(W2_HID, W2_OUT, SEED_W2_W2, SEED_W2_B2)
    opt = nb.optim.SGD(l1.parameters() + l2.parameters(), lr=W2_LR)

    def step():
        loss = F.cross_entropy(l2(l1(X).relu()), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    loss = None
    for _ in range(50):
        loss = step()
    out("W2 py check %.12g" % loss.item())
    steps = 50 if ARGS.quick else 500

    def run():
        for _ in range(steps):
            step()

    warm, n = reps(3, 15)
    out("W2 py us_per_step %.4f" % (timed(run, warm, n) * 1e6 / steps))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


# ---- W5: a Fashion-MNIST epoch, 784-256-128-10, Adam, batches of 64 in order
def bench_w5():
    img = os.path.join(W5_DATA_DIR, "train-images-idx3-ubyte.gz")
    lab = os.path.join(W5_DATA_DIR, "train-labels-idx1-ubyte.gz")
    if not (os.path.exists(img) and os.path.exists(lab)):
        out("# W5 py skipped: Fashion-MNIST not found in %s" % W5_DATA_DIR)
        return
    Xn = read_idx(img).reshape(-1, 784).astype(np.float64) / 255.0
    Yn = read_idx(lab).astype(np.float64)
    n = Xn.shape[0]
    full = (n + W5_BATCH - 1) // W5_BATCH
    batches = 100 if ARGS.quick else full
    # the minibatches as tensors, made once (torch slices views; nabla's
    # slices would copy inside the timed loop)
    xs = [nb.tensor(Xn[k * W5_BATCH:(k + 1) * W5_BATCH]) for k in range(batches)]
    ys = [nb.tensor(Yn[k * W5_BATCH:(k + 1) * W5_BATCH]) for k in range(batches)]
    sizes = [784, 256, 128, 10]
    layers = [linear(sizes[l], sizes[l + 1], SEED_W5_BASE + 2 * l, SEED_W5_BASE + 2 * l + 1)
              for l in range(3)]
    opt = nb.optim.Adam([p for lin in layers for p in lin.parameters()], lr=W5_LR)
    l0, l1, l2 = layers
    times, losses = [], []
    for _ in range(2 if ARGS.quick else 3):
        total, t0 = 0.0, time.perf_counter()
        for k in range(batches):
            loss = F.cross_entropy(l2(l1(l0(xs[k]).relu()).relu()), ys[k])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        times.append(time.perf_counter() - t0)
        losses.append(total / batches)
    out("W5 py s_per_epoch %.4f" % (statistics.median(times) * full / batches))
    out("W5 py check %.12g" % losses[0])
    if batches != full:
        out("# W5 py: quick mode, %d of %d batches, time scaled to a full epoch" % (batches, full))


def main():
    out("# nabla from Python (%s), threads %d%s" % (os.path.dirname(nb.__file__), ARGS.threads,
                                                   ", quick" if ARGS.quick else ""))
    for name, fn in (("W1", bench_w1), ("W2", bench_w2), ("W5", bench_w5)):
        if want(name):
            fn()


if __name__ == "__main__":
    main()
