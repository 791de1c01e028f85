"""Layers: Module, Linear, Sequential and activation modules (PyTorch's names).

Parameters are ordinary leaf tensors with requires_grad; an optimizer
(nabla.optim) moves them into one of the C library's parameter stores, where
backward accumulates straight into a contiguous gradient slab."""
import math

from .. import _C
from .._C import Tensor
from . import functional

__all__ = ["Module", "Linear", "Sequential", "ReLU", "Tanh", "Sigmoid", "functional"]


class Module:
    """Base of the layers: ``parameters()`` finds every Tensor attribute that
    requires grad and every sub-Module's, in the order they were assigned;
    calling the module calls ``forward``."""

    def parameters(self):
        """The parameters of this module and its sub-modules (a list)."""
        out, seen = [], set()
        for v in self.__dict__.values():
            items = v if isinstance(v, (list, tuple)) else (v,)
            for x in items:
                if isinstance(x, Module):
                    ps = x.parameters()
                elif isinstance(x, Tensor) and x.requires_grad:
                    ps = [x]
                else:
                    continue
                for p in ps:
                    if id(p) not in seen:
                        seen.add(id(p))
                        out.append(p)
        return out

    def zero_grad(self):
        """Every parameter's gradient := 0."""
        for p in self.parameters():
            p.zero_grad()

    def forward(self, *args):
        """The layer's computation."""
        raise NotImplementedError

    def __call__(self, *args):
        return self.forward(*args)


class Linear(Module):
    """``Linear(in_features, out_features, bias=True, seed=None)``: y = x W^T + b
    for x of shape (..., in), with ``weight`` (out, in) and ``bias`` (out,),
    initialised like PyTorch's, U(-1/sqrt(in), 1/sqrt(in)).  ``weight`` and
    ``bias`` may be assigned a Tensor of the same shape."""

    def __init__(self, in_features, out_features, bias=True, seed=None):
        from .. import rand
        if in_features < 1 or out_features < 1:
            raise ValueError("Linear: sizes must be positive, got (%d, %d)"
                             % (in_features, out_features))
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(in_features)
        w = rand(out_features, in_features, seed=seed) * (2 * bound) - bound
        self.__dict__["weight"] = w.detach()
        self.weight.requires_grad = True
        if bias:
            b = rand(out_features, seed=None if seed is None else seed + 1) * (2 * bound) - bound
            self.__dict__["bias"] = b.detach()
            self.bias.requires_grad = True
        else:
            self.__dict__["bias"] = None

    def __setattr__(self, name, value):
        if name in ("weight", "bias") and name in self.__dict__:
            if name == "bias" and value is None:
                self.__dict__["bias"] = None
                return
            if not isinstance(value, Tensor):
                raise TypeError("Linear.%s must be a Tensor, not %s" % (name, type(value).__name__))
            want = (self.out_features, self.in_features) if name == "weight" else (self.out_features,)
            if value.shape != want:
                raise ValueError("Linear.%s: expected shape %s, got %s" % (name, want, value.shape))
        self.__dict__[name] = value

    def forward(self, x):
        """x (..., in) -> (..., out)"""
        return _C.linear(x, self.weight, self.bias)

    def __repr__(self):
        return "Linear(in_features=%d, out_features=%d, bias=%s)" % (
            self.in_features, self.out_features, self.bias is not None)


class Sequential(Module):
    """``Sequential(*modules)``: applies them in order."""

    def __init__(self, *modules):
        self.modules = list(modules)

    def forward(self, x):
        """the modules applied in order"""
        for m in self.modules:
            x = m(x)
        return x


class ReLU(Module):
    """max(x, 0) as a module."""

    def forward(self, x):
        """element-wise relu"""
        return _C.relu(x)


class Tanh(Module):
    """tanh as a module."""

    def forward(self, x):
        """element-wise tanh"""
        return _C.tanh(x)


class Sigmoid(Module):
    """sigmoid as a module."""

    def forward(self, x):
        """element-wise sigmoid"""
        return _C.sigmoid(x)
