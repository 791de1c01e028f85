#!/usr/bin/python3
"""The benchmark's workloads in PyTorch (eager mode, float64), matching
bench_nabla.c and bench_baseline.c: same shapes, same inputs (the generator
of bench_common.h, reimplemented with numpy), same step counts, same timing
method (median of repetitions after warm-up), same output lines:

    <workload> torch <metric> <value>

Usage: /usr/bin/python3 bench/bench_torch.py [--threads N] [--quick] [--only W1,W2,...]
"""
import argparse
import gzip
import os
import resource
import statistics
import struct
import sys
import time

# the thread count must reach OpenMP and OpenBLAS before torch loads them
_ap = argparse.ArgumentParser()
_ap.add_argument("--threads", type=int, default=1)
_ap.add_argument("--quick", action="store_true")
_ap.add_argument("--only", default="")
ARGS = _ap.parse_args()
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = str(ARGS.threads)
# PyTorch's OpenMP workers spin after each parallel region and then fight
# OpenBLAS's own threads for the second core: with 2 threads that made W2, W3
# and W5 2-4x slower here.  PASSIVE gives PyTorch its better setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)
torch.set_default_dtype(torch.float64)

# ---- sizes and seeds: see bench_common.h
W1_STEPS, W1_W, W1_B, W1_Y0 = 3333, 0.5, 0.1, 1.0
W2_B, W2_IN, W2_HID, W2_OUT, W2_LR = 64, 64, 128, 10, 0.01
W3_N = 512
W4_N = 1000000
W5_BATCH, W5_LR = 64, 1e-3
W5_DATA_DIR = "/usr/share/datasets/fashion-mnist"
SEED_W2_X, SEED_W2_W1, SEED_W2_B1, SEED_W2_W2, SEED_W2_B2, SEED_W2_LABELS = 1, 2, 3, 4, 5, 6
SEED_W3_A, SEED_W3_B, SEED_W4_X, SEED_W5_BASE = 7, 8, 9, 20
W6_N, W6_C, W6_H, W6_K, W6_R = 64, 32, 14, 64, 3
W7_BATCH, W7_LR = 64, 1e-3
SEED_W6_X, SEED_W6_W, SEED_W6_B, SEED_W7_BASE = 30, 31, 32, 40

M64 = (1 << 64) - 1


def mix(seed, idx):
    """bench_mix of bench_common.h for an array of counters idx (uint64)."""
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


def init_linear(lin, fan_in, fan_out, seed_w, seed_b):
    k = 1.0 / np.sqrt(fan_in)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(uniform(seed_w, fan_out * fan_in, -k, k).reshape(fan_out, fan_in)))
        lin.bias.copy_(torch.from_numpy(uniform(seed_b, fan_out, -k, k)))


def want(name):
    return not ARGS.only or name in ARGS.only.split(",")


def reps(warm, n):
    return (1, 3) if ARGS.quick else (warm, n)


def timed(fn, warm, n):
    """median of n timings of fn() after warm calls"""
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


# ===================================================================== W1
def w1_chain(steps, w, b):
    y = torch.tensor([W1_Y0])
    for _ in range(steps):
        y = torch.tanh(y * w + b)
    y.sum().backward()


def bench_w1():
    w = torch.tensor([W1_W], requires_grad=True)
    b = torch.tensor([W1_B], requires_grad=True)

    def run():
        w.grad = None
        b.grad = None
        w1_chain(W1_STEPS, w, b)

    warm, n = reps(2, 7)
    med = timed(run, warm, n)
    out("W1 torch ns_per_op %.4f" % (med * 1e9 / (3 * W1_STEPS)))
    out("W1 torch check %.12g" % (w.grad.item() + b.grad.item()))


def bench_scale():
    w = torch.tensor([W1_W], requires_grad=True)
    b = torch.tensor([W1_B], requires_grad=True)
    max_steps = 100000 if ARGS.quick else 1000000
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    steps = 1000
    while steps <= max_steps:
        n = 1 if steps >= 1000000 else (2 if steps >= 100000 else 5)
        if ARGS.quick:
            n = 1
        med = timed(lambda: w1_chain(steps, w, b), 1 if steps < 1000000 else 0, n)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out("S%d torch ms %.4f" % (steps, med * 1e3))
        out("S%d torch peak_rss_growth_bytes %d" % (steps, peak - base))
        steps *= 10


