"""A low-rank mass matrix estimated once, between two NUTS runs (session 21).

Session 20 found nutpie's ``adaptation="low_rank"`` mixing the default
seed-data chains (1 warned fit of 10, against 4) at 6x the time, nearly all
of it in nutpie re-estimating the low-rank matrix from its window of draws
and gradients (975 coordinates) every ``mass_matrix_update_freq`` warm-up
draws.  This probe estimates the same matrix once per chain:

1. nutpie on the kernels as the package runs it (diagonal mass matrix),
   ``TUNE_A`` warm-up draws, of which the last ``WINDOW`` are kept with their
   gradients (``store_unconstrained``, ``store_gradient``);
2. per chain, nutpie's estimate (``nuts-rs``, ``mass_matrix/low_rank.rs``:
   each coordinate scaled by ``sqrt(sd(draws) / sd(gradients))``, the span
   of the scaled draws and gradients, there the SPD geometric mean of the
   draws' covariance and the gradients' inverse covariance, eigenvalues
   outside ``[1 / CUTOFF, CUTOFF]`` kept): ``Sigma = S (I + V (Lambda - I)
   V^T) S``;
3. the chain goes on from its last draw in the coordinates ``z``, ``x = c +
   S (I + V (sqrt(Lambda) - I) V^T) z``, its own nutpie run of ``TUNE_B`` +
   ``draws`` with nutpie's diagonal adaptation on ``z``.  The chains run at
   once.

The estimator sees the stage-2 draws in place of a plain run's (the probe
replaces ``skhbnn.inference._sample_kernels`` in this process), so stacking,
diagnostics and the warning are the package's.

``python -m benchmarks.probe_low_rank DATA SEEDS [TUNE_A,WINDOW,TUNE_B[,CUTOFF]]``
(default ``300,150,200,2``; DATA ``seed`` for the post's data or a set of
:func:`benchmarks.bench_defaults.datasets`): one JSON line per fit (wall
seconds, test accuracy and log loss, stacking weights, within-mode R-hat, min
ESS, divergences, leapfrog steps of both stages, the rank kept per chain, the
warning).
"""

from __future__ import annotations

import json
import sys

import numpy as np
from numba import carray, cfunc, njit

from skhbnn.kernels import abi
from skhbnn.kernels.cfuncs import _void
from skhbnn.kernels.density import finite_status

from ._wrapped import _EXPAND_SIG, _LOGP_SIG, draws_idata, model_logp, wrapped_model

# the wrapper's header: the problem's header, dim, rank, addresses of c, s, V, r
# (r = sqrt(Lambda) - 1)
W_HEADER, W_DIM, W_K, W_C, W_S, W_V, W_R = range(7)


@njit
def _apply(z, c, s, VT, r, out):
    """``out = c + S (I + V diag(r) V^T) z`` (``VT`` is ``V^T``, rows contiguous)."""
    k, d = VT.shape
    for i in range(d):
        out[i] = z[i]
    for j in range(k):
        acc = 0.0
        for i in range(d):
            acc += VT[j, i] * z[i]
        acc *= r[j]
        for i in range(d):
            out[i] += VT[j, i] * acc
    for i in range(d):
        out[i] = c[i] + s[i] * out[i]


@njit
def _apply_t(gx, s, VT, r, out):
    """``out = (I + V diag(r) V^T) S gx``: the gradient in ``z``."""
    k, d = VT.shape
    for i in range(d):
        out[i] = s[i] * gx[i]
    t = np.empty(k)
    for j in range(k):
        acc = 0.0
        for i in range(d):
            acc += VT[j, i] * out[i]
        t[j] = acc * r[j]
    for j in range(k):
        for i in range(d):
            out[i] += VT[j, i] * t[j]


@njit
def _unpack(w):
    d, k = w[W_DIM], w[W_K]
    return (carray(_void(w[W_C]), (d,), np.float64), carray(_void(w[W_S]), (d,), np.float64),
            carray(_void(w[W_V]), (k, d), np.float64), carray(_void(w[W_R]), (k,), np.float64))


@cfunc(_LOGP_SIG, nopython=True)
def low_rank_logp(dim, z_, out_, logp_, user_data):
    w = carray(user_data, (7,), np.int64)
    h = carray(_void(w[W_HEADER]), (abi.HEADER_SIZE,), np.int64)
    c, s, V, r = _unpack(w)
    x = np.empty(dim)
    _apply(carray(z_, (dim,)), c, s, V, r, x)
    gx = np.empty(dim)
    lp = carray(logp_, (1,))
    lp[0] = model_logp(h, x, gx)
    grad = carray(out_, (dim,))
    _apply_t(gx, s, V, r, grad)
    return finite_status(lp[0], grad)


@cfunc(_EXPAND_SIG, nopython=True)
def low_rank_expand(dim, expanded, z_, out_, user_data):
    """``out = x``: the problem's own coordinates."""
    w = carray(user_data, (7,), np.int64)
    c, s, V, r = _unpack(w)
    _apply(carray(z_, (dim,)), c, s, V, r, carray(out_, (expanded,)))
    return abi.OK


