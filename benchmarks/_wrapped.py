"""Wrapped kernel models for the probes: nutpie samples the package's
hierarchical log density in other coordinates through a probe's own C
callbacks, whose expand writes the package's coordinates ``x``; the draws are
then turned into the package's posterior variables, so that stacking,
diagnostics and the warning are the package's."""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import carray, njit, types

from skhbnn.kernels import abi
from skhbnn.kernels.cfuncs import _void
from skhbnn.kernels.density import hierarchical_logp_grad

_LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double),
                        types.CPointer(types.double), types.CPointer(types.double),
                        types.voidptr)
_EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                          types.CPointer(types.double), types.voidptr)


@njit
def model_logp(h, x, gx):
    """The package's hierarchical log density at ``x`` (its gradient into
    ``gx``) for the problem whose header is ``h``."""
    n, n_features, n_layers = h[abi.N_ROWS], h[abi.N_FEATURES], h[abi.N_LAYERS]
    P, G, n_sd, n_noise = h[abi.P], h[abi.H_GROUPS], h[abi.H_NSD], h[abi.N_NOISE]
    floats = carray(_void(h[abi.H_FLOATS]), (3 + n_sd,), np.float64)
    return hierarchical_logp_grad(
        x, carray(_void(h[abi.XT]), (n_features, n), np.float64),
        carray(_void(h[abi.Y]), (n,), np.float64), carray(_void(h[abi.W]), (n,), np.float64),
        carray(_void(h[abi.H_STARTS]), (G + 1,), np.int64),
        carray(_void(h[abi.LAYOUT]), (n_layers, 4), np.int64), h[abi.ACT],
        carray(_void(h[abi.H_PLAYER]), (P,), np.int64), floats[0], floats[3:], n_noise,
        floats[2], floats[1], gx,
    )



def wrapped_model(problem, logp, expand, user_data, keep, initial):
    """nutpie's model of ``problem`` through the callbacks ``logp`` and
    ``expand`` (which writes the problem's own coordinates ``x``), their
    ``user_data`` header, chains started at ``initial(seed)``; ``keep``: what
    the header points to."""
    from nutpie.compile_pymc import CompiledPyMCModel

    dim = problem.n_dim
    values = {
        "dims": {"x": ("x_dim_0",)}, "compiled_logp_func": logp,
        "compiled_expand_func": expand, "initial_point_func": initial,
        "user_data": user_data, "shared_data": {"keep": (problem, keep)},
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


def draws_idata(problem, definition, traces):
    """The package's posterior (free variables and the per-group weights)
    and divergences from nutpie traces of a wrapped model, their chains in
    order."""
    import xarray as xr

    from skhbnn.inference import add_weights

    x = np.concatenate([np.asarray(t.posterior["x"].values) for t in traces])  # (C, S, dim)
    div = np.concatenate([np.asarray(t.sample_stats["diverging"].values) for t in traces])
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


def probe_data(which: str):
    """``seed`` (the post's data) or a set of :func:`benchmarks.bench_defaults.datasets`:
    ``(X, X_te, y, y_te, g, g_te)``."""
    if which == "seed":
        from ._common import seed_data

        return seed_data()
    from .bench_defaults import datasets

    return datasets()[which]


def fit_record(clf, seconds, warned, X_te, y_te, g_te) -> dict:
    """One probe fit's JSON fields: wall seconds, test accuracy and log loss,
    stacking weights, within-mode R-hat, min ESS, divergences, the warning."""
    from sklearn.metrics import log_loss

    proba = clf.predict_proba(X_te, groups=g_te)
    d = clf.diagnostics_
    w = clf.chain_weights_
    return dict(
        t=round(seconds, 1), acc=round(float(np.mean(clf.classes_[proba.argmax(1)] == y_te)), 4),
        ll=round(log_loss(y_te, proba, labels=clf.classes_), 4),
        w=None if w is None else [round(float(v), 2) for v in w],
        rhat=round(d.get("within_mode_rhat", float("nan")), 3),
        ess=round(d.get("min_ess", float("nan"))), div=int(d.get("divergences") or 0),
        warned=warned,
    )
