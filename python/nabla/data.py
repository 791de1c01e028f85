"""Data files through the C library's readers."""
from . import _C

__all__ = ["load_idx"]


def load_idx(path):
    """An IDX file (the MNIST format, gzip-compressed too) as a float64 tensor
    of the file's shape (requires_grad False)."""
    return _C.idx_read(str(path))
