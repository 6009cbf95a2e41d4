"""Variational fits on the kernels (``inference="svi"``): warm starts,
restarts, stored draws and the reliability check.

A fit runs in three steps, every one on the kernels NUTS samples with:

1. **Warm starts.**  Random initial points land SVI in poor modes of a BNN
   posterior: on the rotated moons (500 groups x 50 rows) every random
   start ended at 84% test accuracy against NUTS's 90.6%, with the variation
   between groups put in the wrong layer and a worse ELBO.  So each restart
   starts where a short NUTS chain (``tune`` warm-up steps) on a random
   subset of about ``_WARM_ROWS`` rows, in whole groups, has arrived; the
   chains run together in one nutpie call, one per core.
2. **SVI** (:mod:`skhbnn.svi`) on all rows from each start, the restarts in
   threads.
3. **Draws** of each restart's approximation become the chains of the
   posterior, expanded by the kernels' own expand callback, so prediction,
   chain stacking and persistence treat them as NUTS chains.  Only the
   variables prediction reads are stored (not the non-centred offsets), and
   at most as many draws as fit in ``_DRAW_BYTES`` (at least
   ``_MIN_DRAWS`` over all restarts, and ``_MIN_DRAWS_PER_RESTART`` each),
   and ``draws`` per restart only up to ``_DRAWS_RESTARTS`` restarts.

Reliability (Yao, Vehtari, Simpson & Gelman 2018, "Yes, but did it work?"):
the Pareto k-hat of the importance ratios ``p(theta, y) / q(theta)`` over
``_K_DRAWS`` draws of each restart.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from joblib import Parallel, delayed

from . import svi
from .inference import parallel_cores

_WARM_ROWS = 1000
_WARM_TUNE = 200
# The warm start's deepest NUTS tree, 2 ** _WARM_MAXDEPTH leapfrog steps (nutpie's
# default).  6 made the moons' warm start 6.2-6.6 s instead of 8.6-13.7 s, but on
# 10,000 groups x 6 classes it put the first 500 groups 0.64 points lower at
# random_state=1 (benchmarks/README.md, session 15): kept at 10.
_WARM_MAXDEPTH = 10
_MAX_EPOCHS = 5000
_TOL = 0.0  # a window whose mean ELBO is not above the best one is a plateau
_DRAW_BYTES = 1 << 30
_MIN_DRAWS = 200  # over all restarts: 50 each of 4, 25 each of 8
_MIN_DRAWS_PER_RESTART = 20
# ``draws`` is per restart up to this many restarts, and then shared: more
# restarts keep ``draws * _DRAWS_RESTARTS`` in all.  Independent draws, even all
# of one restart, are plenty at that count (250 each of 8 at the default 500),
# and stacking and the diagnostics cost in proportion to the draws stored.
_DRAWS_RESTARTS = 4
_K_DRAWS = 100


def _subset(definition, data, rng):
    """``(definition, data, groups)`` of a random subset of about
    ``_WARM_ROWS`` rows: whole groups of a hierarchical model (``groups``
    the sorted codes kept), rows of a flat one (``groups`` ``None``)."""
    X, y, codes, weights = data
    pick = lambda a: None if a is None else a[keep]  # noqa: E731
    if codes is None:
        n = y.shape[0]
        keep = np.sort(rng.permutation(n)[: min(n, _WARM_ROWS)])
        return definition, (X[keep], y[keep], None, pick(weights)), None
    sizes = np.bincount(codes, minlength=definition.n_groups)
    order = rng.permutation(definition.n_groups)
    n_sub = int(np.searchsorted(np.cumsum(sizes[order]), _WARM_ROWS)) + 1
    groups = np.sort(order[: min(n_sub, definition.n_groups)])
    keep = np.isin(codes, groups)
    sub_codes = np.searchsorted(groups, codes[keep])
    sub = dataclasses.replace(definition, n_groups=groups.size)
    return sub, (X[keep], y[keep], sub_codes, pick(weights)), groups


def _to_full(x_sub: np.ndarray, layout, groups) -> np.ndarray:
    """A subset's unconstrained point as a start of the full problem: the
    globals as they are, the subset groups' own coordinates in their place,
    every other group's NaN (:func:`skhbnn.svi.fit_one` starts them at 0)."""
    if groups is None:
        return x_sub.copy()
    x = np.full(layout.problem.n_dim, np.nan)
    n_sub = groups.size
    n_local = layout.local.shape[1]
    P, n_sd = layout.P, layout.n_sd
    sub_noise = n_sub if layout.group_noise else layout.n_noise
    glob = np.r_[np.arange(n_sd + (0 if layout.group_noise else sub_noise)),
                 n_sd + sub_noise + np.arange(P)]
    x[layout.glob] = x_sub[glob]
    local = np.empty((n_sub, n_local))
    local[:, -P:] = x_sub[n_sd + sub_noise + P:].reshape(n_sub, P)
    if layout.group_noise:
        local[:, 0] = x_sub[n_sd:n_sd + n_sub]
    x[layout.local[groups]] = local
    return x


