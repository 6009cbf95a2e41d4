"""Posterior inference: NUTS (nutpie or PyMC) and ADVI.

With nutpie, the models of :mod:`skhbnn.models` are sampled through the
hand-written kernels of :mod:`skhbnn.density` (:mod:`skhbnn.fast_nuts`): no
per-model compilation, and a gradient 2.5x cheaper than pytensor's.  Where
that route is unavailable (an installed nutpie without the fields it needs,
or ``SKHBNN_KERNELS=0`` in the environment), nutpie compiles the PyMC model.
Compiling costs seconds while sampling a small BNN costs far less, so such
models are compiled once per *structure* and re-used with new data:
cross-validation folds, grid-search candidates and the per-group flat fits of
a transfer only pay compilation once per process.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict

import numpy as np
import pymc as pm
from pytensor.compile.sharedvalue import SharedVariable

SAMPLERS = ("auto", "nutpie", "pymc")
INFERENCE_METHODS = ("nuts", "advi")

# False: nutpie always samples the pytensor-compiled PyMC model (benchmarks
# compare the two routes by switching this).
KERNELS = os.environ.get("SKHBNN_KERNELS", "1") != "0"

_CACHE_SIZE = 32
_compiled_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


def resolve_sampler(sampler: str) -> str:
    """``"auto"`` means nutpie when it is installed, else PyMC's own NUTS."""
    if sampler == "auto":
        return "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"
    if sampler == "nutpie" and importlib.util.find_spec("nutpie") is None:
        raise ImportError(
            "sampler='nutpie' needs the nutpie package: pip install nutpie, or use "
            "sampler='pymc'."
        )
    return sampler


def model_data(model: pm.Model) -> dict[str, np.ndarray]:
    """Current values of the model's ``pm.Data`` containers."""
    return {
        var.name: var.get_value()
        for var in model.named_vars.values()
        if isinstance(var, SharedVariable)
    }


def clear_compile_cache() -> None:
    """Forget every compiled model (frees memory; next fits recompile)."""
    with _cache_lock:
        _compiled_cache.clear()


def _nutpie_model(model: pm.Model, cache_key):
    import nutpie

    if cache_key is None:
        return nutpie.compile_pymc_model(model)
    with _cache_lock:
        compiled = _compiled_cache.get(cache_key)
        if compiled is not None:
            _compiled_cache.move_to_end(cache_key)
    if compiled is None:
        compiled = nutpie.compile_pymc_model(model)
        with _cache_lock:
            _compiled_cache[cache_key] = compiled
            while len(_compiled_cache) > _CACHE_SIZE:
                _compiled_cache.popitem(last=False)
        return compiled
    return compiled.with_data(**model_data(model))


def _kernel_model(problem):
    """nutpie model on the kernels, or ``None`` where that route is off or
    unavailable."""
    if problem is None or not KERNELS:
        return None
    from .fast_nuts import compiled_model

    return compiled_model(problem())


def _built(model):
    return model() if callable(model) else model


def sample_nuts(
    model,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
    progressbar: bool,
    cache_key=None,
    problem=None,
):
    """Run NUTS and return the posterior as ArviZ data.

    ``model`` is a ``pm.Model`` or a function that builds one (called only
    if the PyMC model is needed).  ``cache_key`` identifies the model's
    structure: models built with the same key must differ only in the values
    of their ``pm.Data`` containers.  ``problem`` is a function returning the
    same model as a :class:`skhbnn.fast_nuts.Problem`, for nutpie's kernel
    route.
    """
    cores = max(1, min(chains, os.cpu_count() or 1))
    if resolve_sampler(sampler) == "nutpie":
        import nutpie

        compiled = _kernel_model(problem)
        if compiled is None:
            compiled = _nutpie_model(_built(model), cache_key)
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            target_accept=target_accept,
            progress_bar=progressbar,
            save_warmup=False,
        )
    else:
        with _built(model):
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                target_accept=target_accept,
                random_seed=seed,
                progressbar=progressbar,
                compute_convergence_checks=False,
                nuts_sampler="pymc",
            )
    n_draws = idata.posterior.sizes["draw"]
    if n_draws < draws:
        # nutpie turns Ctrl-C into an early, partial result; a partial
        # posterior must never be mistaken for a finished fit.
        raise KeyboardInterrupt(f"sampling stopped after {n_draws} of {draws} draws")
    return idata


def fit_advi(model, *, iterations: int, draws: int, seed: int, progressbar: bool):
    """Mean-field ADVI; returns ``draws`` draws of the approximation (1 chain)."""
    # Start away from w = 0: there all hidden units are identical and tanh's
    # symmetric saddle stalls the optimiser (NUTS jitters its own start).
    model = _built(model)
    rng = np.random.default_rng(seed)
    start = {
        rv.name: rng.normal(size=model.initial_point()[rv.name].shape)
        for rv in model.free_RVs
        if rv.name.endswith(("_raw", "_mu"))
    }
    with model:
        approx = pm.fit(
            n=iterations, method="advi", random_seed=seed, progressbar=progressbar,
            start=start,
        )
        return approx.sample(draws, random_seed=seed)


def posterior_arrays(idata, names) -> dict[str, np.ndarray]:
    """``{name: array of shape (chain, draw, ...)}`` from ArviZ 0.x or 1.x data."""
    post = idata.posterior
    return {name: np.asarray(post[name].values, dtype=float) for name in names}


def divergences(idata) -> int:
    """Number of divergent transitions after tuning (0 if not recorded)."""
    try:
        stats = idata.sample_stats
        return int(np.asarray(stats["diverging"].values).sum())
    except (AttributeError, KeyError):
        return 0
