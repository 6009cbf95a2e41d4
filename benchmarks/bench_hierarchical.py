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

**The default model** (issue 11), second part: the same data, the model the
package's defaults fit (biases on, each layer's weights and biases with their
own group sd; ``_common.plain_default_hierarchical_model``, whose log density
``tests/test_bench_defaults.py`` checks against the estimator's), at the
defaults' sampler settings (4 chains x (500 tune + 500 draws), target_accept
0.9) on both sides:

* baseline: the plain script sampled by **PyMC's own NUTS**
  (``pm.sample(nuts_sampler="pymc")``, PyMC's default initialisation), test
  probabilities the posterior mean of the network's output;
* skhbnn: ``HierarchicalBayesianMLPClassifier(random_state=seed)``, nothing
  else set (its chains are stacked; ESS is that of all draws pooled, as for
  the baseline).

Both report test accuracy and log loss, the bulk ESS of the six group sds,
leapfrog steps per draw, and one log density + gradient in ns per training
row (PyMC's compiled ``logp_dlogp_function`` and skhbnn's kernel, median of
repeated calls at one random point) next to the FLOP floor of
``probe_gradient_cost``.  ``SKHBNN_HIER=seed`` or ``defaults`` runs one part;
``SKHBNN_HIER_SEEDS`` (default ``0,1,2``) the seeds of the second.
"""

from __future__ import annotations

import os

import numpy as np

from ._common import (
    PLAIN_GROUP_SDS,
    TARGET_ACCEPT,
    ess,
    header,
    percent,
    plain_default_hierarchical_model,
    plain_default_predict,
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
DEFAULTS = {"draws": 500, "tune": 500, "chains": 4}  # the estimator's, for the script
DEFAULTS_QUICK = {"draws": 100, "tune": 100, "chains": 4}


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


def gradient_cost(data) -> dict:
    """ns per training row of one log density + gradient of the default
    model: PyMC's compiled function, skhbnn's kernel, and the FLOP floor."""
    from skhbnn.models import HierarchicalModel
    from skhbnn.network import NetworkSpec

    from .probe_gradient_cost import (
        FLOPS_PER_NS,
        NS_PER_EXP,
        arithmetic,
        per_call,
        per_call_in_kernel,
    )

    X, _, y, _, g, _ = data
    n_groups = len(np.unique(g))
    rng = np.random.default_rng(0)
    model = plain_default_hierarchical_model(X, y, g, n_groups)
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.trust_input = True
    n_dim = sum(np.size(v) for v in model.initial_point().values())
    plain = per_call(f, rng.normal(scale=0.3, size=n_dim), n=500)
    spec = NetworkSpec(X.shape[1], (5, 5), 1, "tanh", use_bias=True)
    problem = HierarchicalModel(spec, n_groups).build_kernel(X, y, g)
    x = rng.normal(scale=0.3, size=problem.n_dim)
    ours, inside = per_call(problem.evaluate, x), per_call_in_kernel(problem, x)
    flops, tanh = arithmetic(spec)
    return {"plain_ns_per_row": plain * 1e9 / len(y), "skhbnn_ns_per_row": ours * 1e9 / len(y),
            "skhbnn_in_kernel_ns_per_row": inside * 1e9 / len(y),
            "floor_ns_per_row": flops / FLOPS_PER_NS + tanh * NS_PER_EXP}


def _steps_per_draw(idata) -> float:
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "n_steps" not in stats:
        return float("nan")
    return float(np.mean(np.asarray(stats["n_steps"])))


def run_plain_default(data, settings, seed) -> dict:
    import pymc as pm

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    t = {}
    with timed(t, "fit"):
        model = plain_default_hierarchical_model(X_tr, y_tr, g_tr, len(np.unique(g_tr)))
        with model:
            idata = pm.sample(**settings, cores=2, target_accept=TARGET_ACCEPT,
                              nuts_sampler="pymc", random_seed=seed, progressbar=False,
                              compute_convergence_checks=False)
    with timed(t, "predict"):
        p = plain_default_predict(idata.posterior, X_te, g_te)
    sds = [idata.posterior[f"{k}{layer}_sd"].values for layer in range(3) for k in "wb"]
    return {**t, **_scores(y_te, p), "ess": [ess(sd) for sd in sds],
            "steps_per_draw": _steps_per_draw(idata),
            "divergences": int(np.asarray(idata.sample_stats["diverging"].values).sum())}


def run_skhbnn_default(data, seed, settings=None) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from skhbnn import HierarchicalBayesianMLPClassifier, clear_compile_cache

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    clear_compile_cache()
    clf = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False, **(settings or {}))
    t = {}
    with timed(t, "fit"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X_tr, y_tr, groups=g_tr)
    with timed(t, "predict"):
        p = clf.predict_proba(X_te, groups=g_te)[:, 1]
    names = [f"{k}{layer}" for layer in range(3) for k in ("sd", "sd_b")]
    n_chains = len(clf.diagnostics_["chain_weights"])
    sds = [np.asarray(clf.posterior_draws_[n]).reshape(n_chains, -1) for n in names]
    return {**t, **_scores(y_te, p), "ess": [ess(sd) for sd in sds],
            "steps_per_draw": _steps_per_draw(getattr(clf, "idata_", None)),
            "divergences": clf.diagnostics_["divergences"],
            "warned": any(issubclass(w.category, ConvergenceWarning) for w in caught),
            "inference": clf.inference_}


def _scores(y, p1) -> dict:
    """Accuracy and log loss of P(y = 1), scored as the defaults suite scores."""
    from .bench_defaults import _metrics

    return _metrics(y, np.c_[1 - p1, p1], np.array([0, 1]))


def run_defaults(quick: bool = False) -> dict:
    settings = DEFAULTS_QUICK if quick else DEFAULTS
    seeds = [int(s) for s in os.environ.get("SKHBNN_HIER_SEEDS", "0" if quick else "0,1,2").split(",")]
    header(
        "hierarchical: the DEFAULT model (biases, own bias sds), 18 groups x 50 points, "
        f"{settings['chains']} chains x ({settings['tune']} tune + {settings['draws']} draws), "
        f"random_state {seeds}"
    )
    data = seed_data()
    out = {"plain": [], "skhbnn": []}
    for seed in seeds:
        plain = run_plain_default(data, settings, seed)
        ours = run_skhbnn_default(data, seed, DEFAULTS_QUICK if quick else None)
        for name, res in (("plain PyMC (PyMC NUTS)", plain), ("skhbnn defaults", ours)):
            ess_s = min(res["ess"]) / res["fit"]
            row(f"seed {seed} {name}",
                f"acc {percent(res['accuracy'])}  log loss {res['log_loss']:.4f}  fit "
                f"{seconds(res['fit'])} wall / {seconds(res['fit_cpu'])} CPU  min ESS group sds "
                f"{min(res['ess']):.0f} ({ess_s:.2f}/s)  steps/draw {res['steps_per_draw']:.1f}  "
                f"divergences {res['divergences']}"
                + (f"  warned {int(res['warned'])}  {res['inference']}" if "warned" in res else ""))
        row(f"seed {seed} RATIO fit plain / skhbnn (wall / CPU)",
            f"{ratio(plain['fit'], ours['fit'])} / {ratio(plain['fit_cpu'], ours['fit_cpu'])}")
        row(f"seed {seed} RATIO min ESS/s of the group sds (skhbnn / plain)",
            f"{(min(ours['ess']) / ours['fit']) / (min(plain['ess']) / plain['fit']):.2f}x")
        out["plain"].append(plain)
        out["skhbnn"].append(ours)
    walls = [p["fit"] / o["fit"] for p, o in zip(out["plain"], out["skhbnn"])]
    cpus = [p["fit_cpu"] / o["fit_cpu"] for p, o in zip(out["plain"], out["skhbnn"])]
    row("RATIO fit wall plain / skhbnn (min / median)", f"{min(walls):.2f}x / {np.median(walls):.2f}x")
    row("RATIO fit CPU plain / skhbnn (min / median)", f"{min(cpus):.2f}x / {np.median(cpus):.2f}x")
    cost = gradient_cost(data)
    row("one log density + gradient, ns per row",
        f"PyMC {cost['plain_ns_per_row']:.1f}  skhbnn {cost['skhbnn_ns_per_row']:.1f} "
        f"(from a numba loop, as nutpie calls it: {cost['skhbnn_in_kernel_ns_per_row']:.1f})  "
        f"floor {cost['floor_ns_per_row']:.1f}")
    out["gradient_cost"] = cost
    return out


def run(quick: bool = False, seed: int = 1) -> dict:
    part = os.environ.get("SKHBNN_HIER", "")
    results = {}
    if part in ("", "seed"):
        results.update(run_seed(quick, seed))
    if part in ("", "defaults"):
        results["defaults"] = run_defaults(quick)
    return results


def run_seed(quick: bool = False, seed: int = 1) -> dict:
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
