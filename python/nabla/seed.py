"""The assignment's API, verbatim: ``Tensor``, ``NameManager``, ``Op`` and the op
objects, over nabla's C core.

Rules (the assignment's): a Tensor is stored as a float64 *matrix*: a number
becomes (1, 1), a 1-d list or array a column (n, 1), more than 2 dimensions is
an error.  Leaves are named ``in:<k>``, op outputs ``<op>:<k>``, gradients
``<op>_grad`` (a leaf's ``in_grad``).  ``backward()`` computes every gradient
in one sweep and adds (never replaces) them into the leaves.

    >>> from nabla.seed import Tensor, add
    >>> a = Tensor([1.0, 2.0, 3.0]); b = Tensor([4.0, 5.0, 6.0])
    >>> d = add(add(a, b), 3.0); d.backward()
    >>> print(a.grad)
    Tensor([[1.]
     [1.]
     [1.]], name=in_grad, shape=(3, 1))

A subclass of ``Op`` that implements ``__call__`` and ``grad(back_grad, *args)``
is a custom operation: its ``__call__`` runs once (recording off) to give the
output, and ``backward`` runs its ``grad`` in the same single sweep as the
built-in operations (through the C library's custom operations).
"""
import numbers
import threading
from abc import ABC, abstractmethod

import numpy as np

from . import _C
from .autograd import Function

__all__ = ["Tensor", "NameManager", "Op", "Add", "Sub", "Prod", "Sin", "Cos", "Sum", "Mean",
           "Square", "MatMul", "Exp", "ReLU", "Sigmoid", "Tanh", "Softmax", "add", "sub", "prod",
           "sin", "cos", "my_sum", "mean", "square", "matmul", "exp", "relu", "sigmoid", "tanh",
           "softmax"]


class NameManager:
    """Unique names for tensors: ``new('add')`` gives ``add:0``, then ``add:1``...;
    ``reset()`` restarts every counter.  The op objects draw from the same
    counters (after ``new('add')`` the next ``add`` output is ``add:1``)."""
    _counts = {}
    _lock = threading.Lock()

    @staticmethod
    def reset():
        """Restarts every counter."""
        with NameManager._lock:
            NameManager._counts = {}
        _C.names_reset()

    @staticmethod
    def new(name: str):
        """``<name>:<k>``, k the number of names drawn for ``name`` so far."""
        with NameManager._lock:
            k = NameManager._counts.get(name, 0)
            NameManager._counts[name] = k + 1
        return "%s:%d" % (name, k)


def _matrix(arr):
    """the assignment's storage rule: a float64 array of 2 dimensions"""
    if isinstance(arr, Tensor):
        a = np.array(arr._t, dtype=np.float64)
    elif isinstance(arr, _C.Tensor):
        a = np.array(arr, dtype=np.float64)
    elif isinstance(arr, np.ndarray):
        a = arr.astype(np.float64)
    elif isinstance(arr, (list, tuple)) or (isinstance(arr, numbers.Number)
                                            and not isinstance(arr, complex)):
        a = np.array(arr, dtype=np.float64)
    else:
        raise TypeError("Tensor: unsupported data type %s" % type(arr).__name__)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(-1, 1)
    elif a.ndim > 2:
        raise ValueError("Tensor: at most 2 dimensions (a matrix), got shape %s" % (a.shape,))
    return a


_local = threading.local()


