"""Pickles of numpy data from a download (CIFAR-100's batches, Animal-MNIST's arrays), read
without letting the file name any other class or function to run.

A pickle can call any importable function while it loads; a downloaded one is trusted only as
far as its hash, so the unpickler accepts the numpy names that arrays need and plain Python
containers, and refuses everything else before it is called.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

from compendium.data.errors import DataError

# what ndarray and dtype objects need to be rebuilt; numpy 2 renamed numpy.core to numpy._core
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct")}


class _NumpyOnly(pickle.Unpickler):
    def __init__(self, file: IO[bytes], what: str, fix: str, **kwargs: Any):
        super().__init__(file, **kwargs)
        self.what, self.fix = what, fix

    def find_class(self, module: str, name: str):
        module = module.replace("numpy.core", "numpy._core")
        if (module, name) not in _ALLOWED:
            raise DataError(f"{self.what} pickle refers to {module}.{name}, which is not numpy "
                            f"data; refusing to load it. Fix: {self.fix}")
        return super().find_class(module, name)


def load_numpy_pickle(file: IO[bytes], what: str, fix: str, **kwargs: Any) -> Any:
    """Unpickle ``file`` (``what`` names it in errors, ``fix`` says what to do), accepting
    numpy arrays and plain containers only; ``kwargs`` go to :class:`pickle.Unpickler`."""
    return _NumpyOnly(file, what, fix, **kwargs).load()
