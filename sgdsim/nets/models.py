"""Multilayer perceptrons as pure functions of one flat float64 parameter vector.

A network is an :class:`MLPSpec` (layer sizes, activation, biases) plus a flat parameter vector
``θ`` of length ``spec.n_params``; :func:`mlp_forward` maps ``(θ, X (N, d_in)) → (N, d_out)``.
Keeping ``θ`` flat makes gradients, Hessian-vector products and Lanczos vectors plain 1-D arrays.

Layout of ``θ``: for each layer ``l`` in order, the weight ``W_l`` of shape ``(fan_in, fan_out)``
(row-major, applied as ``h @ W_l``) followed by the bias ``b_l`` ``(fan_out,)`` when
``spec.bias`` (or when the layer is hidden and ``spec.output_bias`` is False, see below).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdsim._validation import check_choice, check_instance, check_int, check_positive
from sgdsim.nets._torch import torch

__all__ = ["MLPSpec", "init_params", "mlp_forward", "unflatten"]

_ACTS = ("tanh", "relu", "linear")


@dataclass(frozen=True)
class MLPSpec:
    """Architecture of a fully connected network.

    Parameters
    ----------
    sizes
        Layer widths ``(d_in, h_1, …, d_out)``, at least two entries.
    activation
        Hidden nonlinearity: ``'tanh'``, ``'relu'`` or ``'linear'``; the output layer is linear.
    bias
        Biases on hidden layers.
    output_bias
        Bias on the output layer (Cohen et al.'s toy has none).
    """

    sizes: tuple[int, ...]
    activation: str = "tanh"
    bias: bool = True
    output_bias: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.sizes, (str, bytes)) or not np.iterable(self.sizes):
            raise TypeError(f"`sizes` must be a sequence of layer widths, got {self.sizes!r}")
        sizes = tuple(int(check_int("sizes", s, minimum=1)) for s in self.sizes)
        if len(sizes) < 2:
            raise ValueError(f"`sizes` needs at least (d_in, d_out), got {self.sizes!r}")
        object.__setattr__(self, "sizes", sizes)
        check_choice("activation", self.activation, _ACTS)

    @property
    def layers(self) -> list[tuple[int, int, bool]]:
        """``(fan_in, fan_out, has_bias)`` per layer."""
        n = len(self.sizes) - 1
        return [
            (self.sizes[i], self.sizes[i + 1], self.output_bias if i == n - 1 else self.bias)
            for i in range(n)
        ]

    @property
    def n_params(self) -> int:
        return sum(a * b + (b if hb else 0) for a, b, hb in self.layers)


def unflatten(spec: MLPSpec, theta):
    """Views ``[(W_l (fan_in, fan_out), b_l (fan_out,) or None), …]`` into a flat ``θ``."""
    check_instance("spec", spec, MLPSpec)
    if getattr(theta, "ndim", None) != 1 or theta.shape[0] != spec.n_params:
        raise ValueError(
            f"`theta` must be a flat vector of length {spec.n_params}, "
            f"got {getattr(theta, 'shape', type(theta).__name__)}"
        )
    out, k = [], 0
    for a, b, hb in spec.layers:
        W = theta[k : k + a * b].reshape(a, b)
        k += a * b
        bias = None
        if hb:
            bias = theta[k : k + b]
            k += b
        out.append((W, bias))
    return out


def mlp_forward(spec: MLPSpec, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Network output ``(N, d_out)`` for inputs ``X (N, d_in)`` and flat parameters ``θ``."""
    layers = unflatten(spec, theta)
    h = X
    for i, (W, b) in enumerate(layers):
        h = h @ W
        if b is not None:
            h = h + b
        if i < len(layers) - 1:
            if spec.activation == "tanh":
                h = torch.tanh(h)
            elif spec.activation == "relu":
                h = torch.relu(h)
    return h


def init_params(
    spec: MLPSpec,
    *,
    scheme: str = "lecun",
    scale: float = 1.0,
    first_layer_gain: float | None = None,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Random initial parameters ``(n_params,)`` float64; biases start at zero.

    Weights of a layer with fan-in ``a`` and fan-out ``b`` are Gaussian with standard deviation
    ``scale·σ``: LeCun-normal ``σ = 1/√a``; Xavier (Glorot) normal ``σ = √(2/(a + b))``.
    ``first_layer_gain`` multiplies the first layer's σ once more (Cohen et al.'s toy uses ≈1.9).
    Drawn with ``numpy.random.default_rng(seed)`` layer by layer, row-major.
    """
    check_instance("spec", spec, MLPSpec)
    scheme = check_choice("scheme", scheme, ("lecun", "xavier"))
    scale = check_positive("scale", scale)
    rng = np.random.default_rng(seed)
    parts = []
    for i, (a, b, hb) in enumerate(spec.layers):
        sd = 1.0 / np.sqrt(a) if scheme == "lecun" else np.sqrt(2.0 / (a + b))
        sd *= scale
        if i == 0 and first_layer_gain is not None:
            sd *= check_positive("first_layer_gain", first_layer_gain)
        parts.append(rng.standard_normal(a * b) * sd)
        if hb:
            parts.append(np.zeros(b))
    return np.concatenate(parts)
