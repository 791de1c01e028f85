"""Functions of layers and losses (PyTorch's torch.nn.functional names), each
one or a few C operations."""
from .. import _C

__all__ = ["linear", "relu", "tanh", "sigmoid", "softmax", "log_softmax", "cross_entropy",
           "mse_loss", "binary_cross_entropy_with_logits", "conv2d", "max_pool2d", "avg_pool2d"]


def linear(x, weight, bias=None):
    """x W^T + b, x (..., in), W (out, in), b (out,) or None."""
    return _C.linear(x, weight, bias)


def relu(x):
    """max(x, 0)."""
    return _C.relu(x)


def tanh(x):
    """tanh(x)."""
    return _C.tanh(x)


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return _C.sigmoid(x)


def softmax(x, axis=-1):
    """softmax along ``axis`` (stable)."""
    return _C.softmax(x, axis)


def log_softmax(x, axis=-1):
    """log_softmax along ``axis`` (stable)."""
    return _C.log_softmax(x, axis)


def cross_entropy(logits, labels):
    """Cross-entropy from logits (B, C) and integer labels (a sequence, an array or
    a Tensor of B class indices), averaged over the batch; finite for any finite
    logits, gradient (softmax - onehot) / B."""
    return _C.cross_entropy(logits, labels)


def mse_loss(a, b):
    """mean((a - b)**2); the shapes must be equal."""
    return _C.mse_loss(a, b)


def binary_cross_entropy_with_logits(logits, targets):
    """Binary cross-entropy from logits and targets in [0, 1], averaged; stable."""
    return _C.bce_with_logits(logits, targets)


def conv2d(x, w, b=None, stride=1, padding=0):
    """2-d convolution (cross-correlation), x (N, C, H, W), w (K, C, R, S), b (K,)
    or None, zero padding: (N, K, (H + 2p - R) // stride + 1, ...)."""
    return _C.conv2d(x, w, b, int(stride), int(padding))


def max_pool2d(x, kernel_size, stride=None):
    """Max pooling over kernel_size x kernel_size windows (stride: kernel_size)."""
    return _C.pool2d(x, int(kernel_size), int(kernel_size if stride is None else stride), False)


def avg_pool2d(x, kernel_size, stride=None):
    """Average pooling over kernel_size x kernel_size windows."""
    return _C.pool2d(x, int(kernel_size), int(kernel_size if stride is None else stride), True)
