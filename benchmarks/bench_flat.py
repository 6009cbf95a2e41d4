"""The seed's 18 flat per-group BNNs: skhbnn vs 18 plain PyMC fits.

Each of the 18 groups (50 training points) gets its own 2-5-5-1 tanh network
without biases and N(0, 1) weights, sampled with 2 chains x (1000 tune + 1000
draws), target_accept 0.9, on both sides.

* baseline: the seed's loop, modernised: per group build the model
  (``pm.Data``), ``pm.sample(nuts_sampler="pymc")`` (its default init, as the
  seed's flat fits used; every call compiles its own model), then
  ``pm.sample_posterior_predictive`` on the test inputs, averaged and
  thresholded at 0.5;
* skhbnn: ``BayesianMLPClassifier(use_bias=False).fit`` per group with every
  other argument at its default: nutpie samples through skhbnn's kernels,
  compiled once by numba and loaded from its cache (the first fit of the run
  loads them);
* skhbnn, pytensor route: the same with nutpie sampling the pytensor-compiled
  PyMC model (``sampler="nutpie-pytensor"``): the first fit compiles, the other 17
  re-use the compiled model with new data.

Times cover all 18 groups, compilation included.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    TARGET_ACCEPT,
    header,
    percent,
    plain_flat_model,
    ppc_mean,
    ratio,
    row,
    seconds,
    seed_data,
    timed,
)

FULL = {"draws": 1000, "tune": 1000, "chains": 2}
QUICK = {"draws": 150, "tune": 150, "chains": 2}


def _per_group(data, n_groups):
    X_train, X_test, y_train, y_test, g_train, g_test = data
    for g in range(n_groups):
        yield (
            g,
            X_train[g_train == g],
            y_train[g_train == g],
            X_test[g_test == g],
            y_test[g_test == g],
        )


def run_plain(data, settings, n_groups, seed):
    import pymc as pm

    t, hits, n = {}, 0, 0
    with timed(t, "total"):
        for g, Xtr, ytr, Xte, yte in _per_group(data, n_groups):
            model = plain_flat_model(Xtr, ytr, np.random.default_rng(seed + g))
            with model:
                idata = pm.sample(
                    **settings,
                    cores=settings["chains"],
                    target_accept=TARGET_ACCEPT,
                    nuts_sampler="pymc",
                    random_seed=seed + g,
                    progressbar=False,
                    compute_convergence_checks=False,
                )
            pred = ppc_mean(model, idata, seed + g, ann_input=Xte, ann_output=yte) > 0.5
            hits += int(np.sum(pred == yte))
            n += len(yte)
    return {**t, "accuracy": hits / n}


def run_skhbnn(data, settings, n_groups, seed, sampler="auto"):
    from skhbnn import BayesianMLPClassifier, clear_compile_cache

    clear_compile_cache()  # the first fit pays compilation, as in a fresh process
    t, hits, n, first = {}, 0, 0, {}
    with timed(t, "total"):
        for g, Xtr, ytr, Xte, yte in _per_group(data, n_groups):
            clf = BayesianMLPClassifier(
                use_bias=False, random_state=seed + g, progressbar=False, sampler=sampler,
                **settings,
            )
            with timed(first if g == 0 else {}, "first"):
                clf.fit(Xtr, ytr)
            hits += int(np.sum(clf.predict(Xte) == yte))
            n += len(yte)
    return {**t, "first_fit": first["first"], "accuracy": hits / n}


def _report(name, res, first=None):
    row(f"{name}: total wall / CPU", seconds(res["total"]), seconds(res["total_cpu"]))
    if first:
        row(f"{name}: {first}", seconds(res["first_fit"]))
    row(f"{name}: test accuracy", percent(res["accuracy"]))


def run(quick: bool = False, seed: int = 1) -> dict:
    settings = QUICK if quick else FULL
    n_groups = 4 if quick else 18
    header(
        f"flat: {n_groups} per-group fits, 50 points each, "
        f"{settings['chains']} chains x ({settings['tune']} tune + {settings['draws']} draws)"
    )
    data = seed_data()
    plain = run_plain(data, settings, n_groups, seed)
    _report("plain PyMC", plain)
    ours = run_skhbnn(data, settings, n_groups, seed)
    _report("skhbnn", ours, "first fit (loads the kernels)")
    old = run_skhbnn(data, settings, n_groups, seed, sampler="nutpie-pytensor")
    _report("skhbnn, pytensor route", old, "first fit (compiles)")
    row("RATIO wall (plain / skhbnn)", ratio(plain["total"], ours["total"]))
    row("RATIO CPU (plain / skhbnn)", ratio(plain["total_cpu"], ours["total_cpu"]))
    row("RATIO wall (pytensor route / kernels)", ratio(old["total"], ours["total"]))
    row(
        "accuracy difference (skhbnn - plain)",
        f"{100 * (ours['accuracy'] - plain['accuracy']):+.2f} points",
    )
    return {"plain": plain, "skhbnn": ours, "skhbnn_pytensor": old}
