"""The CuPy (GPU) backend: :class:`ArrayRunner` and :class:`ArraySDERunner` on ``cupy``.

The update code is the NumPy reference's, line for line (tested on CPU); only the namespace
changes. Without CuPy or without a CUDA device, selecting it raises a clear error.
"""

from __future__ import annotations

from sgdsim.backends.array_backend import ArrayRunner
from sgdsim.backends.base import RunSpec, SDESpec
from sgdsim.backends.sde_array import ArraySDERunner


def cupy_or_error():
    """Import CuPy and check for a device, or raise a RuntimeError that says what is missing."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "backend='cupy' needs CuPy and a CUDA GPU: pip install 'sgdsim[gpu]' on a GPU machine "
            "(or use backend='numba' on the CPU)"
        ) from exc
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(f"backend='cupy': CuPy is installed but CUDA is unavailable ({exc})") from exc
    if n < 1:
        raise RuntimeError("backend='cupy': no CUDA device found; use backend='numba'")
    return cupy


class CupyRunner(ArrayRunner):
    name = "cupy"

    def __init__(self, spec: RunSpec):
        super().__init__(spec, xp=cupy_or_error())


class CupySDERunner(ArraySDERunner):
    name = "cupy"

    def __init__(self, spec: SDESpec):
        super().__init__(spec, xp=cupy_or_error())
