#!/usr/bin/env python3
"""The main job from Python: an MLP 784-256-128-10 (ReLU) on Fashion-MNIST,
trained with nb.nn and nb.optim exactly as examples/fashion_mnist.c does:
pixels standardised with the training set's mean and deviation, He-normal
weights and zero biases, Adam at lr 1e-3 on a cosine down to lr/20,
minibatches of 64 reshuffled every epoch, cross-entropy from logits, 10 epochs.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/fashion_mnist.py [--epochs N]
        [--batch B] [--lr X] [--hidden 256,128] [--seed S] [--threads T] [--data DIR]
        [--limit N] [--test-limit N] [--min-accuracy A]

Prints one line per epoch and finally "test accuracy: 0.XXXX"; exits 1 below
--min-accuracy, 77 when the data set is not installed (apt-get install
dataset-fashion-mnist).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

import nabla as nb
import nabla.nn.functional as F


class MLP(nb.nn.Module):
    """sizes[0] -> ... -> sizes[-1], ReLU between the layers, logits out"""

    def __init__(self, sizes, seed):
        self.layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            lin = nb.nn.Linear(n_in, n_out)
            lin.weight = (nb.randn(n_out, n_in, seed=seed + i) * math.sqrt(2.0 / n_in)).detach()
            lin.weight.requires_grad = True
            lin.bias = nb.zeros(n_out, requires_grad=True)
            self.layers.append(lin)

    def forward(self, x):
        for i, lin in enumerate(self.layers):
            x = lin(x)
            if i + 1 < len(self.layers):
                x = x.relu()
        return x


def accuracy(model, x, y, batch=1000):
    right = 0
    with nb.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model(x[i:i + batch] if nb._C.HAVE_NUMPY_OPS else
                           x[np.arange(i, min(i + batch, x.shape[0]))])
            right += int((np.asarray(logits).argmax(axis=1) == y[i:i + batch]).sum())
    return right / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", default="256,128")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--min-accuracy", type=float, default=0.0)
    a = ap.parse_args()

    files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    if not all(os.path.exists(os.path.join(a.data, f)) for f in files):
        print("fashion_mnist: the data set is not in %s (apt-get install dataset-fashion-mnist)"
              % a.data, file=sys.stderr)
        return 77
    nb.set_num_threads(a.threads)
    xtr, ytr, xte, yte = (nb.data.load_idx(os.path.join(a.data, f)) for f in files)
    xtr, xte = xtr.reshape(-1, 784), xte.reshape(-1, 784)
    ytr_np, yte_np = np.asarray(ytr), np.asarray(yte).astype(np.int64)
    if a.limit:
        xtr, ytr_np = xtr[np.arange(a.limit)], ytr_np[:a.limit]
    if a.test_limit:
        xte, yte_np = xte[np.arange(a.test_limit)], yte_np[:a.test_limit]
    ytr = nb.tensor(ytr_np)
    # standardise with the training set's mean and deviation (C ops)
    mean = xtr.mean().item()
    sd = math.sqrt((xtr * xtr).mean().item() - mean * mean)
    xtr, xte = ((xtr - mean) / sd).detach(), ((xte - mean) / sd).detach()

    sizes = [784] + [int(h) for h in a.hidden.split(",")] + [10]
    model = MLP(sizes, a.seed)
    opt = nb.optim.Adam(model.parameters(), lr=a.lr)
    n = xtr.shape[0]
    nbatches = (n + a.batch - 1) // a.batch
    rng = np.random.default_rng(a.seed)
    print("MLP %s (ReLU), Adam lr %g, batch %d, %d epochs, %d threads, %d training images"
          % ("-".join(map(str, sizes)), a.lr, a.batch, a.epochs, a.threads, n))
    acc, total = 0.0, 0.0
    for ep in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        loss_sum = 0.0
        for b in range(nbatches):
            frac = ((ep - 1) + b / nbatches) / a.epochs
            opt.lr = a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
            idx = perm[b * a.batch:(b + 1) * a.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
        dt = time.perf_counter() - t0
        total += dt
        acc = accuracy(model, xte, yte_np)
        print("epoch %d: loss %.4f, test accuracy %.4f, %.2f s" % (ep, loss_sum / n, acc, dt),
              flush=True)
    print("time per epoch: %.3f s" % (total / a.epochs))
    print("test accuracy: %.4f" % acc)
    return 0 if acc >= a.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
