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
        self._buf: _Buffers | None = None
        self.gradient = torch.cat(
            [t.reshape(-1) for gW, gb in grads for t in (gW, gb) if t is not None]
        ).numpy()

    def _buffers(self, p: int) -> _Buffers:
        """The operands of a block of ``p`` products, allocated once per block size."""
        if self._buf is None or self._buf.p != p:
            self._buf = None  # release the old block's memory before allocating the new one
            self._buf = _Buffers(self._layers, self._haug, self._deltas, p)
        return self._buf

    def _matmat_t(self, V: torch.Tensor) -> torch.Tensor:
        """``(n_params, p) → (n_params, p)``: columns are Hessian-vector products.

        Every term is a batch of ``p`` matrix products on preallocated operands (see
        :class:`_Buffers`): a layer's tangent pass ``R z_l = [h, 1, R h_{l−1}] @ [V_l; W_l]``
        and the backward ``R δ'_{l−1} = [δ_l, R δ_l] @ [V_{W,l}ᵀ; W_lᵀ]`` are one product each,
        with the cached primal half of each operand written once, and the elementwise factors
        ``σ'``, ``σ''·δ'`` written straight into the next product's operand (no temporaries).
        """
        p, N = V.shape[1], self._N
        L = len(self._layers)
        buf = self._buffers(p)
        d1 = self._d1
        k = 0
        for i, (W, b) in enumerate(self._layers):  # scatter the directions into the operands
            a, c = W.shape
            rows = a + (b is not None)
            Vi = V[k : k + rows * c].reshape(rows, c, p)
            buf.fwd_w[i][:, :rows].copy_(Vi.permute(2, 0, 1))
            if i > 0:
                buf.bwd_w[i][:, :c].copy_(Vi[:a].permute(2, 1, 0))
            k += rows * c
        for i in range(L):  # tangent forward pass
            Rz = torch.bmm(buf.fwd_in[i], buf.fwd_w[i], out=buf.rz[i])
            if i < L - 1:
                Rh = buf.rh(i)
                if d1[i] is None:
                    Rh.copy_(Rz)
                else:
                    torch.mul(d1[i], Rz, out=Rh)
        Rout, Rd = buf.rz[L - 1], buf.rd(L - 1)
        if self.loss == "cross_entropy":  # ∇²ℓ = (diag p − ppᵀ)/N per sample
            torch.mul(self._pN, Rout, out=Rd)
            Rd.addcmul_(self._pN, Rd.sum(-1, keepdim=True), value=-float(N))
        else:
            torch.mul(Rout, self._c2 / N, out=Rd)
        for i in range(L - 1, -1, -1):  # tangent backward pass
            a, rows = self._layers[i][0].shape[0], buf.rows[i]
            # (Hv)_[W;b] = [h, 1]ᵀ R δ_l, plus R h_{l−1}ᵀ δ_l on the W rows
            g = torch.bmm(buf.fwd_in[i][:, :, :rows].mT, Rd, out=buf.grad[i])
            if i == 0:
                break
            g[:, :a].baddbmm_(buf.rh(i - 1).mT, buf.delta(i))
            Rdp = torch.bmm(buf.bwd_in[i], buf.bwd_w[i], out=buf.rdp[i])
            Rd = buf.rd(i - 1)
            if d1[i - 1] is None:
                Rd.copy_(Rdp)
            else:
                torch.mul(d1[i - 1], Rdp, out=Rd)
                if self._d2dp[i - 1] is not None:
                    Rd.addcmul_(self._d2dp[i - 1], buf.rz[i - 1])
        return torch.cat([g.reshape(p, -1) for g in buf.grad], dim=1).T

    def matmat(self, V: np.ndarray) -> np.ndarray:
        """Hessian times a block ``V (n_params, p)`` → ``(n_params, p)``."""
        V = np.asarray(V, dtype=np.float64)
        if V.ndim != 2 or V.shape[0] != self.dim:
            raise ValueError(f"`V` must have shape ({self.dim}, p), got {V.shape}")
        with torch.no_grad():
            return self._matmat_t(_as_tensor(V)).contiguous().numpy()

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """Hessian-vector product ``(n_params,) → (n_params,)``."""
        return self.matmat(np.asarray(v, dtype=np.float64)[:, None])[:, 0]


