"""NUTS chains continued from their last draw: more draws for a fit whose
chains have not mixed yet.

A BNN's NUTS chains can crawl along directions that a diagonal mass matrix
follows badly; on the post's data 3-4 in 10 default fits end with a
within-mode split R-hat above 1.05 or fewer than 100 effective draws, and
every one of them passed with 2,000 draws per chain instead of 500
(``benchmarks/README.md``, "Session 21").  Sampling 2,000 draws in every fit
would cost most fits for the few that need them.  So a fit that is unreliable
*only* because its chains have not mixed (no divergences above the rate, no
modes averaged, enough draws to judge) goes on: every chain is continued from
its last draw, with a short warm-up of ``CONTINUE_TUNE`` steps to adapt the
step size and mass matrix again (nutpie cannot resume its adapted state) and
as many new draws as it has, until the diagnostics pass or the chains hold
``max_draws`` draws.  The warm-up draws are dropped, so every chain is one
Markov chain whose later part was run with a newly adapted kernel: both
parts leave the posterior invariant.

Only the kernel route continues (``sampler="auto"`` with nutpie, the
default); other routes' fits warn as before.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Warm-up of a continued chain: measured on the post's data (Session 21).
CONTINUE_TUNE = 100


class ContinueChains(Exception):
    """Raised by a fit whose chains should go on; :func:`skhbnn._base.fit_atomically`
    catches it and fits again, continuing the chains of ``idata_``."""


def max_draws_of(max_draws, draws: int) -> int:
    """``max_draws`` resolved: "auto" is 4 x ``draws``; ``None`` is ``draws``
    (never continue)."""
    if max_draws is None:
        return int(draws)
    if max_draws == "auto":
        return 4 * int(draws)
    return max(int(max_draws), int(draws))


def continuation_seed(seed: int, n_draws: int) -> int:
    """The seed of the continuation after ``n_draws`` draws per chain."""
    return int(np.random.default_rng([int(seed), int(n_draws)]).integers(2**31 - 1))


def continue_chains(definition, data: tuple, idata, *, draws: int, seed: int,
                    target_accept: float, cores: int):
    """``idata``'s chains, each continued by ``draws`` draws after
    :data:`CONTINUE_TUNE` warm-up steps from its last draw; returns the
    whole chains as new ArviZ data (posterior and divergences)."""
    import nutpie

    from .inference import add_weights
    from .kernels.nutpie import compiled_model
    from .persistence.netcdf import idata_groups, make_idata

    problem = definition.build_kernel(*data)
    compiled = compiled_model(problem, free_only=True)
    free = list(problem.free_shapes())
    post = idata.posterior
    n_chains, n_prev = post.sizes["chain"], post.sizes["draw"]
    base = continuation_seed(seed, n_prev)

    def run(chain: int):
        last = {n: np.asarray(post[n].values[chain, -1]) for n in free}
        x0 = problem.pack(last)
        model = dataclasses.replace(compiled, initial_point_func=lambda _seed: x0.copy())
        return nutpie.sample(
            model, draws=draws, tune=CONTINUE_TUNE, chains=1, cores=1, seed=base + chain,
            target_accept=target_accept, progress_bar=False, save_warmup=False,
        )

    with ThreadPoolExecutor(max_workers=max(1, cores)) as pool:
        parts = list(pool.map(run, range(n_chains)))
    groups = idata_groups(idata)
    continued = [idata_groups(p) for p in parts]
    if any(c["posterior"].sizes["draw"] < draws for c in continued):
        # nutpie turns Ctrl-C into an early, partial result (as in sample_nuts)
        raise KeyboardInterrupt(
            "sampling was interrupted while the chains were continued; the estimator keeps "
            "its state from before this fit."
        )
    new = {"posterior": _along_draws(groups["posterior"][free],
                                     [c["posterior"][free] for c in continued])}
    stats = groups.get("sample_stats")
    if stats is not None:  # divergences, and leapfrog steps where recorded
        keep = [v for v in ("diverging", "n_steps")
                if v in stats and all(v in c["sample_stats"] for c in continued)]
        if keep:
            new["sample_stats"] = _along_draws(
                stats[keep], [c["sample_stats"][keep] for c in continued]
            )
    out = make_idata(new)
    add_weights(out, definition)
    return out


def _along_draws(first, continued: list):
    """``first`` (chain, draw) with each chain's ``continued`` draws appended."""
    import xarray as xr

    tail = xr.concat(
        [c.drop_vars(["chain", "draw"], errors="ignore") for c in continued], dim="chain",
        data_vars="all", coords="minimal", compat="override", join="override",
    )
    head = first.drop_vars(["chain", "draw"], errors="ignore")
    tail = tail.assign_coords({d: head[d] for d in head.coords if d not in ("chain", "draw")})
    merged = xr.concat([head, tail], dim="draw", data_vars="all", coords="minimal",
                       compat="override", join="override")
    return merged.assign_coords(chain=np.arange(merged.sizes["chain"]),
                                draw=np.arange(merged.sizes["draw"]))