# ===================================================================== W2
class MLP2(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(W2_IN, W2_HID)
        self.l2 = torch.nn.Linear(W2_HID, W2_OUT)
        init_linear(self.l1, W2_IN, W2_HID, SEED_W2_W1, SEED_W2_B1)
        init_linear(self.l2, W2_HID, W2_OUT, SEED_W2_W2, SEED_W2_B2)

    def forward(self, x):
        return self.l2(F.relu(self.l1(x)))


def bench_w2():
    X = torch.from_numpy(normal(SEED_W2_X, W2_B * W2_IN).reshape(W2_B, W2_IN))
    y = torch.from_numpy(labels(SEED_W2_LABELS, W2_B, W2_OUT))
    model = MLP2()
    opt = torch.optim.SGD(model.parameters(), lr=W2_LR)

    def step():
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    loss = None
    for _ in range(50):
        loss = step()
    out("W2 torch check %.12g" % loss.item())
    steps = 50 if ARGS.quick else 500

    def run():
        for _ in range(steps):
            step()

    warm, n = reps(3, 15)
    out("W2 torch us_per_step %.4f" % (timed(run, warm, n) * 1e6 / steps))


# ===================================================================== W3
def bench_w3():
    n = W3_N
    A = torch.from_numpy(normal(SEED_W3_A, n * n).reshape(n, n)).requires_grad_()
    B = torch.from_numpy(normal(SEED_W3_B, n * n).reshape(n, n)).requires_grad_()
    res = {}

    def run():
        A.grad = None
        B.grad = None
        s = (A @ B).sum()
        s.backward()
        res["s"] = s

    warm, r = reps(3, 15)
    med = timed(run, warm, r)
    out("W3 torch gflops %.4f" % (3 * 2.0 * n ** 3 / med * 1e-9))
    out("W3 torch ms %.4f" % (med * 1e3))
    out("W3 torch check %.12g" % (res["s"].item() + A.grad[0, 1].item() + B.grad[0, 2].item()))


# ===================================================================== W4
def bench_w4():
    x = torch.from_numpy(normal(SEED_W4_X, W4_N)).requires_grad_()
    res = {}

    def run():
        x.grad = None
        s = (torch.sigmoid(x) * torch.exp(-x * x)).sum()
        s.backward()
        res["s"] = s

    warm, n = reps(3, 21)
    med = timed(run, warm, n)
    out("W4 torch ns_per_elem %.4f" % (med * 1e9 / W4_N))
    out("W4 torch check %.12g" % (res["s"].item() + x.grad[12345].item()))


# ===================================================================== W5
def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class MLP5(torch.nn.Module):
    def __init__(self):
        super().__init__()
        sizes = [784, 256, 128, 10]
        self.layers = torch.nn.ModuleList()
        for l in range(3):
            lin = torch.nn.Linear(sizes[l], sizes[l + 1])
            init_linear(lin, sizes[l], sizes[l + 1], SEED_W5_BASE + 2 * l, SEED_W5_BASE + 2 * l + 1)
            self.layers.append(lin)

    def forward(self, x):
        x = F.relu(self.layers[0](x))
        x = F.relu(self.layers[1](x))
        return self.layers[2](x)


def bench_w5():
    img = os.path.join(W5_DATA_DIR, "train-images-idx3-ubyte.gz")
    lab = os.path.join(W5_DATA_DIR, "train-labels-idx1-ubyte.gz")
    if not (os.path.exists(img) and os.path.exists(lab)):
        out("# W5 skipped: Fashion-MNIST not found in %s (apt-get install dataset-fashion-mnist)"
            % W5_DATA_DIR)
        return
    X = torch.from_numpy(read_idx(img).reshape(-1, 784).astype(np.float64) / 255.0)
    Y = torch.from_numpy(read_idx(lab).astype(np.int64))
    n = X.shape[0]
    batches = (n + W5_BATCH - 1) // W5_BATCH
    if ARGS.quick:
        batches = 100
    model = MLP5()
    opt = torch.optim.Adam(model.parameters(), lr=W5_LR)
    times, losses = [], []
    epochs = 2 if ARGS.quick else 3
    for _ in range(epochs):  # every epoch timed; the same order each epoch
        total, t0 = 0.0, time.perf_counter()
        for k in range(batches):
            xb = X[k * W5_BATCH:(k + 1) * W5_BATCH]
            yb = Y[k * W5_BATCH:(k + 1) * W5_BATCH]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        times.append(time.perf_counter() - t0)
        losses.append(total / batches)
    full = (n + W5_BATCH - 1) // W5_BATCH
    med = statistics.median(times) * full / batches
    out("W5 torch s_per_epoch %.4f" % med)
    out("W5 torch check %.12g" % losses[0])
    if batches != full:
        out("# W5 torch: quick mode, %d of %d batches, time scaled to a full epoch" % (batches, full))


# ===================================================================== W6
def bench_w6():
    N, C, H, K, R = W6_N, W6_C, W6_H, W6_K, W6_R
    k = 1.0 / np.sqrt(C * R * R)
    x = torch.from_numpy(normal(SEED_W6_X, N * C * H * H).reshape(N, C, H, H)).requires_grad_()
    w = torch.from_numpy(uniform(SEED_W6_W, K * C * R * R, -k, k).reshape(K, C, R, R)).requires_grad_()
    b = torch.from_numpy(uniform(SEED_W6_B, K, -k, k)).requires_grad_()
    res = {}

    def step():
        x.grad = w.grad = b.grad = None
        y = F.conv2d(x, w, b, stride=1, padding=1).sum()
        y.backward()
        res["s"] = y.item()

    med = timed(step, *reps(3, 21))
    flops = 3.0 * 2.0 * N * H * H * K * C * R * R
    out("W6 torch ms %.4f" % (med * 1e3))
    out("W6 torch gflops %.4f" % (flops / med * 1e-9))
    out("W6 torch check %.12g" % (res["s"] + x.grad.reshape(-1)[7].item() + w.grad.reshape(-1)[5].item()
                                   + b.grad[3].item()))


# ===================================================================== W7
class CNN7(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.f1 = torch.nn.Linear(3136, 128)
        self.f2 = torch.nn.Linear(128, 10)
        for l, m in enumerate((self.c1, self.c2, self.f1, self.f2)):
            out_, fan = m.weight.shape[0], m.weight[0].numel()
            k = 1.0 / np.sqrt(fan)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(uniform(SEED_W7_BASE + 2 * l, out_ * fan, -k, k))
                               .reshape(m.weight.shape))
                m.bias.copy_(torch.from_numpy(uniform(SEED_W7_BASE + 2 * l + 1, out_, -k, k)))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.f1(x.flatten(1)))
        return self.f2(x)


