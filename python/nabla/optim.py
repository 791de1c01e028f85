"""Optimizers over the C library's parameter store (nb_params) and its SGD and
Adam (nb_sgd_new, nb_adam_new): a step is one C loop over one contiguous slab.

Making an optimizer moves its parameters into a new store: each Python tensor
keeps its values and identity but wraps the store's tensor from then on, so
backward accumulates into the store's gradient slab.  A tensor belongs to the
last optimizer made over it."""
from . import _C

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Base: ``step()``, ``zero_grad()``, ``lr`` (settable, for schedules),
    ``params`` (the list of tensors)."""

    def __init__(self, params, kind, lr, a, b, eps, weight_decay):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self._o = _C.optimizer(self.params, kind, float(lr), float(a), float(b), float(eps),
                               float(weight_decay))

    def step(self):
        """One update of every parameter from its gradient."""
        self._o.step()

    def zero_grad(self):
        """Every parameter's gradient := 0 (one memset of the slab)."""
        self._o.zero_grad()

    @property
    def lr(self):
        """The learning rate."""
        return self._o.lr

    @lr.setter
    def lr(self, value):
        self._o.lr = value


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0.0, weight_decay=0.0)``, as PyTorch's:
    g = grad + wd p; v = momentum v + g; p -= lr v."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, 0, lr, momentum, 0.0, 1e-8, weight_decay)


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)``,
    with bias correction (Kingma & Ba)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, 1, lr, betas[0], betas[1], eps, weight_decay)
