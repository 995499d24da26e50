"""Many independent SGD replicas of one small MLP at once, in plain NumPy.

The forward and backward passes of an :class:`~sgdsim.nets.MLPSpec` network (flat parameter
layout of :mod:`sgdsim.nets.models`) are written as batched matrix products over a leading
replica axis, so ``R`` replicas with their own parameters and minibatches advance together. This
is the fast path for ensembles of small networks (weight diffusion, λ_max orderings). The update
is :class:`sgdsim.optim.SGD`'s (the engine's optimizer: ``θ ← θ − η(g_B + λ_wd θ)``), as in
:func:`sgdsim.nets.train` with ``optimizer='sgd'``, except that minibatches are drawn *with*
replacement. :func:`replica_noisy_gd` is the baseline SGD is compared with: full-batch GD plus
isotropic Gaussian noise of a given trace (same noise size, none of SGD's noise shape).

Loss conventions are those of :mod:`sgdsim.nets.losses` (``'mse'``, ``'half_mse'``,
``'cross_entropy'``). No torch is needed at run time.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdsim._validation import as_float_array, check_choice, check_instance, check_int, check_positive
from sgdsim.optim import sgd

if TYPE_CHECKING:
    from sgdsim.nets.data import Dataset
    from sgdsim.nets.models import MLPSpec

__all__ = ["replica_gradients", "replica_noisy_gd", "replica_sgd"]

_LOSSES = ("mse", "half_mse", "cross_entropy")


def _one_blas_thread() -> Any:
    """Single-threaded BLAS while the small batched products run (threads only add overhead at
    these sizes, ~30x on a loaded 2-core machine); a no-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _act(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Activation ``σ(z)`` and its derivative ``σ'(z)`` elementwise (``None``: identity)."""
    if name == "tanh":
        h = np.tanh(z)
        return h, 1.0 - h * h
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(z.dtype)
    return z, None


def _float_array(name: str, value: Any) -> np.ndarray:
    """A float ndarray as given (its dtype kept, non-finite values allowed: the run checks those);
    anything else converted by :func:`as_float_array`, which names ``name`` when it cannot."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value
    return as_float_array(name, value)


def replica_gradients(spec: MLPSpec, theta: np.ndarray, X: np.ndarray, Y: np.ndarray,
                      loss: str = "mse") -> np.ndarray:
    """Minibatch gradients of an :class:`~sgdsim.nets.MLPSpec` network, one per replica.

    Backpropagation through ``z_ℓ = h_{ℓ−1} W_ℓ + b_ℓ``, ``h_ℓ = σ(z_ℓ)`` (no activation on the
    output layer), batched over the replica axis.

    Parameters
    ----------
    spec
        The architecture (flat layout of :mod:`sgdsim.nets.models`: per layer ``W`` row-major
        ``(d_in, d_out)``, then its bias if present).
    theta
        Parameters ``(R, n_params)``, one row per replica.
    X, Y
        Each replica's batch: inputs ``(R, B, d_in)``; regression targets ``(R, B, d_out)``, or
        integer class labels ``(R, B)`` for ``'cross_entropy'``.
    loss
        ``'mse'`` (``(1/B)Σ_n‖f(x_n) − y_n‖²``), ``'half_mse'`` (the same with ½) or
        ``'cross_entropy'`` (``−(1/B)Σ_n log softmax(f(x_n))_{y_n}``).

    Returns
    -------
    ndarray ``(R, n_params)``
        ``∇_θ`` of each replica's mean batch loss.

    Raises
    ------
    ValueError
        On an unknown ``loss`` or shapes that do not match ``spec`` or each other.
    """
    from sgdsim.nets.models import MLPSpec

    check_instance("spec", spec, MLPSpec)
    check_choice("loss", loss, _LOSSES)
    theta, X = (_float_array(n, v) for n, v in (("theta", theta), ("X", X)))
    Y = np.asarray(Y)
    if theta.ndim != 2 or theta.shape[1] != spec.n_params:
        raise ValueError(f"`theta` must have shape (R, {spec.n_params}), got {theta.shape}")
    R = theta.shape[0]
    if X.ndim != 3 or X.shape[0] != R or X.shape[2] != spec.sizes[0]:
        raise ValueError(f"`X` must have shape ({R}, B, {spec.sizes[0]}), got {X.shape}")
    B = X.shape[1]
    y_shape = (R, B) if loss == "cross_entropy" else (R, B, spec.sizes[-1])
    if Y.shape != y_shape:
        raise ValueError(f"`Y` must have shape {y_shape} for loss={loss!r}, got {Y.shape}")
    layers, k = [], 0
    for a, b, hb in spec.layers:
        W = theta[:, k : k + a * b].reshape(R, a, b)
        k += a * b
        bias = None
        if hb:
            bias = theta[:, k : k + b]
            k += b
        layers.append((W, bias))
    hs, ds = [X], []
    h = X
    for i, (W, bias) in enumerate(layers):
        z = h @ W if bias is None else h @ W + bias[:, None, :]
        if i < len(layers) - 1:
            h, d = _act(spec.activation, z)
            hs.append(h)
            ds.append(d)
        else:
            out = z
    if loss == "cross_entropy":  # integer labels Y (R, B): ∂L/∂z = (softmax − onehot)/B
        p = np.exp(out - out.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        lab = Y[:, :, None].astype(np.int64)
        np.put_along_axis(p, lab, np.take_along_axis(p, lab, 2) - 1.0, 2)
        delta = p / B
    else:
        delta = ((2.0 if loss == "mse" else 1.0) / B) * (out - Y)  # ∂L/∂z of the output layer
    parts: list[np.ndarray] = []
    for i in range(len(layers) - 1, -1, -1):
        W, bias = layers[i]
        gW = np.swapaxes(hs[i], 1, 2) @ delta
        blk = [gW.reshape(R, -1)] + ([delta.sum(axis=1)] if bias is not None else [])
        parts[:0] = blk
        if i > 0:
            delta = delta @ np.swapaxes(W, 1, 2)
            if ds[i - 1] is not None:
                delta = delta * ds[i - 1]
    return np.concatenate(parts, axis=1)


def replica_sgd(spec: MLPSpec, data: Dataset, theta0: np.ndarray, *, lr: Any, batch_size: int,
                steps: int, record: Any, weight_decay: float = 0.0, loss: str = "mse",
                seed: int | np.random.Generator = 0) -> np.ndarray:
    """SGD on ``R`` independent replicas at once; returns the parameters at the record steps.

    Update (per replica ``r``, step ``t = 1 … steps``):
    ``θ_r ← θ_r − η_r (g_{B_t,r}(θ_r) + λ_wd θ_r)``, with ``g_{B_t,r}`` the gradient of the mean
    loss over ``B_t,r``, ``batch_size`` indices drawn uniformly **with replacement** from
    ``data`` (independent across replicas and steps, so the gradient noise covariance is ``C/B``
    exactly). Step ``t``'s indices are ``rng.integers(0, n, size=(R, batch_size))``.

    Parameters
    ----------
    spec
        The architecture (:class:`~sgdsim.nets.MLPSpec`).
    data
        A :class:`~sgdsim.nets.Dataset` matching ``loss`` (integer labels for
        ``'cross_entropy'``, targets ``(n, d_out)`` otherwise).
    theta0
        Initial parameters ``(R, n_params)`` (copied).
    lr
        η, a scalar or one per replica ``(R,)``; > 0.
    batch_size
        ``B`` ≥ 1.
    steps
        Number of updates ≥ 1.
    record
        Increasing step numbers in ``[0, steps]`` at which to store ``θ`` (0: the start).
    weight_decay
        λ_wd ≥ 0 (coupled, added to the gradient).
    loss
        ``'mse'``, ``'half_mse'`` or ``'cross_entropy'`` (see :func:`replica_gradients`).
    seed
        Seed or ``numpy.random.Generator`` of the minibatch draws.

    Returns
    -------
    ndarray ``(len(record), R, n_params)``
        ``θ`` after each step listed in ``record``.

    Raises
    ------
    ValueError
        Naming the argument: wrong ``theta0`` shape, non-positive ``lr``, bad ``batch_size``,
        ``steps``, ``record``, ``weight_decay`` or ``loss``.
    """
    theta, eta, steps, weight_decay, rec = _checked(spec, data, theta0, lr, steps, record, weight_decay, loss)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    rng = np.random.default_rng(seed)

    def grad(theta):
        idx = rng.integers(0, data.n, size=(theta.shape[0], batch_size))
        return replica_gradients(spec, theta, data.X[idx], data.y[idx], loss)

    return _run(grad, theta, eta, steps, weight_decay, rec)


def replica_noisy_gd(spec: MLPSpec, data: Dataset, theta0: np.ndarray, *, lr: Any, noise_trace: float,
                     steps: int, record: Any, weight_decay: float = 0.0, loss: str = "mse",
                     seed: int | np.random.Generator = 0) -> np.ndarray:  # fmt: skip
    """Full-batch GD plus isotropic Gaussian gradient noise of trace ``noise_trace``, per replica.

    Update (per replica ``r``, step ``t = 1 … steps``):
    ``θ_r ← θ_r − η_r (∇L(θ_r) + λ_wd θ_r + ξ_{t,r})``, ``∇L`` the full-data gradient and
    ``ξ_{t,r} ~ N(0, (T/P) I_P)`` (``P`` parameters), so ``E‖ξ‖² = T``. With ``T = tr(Σ(θ)/B)``
    of SGD (``Σ`` the per-sample gradient covariance) the noise has SGD's size but not its shape
    (SGD's noise is aligned with the Hessian): the edge-of-stochastic-stability baseline, which
    does not flatten like SGD. Step ``t``'s noise is
    ``rng.standard_normal((R, P)) · sqrt(T/P)`` with ``rng = numpy.random.default_rng(seed)``.

    Parameters
    ----------
    spec, data, theta0, lr, steps, record, weight_decay, loss
        As in :func:`replica_sgd`.
    noise_trace
        ``T ≥ 0``, the trace of the per-step noise covariance (gradient units squared);
        0 gives plain gradient descent.
    seed
        Seed or ``numpy.random.Generator`` of the noise.

    Returns
    -------
    ndarray ``(len(record), R, n_params)``
        ``θ`` after each step listed in ``record``.
    """
    theta, eta, steps, weight_decay, rec = _checked(spec, data, theta0, lr, steps, record, weight_decay, loss)
    trace = check_positive("noise_trace", noise_trace, allow_zero=True)
    scale = np.sqrt(trace / spec.n_params)
    rng = np.random.default_rng(seed)
    X = np.broadcast_to(data.X, (theta.shape[0], *data.X.shape))
    Y = np.broadcast_to(data.y, (theta.shape[0], *data.y.shape))

    def grad(theta):
        g = replica_gradients(spec, theta, X, Y, loss)
        return g + scale * rng.standard_normal(theta.shape) if trace else g

    return _run(grad, theta, eta, steps, weight_decay, rec)


def _checked(spec, data, theta0, lr, steps, record, weight_decay, loss):
    """Validated ``(θ (R, P) copy, η (R, 1), steps, λ_wd, record steps)``."""
    from sgdsim.nets.data import Dataset
    from sgdsim.nets.models import MLPSpec

    if not isinstance(spec, MLPSpec):
        raise TypeError(f"`spec` must be an MLPSpec, got {type(spec).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(f"`data` must be a Dataset, got {type(data).__name__}")
    theta = as_float_array("theta0", theta0).copy()
    if theta.ndim != 2 or theta.shape[1] != spec.n_params:
        raise ValueError(f"`theta0` must have shape (R, {spec.n_params}), got {theta.shape}")
    R = theta.shape[0]
    try:
        lr = np.broadcast_to(as_float_array("lr", lr), (R,)).copy()
    except ValueError as exc:
        raise ValueError(f"`lr` must be a scalar or have shape ({R},), got {lr!r}") from exc
    for v in lr:
        check_positive("lr", float(v))
    steps = check_int("steps", steps, minimum=1)
    weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
    check_choice("loss", loss, _LOSSES)
    rec = np.asarray(record, dtype=np.int64)
    if rec.ndim != 1 or rec.size == 0 or np.any(np.diff(rec) <= 0) or rec[0] < 0 \
            or rec[-1] > steps:
        raise ValueError(f"`record` must be increasing steps in [0, {steps}], got {record!r}")
    return theta, lr[:, None], steps, weight_decay, rec


def _run(grad, theta, eta, steps, weight_decay, rec) -> np.ndarray:
    """``steps`` updates of :class:`sgdsim.optim.SGD` (weight decay λ_wd, per-replica η passed to
    its ``update``) with gradients ``grad(θ)``; θ at the record steps."""
    opt = sgd(1.0, weight_decay=weight_decay)  # the schedule is unused: η comes per replica
    state = opt.init(theta)
    out = np.empty((rec.size, *theta.shape))
    j = 0
    if rec[0] == 0:
        out[0] = theta
        j = 1
    with _one_blas_thread():
        for t in range(1, steps + 1):
            delta, state = opt.update(grad(theta), state, theta, eta)
            theta = theta + delta
            if j < rec.size and t == rec[j]:
                out[j] = theta
                j += 1
    return out
