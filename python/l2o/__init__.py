"""l2o: learned optimizers on LibTorch, for PyTorch users.

    import l2o
    opt = l2o.optim.Learned(model.parameters(), l2o.shipped_checkpoint("mlp_lopt_generalist.pt"))
    opt = l2o.optim.Rule(model.parameters(), "adam:lr=1e-3")

Both are torch.optim.Optimizer subclasses running the C++ update of the l2o library in place on the
parameters. Errors of the library are raised as l2o.Error (a RuntimeError) with its message. Building
one keeps freed memory in the process from then on (l2o.keep_freed_memory; L2O_OS_MALLOC=1 opts out).
For more than one thread use l2o.set_threads(n) rather than torch.set_num_threads(n): it also keeps
OpenBLAS at one thread, whose workers otherwise fight LibTorch's for the cores.
"""
import torch  # noqa: F401  (loads LibTorch's Python bindings before the extension)

from . import _C
from ._C import Error, checkpoint_dir, keep_freed_memory, set_threads, shipped_checkpoint
from . import optim

__version__ = _C.__version__


def checkpoint_info(path):
    """A checkpoint's metadata without loading it: {'format': int, 'rule': spec string, 'trainer': dict}."""
    return _C.checkpoint_info(str(path))


__all__ = ["Error", "checkpoint_dir", "checkpoint_info", "keep_freed_memory", "optim", "set_threads", "shipped_checkpoint"]
