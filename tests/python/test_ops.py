"""Every operator and method against numpy (values) and PyTorch float64
(gradients), errors, indexing, conversions."""
import numpy as np
import pytest

import nabla as nb
from conftest import torch, needs_torch, needs_numpy_ops, close

rng = np.random.default_rng(0)
A = rng.normal(size=(3, 4))
B = rng.normal(size=(3, 4))
ROW = rng.normal(size=(4,))
POS = rng.uniform(0.5, 2.0, size=(3, 4))

# (name, nabla function, numpy function, torch function, inputs)
BINARY = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, lambda a, b: a + b),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, lambda a, b: a - b),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, lambda a, b: a * b),
    ("div", lambda a, b: a / b, lambda a, b: a / b, lambda a, b: a / b),
    ("maximum", nb.maximum, np.maximum, lambda a, b: torch.maximum(a, b)),
    ("radd", lambda a, b: 2.0 + a * b, lambda a, b: 2.0 + a * b, lambda a, b: 2.0 + a * b),
    ("rsub", lambda a, b: 1 - a, lambda a, b: 1 - a, lambda a, b: 1 - a),
    ("rdiv", lambda a, b: 3.0 / (a * a + 1), lambda a, b: 3.0 / (a * a + 1),
     lambda a, b: 3.0 / (a * a + 1)),
    ("pow", lambda a, b: a ** 3, lambda a, b: a ** 3, lambda a, b: a ** 3),
    ("neg", lambda a, b: -a, lambda a, b: -a, lambda a, b: -a),
]


@pytest.mark.parametrize("name,f,fn,ft", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shape_b", ["same", "row"])
def test_binary_values_and_gradients(name, f, fn, ft, shape_b):
    a, b = A, (B if shape_b == "same" else ROW + 3.0)
    x, y = nb.tensor(a, requires_grad=True), nb.tensor(b, requires_grad=True)
    z = f(x, y)
    close(z, fn(a, b))
    if torch is None:
        pytest.skip("no torch for the gradients")
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.tensor(b, requires_grad=True)
    tz = ft(tx, ty)
    seed = rng.normal(size=tz.shape)
    (tz * torch.tensor(seed)).sum().backward()
    z.backward(nb.tensor(seed))
    close(x.grad, tx.grad.numpy())
    if ty.grad is not None:
        close(y.grad, ty.grad.numpy())


UNARY = ["exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "square"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_methods_and_functions(name):
    a = POS if name in ("log", "sqrt") else A
    x = nb.tensor(a, requires_grad=True)
    y1 = getattr(x, name)()
    y2 = getattr(nb, name)(x)
    npf = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), "relu": lambda v: np.maximum(v, 0)}.get(
        name, getattr(np, name, None))
    close(y1, npf(a))
    close(y2, npf(a))
    if torch is None:
        return
    tx = torch.tensor(a, requires_grad=True)
    getattr(torch, name)(tx).sum().backward()
    y1.sum().backward()
    close(x.grad, tx.grad.numpy())


