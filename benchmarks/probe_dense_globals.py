"""A dense preconditioner on the global coordinates, per chain (session 20).

Session 20 found the default seed-data chains drifting along correlated
directions of the hidden layers' group means (``benchmarks/README.md``), and
nutpie's ``adaptation="low_rank"`` removing the drift at 6x the time, nearly
all of it spent adapting the low-rank matrix over all 975 coordinates.  This
probe tries the same correction where the drift is, at a lower cost: NUTS in
two stages per fit.

1. nutpie on the kernels as the package runs it (diagonal mass matrix),
   ``chains`` chains x (``TUNE_A`` + ``DRAWS_A``), unconstrained draws kept.
2. Per chain, the mean ``m`` and covariance of its ``DRAWS_A`` draws of the
   global coordinates (log group sds, group means: 57 for the default
   network), shrunk as Stan shrinks its metric (``n / (n + 5) S + 1e-3 * 5 /
   (n + 5) I``), Cholesky factor ``L``.  The chain goes on from its last draw
   in the coordinates ``z`` with ``globals = m + L z`` (the offsets as they
   are), its own nutpie run of ``TUNE_B`` + ``draws`` with a diagonal mass
   matrix over ``z``: a dense one on the globals.  The chains run at once.

The estimator sees the stage-2 draws in place of a plain run's (the probe
replaces ``skhbnn.inference._sample_kernels`` in this process), so stacking,
diagnostics and the warning are the package's.

``python -m benchmarks.probe_dense_globals SEEDS [TUNE_A,DRAWS_A,TUNE_B]``
(default ``300,100,200``: 1,100 iterations per chain against the defaults'
1,000): the default ``HierarchicalBayesianMLPClassifier`` on the post's data
for each ``random_state`` in SEEDS; one JSON line per fit (wall seconds, test
accuracy and log loss, stacking weights, within-mode R-hat, min ESS,
divergences, leapfrog steps of both stages, the warning).
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

# the wrapper's header: the problem's header, the number of global
# coordinates, the addresses of m and L
W_HEADER, W_NG, W_M, W_L = range(4)


@njit
def _to_x(z, dim, ng, m, L):
    x = np.empty(dim)
    for i in range(dim):
        x[i] = z[i]
    for i in range(ng):
        s = m[i]
        for j in range(i + 1):
            s += L[i, j] * z[j]
        x[i] = s
    return x


@cfunc(_LOGP_SIG, nopython=True)
def dense_logp(dim, z_, out_, logp_, user_data):
    w = carray(user_data, (4,), np.int64)
    h = carray(_void(w[W_HEADER]), (abi.HEADER_SIZE,), np.int64)
    ng = w[W_NG]
    m = carray(_void(w[W_M]), (ng,), np.float64)
    L = carray(_void(w[W_L]), (ng, ng), np.float64)
    x = _to_x(carray(z_, (dim,)), dim, ng, m, L)
    grad = carray(out_, (dim,))
    gx = np.empty(dim)
    lp = carray(logp_, (1,))
    lp[0] = model_logp(h, x, gx)
    for i in range(dim):
        grad[i] = gx[i]
    for j in range(ng):  # d/dz = L^T d/dx on the globals
        s = 0.0
        for i in range(j, ng):
            s += L[i, j] * gx[i]
        grad[j] = s
    return finite_status(lp[0], grad)


@cfunc(_EXPAND_SIG, nopython=True)
def dense_expand(dim, expanded, z_, out_, user_data):
    """``out = x``: the problem's own coordinates."""
    w = carray(user_data, (4,), np.int64)
    ng = w[W_NG]
    m = carray(_void(w[W_M]), (ng,), np.float64)
    L = carray(_void(w[W_L]), (ng, ng), np.float64)
    x = _to_x(carray(z_, (dim,)), dim, ng, m, L)
    out = carray(out_, (expanded,))
    for i in range(dim):
        out[i] = x[i]
    return abi.OK


def _dense_model(problem, m, L, z0):
    """nutpie's model of ``problem`` in the coordinates ``z``, started at ``z0``."""
    header = np.array([problem.header.ctypes.data, m.size, m.ctypes.data, L.ctypes.data],
                      dtype=np.int64)
    return wrapped_model(problem, dense_logp, dense_expand, header, (m, L, z0),
                         lambda seed: z0.copy())


STEPS: list = []


def two_stage(tune_a: int, draws_a: int, tune_b: int):
    """A replacement for ``skhbnn.inference._sample_kernels``."""
    import nutpie

    from skhbnn.kernels.nutpie import compiled_model

    def sample(definition, data, settings):
        problem = definition.build_kernel(*data)
        ng = problem.n_dim - definition.n_groups * definition.spec.n_params
        chains, seed = settings["chains"], settings["seed"]
        first = nutpie.sample(
            compiled_model(problem, free_only=True), draws=draws_a, tune=tune_a,
            chains=chains, cores=settings["cores"], seed=seed,
            target_accept=settings["target_accept"], progress_bar=False,
            save_warmup=False, store_unconstrained=True,
        )
        steps_a = int(first.sample_stats["n_steps"].values.sum())
        xs = np.asarray(first.sample_stats["unconstrained_draw"].values)  # (C, S, dim)
        runs = []
        for c in range(chains):
            glob = xs[c, :, :ng]
            n = glob.shape[0]
            cov = np.cov(glob, rowvar=False)
            cov = n / (n + 5.0) * cov + 1e-3 * 5.0 / (n + 5.0) * np.eye(ng)
            L = np.ascontiguousarray(np.linalg.cholesky(cov))
            m = np.ascontiguousarray(glob.mean(axis=0))
            z0 = xs[c, -1].copy()
            z0[:ng] = np.linalg.solve(L, xs[c, -1, :ng] - m)
            runs.append(nutpie.sample(
                _dense_model(problem, m, L, z0), draws=settings["draws"], tune=tune_b,
                chains=1, cores=1, seed=seed + 1 + c, target_accept=settings["target_accept"],
                progress_bar=False, save_warmup=False, blocking=False,
            ))
        traces = [r.wait() for r in runs]
        STEPS.append((steps_a, int(sum(t.sample_stats["n_steps"].values.sum() for t in traces))))
        return draws_idata(problem, definition, traces)

    return sample


def main():
    from skhbnn import inference

    from ._wrapped import fit_record, probe_data
    from .probe_chains import fit_timed

    seeds = [int(s) for s in sys.argv[1].split(",")]
    tune_a, draws_a, tune_b = (int(v) for v in (sys.argv[2] if len(sys.argv) > 2
                                                 else "300,100,200").split(","))
    inference._sample_kernels = two_stage(tune_a, draws_a, tune_b)
    X, X_te, y, y_te, g, g_te = probe_data("seed")
    for seed in seeds:
        clf, t, warned = fit_timed(X, y, g, seed, {"max_draws": None})  # fixed length
        record = fit_record(clf, t, warned, X_te, y_te, g_te)
        print(json.dumps(dict(seed=seed, **record, steps=STEPS[-1])), flush=True)


if __name__ == "__main__":
    main()
