"""Posterior inference by route: NUTS (nutpie on skhbnn's kernels, nutpie on
the PyMC graph, PyMC's own NUTS) and ADVI.

Every route takes a model definition (:mod:`skhbnn.models`) and the data,
and builds what it needs from it: the kernels' header (``build_kernel``) or
the PyMC model (``build_pymc``), never both.

``sampler`` names the NUTS route:

``"nutpie"``
    nutpie on skhbnn's numba kernels (:mod:`skhbnn.kernels`): nothing to
    compile, a gradient 2.5x cheaper than pytensor's.  Should that route fail
    (a nutpie release whose private model class changed, numba unable to
    build the callbacks), the fit falls back to ``"nutpie-pytensor"`` with one
    ``RuntimeWarning``.
``"nutpie-pytensor"``
    nutpie compiling the PyMC model.  Compiling costs seconds while sampling
    a small BNN costs far less, so such models are compiled once per
    *structure* and re-used with new data: cross-validation folds,
    grid-search candidates and the per-group fits of a transfer pay
    compilation once per process.
``"pymc"``
    PyMC's own NUTS.
``"auto"``
    ``"nutpie"`` when nutpie is installed, else ``"pymc"``.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import warnings
from collections import OrderedDict

import numpy as np

SAMPLERS = ("auto", "nutpie", "nutpie-pytensor", "pymc")
INFERENCE_METHODS = ("auto", "nuts", "svi", "advi")
# NUTS's mass-matrix adaptation, nutpie's ``adaptation``: "diag" (nutpie's
# default, from draw and gradient variances) or "low_rank" (diagonal plus a
# low-rank correction along correlated directions).  On the seed's data the
# default model's chains drift along correlated directions of the weights'
# group means; with "low_rank" 1 of 10 default fits warned (4 of 10 with
# "diag"), at about 6x the time, nearly all of it nutpie's adaptation during
# warm-up; on the defaults suite's larger posteriors it helped less
# (benchmarks/README.md, "Session 20").
MASS_MATRICES = ("diag", "low_rank")

# inference="auto": NUTS when its fit is expected to take at most
# AUTO_NUTS_SECONDS on this machine, SVI above.  The expected time is
# NUTS_SECONDS_PER_UNIT x rows x network parameters x iterations x chains /
# cores, calibrated on the default NUTS fits of benchmarks/README.md
# ("Thousands of groups"; `python -m benchmarks scale`).
AUTO_NUTS_SECONDS = 120.0
NUTS_SECONDS_PER_UNIT = 3.0e-7

_CACHE_SIZE = 32
_compiled_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


def resolve_sampler(sampler: str) -> str:
    """The route ``sampler`` names; ``"auto"`` is nutpie when it is installed."""
    has_nutpie = importlib.util.find_spec("nutpie") is not None
    if sampler == "auto":
        return "nutpie" if has_nutpie else "pymc"
    if sampler.startswith("nutpie") and not has_nutpie:
        raise ImportError(
            f"sampler={sampler!r} needs the nutpie package: pip install nutpie, or use "
            "sampler='pymc'."
        )
    return sampler


def parallel_cores(chains: int) -> int:
    """Cores the chains (or restarts) of one fit run on: one each, up to the
    machine's."""
    return max(1, min(chains, os.cpu_count() or 1))


def expected_nuts_seconds(definition, n_rows: int, iterations: int, chains: int) -> float:
    """The expected wall time of a NUTS fit here (see ``AUTO_NUTS_SECONDS``)."""
    cores = parallel_cores(chains)
    units = n_rows * definition.spec.n_params * iterations * chains / cores
    return NUTS_SECONDS_PER_UNIT * units


def resolve_inference(inference: str, definition, n_rows: int, iterations: int,
                      chains: int) -> str:
    """The route ``inference`` names; ``"auto"``: ``"nuts"`` when its fit is
    expected to take at most ``AUTO_NUTS_SECONDS``, else ``"svi"``."""
    if inference != "auto":
        return inference
    seconds = expected_nuts_seconds(definition, n_rows, iterations, chains)
    return "nuts" if seconds <= AUTO_NUTS_SECONDS else "svi"


