"""Scaling: hierarchical fits as groups and points per group grow, NUTS and ADVI.

Data: ``make_rotated_moons`` (seed 31) with half of each group's points for
training and half for testing; the seed's 2-5-5-1 tanh network without biases.

* groups 18 -> 100 -> 500 at 50 training points per group;
* points per group 50 -> 150 -> 500 at 18 groups.

Each step fits ``HierarchicalBayesianMLPClassifier`` with NUTS (skhbnn's
default sampler, 2 chains x (1000 tune + 1000 draws)) and with
``inference="advi"`` (its default 30,000 iterations, 1,000 draws) and prints
wall time, CPU time and train / test accuracy.  The first 100 groups of the
500-group data are exactly the 100-group data, so the 500-group ADVI fit is
also scored on them, next to the NUTS fit of the 100-group step.

``--quick``: NUTS only up to 100 groups with 2 chains x (200 + 200), ADVI with
5,000 iterations, points per group only up to 150.
"""

from __future__ import annotations

import numpy as np

from ._common import header, percent, row, seconds, seed_data, timed

FULL = {
    "groups": (18, 100, 500),
    "points": (50, 150, 500),
    "nuts_max_groups": 500,
    "nuts": {"draws": 1000, "tune": 1000, "chains": 2},
    "advi": {"advi_iterations": 30000, "draws": 1000},
}
QUICK = {
    "groups": (18, 100, 500),
    "points": (50, 150),
    "nuts_max_groups": 100,
    "nuts": {"draws": 200, "tune": 200, "chains": 2},
    "advi": {"advi_iterations": 5000, "draws": 500},
}
SUBSET = 100  # groups scored in common by the 500-group ADVI and 100-group NUTS fits


def _fit(method, settings, data, seed):
    from skhbnn import HierarchicalBayesianMLPClassifier, clear_compile_cache

    X_train, X_test, y_train, y_test, g_train, g_test = data
    kwargs = (
        settings["nuts"]
        if method == "nuts"
        else {"inference": "advi", **settings["advi"]}
    )
    clear_compile_cache()  # every step pays its own compilation
    clf = HierarchicalBayesianMLPClassifier(
        use_bias=False, random_state=seed, progressbar=False, **kwargs
    )
    t = {}
    try:
        with timed(t, "fit"):
            clf.fit(X_train, y_train, groups=g_train)
    except (FloatingPointError, ValueError, RuntimeError) as exc:
        return {**t, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"}
    res = {
        **t,
        "train": float(np.mean(clf.predict(X_train, groups=g_train) == y_train)),
        "test": float(np.mean(clf.predict(X_test, groups=g_test) == y_test)),
    }
    sub = g_test < SUBSET
    res["test_first_100"] = float(
        np.mean(clf.predict(X_test[sub], groups=g_test[sub]) == y_test[sub])
    )
    if clf.diagnostics_:
        res["divergences"] = clf.diagnostics_["divergences"]
        res["max_rhat"] = clf.diagnostics_["max_rhat"]
    return res


def _show(label, res):
    if "error" in res:
        row(label, "FAILED", res["error"])
        return
    extra = ""
    if "max_rhat" in res:
        extra = f"  div {res['divergences']}  max R-hat {res['max_rhat']:.2f}"
    row(
        label,
        f"wall {seconds(res['fit']):>8}",
        f"CPU {seconds(res['fit_cpu']):>8}",
        f"train {percent(res['train'])}",
        f"test {percent(res['test'])}" + extra,
    )


def run(quick: bool = False, seed: int = 1) -> dict:
    s = QUICK if quick else FULL
    n = s["nuts"]
    header(
        f"scaling: NUTS {n['chains']} chains x ({n['tune']} + {n['draws']}), "
        f"ADVI {s['advi']['advi_iterations']} iterations"
    )
    steps = [(g, 50) for g in s["groups"]] + [(18, p) for p in s["points"] if p != 50]
    results = {}
    for n_groups, points in steps:
        data = seed_data(n_groups=n_groups, n_samples=2 * points)
        for method in ("nuts", "advi"):
            if method == "nuts" and n_groups > s["nuts_max_groups"]:
                continue
            res = _fit(method, s, data, seed)
            results[f"{n_groups}x{points}/{method}"] = res
            _show(f"{n_groups:>3} groups x {points:>3} pts {method.upper():>4}", res)
    big, ref = results.get("500x50/advi", {}), results.get(f"{SUBSET}x50/nuts", {})
    if "test_first_100" in big and "test" in ref:
        row(
            f"first {SUBSET} groups: test accuracy",
            f"ADVI on 500 groups {percent(big['test_first_100'])}",
            f"NUTS on {SUBSET} groups {percent(ref['test'])}",
        )
    return results
