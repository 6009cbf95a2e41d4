"""Stochastic variational inference on skhbnn's kernels (``inference="svi"``).

The same log density and gradient NUTS samples with (:mod:`skhbnn.kernels`),
called on minibatches of groups: nothing is compiled, nothing is built in
pytensor.  The variational family follows the model's structure:

* the **global** coordinates (the log group sds, a shared noise sd, the
  group means ``mu``; for a flat model every coordinate) get a full-rank
  Gaussian, so the approximation keeps the correlations between the group
  sds and the means that mean-field ADVI drops (and with them the size of
  the group sds);
* the **per-group** coordinates (the non-centred offsets ``raw_g``, a
  per-group noise sd) get a diagonal Gaussian per group.

A step draws one point of the approximation, evaluates the kernel on ``B``
of the ``G`` groups (all rows of each) with their likelihood and prior terms
scaled by ``G / B``, and takes an Adam step on the reparameterisation
gradient (the off-diagonal Cholesky parameters at ``1 / sqrt(n)`` of the
learning rate, :func:`skhbnn.kernels.svi_step.offdiag_lr_factor`); each
epoch visits every group once, in a new order.  The per-group
parameters of a group move only when it is in the batch (its own gradient is
exact up to Monte Carlo noise, unscaled), at ``_LOCAL_LR_FACTOR`` times the
learning rate.  The ELBO estimate of each epoch is
kept; when its mean over an epoch window stops improving (by less than
``tol`` nats per training row) the learning rate drops by ``_DECAY``; at the
plateau after ``_N_DECAYS`` such drops (the fourth) the fit stops.

Restarts are chains: each runs from its own start (a NUTS warm start,
:mod:`skhbnn.variational`; by default the NUTS chains' initial point), and
prediction combines them as it combines chains (stacking by default).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .kernels import abi

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

_LR = 0.01
_DECAY = 0.3  # the learning rate's factor at each plateau
_N_DECAYS = 3  # learning-rate drops; the fit stops at the next plateau
_BATCH_ROWS = 4096  # rows per step, in whole groups
_MIN_STEPS_PER_EPOCH = 20  # a small data set: several steps per "epoch"
_WINDOW = 10  # epochs per window of the plateau rule
_INIT_SD = 0.1  # the approximation's first sd, global coordinates
_LOCAL_INIT_SD = 0.1  # the approximation's first sd, per-group coordinates
# The per-group learning rate, a multiple of the global one: a group's own
# parameters step only when it is in the batch (once per epoch on 10,000
# groups).  On 10,000 groups x 6 classes 3x stopped sooner (211 s against 266 s
# for the fit) at an equal or better log loss; 10x stopped on a noisy plateau
# after 70 epochs, 1.2 points worse (benchmarks/README.md, session 13).
_LOCAL_LR_FACTOR = 3.0
_BETAS = (0.9, 0.999)
_LOG_SD_RANGE = (-12.0, 5.0)  # the log sds' clip, as in skhbnn.kernels.svi_step


@dataclass
class Fit:
    """One restart's approximation: the global mean and Cholesky parameters
    (row-major lower triangle, the diagonal as its log), the per-group means
    and log sds, and the ELBO trace (each epoch's mean estimate)."""

    mean: np.ndarray
    tri: np.ndarray
    local_mean: np.ndarray
    local_log_sd: np.ndarray
    elbo: list = field(default_factory=list)
    n_steps: int = 0
    converged: bool = False
    seconds: float = 0.0

    @property
    def chol(self) -> np.ndarray:
        n = self.mean.size
        L = np.zeros((n, n))
        L[np.tril_indices(n)] = self.tri
        L[np.diag_indices(n)] = np.exp(np.diag(L))
        return L


class _Layout:
    """Where a problem's coordinates are: the global ones, and per group its
    own (``(G, n_local)`` indices into the unconstrained vector)."""

    def __init__(self, problem):
        self.problem = problem
        h = problem.header
        self.n_groups = 0
        if problem.kind == "flat":
            self.glob = np.arange(problem.n_dim)
            self.local = np.zeros((0, 0), dtype=np.int64)
            return
        G, P = int(h[abi.H_GROUPS]), int(h[abi.P])
        n_sd, n_noise = int(h[abi.H_NSD]), int(h[abi.N_NOISE])
        m0 = n_sd + n_noise
        self.group_noise = n_noise == G and n_noise > 0
        raw = m0 + P + np.arange(G * P).reshape(G, P)
        if self.group_noise:
            self.glob = np.r_[np.arange(n_sd), np.arange(m0, m0 + P)]
            self.local = np.hstack([(n_sd + np.arange(G))[:, None], raw])
        else:
            self.glob = np.arange(m0 + P)
            self.local = raw
        self.n_groups, self.P, self.n_sd, self.n_noise = G, P, n_sd, n_noise
        XT, y, w, layout, starts, player, _, floats = problem.arrays
        self.data = (XT, y, w, starts, layout, int(h[abi.ACT]), player, floats)


class _Adam:
    """Adam ascent on one parameter vector (the flat model's steps)."""

    def __init__(self, n):
        self.m, self.v, self.t = np.zeros(n), np.zeros(n), 0

    def step(self, param, grad, lr):
        b1, b2 = _BETAS
        self.t += 1
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad * grad
        mhat, vhat = self.m / (1 - b1**self.t), self.v / (1 - b2**self.t)
        param += lr * mhat / (np.sqrt(vhat) + 1e-8)


def _flat_steps(problem, fit, opt, n_steps, rng, lr) -> list[float]:
    """Full-batch steps of a flat model (all coordinates global), through
    the C callback (population priors included)."""
    from .kernels.svi_step import offdiag_lr_factor

    n = fit.mean.size
    tril = np.tril_indices(n)
    on_diag = tril[0] == tril[1]
    # the kernels' rule for the off-diagonal Cholesky parameters
    rates = np.r_[np.ones(n), np.where(on_diag, 1.0, offdiag_lr_factor(n))]
    out = []
    for _ in range(n_steps):
        L = fit.chol
        eps = rng.standard_normal(n)
        code, logp, grad = problem.evaluate(fit.mean + L @ eps)
        if code != abi.OK:
            out.append(np.nan)  # a failed point, as NUTS counts a divergence: no step
            continue
        out.append(logp + float(np.sum(fit.tri[on_diag])) + n * (0.5 + _HALF_LOG_2PI))
        g_tri = np.outer(grad, eps)[tril]
        g_tri[on_diag] = g_tri[on_diag] * np.diag(L) + 1.0
        theta = np.r_[fit.mean, fit.tri]
        opt.step(theta, np.r_[grad, g_tri], lr * rates)
        fit.mean[:], fit.tri[:] = theta[:n], theta[n:]
        fit.tri[on_diag] = np.clip(fit.tri[on_diag], *_LOG_SD_RANGE)
    return out


def _batches(rng, G: int, n_batches: int, n_steps: int) -> np.ndarray:
    """``(n_steps, ceil(G / n_batches))`` group codes, each row sorted and
    padded with -1; every ``n_batches`` rows visit every group once, in a
    new random order."""
    width = math.ceil(G / n_batches)
    out = np.full((n_steps, width), -1, dtype=np.int64)
    order = rng.permutation(G)
    for s in range(n_steps):
        b = s % n_batches
        if b == 0 and s:
            order = rng.permutation(G)
        part = np.sort(order[b::n_batches])
        out[s, : part.size] = part
    return out


def fit_one(problem, seed: int, *, max_epochs: int, tol: float, n_rows: int,
            x0=None, layout: _Layout | None = None) -> Fit:
    """One restart from the unconstrained point ``x0`` (default: the NUTS
    chains' initial point of ``seed``; per-group coordinates that are NaN in
    ``x0`` start at 0, the group mean)."""
    from .kernels.svi_step import hierarchical_steps

    start = time.perf_counter()
    layout = layout or _Layout(problem)
    rng = np.random.default_rng(seed)
    x0 = problem.initial_point(seed) if x0 is None else np.asarray(x0, dtype=float)
    glob, local = layout.glob, layout.local
    n_g, G = glob.size, layout.n_groups
    tri = np.zeros(n_g * (n_g + 1) // 2)
    tri[np.cumsum(np.arange(1, n_g + 1)) - 1] = math.log(_INIT_SD)
    fit = Fit(
        mean=x0[glob].copy(), tri=tri,
        local_mean=np.nan_to_num(x0[local], nan=0.0) if G else np.zeros((0, 0)),
        local_log_sd=np.full(local.shape, math.log(_LOCAL_INIT_SD)),
    )
    if G:
        B = int(np.clip(round(_BATCH_ROWS * G / max(n_rows, 1)), 1, G))
        n_batches = math.ceil(G / B)
        state_g = np.zeros((3, n_g + tri.size))
        state_l = np.zeros((4, *local.shape))
        t_l = np.zeros(G)
        totals = np.array([float(np.sum(fit.local_log_sd))])
        XT, y, w, starts, lay, act, player, floats = layout.data
        n_noise = layout.n_noise
    else:
        n_batches, opt = 1, _Adam(n_g + tri.size)
    steps = max(n_batches, _MIN_STEPS_PER_EPOCH)
    schedule = Schedule(tol, n_rows)
    for _ in range(max_epochs):
        if G:
            batches = _batches(rng, G, n_batches, steps)
            eps_g = rng.standard_normal((steps, n_g))
            eps_l = rng.standard_normal((steps, batches.shape[1], local.shape[1]))
            elbo = np.empty(steps)
            hierarchical_steps(
                XT, y, w, starts, lay, act, player, floats, layout.n_sd, n_noise,
                layout.group_noise, fit.mean, fit.tri, fit.local_mean, fit.local_log_sd,
                state_g, state_l, t_l, batches, eps_g, eps_l, schedule.lr,
                schedule.lr * _LOCAL_LR_FACTOR, _BETAS[0], _BETAS[1],
                totals, elbo,
            )
        else:
            elbo = np.asarray(_flat_steps(problem, fit, opt, steps, rng, schedule.lr))
        fit.n_steps += int(np.sum(np.isfinite(elbo)))
        fit.elbo.append(float(np.nanmean(elbo)) if np.isfinite(elbo).any() else np.nan)
        if schedule.stops(fit.elbo):
            fit.converged = True
            break
    fit.seconds = time.perf_counter() - start
    return fit


class Schedule:
    """The learning rate and the plateau rule: every ``_WINDOW`` epochs (from
    the second window) the window's mean ELBO is compared with the best
    window so far; below it plus ``tol`` nats per training row (or with no
    finite ELBO) the rate drops by ``_DECAY``, and at the plateau after
    ``_N_DECAYS`` drops the fit stops."""

    def __init__(self, tol: float, n_rows: int):
        self.lr, self.decays, self.best, self.margin = _LR, 0, -np.inf, tol * n_rows

    def stops(self, elbo: list) -> bool:
        """Update after an epoch (``elbo``: each epoch's ELBO so far); True: stop."""
        if len(elbo) < 2 * _WINDOW or len(elbo) % _WINDOW:
            return False
        now = float(np.nanmean(elbo[-_WINDOW:]))
        if not now - self.best >= self.margin:  # a plateau (or no finite ELBO)
            self.decays += 1
            self.lr *= _DECAY
            if self.decays > _N_DECAYS:
                return True
        self.best = max(self.best, now)
        return False


def pack(definition, data):
    """The kernels' problem of ``definition`` on ``data = (X, y, codes,
    weights)`` as the variational path evaluates it, wherever it runs."""
    return definition.build_kernel(*data)


def fit_restart(definition, data, seed: int, x0, *, max_epochs: int, tol: float) -> Fit:
    """One restart of ``definition`` on ``data = (X, y, codes, weights)``,
    packing the kernels' problem where it runs: a task that pickles (the
    packed problem holds raw pointers), for a joblib backend that runs it in
    another process or on a Dask worker."""
    problem = pack(definition, data)
    return fit_one(problem, int(seed), x0=x0, max_epochs=max_epochs, tol=tol,
                   n_rows=data[1].shape[0])


# joblib backends that run on this machine: restarts run in its threads there
_LOCAL_BACKENDS = ("SequentialBackend", "ThreadingBackend", "LokyBackend", "MultiprocessingBackend")


def fit_restarts(problem, seeds, starts, *, max_epochs: int, tol: float, n_rows: int,
                 n_jobs: int = 1, definition=None, data=None,
                 layout: _Layout | None = None) -> list[Fit]:
    """One :func:`fit_one` per seed and start, through joblib.

    On this machine (joblib's default and local backends) the restarts run
    in ``n_jobs`` threads sharing ``problem`` (the kernels release the GIL).
    Under a backend that runs tasks elsewhere, such as
    ``joblib.parallel_config(backend="dask")`` with a ``distributed.Client``,
    each restart is a task that packs its own problem from ``definition``
    and ``data`` (:func:`fit_restart`).  Either way a restart's result
    depends only on its seed and start.
    """
    from joblib import Parallel, delayed
    from joblib.parallel import get_active_backend

    jobs = list(zip(seeds, starts))
    remote = type(get_active_backend()[0]).__name__ not in _LOCAL_BACKENDS
    if remote and definition is not None:
        task = delayed(fit_restart)
        return Parallel(n_jobs=-1)(
            task(definition, data, s, x, max_epochs=max_epochs, tol=tol) for s, x in jobs
        )
    layout = layout or _Layout(problem)

    def run(seed, x0):
        return fit_one(problem, int(seed), x0=x0, max_epochs=max_epochs, tol=tol,
                       n_rows=n_rows, layout=layout)

    return Parallel(n_jobs=n_jobs, backend="threading")(delayed(run)(s, x) for s, x in jobs)


def draw(problem, fit: Fit, n_draws: int, rng, layout: _Layout | None = None) -> np.ndarray:
    """``(n_draws, n_dim)`` unconstrained points of the approximation
    (``layout``: the problem's, when the caller has it: at 100k groups its
    index arrays hold 7M entries)."""
    layout = layout or _Layout(problem)
    x = np.empty((n_draws, problem.n_dim))
    eps = rng.standard_normal((n_draws, layout.glob.size))
    x[:, layout.glob] = fit.mean + eps @ fit.chol.T
    if layout.n_groups:
        eps_l = rng.standard_normal((n_draws, *layout.local.shape))
        x[:, layout.local] = fit.local_mean + np.exp(fit.local_log_sd) * eps_l
    return x


def log_q(problem, fit: Fit, x: np.ndarray, layout: _Layout | None = None) -> np.ndarray:
    """The approximation's log density at the points ``x`` (n, n_dim)."""
    from scipy.linalg import solve_triangular

    layout = layout or _Layout(problem)

    z = solve_triangular(fit.chol, (x[:, layout.glob] - fit.mean).T, lower=True).T
    out = -0.5 * np.sum(z * z, axis=1) - np.sum(np.log(np.diag(fit.chol)))
    n = layout.glob.size
    if layout.n_groups:
        sd = np.exp(fit.local_log_sd)
        zl = (x[:, layout.local] - fit.local_mean) / sd
        out += -0.5 * np.sum(zl * zl, axis=(1, 2)) - np.sum(fit.local_log_sd)
        n += layout.local.size
    return out - 0.5 * n * math.log(2.0 * math.pi)
