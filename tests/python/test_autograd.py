"""Grad mode, nb.grad, higher order against PyTorch, jacobian, hessian, hvp,
jvp, gradcheck, custom Functions (including misbehaving ones)."""
import numpy as np
import pytest

import nabla as nb
from conftest import torch, needs_torch, close

rng = np.random.default_rng(1)


def test_no_grad_and_enable_grad():
    x = nb.tensor([1.0, 2.0], requires_grad=True)
    assert nb.is_grad_enabled()
    with nb.no_grad():
        assert not nb.is_grad_enabled()
        assert not (x * 2).requires_grad
        with nb.enable_grad():
            assert (x * 2).requires_grad
    assert nb.is_grad_enabled()

    @nb.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad


def test_seed_002_second_derivatives():
    a = nb.tensor(1.0, requires_grad=True)
    b = nb.tensor(2.0, requires_grad=True)
    f = b * ((a + b) * (a - b))
    ga, gb = nb.grad(f, [a, b], create_graph=True)
    assert (ga.item(), gb.item()) == (4.0, -11.0)
    assert nb.grad(ga, a)[0].item() == 4.0
    assert nb.grad(gb, b)[0].item() == -12.0
    assert a.grad is None  # nb.grad touches no .grad
    assert not nb.grad(f, a)[0].requires_grad


def test_grad_of_interior_and_unused_inputs():
    x = nb.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    y = (h * 3).sum()
    u = nb.tensor([5.0], requires_grad=True)
    gh, gu = nb.grad(y, [h, u])
    close(gh, [3.0, 3.0])
    close(gu, [0.0])
    (gx,) = nb.grad([y, h.sum()], x, grad_outputs=[nb.tensor(1.0), nb.tensor(2.0)])
    close(gx, 6 * np.array([1.0, 2.0]) + 2 * 2 * np.array([1.0, 2.0]))


@needs_torch
def test_third_derivative_against_torch():
    v = rng.normal(size=5)
    x = nb.tensor(v, requires_grad=True)
    tx = torch.tensor(v, requires_grad=True)

    def f(m, t):
        return (m.tanh() * m.sin() + (t.exp() if False else m.exp()) / (1 + m * m)).sum()
    y, ty = f(x, x), f(tx, tx)
    g1 = nb.grad(y, x, create_graph=True)[0]
    tg1 = torch.autograd.grad(ty, tx, create_graph=True)[0]
    g2 = nb.grad(g1.sum(), x, create_graph=True)[0]
    tg2 = torch.autograd.grad(tg1.sum(), tx, create_graph=True)[0]
    g3 = nb.grad(g2.sum(), x)[0]
    tg3 = torch.autograd.grad(tg2.sum(), tx)[0]
    for a, b in [(g1, tg1), (g2, tg2), (g3, tg3)]:
        close(a, b.detach().numpy(), 1e-9)


@needs_torch
def test_jacobian_hessian_hvp_jvp_against_torch():
    v = rng.normal(size=(2, 3))
    f = lambda t: (t.tanh() @ np.ones((3, 2))) * 2  # noqa: E731
    J = nb.jacobian(f, nb.tensor(v))
    tJ = torch.autograd.functional.jacobian(lambda t: torch.tanh(t) @ torch.ones(3, 2) * 2,
                                            torch.tensor(v))
    assert J.shape == (2, 2, 2, 3)
    close(J, tJ.numpy())
    g = lambda t: (t * t * t).sum() + (t.sin() * t).sum()  # noqa: E731
    tg = lambda t: (t * t * t).sum() + (torch.sin(t) * t).sum()  # noqa: E731
    H = nb.hessian(g, nb.tensor(v))
    assert H.shape == (2, 3, 2, 3)
    close(H, torch.autograd.functional.hessian(tg, torch.tensor(v)).numpy())
    w = rng.normal(size=(2, 3))
    close(nb.hvp(g, nb.tensor(v), nb.tensor(w)),
          torch.autograd.functional.hvp(tg, torch.tensor(v), torch.tensor(w))[1].numpy())
    y, jv = nb.jvp(lambda t: t.sin() * t, nb.tensor(v), nb.tensor(w))
    ty, tjv = torch.autograd.functional.jvp(lambda t: torch.sin(t) * t, torch.tensor(v),
                                            torch.tensor(w))
    close(y, ty.numpy())
    close(jv, tjv.numpy())


