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

import dataclasses
import json
import sys

import numpy as np
from numba import carray, cfunc, njit, types

from skhbnn.kernels import abi
from skhbnn.kernels.cfuncs import _void
from skhbnn.kernels.density import finite_status, hierarchical_logp_grad

_LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double),
                        types.CPointer(types.double), types.CPointer(types.double),
                        types.voidptr)
_EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                          types.CPointer(types.double), types.voidptr)
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
    n, n_features, n_layers = h[abi.N_ROWS], h[abi.N_FEATURES], h[abi.N_LAYERS]
    P, G, n_sd, n_noise = h[abi.P], h[abi.H_GROUPS], h[abi.H_NSD], h[abi.N_NOISE]
    x = _to_x(carray(z_, (dim,)), dim, ng, m, L)
    floats = carray(_void(h[abi.H_FLOATS]), (3 + n_sd,), np.float64)
    grad = carray(out_, (dim,))
    gx = np.empty(dim)
    lp = carray(logp_, (1,))
    lp[0] = hierarchical_logp_grad(
        x, carray(_void(h[abi.XT]), (n_features, n), np.float64),
        carray(_void(h[abi.Y]), (n,), np.float64), carray(_void(h[abi.W]), (n,), np.float64),
        carray(_void(h[abi.H_STARTS]), (G + 1,), np.int64),
        carray(_void(h[abi.LAYOUT]), (n_layers, 4), np.int64), h[abi.ACT],
        carray(_void(h[abi.H_PLAYER]), (P,), np.int64), floats[0], floats[3:], n_noise,
        floats[2], floats[1], gx,
    )
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
    from nutpie.compile_pymc import CompiledPyMCModel

    header = np.array([problem.header.ctypes.data, m.size, m.ctypes.data, L.ctypes.data],
                      dtype=np.int64)
    dim = problem.n_dim
    values = {
        "dims": {"x": ("x_dim_0",)}, "compiled_logp_func": dense_logp,
        "compiled_expand_func": dense_expand, "initial_point_func": lambda seed: z0.copy(),
        "user_data": header, "shared_data": {"keep": (problem, m, L, z0)},
        "n_expanded": dim, "shape_info": (["x"], [slice(None)], [(dim,)]),
        "_n_dim": dim, "_shapes": {"x": (dim,)}, "_coords": {"x_dim_0": np.arange(dim)},
    }
    kwargs = {}
    for name, field in {f.name: f for f in dataclasses.fields(CompiledPyMCModel)}.items():
        if name in values:
            kwargs[name] = values[name]
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            kwargs[name] = None
    return CompiledPyMCModel(**kwargs)


STEPS: list = []


def two_stage(tune_a: int, draws_a: int, tune_b: int):
    """A replacement for ``skhbnn.inference._sample_kernels``."""
    import nutpie
    import xarray as xr

    from skhbnn.inference import add_weights
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
        x = np.concatenate([np.asarray(t.posterior["x"].values) for t in traces])  # (C, S, dim)
        steps_b = int(sum(t.sample_stats["n_steps"].values.sum() for t in traces))
        div = np.concatenate([np.asarray(t.sample_stats["diverging"].values) for t in traces])
        STEPS.append((steps_a, steps_b))
        free = problem.free_shapes()
        out = {name: np.empty((x.shape[0], x.shape[1], *shape)) for name, shape in free.items()}
        for c in range(x.shape[0]):
            for s in range(x.shape[1]):
                values = problem.expand(x[c, s])
                for name in free:
                    out[name][c, s] = values[name]
        coords = {"chain": np.arange(x.shape[0]), "draw": np.arange(x.shape[1])}
        post = xr.Dataset(
            {name: (("chain", "draw", *(f"{name}_dim_{i}" for i in range(len(shape)))),
                    out[name]) for name, shape in free.items()}, coords=coords)
        stats = xr.Dataset({"diverging": (("chain", "draw"), div)}, coords=coords)
        idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
        add_weights(idata, definition)
        return idata

    return sample


def main():
    from sklearn.metrics import log_loss

    from skhbnn import inference

    from ._common import seed_data
    from .probe_chains import fit_timed

    seeds = [int(s) for s in sys.argv[1].split(",")]
    tune_a, draws_a, tune_b = (int(v) for v in (sys.argv[2] if len(sys.argv) > 2
                                                 else "300,100,200").split(","))
    inference._sample_kernels = two_stage(tune_a, draws_a, tune_b)
    X, X_te, y, y_te, g, g_te = seed_data()
    for seed in seeds:
        clf, t, warned = fit_timed(X, y, g, seed, {})
        proba = clf.predict_proba(X_te, groups=g_te)
        d = clf.diagnostics_
        w = clf.chain_weights_
        print(json.dumps(dict(
            seed=seed, t=round(t, 1), acc=round(float(np.mean(proba.argmax(1) == y_te)), 4),
            ll=round(log_loss(y_te, proba), 4),
            w=None if w is None else [round(float(v), 2) for v in w],
            rhat=round(d.get("within_mode_rhat", float("nan")), 3),
            ess=round(d.get("min_ess", float("nan"))), div=int(d.get("divergences") or 0),
            steps=STEPS[-1], warned=warned,
        )), flush=True)


if __name__ == "__main__":
    main()