@pytest.mark.parametrize("method", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(method, axis, keepdims):
    x = nb.tensor(A, requires_grad=True)
    y = getattr(x, method)(axis=axis, keepdims=keepdims)
    close(y, getattr(A, method)(axis=axis, keepdims=keepdims))
    y2 = getattr(nb, method)(x, axis, keepdims)
    close(y2, y.numpy())
    if torch is None:
        return
    tx = torch.tensor(A, requires_grad=True)
    if axis is None:
        ty = getattr(tx, method)()
    elif method == "max" and isinstance(axis, tuple):
        ty = tx.amax(dim=axis, keepdim=keepdims)
    elif method == "max":
        ty = tx.max(dim=axis, keepdim=keepdims).values
    else:
        ty = getattr(tx, method)(dim=axis, keepdim=keepdims)
    ty.sum().backward()
    y.sum().backward()
    close(x.grad, tx.grad.numpy())


@needs_numpy_ops
@pytest.mark.parametrize("method", ["min", "argmax", "argmin", "var", "std", "logsumexp"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_more_reductions(method, axis):
    x = nb.tensor(A, requires_grad=True)
    y = getattr(x, method)(axis=axis)
    ref = {"logsumexp": lambda a, axis: np.log(np.exp(a).sum(axis=axis))}.get(
        method, lambda a, axis: getattr(a, method)(axis=axis))(A, axis)
    close(y, ref)


def test_softmax_family():
    x = nb.tensor(A, requires_grad=True)
    e = np.exp(A - A.max(axis=-1, keepdims=True))
    close(x.softmax(), e / e.sum(axis=-1, keepdims=True))
    close(nb.softmax(x, axis=0), np.exp(A) / np.exp(A).sum(axis=0))
    close(x.log_softmax(), np.log(e / e.sum(axis=-1, keepdims=True)))
    big = nb.tensor([1000.0, -1000.0, 0.0])
    assert np.isfinite(big.softmax().numpy()).all()
    if torch is None:
        return
    tx = torch.tensor(A, requires_grad=True)
    (torch.log_softmax(tx, -1) * torch.tensor(B)).sum().backward()
    (x.log_softmax() * nb.tensor(B)).sum().backward()
    close(x.grad, tx.grad.numpy())


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)),
                                   ((3, 4), (4,)), ((2, 3, 4), (2, 4, 2))])
def test_matmul(sa, sb):
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    x, y = nb.tensor(a, requires_grad=True), nb.tensor(b, requires_grad=True)
    z = x @ y
    close(z, a @ b)
    if torch is None:
        return
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (tx @ ty).sum().backward()
    z.sum().backward()
    close(x.grad, tx.grad.numpy())
    close(y.grad, ty.grad.numpy())



def test_abs_against_numpy_and_torch():
    x = nb.tensor(A, requires_grad=True)
    try:
        y = abs(x)
    except NotImplementedError:
        pytest.skip("the C library has no nb_abs yet")
    close(y, np.abs(A))
    close(x.abs(), np.abs(A))
    y.sum().backward()
    close(x.grad, np.sign(A))


def test_rmatmul_with_a_list():
    x = nb.tensor([[1.0, 2.0], [3.0, 4.0]])
    close([[1.0, 0.0]] @ x, [[1.0, 2.0]])


def test_shape_methods():
    x = nb.tensor(rng.normal(size=(2, 3, 4)), requires_grad=True)
    assert x.reshape(6, 4).shape == (6, 4)
    assert x.reshape((4, -1)).shape == (4, 6)
    assert x.flatten().shape == (24,)
    assert x.T.shape == (4, 3, 2) if nb._C.HAVE_NUMPY_OPS else True
    assert x.transpose(0, 2, 1).shape == (2, 4, 3)
    y = nb.tensor(np.ones((1, 3, 1)))
    assert y.squeeze().shape == (3,)
    assert y.squeeze(0).shape == (3, 1)
    assert nb.expand_dims(y, 0).shape == (1, 1, 3, 1)
    with pytest.raises(ValueError):
        y.squeeze(1)
    m = nb.tensor(A, requires_grad=True)
    close(m.T, A.T)
    (m.T * nb.tensor(B.T)).sum().backward()
    close(m.grad, B)


def test_attributes_and_conversions():
    x = nb.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert (x.shape, x.ndim, x.size, x.is_leaf, x.requires_grad) == ((2, 2), 2, 4, True, True)
    assert x.grad is None
    y = x * 2
    assert not y.is_leaf and y.requires_grad
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x.numpy().dtype == np.float64
    assert float(x.sum()) == 10.0 and x.sum().item() == 10.0
    with pytest.raises(ValueError):
        float(x)
    v = np.asarray(x)
    assert not v.flags.writeable and v.base is not None  # a view, no copy
    assert np.shares_memory(v, np.asarray(x))
    assert len(x) == 2
    assert [r.tolist() for r in x] == [[1.0, 2.0], [3.0, 4.0]] if nb._C.HAVE_NUMPY_OPS else True
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    x.requires_grad = False
    assert not (x * 2).requires_grad
    assert "digraph" in y.to_dot()
    assert "requires_grad=True" in repr(nb.tensor(1.0, requires_grad=True))
    assert nb.zeros(2, 3).shape == (2, 3) and nb.ones((2,)).tolist() == [1.0, 1.0]
    assert nb.full((2,), 7).tolist() == [7.0, 7.0]
    assert nb.randn(3, 4, seed=1).tolist() == nb.randn(3, 4, seed=1).tolist()
    assert nb.tensor(np.arange(6).reshape(2, 3)).shape == (2, 3)
    assert nb.tensor(nb.tensor([1.0])).tolist() == [1.0]


