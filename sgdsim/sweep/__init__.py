"""Hyperparameter sweeps that resume and scale out: ``sweep(fn, Grid(...), store=...)``.

>>> from sgdsim.sweep import Grid, product, sweep, zipped
>>> def fn(lr, batch, seed):
...     return {"loss": lr / batch + 0 * seed}
>>> ds = sweep(fn, Grid(product(lr=[0.1, 0.2], batch=[1, 2]), seeds=2), progress=False)
>>> ds["loss"].dims
('lr', 'batch', 'seed')

Modules: :mod:`.grid` (points), :mod:`.executors` (where chunks run), :mod:`.store` (durable,
resumable results), :mod:`.core` (the driver), :mod:`.plots` (heatmaps and seed-band lines).
"""

import sys as _sys
import types as _types

from .core import SweepFailedError, SweepInterruptedError, SweepWarning, sweep
from .executors import DaskExecutor, Executor, ProcessExecutor, SerialExecutor
from .grid import Grid, product, zipped
from .store import (
    FingerprintMismatchError,
    StoreError,
    StoreLockedError,
    load_failures,
    load_sweep,
)

__all__ = [
    "DaskExecutor",
    "Executor",
    "FingerprintMismatchError",
    "Grid",
    "ProcessExecutor",
    "SerialExecutor",
    "StoreError",
    "StoreLockedError",
    "SweepFailedError",
    "SweepInterruptedError",
    "SweepWarning",
    "load_failures",
    "load_sweep",
    "product",
    "sweep",
    "zipped",
]


class _CallableModule(_types.ModuleType):
    """Lets ``sgdsim.sweep(fn, grid, ...)`` call :func:`sweep` while ``sgdsim.sweep.Grid`` etc.
    stay reachable: the package and its main function share a name without shadowing."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
