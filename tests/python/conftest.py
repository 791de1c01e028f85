"""Shared helpers of the Python tests (run by ctest as python_tests, with
PYTHONPATH=build/python)."""
import numpy as np
import pytest

import nabla as nb

try:
    import torch
    torch.set_default_dtype(torch.float64)
except ImportError:  # the gradient comparisons skip without PyTorch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="python3-torch is not installed")
needs_numpy_ops = pytest.mark.skipif(not nb._C.HAVE_NUMPY_OPS,
                                     reason="the C library has no numpy-style ops yet")


def close(a, b, tol=1e-10):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