class _Buffers:
    """Preallocated operands of :meth:`MLPHessian._matmat_t` for blocks of ``p`` vectors.

    Batched over the block (leading axis ``p``), per layer ``l`` with ``W_l`` ``(a, c)`` and
    ``rows = a + has_bias``:

    * ``fwd_in[l]`` ``(p, N, rows + a)``: ``[h_{l−1}, 1 | R h_{l−1}]`` (layer 0: ``[X, 1]``);
    * ``fwd_w[l]`` ``(p, rows + a, c)``: ``[V_l | W_l]`` stacked by rows (layer 0: ``V_0``);
    * ``bwd_in[l]`` ``(p, N, 2c)``: ``[δ_l | R δ_l]`` (layer 0: ``R δ_0`` only);
    * ``bwd_w[l]`` ``(p, 2c, a)``: ``[V_{W,l}ᵀ | W_lᵀ]`` (hidden-to-next layers only);
    * ``rz``, ``rdp``, ``grad``: outputs ``R z_l``, ``R δ'_{l−1}``, ``(Hv)_l`` ``(p, rows, c)``.

    The primal halves (left of ``|``) are written here once; a product writes only the tangent
    halves, so one object must not serve two products at once (not thread-safe).
    """

    def __init__(self, layers, haug, deltas, p: int) -> None:
        self.p = p
        N = haug[0].shape[0]
        dt = haug[0].dtype
        L = len(layers)
        self.fwd_in, self.fwd_w, self.bwd_in, self.bwd_w = [], [], [], []
        self.rz, self.rdp, self.grad = [], [], []
        self.rows = []
        for i, (W, b) in enumerate(layers):
            a, c = W.shape
            rows = a + (b is not None)
            self.rows.append(rows)
            extra = a if i > 0 else 0
            fi = torch.empty(p, N, rows + extra, dtype=dt)
            fi[:, :, :rows] = haug[i]
            fw = torch.empty(p, rows + extra, c, dtype=dt)
            if i > 0:
                fw[:, rows:] = W
            self.fwd_in.append(fi)
            self.fwd_w.append(fw)
            bi = torch.empty(p, N, 2 * c if i > 0 else c, dtype=dt)
            bw = None
            if i > 0:
                bi[:, :, :c] = deltas[i]
                bw = torch.empty(p, 2 * c, a, dtype=dt)
                bw[:, c:] = W.T
            self.bwd_in.append(bi)
            self.bwd_w.append(bw)
            self.rz.append(torch.empty(p, N, c, dtype=dt))
            self.rdp.append(torch.empty(p, N, a, dtype=dt) if i > 0 else None)
            self.grad.append(torch.empty(p, rows, c, dtype=dt))
        self._L = L

    def rh(self, i: int) -> torch.Tensor:
        """``R h_i`` ``(p, N, a_{i+1})``: the tangent half of layer ``i + 1``'s input."""
        return self.fwd_in[i + 1][:, :, self.rows[i + 1] :]

    def rd(self, i: int) -> torch.Tensor:
        """``R δ_i`` ``(p, N, c_i)``: the tangent half of layer ``i``'s backward operand."""
        bi = self.bwd_in[i]
        return bi if i == 0 else bi[:, :, bi.shape[2] // 2 :]

    def delta(self, i: int) -> torch.Tensor:
        """``δ_i`` ``(p, N, c_i)``, the cached primal half (``i ≥ 1``)."""
        bi = self.bwd_in[i]
        return bi[:, :, : bi.shape[2] // 2]


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
