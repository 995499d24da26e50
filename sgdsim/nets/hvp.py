"""Exact Hessian-vector products of small networks, as matvecs for :mod:`sgdsim.curvature`.

Two implementations that share nothing but the model definition:

* :class:`MLPHessian` – a **fused** product for :class:`~sgdsim.nets.models.MLPSpec` networks:
  Pearlmutter's R-operator (1994) written out layer by layer. One forward and one backward pass
  at ``θ`` are cached at construction; each product then costs only the tangent passes, and a
  block of ``p`` vectors is processed with one large matrix product per term (``matmat``).
* :class:`FuncHessian` – generic forward-over-reverse ``torch.func.jvp(torch.func.grad(f))`` for
  any scalar function of a flat parameter vector (the reference the fused version is tested
  against).

Both act on NumPy float64 vectors of shape ``(n_params,)`` (``matmat``: ``(n_params, p)``) and
expose ``dim``, so they plug into ``lanczos_eigsh``, ``slq_density``, ``hutchinson_trace``.

R-operator recursion (``h_0 = X``, ``z_l = h_{l−1}W_l + b_l``, ``h_l = σ(z_l)``, ``δ_l = ∂L/∂z_l``,
``V = (V_W, V_b)`` the direction, ``R{·}`` the directional derivative along ``V``):
``R z_l = R h_{l−1} W_l + h_{l−1} V_{W,l} + V_{b,l}``, ``R h_l = σ'(z_l) R z_l``;
``R δ_L = ∇²_out ℓ · R z_L``; ``R δ'_{l−1} = R δ_l W_lᵀ + δ_l V_{W,l}ᵀ``,
``R δ_{l−1} = σ''(z_{l−1}) R z_{l−1} δ'_{l−1} + σ'(z_{l−1}) R δ'_{l−1}``;
``(Hv)_{W_l} = R h_{l−1}ᵀ δ_l + h_{l−1}ᵀ R δ_l``, ``(Hv)_{b_l} = Σ_n R δ_l``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from sgdsim._validation import as_float_array, check_choice
from sgdsim.nets._torch import torch
from sgdsim.nets.losses import LOSSES, loss_value
from sgdsim.nets.models import MLPSpec, mlp_forward, unflatten

__all__ = ["FuncHessian", "MLPHessian", "MLPProblem", "mlp_batch_oracle"]


def _as_tensor(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(torch.float64)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence torch's own one-time deprecation notice from loading its forward-AD rules."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script.*", category=DeprecationWarning
        )
        yield


class MLPHessian:
    """Hessian of ``L(θ) = loss(f_θ(X), y)`` at a fixed ``θ`` for an MLP, as a matvec.

    Parameters
    ----------
    spec
        The architecture.
    theta
        Parameters ``(n_params,)``.
    X
        Inputs ``(N, d_in)`` (the subset the Hessian is taken over).
    y
        Targets: ``(N, d_out)`` floats for ``'half_mse'``/``'mse'``, ``(N,)`` integers for
        ``'cross_entropy'``.
    loss
        Convention, see :mod:`sgdsim.nets.losses`.

    Attributes
    ----------
    dim : int
        ``n_params``.
    loss_value : float
        ``L(θ)``.
    gradient : ndarray (n_params,)
        ``∇L(θ)``, from the same cached backward pass.
    """

    def __init__(self, spec: MLPSpec, theta, X, y, loss: str = "half_mse") -> None:
        check_choice("loss", loss, LOSSES)
        self.spec, self.loss = spec, loss
        th = _as_tensor(theta)
        if th.shape != (spec.n_params,):
            raise ValueError(f"`theta` must have shape ({spec.n_params},), got {tuple(th.shape)}")
        X = _as_tensor(X)
        N = X.shape[0]
        self.dim = spec.n_params
        self._layers = unflatten(spec, th)
        L = len(self._layers)
        hs, d1, d2 = [X], [], []
        h = X
        with torch.no_grad():
            for i, (W, b) in enumerate(self._layers):
                z = h @ W if b is None else torch.addmm(b, h, W)
                if i < L - 1:
                    if spec.activation == "tanh":
                        h = torch.tanh(z)
                        s1 = 1.0 - h * h
                        d1.append(s1)
                        d2.append(-2.0 * h * s1)
                    elif spec.activation == "relu":
                        h = torch.relu(z)
                        d1.append((z > 0).to(z.dtype))
                        d2.append(None)
                    else:
                        h = z
                        d1.append(None)
                        d2.append(None)
                    hs.append(h)
                else:
                    out = z
            if loss == "cross_entropy":
                yt = torch.as_tensor(np.asarray(y)).long()
                logp = torch.log_softmax(out, dim=1)
                self._pN = logp.exp() / N
                self.loss_value = float(-logp.gather(1, yt[:, None]).mean())
                delta = self._pN.clone()
                delta[torch.arange(N), yt] -= 1.0 / N
            else:
                yt = _as_tensor(y).reshape(out.shape)
                c = 0.5 if loss == "half_mse" else 1.0
                self.loss_value = float(c * ((out - yt) ** 2).sum() / N)
                delta = (2.0 * c / N) * (out - yt)
            self._c2 = 1.0 if loss == "half_mse" else 2.0
            self._N = N
            # primal backward: δ_l = ∂L/∂z_l and δ'_l = ∂L/∂h_l
            deltas = [None] * L
            dprimes = [None] * L
            deltas[L - 1] = delta
            grads = [None] * L
            for i in range(L - 1, -1, -1):
                W, b = self._layers[i]
                gW = hs[i].T @ deltas[i]
                gb = deltas[i].sum(0) if b is not None else None
                grads[i] = (gW, gb)
                if i > 0:
                    dp = deltas[i] @ W.T
                    dprimes[i - 1] = dp
                    deltas[i - 1] = dp if d1[i - 1] is None else d1[i - 1] * dp
        self._d1 = d1
        # σ''(z)·δ' (the curvature-of-activation term of R δ), one array per hidden layer
        self._d2dp = [None if d2[i] is None else d2[i] * dprimes[i] for i in range(L - 1)]
        # inputs of each layer with a ones column when the layer has a bias: [h, 1] @ [W; b]
        self._haug = [
            torch.cat([hs[i], torch.ones(N, 1, dtype=hs[i].dtype)], dim=1)
            if self._layers[i][1] is not None else hs[i]
            for i in range(L)
        ]
        self._deltas = deltas
        self.gradient = torch.cat(
            [t.reshape(-1) for gW, gb in grads for t in (gW, gb) if t is not None]
        ).numpy()

    def _matmat_t(self, V: torch.Tensor) -> torch.Tensor:
        """``(n_params, p) → (n_params, p)``: columns are Hessian-vector products.

        Tangent activations are kept in the layout ``(N, p, width)`` so every term is one
        contiguous matrix product over ``N·p`` rows or ``p·width`` columns; a layer's weight and
        bias directions are one block ``[V_W; V_b]`` (the flat layout already stores them so)
        multiplied by the cached ``[h, 1]``, and sums of products are accumulated inside the
        matrix products (``addmm``) rather than by separate passes over ``(N, p, width)`` arrays.
        """
        p, N = V.shape[1], self._N
        L = len(self._layers)
        d1, haug = self._d1, self._haug
        VA = []  # per layer: [V_W; V_b] as (rows, p, c), rows = a (+1 with a bias)
        k = 0
        for W, b in self._layers:
            a, c = W.shape
            rows = a + (b is not None)
            VA.append(V[k : k + rows * c].reshape(rows, c, p).permute(0, 2, 1).contiguous())
            k += rows * c
        Rz: list = [None] * L
        Rh: list = [None] * L  # Rh[i] = R h_i (output of hidden layer i)
        for i, (W, _b) in enumerate(self._layers):
            a, c = W.shape
            t = haug[i] @ VA[i].reshape(-1, p * c)  # (N, p·c) ≡ (N, p, c)
            if i > 0:
                t.view(N * p, c).addmm_(Rh[i - 1].view(N * p, a), W)
            Rz[i] = t.view(N, p, c)
            if i < L - 1:
                Rh[i] = Rz[i] if d1[i] is None else d1[i][:, None, :] * Rz[i]
        Rout = Rz[L - 1]
        if self.loss == "cross_entropy":  # ∇²ℓ = (diag p − ppᵀ)/N per sample
            PN = self._pN[:, None, :]
            PR = PN * Rout
            Rd = torch.addcmul(PR, PN, PR.sum(-1, keepdim=True), value=-float(N))
        else:
            Rd = Rout * (self._c2 / N)
        out: list = [None] * L
        for i in range(L - 1, -1, -1):
            W, b = self._layers[i]
            a, c = W.shape
            # (Hv)_[W;b] = [h, 1]ᵀ R δ_l (+ R h_{l−1}ᵀ δ_l on the W rows), as (rows, p, c)
            g = (haug[i].T @ Rd.reshape(N, p * c)).view(-1, p, c)
            if i > 0:
                g2 = (Rh[i - 1].reshape(N, p * a).T @ self._deltas[i]).view(p, a, c)
                g[:a] += g2.permute(1, 0, 2)
            out[i] = g.permute(0, 2, 1).reshape(-1, p)
            if i > 0:
                # R δ'_{l−1} = R δ_l W_lᵀ + δ_l V_{W,l}ᵀ   (N, p, a)
                VWt = VA[i][:a].permute(2, 1, 0).reshape(c, p * a)
                Rdp = self._deltas[i] @ VWt
                Rdp.view(N * p, a).addmm_(Rd.reshape(N * p, c), W.T)
                Rdp = Rdp.view(N, p, a)
                if d1[i - 1] is None:
                    Rd = Rdp
                elif self._d2dp[i - 1] is None:
                    Rd = d1[i - 1][:, None, :] * Rdp
                else:
                    Rd = torch.addcmul(d1[i - 1][:, None, :] * Rdp,
                                       self._d2dp[i - 1][:, None, :], Rz[i - 1])
        return torch.cat(out, dim=0)

    def matmat(self, V: np.ndarray) -> np.ndarray:
        """Hessian times a block ``V (n_params, p)`` → ``(n_params, p)``."""
        V = np.asarray(V, dtype=np.float64)
        if V.ndim != 2 or V.shape[0] != self.dim:
            raise ValueError(f"`V` must have shape ({self.dim}, p), got {V.shape}")
        with torch.no_grad():
            return self._matmat_t(_as_tensor(V)).numpy()

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """Hessian-vector product ``(n_params,) → (n_params,)``."""
        return self.matmat(np.asarray(v, dtype=np.float64)[:, None])[:, 0]


class FuncHessian:
    """Hessian of a scalar torch function ``f(θ)`` at ``θ`` by ``jvp(grad(f))`` (torch.func).

    ``matmat`` maps ``torch.func.vmap`` over the columns. Generic and slower than
    :class:`MLPHessian`; used as its independent reference.
    """

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], theta) -> None:
        self._theta = _as_tensor(as_float_array("theta", theta, ndim=1))
        self.dim = int(self._theta.shape[0])
        g = torch.func.grad(f)
        self._hvp = lambda v: torch.func.jvp(g, (self._theta,), (v,))[1]
        self._vhvp = torch.func.vmap(self._hvp)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        with _quiet_jit():
            return self._hvp(_as_tensor(v)).detach().numpy()

    def matmat(self, V: np.ndarray) -> np.ndarray:
        with _quiet_jit():
            return self._vhvp(_as_tensor(np.asarray(V).T)).detach().numpy().T

    @classmethod
    def for_mlp(cls, spec: MLPSpec, theta, X, y, loss: str = "half_mse") -> FuncHessian:
        """The same Hessian as :class:`MLPHessian`, by automatic differentiation."""
        check_choice("loss", loss, LOSSES)
        Xt = _as_tensor(X)
        yt = torch.as_tensor(np.asarray(y)).long() if loss == "cross_entropy" else _as_tensor(y)
        return cls(lambda t: loss_value(loss, mlp_forward(spec, t, Xt), yt), theta)


def mlp_batch_oracle(
    spec: MLPSpec, X, y, theta, loss: str = "half_mse"
) -> Callable[[np.ndarray], tuple[np.ndarray, MLPHessian]]:
    """Batch oracle ``idx ↦ (g_B, H_B)`` of an MLP at ``θ`` for :mod:`sgdsim.curvature`.

    ``g_B`` and ``H_B`` are the gradient and (fused) Hessian operator of the mean loss over the
    rows ``idx`` of ``X``/``y`` (repeated indices count with multiplicity), ready for
    ``batch_quantities`` / ``batch_sharpness``.
    """
    check_choice("loss", loss, LOSSES)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)

    def oracle(idx: np.ndarray) -> tuple[np.ndarray, MLPHessian]:
        h = MLPHessian(spec, theta, X[idx], y[idx], loss)
        return h.gradient, h

    return oracle


class MLPProblem:
    """Full-batch loss of an MLP as a problem with exact Hessian-vector products.

    ``loss(θ)``, ``grad(θ)`` ``(n_params,)``, ``hvp(θ, v)`` and ``hvp_matmat(θ, V (n_params, p))``
    share one :class:`MLPHessian` per distinct ``θ`` (the last one is cached, so a gradient and a
    block of products at the same point cost one forward/backward pass plus the tangent passes).
    Plugs into :func:`sgdsim.central_flow` and anything else that takes ``grad``/``hvp``.

    Parameters
    ----------
    spec, X, y, loss
        As for :class:`MLPHessian`.
    """

    def __init__(self, spec: MLPSpec, X, y, loss: str = "half_mse") -> None:
        if not isinstance(spec, MLPSpec):
            raise TypeError(f"`spec` must be an MLPSpec, got {type(spec).__name__}")
        check_choice("loss", loss, LOSSES)
        self.spec, self.loss_name = spec, loss
        self.X = np.ascontiguousarray(as_float_array("X", X, shape=(None, spec.sizes[0])))
        n = self.X.shape[0]
        as_float_array("y", y)  # finite reals (labels or targets), not strings
        self.y = np.asarray(y)
        if self.y.ndim == 0 or self.y.shape[0] != n:
            raise ValueError(f"`y` must have one row per row of `X` ({n}), got shape {self.y.shape}")
        self.dim = spec.n_params
        self._key: bytes | None = None
        self._h: MLPHessian | None = None
        self.n_passes = 0

    def at(self, theta) -> MLPHessian:
        """The (cached) :class:`MLPHessian` at ``θ``."""
        th = np.ascontiguousarray(theta, dtype=np.float64)
        key = th.tobytes()
        if key != self._key:
            self._h = MLPHessian(self.spec, th, self.X, self.y, self.loss_name)
            self._key = key
            self.n_passes += 1
        return self._h

    def loss(self, theta) -> float:
        return self.at(theta).loss_value

    def grad(self, theta) -> np.ndarray:
        return self.at(theta).gradient.copy()

    def hvp(self, theta, v) -> np.ndarray:
        return self.at(theta)(v)

    def hvp_matmat(self, theta, V) -> np.ndarray:
        return self.at(theta).matmat(V)