def test_forward_mode_seed_001():
    y, dy = nb.jvp(lambda x: 3 * x ** 3 - 5 * x ** 2, nb.tensor(1.5), nb.tensor(1.0))
    assert abs(dy.item() - 5.25) < 1e-12


def test_gradcheck():
    xs = [nb.tensor(rng.normal(size=(2, 3)), requires_grad=True),
          nb.tensor(rng.normal(size=(3,)), requires_grad=True)]
    assert nb.gradcheck(lambda a, b: (a * b).tanh().softmax(), xs)
    assert nb.gradgradcheck(lambda a, b: (a * b).sin(), xs)

    class WrongGrad(nb.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g * 3.0  # should be 2x
    assert not nb.gradcheck(lambda a: WrongGrad.apply(a), xs[:1])
    with pytest.raises(ZeroDivisionError):
        nb.gradcheck(lambda a: 1 / 0, xs[:1])


class Mul(nb.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        ctx.k = 3
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        assert ctx.k == 3
        assert ctx.needs_input_grad == (True, False)
        return grad * y, grad * x


def test_function_pytorch_conventions():
    a = nb.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = nb.tensor([4.0, 5.0, 6.0])
    z = Mul.apply(a, b)
    assert z.name.startswith("mul:")
    z.sum().backward()
    close(a.grad, [4.0, 5.0, 6.0])
    assert b.grad is None


class Square(nb.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * x * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x * (2 * ctx.k), None


def test_function_numbers_and_double_backward():
    x = nb.tensor([1.0, -2.0], requires_grad=True)
    (g,) = nb.grad(Square.apply(x, 3.0).sum(), x, create_graph=True)
    close(g, [6.0, -12.0])
    (h,) = nb.grad(g.sum(), x)
    close(h, [6.0, 6.0])


def bad(backward):
    return type("Bad", (nb.Function,), {
        "forward": staticmethod(lambda ctx, x: x * 2),
        "backward": staticmethod(backward)})


@pytest.mark.parametrize("backward,exc,msg", [
    (lambda ctx, g: 1 / 0, ZeroDivisionError, "division"),
    (lambda ctx, g: (g, g), ValueError, "returned 2 gradients"),
    (lambda ctx, g: nb.ones(5), ValueError, "shape"),
    (lambda ctx, g: "nope", TypeError, "Tensor"),
    (lambda ctx, g: ("nope",), TypeError, "Tensor"),
])
def test_misbehaving_backward_raises_and_the_interpreter_survives(backward, exc, msg):
    x = nb.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(exc, match=msg):
        (bad(backward).apply(x) * 3).sum().backward()
    with pytest.raises(exc, match=msg):
        nb.grad(bad(backward).apply(x).sum(), x)
    (x * x).sum().backward()  # still fine afterwards
    close(x.grad, [2.0, 4.0, 6.0])


def test_misbehaving_forward_raises():
    F = type("F", (nb.Function,), {"forward": staticmethod(lambda ctx, x: 3.0),
                                   "backward": staticmethod(lambda ctx, g: g)})
    with pytest.raises(TypeError, match="one Tensor"):
        F.apply(nb.tensor([1.0]))
    with pytest.raises(RuntimeError):
        Mul.apply.__func__  # noqa: B018  (attribute exists)
        ctx_outside = []
        G = type("G", (nb.Function,), {
            "forward": staticmethod(lambda ctx, x: (ctx_outside.append(ctx), x * 1)[1]),
            "backward": staticmethod(lambda ctx, g: g)})
        G.apply(nb.tensor([1.0], requires_grad=True))
        ctx_outside[0].saved_tensors  # only inside forward/backward