def model_data(model) -> dict[str, np.ndarray]:
    """Current values of a PyMC model's ``pm.Data`` containers."""
    from pytensor.compile.sharedvalue import SharedVariable

    return {
        var.name: var.get_value()
        for var in model.named_vars.values()
        if isinstance(var, SharedVariable)
    }


def clear_compile_cache() -> None:
    """Forget every compiled model (frees memory; next fits recompile)."""
    with _cache_lock:
        _compiled_cache.clear()


def _nutpie_pytensor(definition, data):
    """nutpie's compiled PyMC model, from the cache when the structure is known."""
    import nutpie

    model = definition.build_pymc(*data)
    # sample_weight adds a pm.Data container and a Potential: another graph
    key = (definition.cache_key(), data[3] is None)
    with _cache_lock:
        compiled = _compiled_cache.get(key)
        if compiled is not None:
            _compiled_cache.move_to_end(key)
    if compiled is None:
        compiled = nutpie.compile_pymc_model(model)
        with _cache_lock:
            _compiled_cache[key] = compiled
            while len(_compiled_cache) > _CACHE_SIZE:
                _compiled_cache.popitem(last=False)
        return compiled
    return compiled.with_data(**model_data(model))


def _nutpie_adaptation(mass_matrix: str) -> dict:
    """nutpie's keyword for ``mass_matrix``: ``adaptation`` where nutpie has
    it (0.16.11), else the older ``low_rank_modified_mass_matrix`` (0.16.8,
    which Python 3.11 resolves; newer nutpie takes it with a
    ``FutureWarning``)."""
    import inspect

    import nutpie

    if "adaptation" in inspect.signature(nutpie.sample).parameters:
        return {"adaptation": mass_matrix}
    return {"low_rank_modified_mass_matrix": mass_matrix == "low_rank"}


def _sample_nutpie(compiled, **settings):
    import nutpie

    return nutpie.sample(compiled, save_warmup=False, **settings)


# sample statistics nutpie stores only when asked to (its own conversion skips
# them when absent): with nothing asked, none is there to convert
_UNASKED_STATS = (
    "gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
    "mass_matrix_stds", "divergence_start", "divergence_end", "divergence_momentum",
    "divergence_start_gradient", "transformed_position", "transformed_gradient",
    "transformation_mu",
)


def _sample_kept(compiled, **settings):
    """``nutpie.sample`` turning only the kept draws into numpy arrays.

    nutpie's own conversion makes arrays of the warm-up draws as well and
    drops them afterwards (``save_warmup=False``): at 500 groups x 6 classes
    and ``tune=1000`` that doubled a fit's peak memory.  Here the raw trace's
    warm-up rows are sliced off first (zero-copy) and nutpie's converter sees
    only the draws.  The converter is private to nutpie: where it is missing
    (another nutpie version) ``nutpie.sample`` converts as before."""
    import nutpie
    import pandas as pd

    try:
        from nutpie.sample import _arrow_to_arviz
    except ImportError:
        return _sample_nutpie(compiled, **settings)
    trace = nutpie.sample(compiled, save_warmup=False, return_raw_trace=True, **settings)
    draws, stats = trace.get_arrow_trace()
    del trace
    n_tune = [int(np.sum(s.column("tuning").to_numpy())) for s in stats]
    draws = [d.slice(n, d.num_rows - n) for d, n in zip(draws, n_tune)]
    stats = [s.slice(n, s.num_rows - n) for s, n in zip(stats, n_tune)]
    coords = {name: pd.Index(values) for name, values in compiled.coords.items()}
    with warnings.catch_warnings():
        # ArviZ 0.x on the (now empty) warm-up groups, which it then drops
        warnings.filterwarnings("ignore", message="More chains", category=UserWarning)
        return _arrow_to_arviz(draws, stats, skip_vars=list(_UNASKED_STATS), coords=coords,
                               save_warmup=False)


def add_weights(idata, definition) -> None:
    """Add to ``idata``'s posterior the variables of the table it lacks (the
    per-group weights, when nutpie stored only the free variables), from
    its draws of the free ones."""
    import xarray as xr

    post = idata.posterior
    if all(v.name in post for v in definition.variables()):
        return
    free = {v.name: np.asarray(post[v.name].values) for v in definition.free_variables()}
    for name, value in definition.weight_values(free, batch_ndim=2).items():
        dims = ("chain", "draw", *(f"{name}_dim_{i}" for i in range(value.ndim - 2)))
        post[name] = xr.DataArray(value, dims=dims)


