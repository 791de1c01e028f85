"""nabla: automatic differentiation on computational graphs, over a C core.

n-d float64 tensors with numpy broadcasting and operator overloading; every
operation runs in nabla's C library (its forward, VJP and JVP rules), records
the graph as it runs, and ``backward()`` computes the gradients in one sweep.

    >>> import nabla as nb
    >>> x = nb.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    >>> y = (x * x + 2 * x).sum()
    >>> y.backward()
    >>> x.grad.tolist()
    [[4.0, 6.0], [8.0, 10.0]]

``nabla.seed`` is the assignment's API (Tensor, NameManager, the op objects);
``nabla.nn`` and ``nabla.optim`` train models.
"""
import os as _os
import threading as _threading

import numpy as _np

from . import _C
from ._C import Tensor, AxisError
from ._C import (add, sub, mul, div, matmul, maximum, minimum, exp, log, sin, cos, tanh,
                 sigmoid, relu, sqrt, square, abs, neg, sum, mean, max, min, argmax, argmin,
                 logsumexp, var, std, softmax, log_softmax, clip, where, squeeze, expand_dims,
                 transpose, concatenate, stack)
from .autograd import (no_grad, enable_grad, set_grad_enabled, is_grad_enabled, grad,
                       jacobian, hessian, hvp, jvp, gradcheck, gradgradcheck, Function)

__all__ = [
    "Tensor", "AxisError", "tensor", "zeros", "ones", "full", "randn", "rand", "zeros_like",
    "ones_like", "arange", "add", "sub", "mul", "div", "matmul", "maximum", "minimum", "pow",
    "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "square", "abs", "neg", "sum",
    "mean", "max", "min", "argmax", "argmin", "logsumexp", "var", "std", "softmax",
    "log_softmax", "clip", "where", "squeeze", "expand_dims", "transpose", "concatenate",
    "stack", "reshape", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "grad",
    "jacobian", "hessian", "hvp", "jvp", "gradcheck", "gradgradcheck", "Function", "nn",
    "optim", "seed", "set_num_threads", "set_anomaly_detection", "float64",
]

float64 = _np.float64


def tensor(data, requires_grad=False):
    """A new leaf tensor from a number, any nesting of lists, a numpy array or a
    Tensor (copied), stored as float64."""
    return Tensor(data, requires_grad=requires_grad)


def _shape(shape):
    if len(shape) == 1 and not isinstance(shape[0], (int, _np.integer)):
        return tuple(shape[0])
    return tuple(shape)


def _grad(t, requires_grad):
    if requires_grad:
        t.requires_grad = True
    return t


def full(shape, value, requires_grad=False):
    """A tensor of ``shape`` (an int or a tuple) filled with ``value``."""
    if isinstance(shape, (int, _np.integer)):
        shape = (shape,)
    return _grad(_C.full(tuple(shape), float(value)), requires_grad)


def zeros(*shape, requires_grad=False):
    """Zeros of ``shape``: ``zeros((2, 3))`` (numpy) or ``zeros(2, 3)`` (PyTorch)."""
    return _grad(_C.full(_shape(shape), 0.0), requires_grad)


def ones(*shape, requires_grad=False):
    """Ones of ``shape``: ``ones((2, 3))`` or ``ones(2, 3)``."""
    return _grad(_C.full(_shape(shape), 1.0), requires_grad)


def zeros_like(t, requires_grad=False):
    """Zeros of ``t``'s shape."""
    return zeros(t.shape, requires_grad=requires_grad)


def ones_like(t, requires_grad=False):
    """Ones of ``t``'s shape."""
    return ones(t.shape, requires_grad=requires_grad)


_seed_lock = _threading.Lock()
_seed_state = [int.from_bytes(_os.urandom(8), "little")]


def _next_seed(seed):
    if seed is not None:
        return int(seed) & 0xFFFFFFFFFFFFFFFF
    with _seed_lock:
        _seed_state[0] = (_seed_state[0] * 6364136223846793005 + 1442695040888963407) % 2**64
        return _seed_state[0]


def randn(*shape, seed=None, requires_grad=False):
    """Standard normal values of ``shape`` from nabla's reproducible generator
    (the same ``seed`` gives the same values; None: a fresh seed)."""
    return _grad(_C.random(_shape(shape), _next_seed(seed), True), requires_grad)


def rand(*shape, seed=None, requires_grad=False):
    """Uniform values in [0, 1) of ``shape`` (see randn for ``seed``)."""
    return _grad(_C.random(_shape(shape), _next_seed(seed), False), requires_grad)


def arange(*args, requires_grad=False):
    """``numpy.arange(*args)`` as a float64 tensor."""
    return tensor(_np.arange(*args, dtype=_np.float64), requires_grad=requires_grad)


def reshape(t, *shape):
    """``t.reshape(*shape)``."""
    return t.reshape(*shape)


def pow(t, exponent):
    """``t ** exponent``."""
    return _C.pow(t, exponent)


def set_num_threads(n):
    """Large element-wise kernels, matrix products and optimizer steps use up to
    n threads (default 1).  Returns the previous value."""
    return _C.set_num_threads(n)


def set_anomaly_detection(on):
    """When on, the first op whose result or gradient holds a NaN or an inf
    raises, naming the op.  Returns the previous setting."""
    return _C.set_anomaly_detection(on)


def _repr(t):
    arr = _np.asarray(t)
    body = _np.array2string(arr, separator=", ", prefix="tensor(",
                            formatter=None, threshold=1000)
    extra = ""
    if t.requires_grad:
        extra = ", requires_grad=True" if t.is_leaf else ", op=%s" % t.op
    return "tensor(%s%s)" % (body, extra)


_C._set_repr_hook(_repr)

from . import nn, optim, data  # noqa: E402  (they use the names above)
from . import seed  # noqa: E402
