"""A strict stand-in for CuPy on the CPU: NumPy arithmetic behind CuPy's host/device boundary.

Code that runs on CuPy must never turn a device array into a host one implicitly, nor mix host
arrays into device operations: CuPy raises there, NumPy does not, so the NumPy-namespace tests
cannot see such mistakes. Arrays of this namespace (:class:`DeviceArray`) compute with NumPy but
raise like CuPy does:

* ``np.asarray(device_array)`` (and anything else that needs ``__array__``): TypeError;
* a host ``numpy.ndarray`` (ndim ≥ 1) as an operand of a device ufunc, an ``xp`` function or a
  NumPy function dispatched on device arrays (NEP 18): TypeError;
* transfers are explicit: ``xp.asarray(host)`` to the device, ``device.get()`` to the host.

Scalars (Python or NumPy) mix freely, as in CuPy; reductions and element access return 0-d
device arrays, as in CuPy, and turning one into a Python value is a counted synchronization
(:data:`SYNCS`). Results are bitwise those of NumPy, so runs
through this namespace must equal the NumPy backend exactly.
"""

from __future__ import annotations

import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

_TRANSFER_IN = {"asarray", "array", "ascontiguousarray"}

#: device → host synchronizations so far (``get``, ``bool``, ``float``, ``int`` of device arrays):
#: a GPU stalls at each, so the stepping loops should have none
SYNCS = [0]


def _is_host(x) -> bool:
    return isinstance(x, np.ndarray) and x.ndim > 0


def _unwrap(x, where: str):
    if isinstance(x, DeviceArray):
        return x._a
    if _is_host(x):
        raise TypeError(f"{where}: a host numpy.ndarray {x.shape} mixed with device arrays")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(y, where) for y in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, where) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return DeviceArray(x)
    if isinstance(x, np.generic):  # CuPy reductions and element access give 0-d device arrays
        return DeviceArray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(y) for y in x)
    if isinstance(x, list):
        return [_wrap(y) for y in x]
    return x


class DeviceArray(NDArrayOperatorsMixin):
    """An ndarray "on the device": arithmetic works, implicit host conversion does not."""

    __slots__ = ("_a",)

    def __init__(self, a: np.ndarray):
        self._a = a

    # --- the boundary ------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed (fake device)")

    def get(self) -> np.ndarray:
        SYNCS[0] += 1
        return self._a.copy()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"ufunc {ufunc.__name__}"
        ins = _unwrap(inputs, where)
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], where)
        return _wrap(getattr(ufunc, method)(*ins, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        where = f"numpy.{func.__name__}"
        return _wrap(func(*_unwrap(args, where), **_unwrap(kwargs, where)))

    # --- ndarray surface used by the array code ----------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    T = property(lambda self: DeviceArray(self._a.T))

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, idx):
        return _wrap(self._a[_index(idx)])

    def __setitem__(self, idx, value):
        self._a[_index(idx)] = _unwrap(value, "__setitem__")

    def __float__(self) -> float:  # device → host sync of one value: allowed in CuPy
        SYNCS[0] += 1
        return float(self._a)

    def __int__(self) -> int:
        SYNCS[0] += 1
        return int(self._a)

    def __bool__(self) -> bool:
        SYNCS[0] += 1
        return bool(self._a)

    def __repr__(self) -> str:
        return f"DeviceArray({self._a!r})"

    def __getattr__(self, name):  # astype, copy, reshape, sum, any, ...: methods of the array
        if name.startswith("__"):  # __array_interface__ & co would let NumPy convert silently
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            where = f"ndarray.{name}"
            return _wrap(attr(*_unwrap(args, where), **_unwrap(kwargs, where)))

        return method


def _index(idx):
    """Indices may be host arrays in CuPy (they are copied over); device ones are unwrapped."""
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    return idx._a if isinstance(idx, DeviceArray) else idx


def _function(name: str):
    fn = getattr(np, name)
    if not callable(fn) or isinstance(fn, type):
        return fn  # dtypes (xp.float64, xp.uint64), constants

    def call(*args, **kwargs):
        if name in _TRANSFER_IN:  # host → device (or device → device) is explicit here
            args = tuple(a._a if isinstance(a, DeviceArray) else a for a in args)
            return DeviceArray(np.asarray(fn(*args, **kwargs)))
        where = f"xp.{name}"
        return _wrap(fn(*_unwrap(args, where), **_unwrap(kwargs, where)))

    return call


def namespace() -> types.ModuleType:
    """A module-like namespace: ``xp.zeros``, ``xp.where``, ``xp.uint64``, … over NumPy."""
    mod = types.ModuleType("fake_device")
    mod.__getattr__ = _function  # module-level __getattr__ (PEP 562)
    mod.ndarray = DeviceArray
    mod.nan, mod.pi, mod.inf = np.nan, np.pi, np.inf
    return mod
