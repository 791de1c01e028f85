"""nn.Linear, losses, the optimizers (against PyTorch's updates), flat memory
over a 10,000-step training loop, and tensors shared between threads."""
import threading

import numpy as np
import pytest

import nabla as nb
from conftest import torch, needs_torch, close

rng = np.random.default_rng(2)


def test_linear_shapes_assignment_and_parameters():
    lin = nb.nn.Linear(4, 3, seed=0)
    assert lin.weight.shape == (3, 4) and lin.bias.shape == (3,)
    assert lin.parameters() == [lin.weight, lin.bias]
    x = nb.tensor(rng.normal(size=(5, 4)))
    close(lin(x), np.asarray(x) @ np.asarray(lin.weight).T + np.asarray(lin.bias))
    assert lin(nb.tensor(rng.normal(size=(2, 5, 4)))).shape == (2, 5, 3)
    lin.weight = nb.ones(3, 4, requires_grad=True)
    with pytest.raises(ValueError):
        lin.weight = nb.ones(4, 3)
    with pytest.raises(TypeError):
        lin.bias = [1, 2, 3]


@needs_torch
def test_losses_against_torch():
    z, y = rng.normal(size=(4, 3)), [0, 2, 1, 2]
    x = nb.tensor(z, requires_grad=True)
    tx = torch.tensor(z, requires_grad=True)
    loss = nb.nn.functional.cross_entropy(x, y)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(y))
    close(loss.item(), tl.item())
    loss.backward()
    tl.backward()
    close(x.grad, tx.grad.numpy())
    t = rng.normal(size=(4, 3))
    close(nb.nn.functional.mse_loss(x, nb.tensor(t)).item(),
          torch.nn.functional.mse_loss(tx, torch.tensor(t)).item())


@needs_torch
@pytest.mark.parametrize("kind", ["sgd", "sgd_momentum", "adam"])
def test_optimizers_match_torch(kind):
    w0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(8, 4))
    w = nb.tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    if kind == "adam":
        opt, topt = nb.optim.Adam([w], lr=0.01), torch.optim.Adam([tw], lr=0.01)
    else:
        m = 0.9 if kind == "sgd_momentum" else 0.0
        opt, topt = nb.optim.SGD([w], lr=0.1, momentum=m), torch.optim.SGD([tw], lr=0.1, momentum=m)
    x, tx = nb.tensor(x0), torch.tensor(x0)
    for _ in range(5):
        opt.zero_grad()
        topt.zero_grad()
        (x @ w.T).tanh().sum().backward()
        torch.tanh(tx @ tw.T).sum().backward()
        opt.step()
        topt.step()
    close(w, tw.detach().numpy(), 1e-9)


def test_optimizer_refuses_interior_tensors():
    x = nb.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="leaf"):
        nb.optim.SGD([x * 2], lr=0.1)
    with pytest.raises(TypeError):
        nb.optim.SGD([1.0], lr=0.1)
    with pytest.raises(ValueError):
        nb.optim.SGD([x], lr=-1)


def test_in_place_changes_refuse_a_stale_backward():
    """opt.step(), opt.zero_grad(), t.zero_grad() and t.grad = None change
    values in place (through the C calls that bump the version): a graph
    recorded before refuses its backward, naming the tensor and the op."""
    w = nb.tensor([1.0, 2.0], requires_grad=True)
    opt = nb.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward()
    opt.step()  # w moves: d(w*w)/dw = 2w would use the new w
    with pytest.raises(ValueError, match=r"backward: %s was modified in place after prod:" % w.name):
        loss.backward()
    (w * w).sum().backward()  # recorded after the step: fine
    assert w.grad.tolist() == pytest.approx([2 + 2 * 0.8, 4 + 2 * 1.6])
    # a graph that read a gradient (v * w.grad), which is then zeroed
    for zero in (opt.zero_grad, w.zero_grad, lambda: setattr(w, "grad", None)):
        (w * w).sum().backward()
        v = nb.tensor([1.0, 1.0], requires_grad=True)
        z = (v * w.grad).sum()
        zero()
        with pytest.raises(ValueError, match=r"was modified in place after prod:"):
            z.backward()
        assert v.grad is None


def train_steps(n, lin, opt, x, y):
    for _ in range(n):
        opt.zero_grad()
        loss = nb.nn.functional.cross_entropy(lin(x).relu(), y)
        loss.backward()
        opt.step()
    return loss.item()


def test_memory_is_flat_over_10000_steps():
    lin = nb.nn.Linear(8, 4, seed=3)
    opt = nb.optim.SGD(lin.parameters(), lr=0.05)
    x = nb.tensor(rng.normal(size=(16, 8)))
    y = list(rng.integers(0, 4, size=16))
    train_steps(100, lin, opt, x, y)
    before = nb._C.memory_stats()
    train_steps(10_000, lin, opt, x, y)
    after = nb._C.memory_stats()
    assert after["live_tensors"] == before["live_tensors"], (before, after)
    assert after["live_bytes"] == before["live_bytes"]
    assert after["peak_bytes"] == before["peak_bytes"]
    assert after["system_allocs"] == before["system_allocs"]


def test_graph_lives_while_python_references_reach_it():
    x = nb.tensor([1.0, 2.0], requires_grad=True)
    base = nb._C.memory_stats()["live_tensors"]
    y = (x * x).sin().sum()
    assert nb._C.memory_stats()["live_tensors"] > base
    y.backward()
    del y
    assert nb._C.memory_stats()["live_tensors"] == base + 1  # x's gradient only


def test_threads_share_tensors_without_crashing():
    w = nb.tensor(rng.normal(size=(4, 4)), requires_grad=True)
    errors = []

    def work(seed):
        try:
            x = nb.tensor(np.random.default_rng(seed).normal(size=(8, 4)))
            for _ in range(200):
                y = (x @ w).tanh().sum()
                y.backward()
                _ = np.asarray(w.grad).sum()
        except Exception as e:  # pragma: no cover
            errors.append(e)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    # every backward added into w.grad: compare with one thread's sum, recomputed
    expect = np.zeros((4, 4))
    for i in range(4):
        x = np.random.default_rng(i).normal(size=(8, 4))
        expect += 200 * x.T @ (1 - np.tanh(x @ np.asarray(w)) ** 2)
    close(w.grad, expect, 1e-8)


def test_custom_function_backward_in_threads():
    class Twice(nb.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2
    out = []

    def work():
        x = nb.tensor([1.0, 2.0], requires_grad=True)
        for _ in range(300):
            Twice.apply(x).sum().backward()
        out.append(x.grad.tolist())
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [[600.0, 600.0]] * 4


@needs_torch
@pytest.mark.skipif(not nb._C.HAVE_CONV, reason="the C library has no nb_conv2d yet")
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_conv2d_and_pools_against_torch(stride, padding):
    x0, w0, b0 = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    x, w, b = (nb.tensor(v, requires_grad=True) for v in (x0, w0, b0))
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x0, w0, b0))
    y = nb.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    close(y, ty.detach().numpy())
    z = nb.nn.functional.max_pool2d(y, 2)
    tz = torch.nn.functional.max_pool2d(ty, 2)
    close(z, tz.detach().numpy())
    (z * z).sum().backward()
    (tz * tz).sum().backward()
    for a, t in ((x, tx), (w, tw), (b, tb)):
        close(a.grad, t.grad.numpy(), 1e-9)