def warm_starts(definition, data, layout, seeds, tune: int, progressbar: bool):
    """One start per seed: the last draw of a NUTS chain (``tune`` warm-up
    steps) on a random subset of the data, placed in the full problem of
    ``layout`` (:class:`skhbnn.svi._Layout`)."""
    import nutpie

    from .kernels.nutpie import compiled_model

    rng = np.random.default_rng(int(seeds[0]))
    sub, sub_data, groups = _subset(definition, data, rng)
    idata = nutpie.sample(
        compiled_model(svi.pack(sub, sub_data), free_only=True), draws=len(seeds), tune=tune,
        chains=len(seeds), cores=parallel_cores(len(seeds)),
        seed=int(seeds[0]), progress_bar=progressbar, save_warmup=False,
        store_unconstrained=True, maxdepth=_WARM_MAXDEPTH,
    )
    last = np.asarray(idata.sample_stats["unconstrained_draw"].values)[:, -1]
    return [_to_full(x, layout, groups) for x in last]


def n_stored_draws(draws: int, chains: int, shapes: dict) -> int:
    """Draws kept per restart: ``draws`` (shared out over more than
    ``_DRAWS_RESTARTS`` restarts), or as many as fit in ``_DRAW_BYTES`` of
    float32 prediction variables over all restarts, but at least
    ``_MIN_DRAWS`` over all restarts and ``_MIN_DRAWS_PER_RESTART`` each (so
    the floor's memory does not grow with the restarts)."""
    draws = min(draws, math.ceil(draws * _DRAWS_RESTARTS / chains))
    per_draw = 4 * chains * sum(int(np.prod(s)) for s in shapes.values())
    floor = max(_MIN_DRAWS_PER_RESTART, math.ceil(_MIN_DRAWS / chains))
    return int(max(1, min(draws, max(floor, _DRAW_BYTES // max(per_draw, 1)))))


def pareto_k(problem, fit, rng, n_draws: int = _K_DRAWS, layout=None) -> float:
    """Pareto k-hat of ``log p(x) - log q(x)`` over ``n_draws`` draws of
    the approximation (above 0.7 its importance ratios, and with them the
    approximation, are not to be trusted)."""
    layout = layout or svi._Layout(problem)
    ratios = np.empty(n_draws)
    for s in range(n_draws):  # one at a time: a draw of 100k groups is 50 MB
        x = svi.draw(problem, fit, 1, rng, layout)
        ratios[s] = problem.evaluate(x[0])[1] - svi.log_q(problem, fit, x, layout)[0]
    return khat(ratios)


def khat(log_ratios: np.ndarray) -> float:
    """Pareto k-hat of importance weights ``exp(log_ratios)``.  A tail too
    heavy for the Pareto fit (log ratios spread over thousands, as for an
    approximation of millions of coordinates) gives ``inf``, not NaN: the
    weights are then unusable, which is what a k-hat far above 0.7 says."""
    from .stacking import _psislw

    log_ratios = np.where(np.isfinite(log_ratios), log_ratios, -np.inf)
    _, k = _psislw(-log_ratios[None, :])  # inf, never NaN, where no tail fits
    return float(k[0])


def fit_svi(definition, data: tuple, *, chains: int, tune: int, draws: int, seed: int,
            progressbar: bool):
    """The variational fit of ``definition`` given ``data = (X, y, codes,
    weights)``: ``(posterior arrays (chain, draw, ...) of the prediction
    variables, info)``, ``info`` holding each restart's ELBO trace, steps,
    seconds, convergence and Pareto k-hat."""
    clock = [time.perf_counter()]
    problem = svi.pack(definition, data)
    layout = svi._Layout(problem)  # once: at 100k groups its indices hold 7M entries
    seeds = np.random.SeedSequence(seed).generate_state(chains)
    starts = warm_starts(definition, data, layout, seeds, min(tune, _WARM_TUNE), progressbar)
    clock.append(time.perf_counter())
    n_jobs = parallel_cores(chains)
    fits = svi.fit_restarts(problem, seeds, starts, max_epochs=_MAX_EPOCHS, tol=_TOL,
                            n_rows=data[1].shape[0], n_jobs=n_jobs, definition=definition,
                            data=data, layout=layout)
    clock.append(time.perf_counter())
    shapes = {name: problem.shapes[name] for name in definition.prediction_names()}
    n_keep = n_stored_draws(draws, chains, shapes)
    out = {name: np.empty((chains, n_keep, *shape), np.float32) for name, shape in shapes.items()}

    def fill(c):  # restart c's draws, expanded by the kernels' callback
        rng = np.random.default_rng([int(seeds[c]), 1])
        for s in range(n_keep):
            values = problem.expand(svi.draw(problem, fits[c], 1, rng, layout)[0])
            for name in shapes:
                out[name][c, s] = values[name]

    # in threads, one restart each: the callbacks run without the GIL
    threads = Parallel(n_jobs=n_jobs, backend="threading")
    threads(delayed(fill)(c) for c in range(chains))
    clock.append(time.perf_counter())
    ks = threads(
        delayed(pareto_k)(problem, fit, np.random.default_rng([int(seeds[c]), 2]), layout=layout)
        for c, fit in enumerate(fits)
    )
    clock.append(time.perf_counter())
    info = {
        "elbo": padded([np.asarray(f.elbo) for f in fits]),
        "steps": [f.n_steps for f in fits],
        "seconds": [f.seconds for f in fits],
        "converged": [f.converged for f in fits],
        "pareto_k": ks,
        "stage_seconds": dict(zip(("warm start", "svi", "draws", "pareto k"), np.diff(clock))),
    }
    return out, info


def variational_diagnostics(info: dict, chain_weights, n_draws: int) -> dict:
    """What ``diagnostics_`` holds for a variational fit in place of NUTS's
    mixing checks, and adds: per restart its Pareto k-hat, steps, seconds,
    whether it stopped on a plateau, and its last ELBO.

    Draws of an approximation are independent, so there is no mixing within
    a restart to check (``within_mode_rhat`` is NaN) and the effective
    number of draws is Kish's, from the restarts' weights in prediction:
    ``n_draws / sum(w_c ** 2)``.
    """
    k = len(info["pareto_k"])
    w = np.full(k, 1.0 / k) if chain_weights is None else np.asarray(chain_weights, float)
    ess = float(n_draws / np.sum(w**2))
    return {
        "inference": "svi",
        "within_mode_rhat": float("nan"),
        "within_rhat": {},
        "min_ess": ess,
        "ess": {"draws": ess},
        "pareto_k": [round(float(v), 3) for v in info["pareto_k"]],
        "max_pareto_k": float(max(info["pareto_k"])),
        "svi_steps": list(info["steps"]),
        "svi_seconds": [round(float(t), 2) for t in info["seconds"]],
        "svi_converged": list(info["converged"]),
        "svi_stage_seconds": {k: round(float(v), 2) for k, v in info["stage_seconds"].items()},
        "final_elbo": [float(e[np.isfinite(e)][-1]) if np.isfinite(e).any() else float("nan")
                       for e in info["elbo"]],
    }


def padded(traces) -> np.ndarray:
    """ELBO traces of unequal length as one ``(restarts, epochs)`` array, NaN after a
    restart stopped."""
    out = np.full((len(traces), max(len(t) for t in traces)), np.nan)
    for i, t in enumerate(traces):
        out[i, : len(t)] = t
    return out


def posterior_idata(draws: dict):
    """ArviZ data (InferenceData or DataTree) holding ``draws`` as its posterior."""
    import xarray as xr

    from .persistence.netcdf import make_idata

    first = next(iter(draws.values()))
    coords = {"chain": np.arange(first.shape[0]), "draw": np.arange(first.shape[1])}
    dataset = xr.Dataset(
        {
            name: (("chain", "draw", *(f"{name}_dim_{i}" for i in range(v.ndim - 2))), v)
            for name, v in draws.items()
        },
        coords=coords,
    )
    return make_idata({"posterior": dataset})