def bench_w7():
    img = os.path.join(W5_DATA_DIR, "train-images-idx3-ubyte.gz")
    lab = os.path.join(W5_DATA_DIR, "train-labels-idx1-ubyte.gz")
    if not (os.path.exists(img) and os.path.exists(lab)):
        out("# W7 skipped: Fashion-MNIST not found in %s" % W5_DATA_DIR)
        return
    for dtype, tag in ((torch.float64, "torch"), (torch.float32, "torch32")):
        X = torch.from_numpy(read_idx(img).reshape(-1, 1, 28, 28).astype(np.float64) / 255.0).to(dtype)
        Y = torch.from_numpy(read_idx(lab).astype(np.int64))
        n = X.shape[0]
        full = (n + W7_BATCH - 1) // W7_BATCH
        batches = 30 if ARGS.quick else 300  # as bench_nabla.c: scaled to the epoch
        model = CNN7().to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=W7_LR)
        first, total, t0 = 0.0, 0.0, 0.0
        for k in range(-5, batches):  # 5 warm-up steps, then the epoch
            if k == 0:
                t0 = time.perf_counter()
            lo = (k + 5 if k < 0 else k) * W7_BATCH
            loss = F.cross_entropy(model(X[lo:lo + W7_BATCH]), Y[lo:lo + W7_BATCH])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if k == -5:
                first = loss.item()
            if k >= 0:
                total += loss.item()
        secs = time.perf_counter() - t0
        out("W7 %s s_per_epoch %.4f" % (tag, secs * full / batches))
        out("W7 %s check %.12g" % (tag, first))
        out("W7 %s mean_loss %.6f" % (tag, total / batches))
        if batches != full:
            out("# W7 %s: %d of %d batches, time scaled to a full epoch" % (tag, batches, full))


def main():
    out("# PyTorch %s eager float64, threads %d, OMP_WAIT_POLICY=%s%s"
        % (torch.__version__, torch.get_num_threads(), os.environ["OMP_WAIT_POLICY"],
           ", quick" if ARGS.quick else ""))
    for name, fn in (("W1", bench_w1), ("W2", bench_w2), ("W3", bench_w3), ("W4", bench_w4),
                     ("W5", bench_w5), ("W6", bench_w6), ("W7", bench_w7), ("SCALE", bench_scale)):
        if want(name):
            fn()


if __name__ == "__main__":
    main()
