"""The seed's hierarchical BNN: skhbnn's default fit vs a plain PyMC script.

Model: 18 groups x 50 training points, 2-5-5-1 tanh network without biases,
non-centred group weights with one HalfNormal sd per layer.  Both sides run 2
chains x (1000 tune + 1000 draws) with target_accept 0.9 (the seed's setting
and skhbnn's default).

* baseline: the seed's script modernised (``pm.Data``, batched matmul),
  ``pm.sample(init="advi+adapt_diag", nuts_sampler="pymc")``, then test
  predictions as the seed makes them: ``pm.sample_posterior_predictive`` on the
  test inputs, Bernoulli draws averaged and thresholded at 0.5;
* skhbnn: ``HierarchicalBayesianMLPClassifier(use_bias=False).fit`` with every
  other argument at its default, then ``predict``;
* skhbnn, pytensor route: the same with nutpie sampling the pytensor-compiled
  PyMC model instead of skhbnn's kernels (``sampler="nutpie-pytensor"``), the
  default before the kernels.

Times include compilation.  ESS/s is the bulk ESS of each layer's group sd
divided by the fit time (sampling and compilation).
"""

from __future__ import annotations

import numpy as np

from ._common import (
    PLAIN_GROUP_SDS,
    TARGET_ACCEPT,
    ess,
    header,
    percent,
    plain_hierarchical_model,
    ppc_mean,
    ratio,
    row,
    seconds,
    seed_data,
    stacked,
    timed,
)

FULL = {"draws": 1000, "tune": 1000, "chains": 2}
QUICK = {"draws": 150, "tune": 150, "chains": 2}


def run_plain(data, settings, seed, n_init=200_000):
    import pymc as pm

    X_train, X_test, y_train, y_test, g_train, g_test = data
    Xs_train, Ys_train = stacked(X_train, y_train, g_train)
    Xs_test, Ys_test = stacked(X_test, y_test, g_test)
    t = {}
    with timed(t, "fit"):
        model = plain_hierarchical_model(
            Xs_train, Ys_train, np.random.default_rng(seed)
        )
        with model:
            idata = pm.sample(
                **settings,
                cores=settings["chains"],
                init="advi+adapt_diag",
                n_init=n_init,
                target_accept=TARGET_ACCEPT,
                nuts_sampler="pymc",
                random_seed=seed,
                progressbar=False,
                compute_convergence_checks=False,
            )
    with timed(t, "predict"):
        pred = ppc_mean(model, idata, seed, ann_input=Xs_test, ann_output=Ys_test) > 0.5
    sds = [idata.posterior[name].values for name in PLAIN_GROUP_SDS]
    return {
        **t,
        "accuracy": float(np.mean(pred == Ys_test)),
        "ess": [ess(sd) for sd in sds],
        "divergences": int(np.asarray(idata.sample_stats["diverging"].values).sum()),
    }


def run_skhbnn(data, settings, seed, **params):
    from skhbnn import HierarchicalBayesianMLPClassifier, clear_compile_cache

    X_train, X_test, y_train, y_test, g_train, g_test = data
    clear_compile_cache()  # pay compilation, as a fresh process would
    t = {}
    clf = HierarchicalBayesianMLPClassifier(
        use_bias=False, random_state=seed, progressbar=False, **settings, **params
    )
    with timed(t, "fit"):
        clf.fit(X_train, y_train, groups=g_train)
    with timed(t, "predict"):
        pred = clf.predict(X_test, groups=g_test)
    sds = [clf.posterior_draws_[f"sd{layer}"] for layer in range(3)]
    return {
        **t,
        "accuracy": float(np.mean(pred == y_test)),
        "ess": [ess(sd) for sd in sds],
        "divergences": clf.diagnostics_["divergences"] if clf.diagnostics_ else 0,
    }


def report(name, res):
    ess_s = [e / res["fit"] for e in res["ess"]]
    row(f"{name}: fit / predict wall", seconds(res["fit"]), seconds(res["predict"]))
    row(
        f"{name}: fit / predict CPU",
        seconds(res["fit_cpu"]),
        seconds(res["predict_cpu"]),
    )
    row(f"{name}: test accuracy", percent(res["accuracy"]))
    row(f"{name}: ESS sd0 sd1 sd2", *(f"{e:.0f}" for e in res["ess"]))
    row(
        f"{name}: ESS/s sd0 sd1 sd2 (min)",
        *(f"{e:.2f}" for e in ess_s),
        f"(min {min(ess_s):.2f})",
    )
    row(f"{name}: min ESS per CPU-second", f"{min(res['ess']) / res['fit_cpu']:.2f}")
    row(f"{name}: divergences", res["divergences"])


def run(quick: bool = False, seed: int = 1) -> dict:
    settings = QUICK if quick else FULL
    header(
        "hierarchical: seed model, 18 groups x 50 points, "
        f"{settings['chains']} chains x ({settings['tune']} tune + {settings['draws']} draws)"
    )
    data = seed_data()
    # A smoke run shortens the baseline's ADVI initialisation too (the seed's
    # 200k-iteration default stops at convergence, ~60k iterations here).
    plain = run_plain(data, settings, seed, n_init=20_000 if quick else 200_000)
    report("plain PyMC", plain)
    ours = run_skhbnn(data, settings, seed)
    report("skhbnn", ours)
    old = run_skhbnn(data, settings, seed, sampler="nutpie-pytensor")
    report("skhbnn, pytensor route", old)
    min_ess_s = [min(r["ess"]) / r["fit"] for r in (plain, ours)]
    row("RATIO fit wall (plain / skhbnn)", ratio(plain["fit"], ours["fit"]))
    row("RATIO fit CPU (plain / skhbnn)", ratio(plain["fit_cpu"], ours["fit_cpu"]))
    row(
        "RATIO fit+predict wall (plain / skhbnn)",
        ratio(plain["fit"] + plain["predict"], ours["fit"] + ours["predict"]),
    )
    row("RATIO min ESS/s (skhbnn / plain)", f"{min_ess_s[1] / min_ess_s[0]:.2f}x")
    row("RATIO fit wall (pytensor route / kernels)", ratio(old["fit"], ours["fit"]))
    ess_cpu = [min(r["ess"]) / r["fit_cpu"] for r in (plain, ours)]
    row("RATIO min ESS per CPU-s (skhbnn / plain)", f"{ess_cpu[1] / ess_cpu[0]:.2f}x")
    row(
        "accuracy difference (skhbnn - plain)",
        f"{100 * (ours['accuracy'] - plain['accuracy']):+.2f} points",
    )
    return {"plain": plain, "skhbnn": ours, "skhbnn_pytensor": old}