class Tensor:
    """The assignment's Tensor: a float64 matrix plus its place in the graph.

    ``Tensor(arr, parents=[], requires_grad=True, name='', operation=None)``:
    ``arr`` a number, a list, a numpy array or a Tensor (deep copy, a new leaf).
    Given ``parents`` and an ``operation`` (an Op with a ``grad`` method), the
    tensor is that operation's output: backward sends its gradient to the
    parents through ``operation.grad(back_grad, *parents)``."""

    __slots__ = ("_t", "_parents", "_operation", "__weakref__")

    def __init__(self, arr, parents=[], requires_grad=True, name='', operation=None):
        values = _matrix(arr)
        parents = list(parents) if parents else []
        if parents and operation is not None and not getattr(_local, "in_forward", False) \
                and _C.HAVE_APPLY:
            ps = [p if isinstance(p, Tensor) else Tensor(p, requires_grad=False) for p in parents]
            out = _custom(operation, lambda *a: Tensor(values, requires_grad=False), ps, {})
            self._t = out._t  # named <op>:<k> by _custom
            if name:
                _C._set_name(self._t, name)
        else:
            self._t = _C.Tensor(values, requires_grad=bool(requires_grad))
            _C._set_name(self._t, name or NameManager.new("in" if not parents else
                                                          _op_name(operation)))
        self._parents = parents
        self._operation = operation

    @classmethod
    def _wrap(cls, t, name=None, parents=(), operation=None):
        self = cls.__new__(cls)
        self._t = t
        self._parents = list(parents)
        self._operation = operation
        if name is not None:
            _C._set_name(t, name)
        return self

    @property
    def _arr(self):
        return np.asarray(self._t)

    @property
    def _name(self):
        return self._t.name

    @property
    def name(self):
        """The tensor's name: ``in:3``, ``add:0``, ``in_grad``."""
        return self._t.name

    @property
    def shape(self):
        """The (rows, cols) shape."""
        return self._t.shape

    @property
    def requires_grad(self):
        """Whether gradients are computed for this tensor."""
        return self._t.requires_grad

    @requires_grad.setter
    def requires_grad(self, on):
        self._t.requires_grad = bool(on)

    @property
    def grad(self):
        """The accumulated gradient (a Tensor named ``<op>_grad``), or None."""
        g = self._t.grad
        return None if g is None else Tensor._wrap(g)

    @grad.setter
    def grad(self, value):
        if value is not None:
            raise AttributeError("grad can only be reset to None (zero_grad)")
        self._t.zero_grad()

    def zero_grad(self):
        """Resets the gradient to zeros."""
        self._t.zero_grad()

    def numpy(self):
        """The values: a float64 matrix (a copy)."""
        return self._t.numpy()

    def __repr__(self):
        return _C.seed_repr(self._t)

    def backward(self, my_grad=None):
        """Starts backpropagation from this tensor (``my_grad`` None: ones of its
        shape); every gradient is computed in one sweep of the graph and added
        into the leaves' ``grad``."""
        if my_grad is None:
            self._t.backward()
        else:
            g = my_grad._t if isinstance(my_grad, Tensor) else _C.Tensor(_matrix(my_grad))
            self._t.backward(g)

    # operator overloading over the op objects
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return sub(self, o)
    def __rsub__(self, o): return sub(o, self)
    def __mul__(self, o): return prod(self, o)
    def __rmul__(self, o): return prod(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return prod(-1.0, self)


def _in(x):
    """an operand as a seed Tensor (numbers and lists become constant leaves)"""
    if isinstance(x, Tensor):
        return x
    return Tensor(x, requires_grad=False)


def _op_name(op):
    n = getattr(op, "name", None)
    if isinstance(n, str) and n:
        return n
    return type(op).__name__.lower()


def _out(op, t, parents):
    return Tensor._wrap(t, NameManager.new(_op_name(op)), parents, op)


def _g(op, t):
    """a gradient tensor, named <op>_grad"""
    return Tensor._wrap(t, "%s_grad" % _op_name(op))


def _unbroadcast(g, shape):
    """sums g over the axes along which an operand of `shape` was broadcast"""
    if g.shape == tuple(shape):
        return g
    for ax in (0, 1):
        if shape[ax] == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


def _vec_axis(shape):
    """softmax's axis for the assignment's vectors: a row (1, n) along axis 1,
    otherwise along the columns (axis 0), as for the column vectors (n, 1)"""
    return 1 if shape[0] == 1 and shape[1] > 1 else 0


_builtin = set()


class Op(ABC):
    """The interface of operations: ``__call__(*args)`` returns the output Tensor,
    ``grad(back_grad, *args)`` the list of the gradients of the inputs (Tensors
    named ``<op>_grad``).  A user's subclass is a custom operation (see the
    module's documentation)."""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__module__ == __name__ or "__call__" not in cls.__dict__:
            return
        user_call = cls.__dict__["__call__"]

        def __call__(self, *args, **kwargs):
            if getattr(_local, "in_forward", False) or not _C.HAVE_APPLY:
                return user_call(self, *args, **kwargs)
            return _custom(self, lambda *a: user_call(self, *a, **kwargs),
                           [_in(a) for a in args], kwargs)

        __call__.__doc__ = user_call.__doc__
        __call__.__wrapped__ = user_call
        cls.__call__ = __call__

    @abstractmethod
    def __call__(self, *args, **kwargs):
        """Computes the operation on its inputs and returns the output Tensor."""

    @abstractmethod
    def grad(self, back_grad, *args, **kwargs):
        """The gradients of the inputs (a list of Tensors named ``<op>_grad``),
        given the gradient ``back_grad`` of the output."""


class _OpFunction(Function):
    """a user's Op as a C custom operation: forward runs the Op's __call__,
    backward its grad"""

    @staticmethod
    def forward(ctx, op, call, kwargs, *xs):
        ctx.op, ctx.kwargs = op, kwargs
        ctx.save_for_backward(*xs)
        _local.in_forward = True
        try:
            out = call(*[Tensor._wrap(x) for x in xs])
        finally:
            _local.in_forward = False
        if not isinstance(out, Tensor):
            raise TypeError("%s.__call__ must return a Tensor, not %s"
                            % (type(op).__name__, type(out).__name__))
        return out._t

    @staticmethod
    def backward(ctx, g):
        xs = ctx.saved_tensors
        op = ctx.op
        grads = op.grad(Tensor._wrap(g, "%s_grad" % _op_name(op)),
                        *[Tensor._wrap(x) for x in xs], **ctx.kwargs)
        if isinstance(grads, Tensor):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(xs):
            raise ValueError("%s.grad returned %d gradients for %d inputs"
                             % (type(op).__name__, len(grads), len(xs)))
        out = []
        for gr in grads:
            if gr is None:
                out.append(None)
            elif isinstance(gr, Tensor):
                out.append(gr._t)
            else:
                raise TypeError("%s.grad must return Tensors, not %s"
                                % (type(op).__name__, type(gr).__name__))
        return (None, None, None) + tuple(out)


_fn_classes = {}


def _custom(op, call, parents, kwargs):
    name = _op_name(op)
    cls = _fn_classes.get(name)
    if cls is None:
        cls = type("_Op_" + name, (_OpFunction,), {"_nb_name": name})
        _fn_classes[name] = cls
    t = cls.apply(op, call, kwargs, *[p._t for p in parents])
    return _out(op, t, parents)


# ---- the operations ------------------------------------------------------------------
class Add(Op):
    """Add(a, b): a + b"""

    def __call__(self, a, b):
        a, b = _in(a), _in(b)
        return _out(self, _C.add(a._t, b._t), [a, b])

    def grad(self, back_grad, a, b):
        g = back_grad._t
        return [_g(self, _unbroadcast(g, _in(a).shape)), _g(self, _unbroadcast(g, _in(b).shape))]


class Sub(Op):
    """Sub(a, b): a - b"""

    def __call__(self, a, b):
        a, b = _in(a), _in(b)
        return _out(self, _C.sub(a._t, b._t), [a, b])

    def grad(self, back_grad, a, b):
        g = back_grad._t
        return [_g(self, _unbroadcast(g, _in(a).shape)),
                _g(self, _unbroadcast(_C.neg(g), _in(b).shape))]


class Prod(Op):
    """Prod(a, b): the element-wise product of a and b, or a scalar times a tensor"""

    def __call__(self, a, b):
        a, b = _in(a), _in(b)
        return _out(self, _C.mul(a._t, b._t), [a, b])

    def grad(self, back_grad, a, b):
        a, b, g = _in(a), _in(b), back_grad._t
        return [_g(self, _unbroadcast(g * b._t, a.shape)), _g(self, _unbroadcast(g * a._t, b.shape))]


class Sin(Op):
    """element-wise sine"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.sin(a._t), [a])

    def grad(self, back_grad, a):
        return [_g(self, back_grad._t * _C.cos(_in(a)._t))]


class Cos(Op):
    """element-wise cosine"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.cos(a._t), [a])

    def grad(self, back_grad, a):
        return [_g(self, -(back_grad._t * _C.sin(_in(a)._t)))]


class Sum(Op):
    """the sum of the elements, a (1, 1) tensor"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.sum(a._t).reshape(1, 1), [a])

    def grad(self, back_grad, a):
        return [_g(self, back_grad._t * _C.full(_in(a).shape, 1.0))]


class Mean(Op):
    """the mean of the elements, a (1, 1) tensor"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.mean(a._t).reshape(1, 1), [a])

    def grad(self, back_grad, a):
        a = _in(a)
        return [_g(self, back_grad._t * _C.full(a.shape, 1.0 / a._t.size))]


class Square(Op):
    """each element squared"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.square(a._t), [a])

    def grad(self, back_grad, a):
        return [_g(self, back_grad._t * (2.0 * _in(a)._t))]


class MatMul(Op):
    """MatMul(A, B): the matrix product C = A @ B;
    de/dA = de/dC @ B^T, de/dB = A^T @ de/dC"""

    def __call__(self, a, b):
        a, b = _in(a), _in(b)
        return _out(self, _C.matmul(a._t, b._t), [a, b])

    def grad(self, back_grad, a, b):
        a, b, g = _in(a), _in(b), back_grad._t
        return [_g(self, g @ b._t.T), _g(self, a._t.T @ g)]


class Exp(Op):
    """element-wise exponential"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.exp(a._t), [a])

    def grad(self, back_grad, a):
        return [_g(self, back_grad._t * _C.exp(_in(a)._t))]


class ReLU(Op):
    """element-wise ReLU (gradient 0 at 0)"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.relu(a._t), [a])

    def grad(self, back_grad, a):
        x = _in(a)._t
        mask = (x > 0) if _C.HAVE_NUMPY_OPS else _C.Tensor((np.asarray(x) > 0).astype(float))
        return [_g(self, back_grad._t * mask)]


class Sigmoid(Op):
    """element-wise sigmoid"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.sigmoid(a._t), [a])

    def grad(self, back_grad, a):
        s = _C.sigmoid(_in(a)._t)
        return [_g(self, back_grad._t * s * (1.0 - s))]


class Tanh(Op):
    """element-wise tanh"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.tanh(a._t), [a])

    def grad(self, back_grad, a):
        y = _C.tanh(_in(a)._t)
        return [_g(self, back_grad._t * (1.0 - y * y))]


class Softmax(Op):
    """softmax of a vector (a column (n, 1) or a row (1, n); a matrix column by
    column): every element influences every output, its Jacobian is full"""

    def __call__(self, a):
        a = _in(a)
        return _out(self, _C.softmax(a._t, _vec_axis(a.shape)), [a])

    def grad(self, back_grad, a):
        a = _in(a)
        ax = _vec_axis(a.shape)
        y, g = _C.softmax(a._t, ax), back_grad._t
        return [_g(self, y * (g - (g * y).sum(axis=ax, keepdims=True)))]


add = Add()
sub = Sub()
prod = Prod()
sin = Sin()
cos = Cos()
my_sum = Sum()
mean = Mean()
square = Square()
matmul = MatMul()
exp = Exp()
relu = ReLU()
sigmoid = Sigmoid()
tanh = Tanh()
softmax = Softmax()

# the built-in ops' methods share Op's documentation
for _cls in (Add, Sub, Prod, Sin, Cos, Sum, Mean, Square, MatMul, Exp, ReLU, Sigmoid, Tanh,
             Softmax):
    for _m in ("__call__", "grad"):
        _f = _cls.__dict__[_m]
        if not _f.__doc__:
            _f.__doc__ = "%s: %s" % (_cls.__doc__.splitlines()[0], getattr(Op, _m).__doc__)
del _cls, _m, _f