def estimate(draws, grads, gamma=1e-5, cutoff=2.0):
    """nutpie's low-rank estimate from ``(n, d)`` draws and gradients:
    ``(c, s, V^T, lam)``, the draws' mean, the scales, the kept
    eigenvectors (rows) and eigenvalues."""
    n = draws.shape[0]
    dm, gm = draws.mean(0), grads.mean(0)
    dsd = np.sqrt(((draws - dm) ** 2).sum(0))
    gsd = np.sqrt(((grads - gm) ** 2).sum(0))
    s = np.sqrt(dsd / gsd)
    D = ((draws - dm) / (s * n)).T
    G = ((grads - gm) * s / n).T
    Ud = np.linalg.svd(D, full_matrices=False)[0]
    Ug = np.linalg.svd(G, full_matrices=False)[0]
    Q = np.linalg.qr(np.concatenate([Ud, Ug], axis=1))[0]
    Dp, Gp = Q.T @ D, Q.T @ G
    Cd = Dp @ Dp.T / gamma + np.eye(Q.shape[1])
    Cg = Gp @ Gp.T / gamma + np.eye(Q.shape[1])
    eg, ug = np.linalg.eigh(Cg)
    half = ug @ np.diag(np.sqrt(eg)) @ ug.T
    em, um = np.linalg.eigh(half @ Cd @ half)
    msqrt = um @ np.diag(np.sqrt(np.maximum(em, 0))) @ um.T
    ihalf = ug @ np.diag(1 / np.sqrt(eg)) @ ug.T
    vals, vecs = np.linalg.eigh(ihalf @ msqrt @ ihalf)
    keep = (vals > cutoff) | (vals < 1 / cutoff)
    return dm, s, np.ascontiguousarray((Q @ vecs[:, keep]).T), vals[keep]


def _model(problem, parts, z0):
    c, s, V, r = parts
    header = np.array([problem.header.ctypes.data, problem.n_dim, V.shape[0], c.ctypes.data,
                       s.ctypes.data, V.ctypes.data, r.ctypes.data], dtype=np.int64)
    return wrapped_model(problem, low_rank_logp, low_rank_expand, header, (parts, z0),
                         lambda seed: z0.copy())


STATS: list = []


def two_stage(tune_a: int, window: int, tune_b: int, cutoff: float):
    """A replacement for ``skhbnn.inference._sample_kernels``."""
    import nutpie

    from skhbnn.kernels.nutpie import compiled_model

    def sample(definition, data, settings):
        problem = definition.build_kernel(*data)
        chains, seed = settings["chains"], settings["seed"]
        first = nutpie.sample(
            compiled_model(problem, free_only=True), draws=1, tune=tune_a,
            chains=chains, cores=settings["cores"], seed=seed,
            target_accept=settings["target_accept"], progress_bar=False,
            save_warmup=True, store_unconstrained=True, store_gradient=True,
        )
        ws = first.warmup_sample_stats
        steps_a = int(ws["n_steps"].values.sum())
        xs = np.asarray(ws["unconstrained_draw"].values)[:, -window:]  # (C, W, dim)
        gs = np.asarray(ws["gradient"].values)[:, -window:]
        runs, ranks = [], []
        for ch in range(chains):
            c, s, V, lam = estimate(xs[ch], gs[ch], cutoff=cutoff)
            r = np.sqrt(lam) - 1.0
            ranks.append(int(lam.size))
            # z0 = A^{-1} (x - c), A^{-1} = (I + V (1/sqrt(lam) - 1) V^T) S^{-1}
            u = (xs[ch, -1] - c) / s
            z0 = u + V.T @ ((1 / np.sqrt(lam) - 1) * (V @ u))
            parts = (np.ascontiguousarray(c), np.ascontiguousarray(s), V, np.ascontiguousarray(r))
            runs.append(nutpie.sample(
                _model(problem, parts, z0), draws=settings["draws"], tune=tune_b,
                chains=1, cores=1, seed=seed + 1 + ch, target_accept=settings["target_accept"],
                progress_bar=False, save_warmup=False, blocking=False,
            ))
        traces = [run.wait() for run in runs]
        steps_b = int(sum(t.sample_stats["n_steps"].values.sum() for t in traces))
        STATS.append(dict(steps=(steps_a, steps_b), ranks=ranks))
        return draws_idata(problem, definition, traces)

    return sample


def main():
    from skhbnn import inference

    from ._wrapped import fit_record, probe_data
    from .probe_chains import fit_timed

    which = sys.argv[1]
    seeds = [int(v) for v in sys.argv[2].split(",")]
    opts = (sys.argv[3] if len(sys.argv) > 3 else "300,150,200,2").split(",")
    tune_a, window, tune_b = (int(v) for v in opts[:3])
    cutoff = float(opts[3]) if len(opts) > 3 else 2.0
    inference._sample_kernels = two_stage(tune_a, window, tune_b, cutoff)
    X, X_te, y, y_te, g, g_te = probe_data(which)
    for seed in seeds:
        clf, t, warned = fit_timed(X, y, g, seed, {"max_draws": None})  # fixed length
        record = fit_record(clf, t, warned, X_te, y_te, g_te)
        print(json.dumps(dict(data=which, seed=seed, **record, **STATS[-1])), flush=True)


if __name__ == "__main__":
    main()
