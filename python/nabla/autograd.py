"""Grad mode, derivatives (grad, jacobian, hessian, hvp, jvp), gradcheck and
custom operations (Function), over the C library's nb_autograd, nb_dual,
nb_jacobian, nb_hessian, nb_hvp, nb_gradcheck and nb_apply."""
import functools

from . import _C
from ._C import Tensor

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "grad", "jacobian",
           "hessian", "hvp", "jvp", "gradcheck", "gradgradcheck", "Function"]


class _GradMode:
    """Base of the grad-mode context managers; also usable as decorators."""
    _mode = True

    def __enter__(self):
        self._prev = _C.set_grad_enabled(self._mode)
        return self

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """``with nb.no_grad():`` operations record no graph and their results do
    not require grad (per thread).  Also a decorator."""
    _mode = False


class enable_grad(_GradMode):
    """``with nb.enable_grad():`` turns recording back on inside a no_grad block."""
    _mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(mode)``: sets grad mode at once; as a context manager,
    restores the previous mode on exit."""

    def __init__(self, mode):
        self._mode = bool(mode)
        self._prev = _C.set_grad_enabled(self._mode)

    def __enter__(self):
        return self

    def __call__(self, fn):
        raise TypeError("set_grad_enabled is not a decorator; use no_grad or enable_grad")


def is_grad_enabled():
    """Whether operations record the graph (this thread)."""
    return _C.is_grad_enabled()


def _seq(x):
    return (x,) if isinstance(x, Tensor) else tuple(x)


def grad(outputs, inputs, grad_outputs=None, create_graph=False):
    """Gradients of sum_j <grad_outputs[j], outputs[j]> with respect to each input
    (a tuple, one per input; zeros for an input the outputs do not use).  Inputs
    may be interior tensors; no ``.grad`` is touched.  With ``create_graph`` the
    results are recorded, so they can be differentiated again."""
    outs, ins = _seq(outputs), _seq(inputs)
    seeds = None
    if grad_outputs is not None:
        seeds = [None if g is None else (g if isinstance(g, Tensor) else Tensor(g))
                 for g in _seq(grad_outputs)]
    return _C.autograd(outs, ins, seeds, bool(create_graph))


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def jacobian(f, x):
    """The Jacobian of ``f`` at ``x``, of shape ``f(x).shape + x.shape`` (forward
    mode when x has fewer elements than f(x), reverse mode otherwise)."""
    return _C.jacobian(f, _as_tensor(x))


def hessian(f, x):
    """The Hessian of a one-element ``f`` at ``x``, of shape ``x.shape + x.shape``."""
    return _C.hessian(f, _as_tensor(x))


def hvp(f, x, v):
    """The Hessian-vector product H v of a one-element ``f`` at ``x`` (double
    backward; the Hessian is never formed).  Shape of x."""
    return _C.hvp(f, _as_tensor(x), _as_tensor(v))


def jvp(f, x, v):
    """``(f(x), J v)``: the value and the directional derivative along ``v``, by
    forward mode (dual numbers)."""
    x, v = _as_tensor(x), _as_tensor(v)
    y = f(_C.dual(x, v))
    if not isinstance(y, Tensor):
        raise TypeError("jvp: f must return a Tensor, not %s" % type(y).__name__)
    t = y.tangent
    if t is None:
        from . import zeros
        t = zeros(y.shape)
    return y.detach(), t


def gradcheck(f, inputs, eps=1e-6, atol=1e-5):
    """Compares the reverse-mode gradient of f (a Tensor or a sequence of them
    as inputs) with central finite differences along a random direction, in
    float64.  True when the largest relative error is at most ``atol``."""
    ins = _seq(inputs)
    return _C.gradcheck(f, ins, float(eps), False) <= atol


def gradgradcheck(f, inputs, eps=1e-6, atol=1e-4):
    """gradcheck of the gradient itself (every second-derivative rule on the way)."""
    ins = _seq(inputs)
    return _C.gradcheck(f, ins, float(eps), True) <= atol


class Function:
    """A custom operation with PyTorch's conventions::

        class Mul(nb.Function):
            @staticmethod
            def forward(ctx, x, y):
                ctx.save_for_backward(x, y)
                return x * y
            @staticmethod
            def backward(ctx, grad):
                x, y = ctx.saved_tensors
                return grad * y, grad * x

        z = Mul.apply(a, b)

    ``forward`` runs with recording off and returns one Tensor; ``backward``
    returns one gradient (or None) per argument of forward, each of its input's
    shape (or a shape the input broadcasts to).  ``ctx.needs_input_grad`` is a
    tuple of bools, ``ctx`` takes attributes.  A ``backward`` written with
    nabla's operations is itself differentiable (create_graph=True).  An
    optional ``jvp(ctx, *tangents)`` gives forward mode.  The output is named
    ``<classname>:<k>`` (lower case)."""

    jvp = None

    @staticmethod
    def forward(ctx, *args):
        """The output from the inputs (recording is off)."""
        raise NotImplementedError("a Function must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, grad_output):
        """One gradient per argument of forward (None: no gradient)."""
        raise NotImplementedError("a Function must define backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *args):
        """Applies the operation: the result is recorded in the graph, and
        backward runs this class's backward in the same single sweep."""
        if not _C.HAVE_APPLY:
            raise NotImplementedError(
                "Function.apply: this build of nabla's C library has no nb_apply yet")
        return _C.apply(cls, args)