def _sample_kernels(definition, data, settings):
    """nutpie on the kernels; any failure of that route (building the model,
    its first evaluation, nutpie rejecting it) falls back to nutpie's public
    route with one warning."""
    from .kernels.nutpie import compiled_model

    try:
        compiled = compiled_model(definition.build_kernel(*data), free_only=True)
        idata = _sample_kept(compiled, **settings)
        add_weights(idata, definition)
        return idata
    except Exception as exc:  # noqa: BLE001 - any failure: take the public route
        warnings.warn(
            f"skhbnn's sampling kernels failed ({type(exc).__name__}: {exc}); nutpie "
            "compiles the PyMC model instead, which is slower. Pass "
            "sampler='nutpie-pytensor' to choose that route and silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
    return _sample_nutpie(_nutpie_pytensor(definition, data), **settings)


def sample_nuts(
    definition,
    data: tuple,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
    progressbar: bool,
    mass_matrix: str = "diag",
):
    """Run NUTS on ``definition`` given ``data = (X, y, codes, weights)``; return the
    posterior as ArviZ data (``InferenceData`` or ``DataTree``).  ``mass_matrix``
    is nutpie's ``adaptation`` (:data:`MASS_MATRICES`)."""
    cores = parallel_cores(chains)
    route = resolve_sampler(sampler)
    if mass_matrix != "diag" and route == "pymc":
        raise ValueError(
            f"mass_matrix={mass_matrix!r} needs nutpie's sampler, but this fit uses "
            f"PyMC's (sampler={sampler!r}), which adapts a diagonal mass matrix only: "
            "install nutpie and use sampler='auto', or mass_matrix='diag'."
        )
    settings = dict(
        draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
        target_accept=target_accept, progress_bar=progressbar,
    )
    if mass_matrix != "diag":  # nutpie's default otherwise, as before the option
        settings.update(_nutpie_adaptation(mass_matrix))
    if route == "nutpie":
        idata = _sample_kernels(definition, data, settings)
    elif route == "nutpie-pytensor":
        idata = _sample_nutpie(_nutpie_pytensor(definition, data), **settings)
    else:
        import pymc as pm

        with definition.build_pymc(*data):
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
        raise KeyboardInterrupt(
            f"sampling was interrupted after {n_draws} of {draws} draws per chain; "
            "the estimator keeps its state from before this fit."
        )
    return idata


def fit_advi(definition, data: tuple, *, iterations: int, draws: int, seed: int,
             progressbar: bool):
    """Mean-field ADVI; returns ``draws`` draws of the approximation (1 chain)."""
    import pymc as pm

    model = definition.build_pymc(*data)
    rng = np.random.default_rng(seed)
    initial = model.initial_point()
    start = {name: rng.normal(size=initial[name].shape) for name in definition.advi_start_names()}
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


def add_log_likelihood(idata, values: np.ndarray, name: str = "y_obs") -> None:
    """Add the pointwise log-likelihood ``values`` (chain, draw, row) to
    ``idata`` as its ``log_likelihood`` group, named as ArviZ expects (the
    observed variable's name), on ArviZ 0.x ``InferenceData`` and ArviZ 1.x
    ``DataTree`` alike."""
    import xarray as xr

    post = idata.posterior
    dataset = xr.Dataset(
        {name: (("chain", "draw", f"{name}_dim_0"), np.asarray(values, dtype=float))},
        coords={"chain": post["chain"].values, "draw": post["draw"].values},
    )
    if hasattr(idata, "children"):  # xarray DataTree (ArviZ 1.x / PyMC 6)
        idata["log_likelihood"] = xr.DataTree(dataset)
    else:
        idata.add_groups(log_likelihood=dataset)


def divergences(idata) -> np.ndarray | None:
    """Divergent transitions after tuning, per chain; ``None`` where the
    sampler recorded none (never a silent 0)."""
    stats = getattr(idata, "sample_stats", None)
    try:
        diverging = stats["diverging"]
    except (TypeError, KeyError):
        return None
    values = np.asarray(diverging.values)
    return values.reshape(values.shape[0], -1).sum(axis=1).astype(int)