def test_numpy_on_the_left_defers_to_the_tensor():
    x = nb.tensor([1.0, 2.0], requires_grad=True)
    z = np.array([10.0, 20.0]) + x
    assert isinstance(z, nb.Tensor) and z.requires_grad
    z2 = np.float64(2.0) * x
    assert isinstance(z2, nb.Tensor)


def test_errors_carry_the_c_message():
    a, b = nb.tensor(np.ones((3, 1))), nb.tensor(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"^add: shapes \(3, 1\) and \(4, 1\) cannot be broadcast"):
        a + b
    with pytest.raises(ValueError, match="matmul"):
        nb.tensor(np.ones((2, 3))) @ nb.tensor(np.ones((4, 5)))
    with pytest.raises(IndexError):
        a.sum(axis=5)
    with pytest.raises(ValueError):
        a.sum(axis=5)
    with pytest.raises(TypeError):
        a + "x"
    with pytest.raises(TypeError):
        nb.exp("x")
    with pytest.raises(TypeError):
        nb.tensor({1: 2})
    with pytest.raises(ValueError):
        nb.tensor(np.zeros((1,) * 9))
    with pytest.raises(ValueError):
        a.reshape(7)
    with pytest.raises(ValueError, match="does not require grad"):
        a.sum().backward()
    with pytest.raises(IndexError):
        a[1.5]
    with pytest.raises(IndexError):
        a[0, 0, 0]
    with pytest.raises(TypeError):
        a.sum(axis=0, bogus=1)
    with pytest.raises(IndexError):
        a[[7]]
    with pytest.raises(ValueError, match="cross_entropy"):
        nb.nn.functional.cross_entropy(nb.tensor(np.ones((2, 3))), [0, 5])


def test_gather_rows_without_grad():
    x = nb.tensor(A)
    close(x[[2, 0, 2]], A[[2, 0, 2]])
    close(x[np.array([1, -1])], A[[1, -1]])
    close(x[1], A[1])


@needs_numpy_ops
@pytest.mark.parametrize("key", [
    1, -1, slice(None), slice(1, 3), slice(None, None, -1), slice(3, 0, -2), slice(-2, None),
    (1, 2), (slice(None), 2), (Ellipsis, 1), (None, 1), (1, None, slice(1, 3)),
    (slice(None), [0, 2, 2]), [2, 0, 2], np.array([[0, 1], [2, 2]]), (Ellipsis, None),
    np.array([True, False, True]), (slice(None, None, 2), slice(None, None, -1)),
])
def test_indexing_against_numpy_and_torch(key):
    x = nb.tensor(A, requires_grad=True)
    y = x[key]
    close(y, A[key])
    seed = rng.normal(size=np.shape(A[key]))
    y.backward(nb.tensor(seed))
    expect = np.zeros_like(A)
    np.add.at(expect, key, seed)  # a repeated index accumulates
    close(x.grad, expect)


@needs_numpy_ops
def test_comparisons_and_where():
    x, y = nb.tensor(A, requires_grad=True), nb.tensor(B)
    for op in ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"]:
        r = getattr(x, op)(y)
        close(r, getattr(A, op)(B).astype(float))
        assert not r.requires_grad
    close(abs(x), np.abs(A))
    close(x.clip(-0.5, 0.5), np.clip(A, -0.5, 0.5))
    close(nb.where(x > 0, x, y), np.where(A > 0, A, B))
    close(nb.minimum(x, y), np.minimum(A, B))
    close(nb.concatenate([x, y], axis=1), np.concatenate([A, B], axis=1))
    close(nb.stack([x, y]), np.stack([A, B]))
