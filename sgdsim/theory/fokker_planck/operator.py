"""The finite-volume Fokker–Planck generator: coefficients, face fluxes, assembly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from sgdsim._validation import (
    as_float_array,
    check_allocation,
    check_choice,
    check_positive,
    check_psd,
)
from sgdsim.theory.fokker_planck.grid import Grid

#: memory budget per grid cell of :class:`FokkerPlanck` assembly (bytes; measured ~700)
_BYTES_PER_CELL = 1024


def _eval_drift(drift: Any, pts: np.ndarray, d: int, center: Any = None) -> np.ndarray:
    """Drift ``b`` at ``pts`` (..., d) -> (..., d); a matrix ``M`` gives ``M (x − center)``."""
    if callable(drift):
        out = np.asarray(drift(pts), dtype=np.float64)
        if d == 1 and out.shape == pts.shape[:-1]:
            out = out[..., None]
        if out.shape != pts.shape:
            raise ValueError(
                f"`drift` callable must map points of shape (..., {d}) to (..., {d}); "
                f"for input shape {pts.shape} it returned {out.shape}"
            )
        if not np.all(np.isfinite(out)):
            raise ValueError("`drift` returned non-finite values on the grid")
        return out
    return (pts if center is None else pts - center) @ drift.T


def _eval_diffusion(diffusion: Any, pts: np.ndarray, d: int) -> np.ndarray:
    """Diffusion tensor at ``pts`` (..., d) -> (..., d, d); checked symmetric PSD."""
    if not callable(diffusion):
        return np.broadcast_to(diffusion, (*pts.shape[:-1], d, d))
    out = np.asarray(diffusion(pts), dtype=np.float64)
    if d == 1 and out.shape == pts.shape[:-1]:
        out = out[..., None, None]
    if out.shape != (*pts.shape[:-1], d, d):
        raise ValueError(
            f"`diffusion` callable must map points of shape (..., {d}) to (..., {d}, {d}); "
            f"for input shape {pts.shape} it returned {out.shape}"
        )
    if not np.all(np.isfinite(out)):
        raise ValueError("`diffusion` returned non-finite values on the grid")
    scale = max(float(np.max(np.abs(out))), np.finfo(float).tiny)
    asym = np.abs(out - np.swapaxes(out, -1, -2)).max()
    if asym > 1e-10 * scale:
        raise ValueError(f"`diffusion` must be symmetric; max asymmetry {asym:.3g} on the grid")
    evals = np.linalg.eigvalsh(out)
    worst = np.unravel_index(np.argmin(evals[..., 0]), evals.shape[:-1])
    if evals[worst][0] < -1e-10 * scale:
        raise ValueError(
            "`diffusion` must be positive semi-definite; smallest eigenvalue "
            f"{evals[worst][0]:.6g} at x = {pts[worst]}"
        )
    return out


def _bernoulli(z: np.ndarray) -> np.ndarray:
    """``B(z) = z / (eᶻ − 1)`` with ``B(0) = 1``, stable for all real z."""
    z = np.asarray(z, dtype=np.float64)
    out = np.ones_like(z)
    pos, neg = z > 1e-12, z < -1e-12
    zp, zn = z[pos], z[neg]
    out[pos] = zp * np.exp(-zp) / -np.expm1(-zp)  # no overflow for large positive z
    out[neg] = zn / np.expm1(zn)
    return out


def _stencil_1d(n: int, h: float, order: int) -> dict[str, sp.csr_matrix]:
    """1-D building blocks on ``n`` cells of width ``h`` (interior faces f = 0..n−2 lie between
    cells f and f+1).

    ``left``/``right`` (faces × cells) pick a face's neighbours; ``interp`` maps centre values to a
    face value whose differences give the centred derivative of ``order`` (2: (½, ½); 4:
    (−1, 7, 7, −1)/12); ``grad`` maps centre values to a face derivative whose differences give the
    centred second derivative (2: (−1, 1)/h; 4: (1, −15, 15, −1)/(12h)); ``deriv`` (cells × cells)
    is the centred first derivative (one-sided at the walls); ``div`` (cells × faces) is minus the
    flux difference over h with zero wall fluxes, so its columns sum to exactly zero. On the two
    faces nearest each wall the face stencils are second order (the fourth-order one would leave
    the grid on the first; on the second it would touch the wall cell, which made the generator
    unstable for drift out of the box without diffusion, measured: eigenvalue +0.36).
    """
    nf = n - 1
    f = np.arange(nf)
    rows, cols, wi, wg = [], [], [], []

    def put(face, cell, w_i, w_g):
        rows.append(face)
        cols.append(cell)
        wi.append(w_i)
        wg.append(w_g)

    inner = (f >= 2) & (f <= n - 4) if order == 4 else np.zeros(nf, dtype=bool)
    fi, fo = f[inner], f[~inner]
    for off, w_i, w_g in (
        (-1, -1 / 12, 1 / 12),
        (0, 7 / 12, -15 / 12),
        (1, 7 / 12, 15 / 12),
        (2, -1 / 12, -1 / 12),
    ):
        put(fi, fi + off, np.full(fi.size, w_i), np.full(fi.size, w_g / h))
    for off, w_i, w_g in ((0, 0.5, -1.0), (1, 0.5, 1.0)):
        put(fo, fo + off, np.full(fo.size, w_i), np.full(fo.size, w_g / h))
    r, c = np.concatenate(rows), np.concatenate(cols)
    interp = sp.csr_matrix((np.concatenate(wi), (r, c)), shape=(nf, n))
    grad = sp.csr_matrix((np.concatenate(wg), (r, c)), shape=(nf, n))
    ones = np.ones(nf)
    left = sp.csr_matrix((ones, (f, f)), shape=(nf, n))
    right = sp.csr_matrix((ones, (f, f + 1)), shape=(nf, n))
    div = sp.csr_matrix((right - left).T) / h
    # centred first derivative at cells
    k = np.arange(n)
    dr, dc_, dw = [], [], []
    in4 = (k >= 2) & (k <= n - 3) if order == 4 else np.zeros(n, dtype=bool)
    in2 = (k >= 1) & (k <= n - 2) & ~in4
    for off, w in ((-2, 1 / 12), (-1, -8 / 12), (1, 8 / 12), (2, -1 / 12)):
        dr.append(k[in4])
        dc_.append(k[in4] + off)
        dw.append(np.full(in4.sum(), w / h))
    for off, w in ((-1, -0.5), (1, 0.5)):
        dr.append(k[in2])
        dc_.append(k[in2] + off)
        dw.append(np.full(in2.sum(), w / h))
    dr += [np.array([0, 0, n - 1, n - 1])]
    dc_ += [np.array([0, 1, n - 2, n - 1])]
    dw += [np.array([-1.0, 1.0, -1.0, 1.0]) / h]
    deriv = sp.csr_matrix(
        (np.concatenate(dw), (np.concatenate(dr), np.concatenate(dc_))), shape=(n, n)
    )
    return {
        "left": left,
        "right": right,
        "interp": interp,
        "grad": grad,
        "div": div,
        "deriv": deriv,
    }


def _lift(grid: Grid, axis: int, mat: sp.csr_matrix) -> sp.csr_matrix:
    """Embed a 1-D operator along ``axis`` into the (C-ordered) grid by Kronecker products."""
    mats = [sp.identity(m, format="csr") for m in grid.shape]
    mats[axis] = mat
    out = mats[0]
    for m in mats[1:]:
        out = sp.kron(out, m, format="csr")
    return sp.csr_matrix(out)


@dataclass(frozen=True)
class FokkerPlanck:
    """The discretized Fokker–Planck generator ``dp/dt = L p`` on a :class:`Grid`.

    Parameters
    ----------
    grid : Grid
        1-D or 2-D cell-centred grid; zero-flux (reflecting) walls.
    drift : (d, d) array or callable
        A matrix ``M`` for the linear drift ``b(x) = M (x − center)``, or ``b(x)`` mapping points
        ``(..., d)`` to ``(..., d)`` (in 1-D ``(...,)`` is accepted too). **Sign convention**:
        ``M`` is the drift itself, so a stable (confining) drift has eigenvalues with negative
        real parts. :class:`~sgdsim.theory.langevin.LinearSDE` writes the same process as
        ``dx = −A(x − x*)dt + √(2D)dW``, i.e. ``M = −A``: build from one with
        :meth:`from_sde`, which takes care of the sign.
    diffusion : float, (d, d) array or callable
        The Itô diffusion tensor ``D = ½σσᵀ`` (symmetric PSD; a float means ``D·I``), or
        ``D(x)`` mapping ``(..., d)`` to ``(..., d, d)`` (in 1-D ``(...,)``). With a diffusion that
        is zero everywhere (pure transport; ``zero_diffusion`` is then True) :func:`propagate`
        runs only ``scheme="exponential"``, which is then pure upwinding and keeps densities
        non-negative; the central schemes would oscillate (measured: min −3.8 for a Gaussian
        moved by ``b = −x`` in 2-D), so propagate refuses them, and :func:`stationary` refuses
        every scheme (the stationary state is a point mass).
    scheme : {"central", "central4", "exponential"}
        Face flux, see the module docstring: ``"central"`` (second order) and ``"central4"``
        (fourth order) may undershoot (reported); ``"exponential"`` (Scharfetter–Gummel /
        Chang–Cooper) is positivity-preserving for diagonal ``D``, first order along axes without
        diffusion. Known limitation: on grids far too coarse for the density (which the solvers
        report with a "grid too coarse" warning), ``"central"`` at cell Péclet ≫ 2 and
        ``"exponential"`` with correlated ``D`` can have a weakly growing mode (found: Re λ ≈
        1e-3·max|L|); in every case found, one halving of the cell width removed it.
    center : (d,) array, optional
        Centre ``x*`` of a linear drift matrix (default the origin); not used with a callable.

    Attributes
    ----------
    generator : scipy.sparse.csr_matrix, (N, N)
        ``L`` with N = grid.size, acting on C-order flattened densities; columns sum to 0.
    face_flux : tuple of csr_matrix
        Per axis, the (faces × N) matrix mapping p to the current on interior faces.
    peclet : tuple of float
        Per axis, max cell Péclet number ``|b_i| h_i / D_ii`` over faces (inf where D_ii = 0).
    zero_diffusion : bool
        The diffusion tensor is exactly zero at every cell centre and face.
    """

    grid: Grid
    drift: Any
    diffusion: Any
    scheme: str = "central"
    center: Any = None
    generator: sp.csr_matrix = field(init=False, repr=False)
    face_flux: tuple[sp.csr_matrix, ...] = field(init=False, repr=False)
    peclet: tuple[float, ...] = field(init=False)
    zero_diffusion: bool = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.grid, Grid):
            raise TypeError(f"`grid` must be a Grid, got {type(self.grid).__name__}")
        check_choice("scheme", self.scheme, ("central", "central4", "exponential"))
        # assembly peaks near 0.7 KiB per cell (measured: 183 MB for 512², central, 2-D)
        check_allocation("grid", self.grid.shape, _BYTES_PER_CELL * self.grid.size,
                         "a generator assembly")
        d = self.grid.ndim
        if self.center is not None:
            if callable(self.drift):
                raise ValueError("`center` applies to a drift matrix; a callable drift b(x) "
                                 "includes its own centre")
            object.__setattr__(self, "center", as_float_array("center", self.center, shape=(d,)))
        if not callable(self.drift):
            a = as_float_array("drift", self.drift)
            if a.shape != (d, d):
                raise ValueError(
                    f"`drift` matrix must have shape ({d}, {d}) for a {d}-D grid, got {a.shape}"
                )
            object.__setattr__(self, "drift", a)
        if not callable(self.diffusion):
            dm = as_float_array("diffusion", self.diffusion)
            if dm.ndim == 0:
                dm = check_positive("diffusion", float(dm), allow_zero=True) * np.eye(d)
            if dm.shape != (d, d):
                raise ValueError(
                    f"`diffusion` must be a float or a ({d}, {d}) matrix for a {d}-D grid, "
                    f"got shape {dm.shape}"
                )
            object.__setattr__(self, "diffusion", check_psd("diffusion", dm))
        self._assemble()

    def _assemble(self) -> None:
        g, d = self.grid, self.grid.ndim
        order = 4 if self.scheme == "central4" else 2
        centres = g.points.reshape(-1, d)
        bc = _eval_drift(self.drift, centres, d, self.center)
        dc = _eval_diffusion(self.diffusion, centres, d)
        face_d = [_eval_diffusion(self.diffusion, g.face_points(ax).reshape(-1, d), d)
                  for ax in range(d)]
        zero = not np.any(dc) and not any(np.any(f) for f in face_d)
        object.__setattr__(self, "zero_diffusion", zero)
        st = [
            {k: _lift(g, ax, m) for k, m in _stencil_1d(g.shape[ax], g.spacing[ax], order).items()}
            for ax in range(d)
        ]
        fluxes, peclets = [], []
        lmat = sp.csr_matrix((g.size, g.size))
        for ax in range(d):
            h = g.spacing[ax]
            sl, sr = st[ax]["left"], st[ax]["right"]
            fpts = g.face_points(ax).reshape(-1, d)
            bf = _eval_drift(self.drift, fpts, d, self.center)[:, ax]
            df = face_d[ax][:, ax, ax]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                pe = np.where(df > 0, np.abs(bf) * h / df, np.where(bf == 0, 0.0, np.inf))
            peclets.append(float(pe.max()) if pe.size else 0.0)
            bt = bf - (sr @ dc[:, ax, ax] - sl @ dc[:, ax, ax]) / h
            pos = df * 1e12 > np.abs(bt) * h  # |Pe| < 1e12; beyond it SG equals upwinding
            coef_l = np.where(bt > 0, bt, 0.0)
            coef_r = np.where(bt < 0, -bt, 0.0)
            pe_t = bt[pos] * h / df[pos]
            coef_l[pos] = df[pos] / h * _bernoulli(-pe_t)
            coef_r[pos] = df[pos] / h * _bernoulli(pe_t)
            flux = sp.diags(coef_l) @ sl - sp.diags(coef_r) @ sr
            if self.scheme != "exponential":
                # J = I(b p) − G(D p) inside; exponential fitting on the two faces next to the walls
                central = st[ax]["interp"] @ sp.diags(bc[:, ax]) - st[ax]["grad"] @ sp.diags(
                    dc[:, ax, ax]
                )
                wall_faces = [0, g.shape[ax] - 2]
                idx = [slice(None)] * d
                idx[ax] = wall_faces
                wall = np.zeros(g.face_points(ax).shape[:-1])
                wall[tuple(idx)] = 1.0
                wall = wall.ravel()
                flux = sp.diags(wall) @ flux + sp.diags(1.0 - wall) @ central
            for other in range(d):
                cross = dc[:, ax, other]
                if other != ax and np.any(cross != 0):
                    flux = flux - st[ax]["interp"] @ st[other]["deriv"] @ sp.diags(cross)
            flux = sp.csr_matrix(flux)
            flux.eliminate_zeros()
            fluxes.append(flux)
            lmat = lmat + st[ax]["div"] @ flux
        lmat = sp.csr_matrix(lmat)
        lmat.eliminate_zeros()
        object.__setattr__(self, "generator", lmat)
        object.__setattr__(self, "face_flux", tuple(fluxes))
        object.__setattr__(self, "peclet", tuple(peclets))

    @classmethod
    def from_sde(cls, grid: Grid, sde: Any, *, scheme: str = "central") -> FokkerPlanck:
        """The generator of a :class:`~sgdsim.theory.langevin.LinearSDE` (or an
        :class:`~sgdsim.theory.langevin.UnderdampedLangevin`, on phase space ``(x, v)``).

        ``dx = −A(x − x*)dt + √(2D)dW`` becomes drift matrix ``M = −A`` with ``center = x*`` and
        diffusion ``D`` (the sign convention of :class:`FokkerPlanck` is ``b = M(x − x*)``).
        ``grid.ndim`` must equal the SDE's state dimension (1 or 2).
        """
        from sgdsim.theory.langevin import LinearSDE, UnderdampedLangevin

        if isinstance(sde, UnderdampedLangevin):
            sde = sde.to_linear()
        if not isinstance(sde, LinearSDE):
            raise TypeError(
                f"`sde` must be a LinearSDE or an UnderdampedLangevin, got {type(sde).__name__}"
            )
        if not isinstance(grid, Grid):
            raise TypeError(f"`grid` must be a Grid, got {type(grid).__name__}")
        if sde.dim != grid.ndim:
            raise ValueError(
                f"`sde` has state dimension {sde.dim} but `grid` is {grid.ndim}-D; they must agree"
            )
        return cls(grid, -sde.A, sde.D, scheme=scheme, center=sde.x_star)

    def check_density(self, name: str, p: Any) -> np.ndarray:
        """Validate a density array of shape ``grid.shape`` (or flat ``(N,)``); return it flat."""
        arr = as_float_array(name, p)
        if arr.shape not in (self.grid.shape, (self.grid.size,)):
            raise ValueError(
                f"`{name}` must have the grid's shape {self.grid.shape} (or ({self.grid.size},)), "
                f"got {arr.shape}"
            )
        return arr.ravel().copy()


def check_fokker_planck(name: str, fp: Any) -> FokkerPlanck:
    """Return ``fp`` if it is a :class:`FokkerPlanck`; TypeError naming ``name`` otherwise."""
    if not isinstance(fp, FokkerPlanck):
        raise TypeError(f"`{name}` must be a FokkerPlanck operator, got {type(fp).__name__}")
    return fp


def kramers(
    omega: float = 1.0,
    gamma: float = 1.0,
    kT: float = 1.0,
    *,
    n: int = 128,
    half_width: float = 6.0,
    scheme: str = "central",
    noise: Any = None,
) -> FokkerPlanck:
    """The Kramers (underdamped harmonic Langevin) equation in phase space z = (x, v).

    ``∂p/∂t = −v∂_x p + ∂_v[(ω²x + γv)p] + γkT ∂²_v p`` on ``[−half_width, half_width]²`` with
    ``n`` cells per axis: drift ``A = [[0, 1], [−ω², −γ]]``, diffusion ``diag(0, γkT)``.
    The stationary density is the Gaussian with covariance ``diag(kT/ω², kT)``.

    ``noise``: an anisotropic phase-space diffusion tensor ``D`` (2, 2), symmetric PSD, replacing
    ``diag(0, γkT)`` (``kT`` is then unused): e.g. noise on x as well as v, or correlated. The
    stationary density is then the Gaussian whose covariance ``S`` solves
    ``M S + S Mᵀ + 2D = 0`` (``LinearSDE(−M, D).stationary_covariance()``); it is not thermal.
    """
    omega = check_positive("omega", omega)
    gamma = check_positive("gamma", gamma)
    kT = check_positive("kT", kT)
    a = np.array([[0.0, 1.0], [-(omega**2), -gamma]])
    if noise is None:
        dmat = np.diag([0.0, gamma * kT])
    else:
        dmat = check_psd("noise", as_float_array("noise", noise, shape=(2, 2)))
    return FokkerPlanck(Grid.square(half_width, n, 2), a, dmat, scheme=scheme)
