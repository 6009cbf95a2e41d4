"""Thousands of groups: ``python -m benchmarks scale`` (issue 12).

**Grouped data** (``skhbnn.datasets.make_grouped_classification``, data seed
0): G groups of 20 rows, 10 training and 10 test rows each, 6 features, 2 or
6 classes.  Groups differ in feature means, intercepts (so the class balance
varies by group) and slopes; the signal is nonlinear.  Every fit is scored
on all test rows and on the test rows of the first 500 groups, where it
meets **NUTS fitted on those 500 groups** (``inference="nuts"``, otherwise
the defaults).  Each fit runs in its own process, which reports its peak
resident memory.

* ``skhbnn``: ``HierarchicalBayesianMLPClassifier()`` at its defaults
  (``inference="auto"`` takes SVI at these sizes; ``inference_`` says so);
* ``advi``: today's ``inference="advi"`` at its default 30,000 iterations
  (1k groups only: at 10k groups it runs for hours);
* ``hgb+te``: ``HistGradientBoostingClassifier`` on the features and the
  group target-encoded (``sklearn.preprocessing.TargetEncoder``, cross-fitted);
* ``pooled``: the same boosting without the group;
* ``per-group``: one ``LogisticRegression`` per group (its training class
  frequencies where a group has one class); up to 10k groups.

**Rotated moons**, 500 groups x 50 training points (``seed_data``, seed 31),
as in ``python -m benchmarks scaling``: SVI at the defaults and with the
seed's bias-free network, each against ``inference="advi"`` (30,000
iterations) of the same model on the same data (wall and CPU ratios), and
against NUTS fitted on the first 100 groups (scored on those).

``SKHBNN_SCALE_REFS`` names the reference fits to run (default ``nuts,advi``;
``none`` for neither: they do not depend on the SVI path).  ``SKHBNN_SCALE``
picks parts: a comma-separated list of ``moons`` and ``<groups>x<classes>``
(default ``moons,1000x2,1000x6,10000x2,10000x6,100000x2``); ``SKHBNN_SCALE_SEEDS``
the random states of the skhbnn fits (default ``0,1,2`` up to 10k groups,
``0`` above).  ``--quick``: 1k groups,
binary, one seed, no ADVI and no NUTS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from ._common import header, percent, row, seconds

FULL_PARTS = "moons,1000x2,1000x6,10000x2,10000x6,100000x2"
SUBSET = 500  # groups where NUTS meets the others
MOONS_SUBSET = 100


def grouped_data(n_groups: int, n_classes: int):
    from skhbnn.datasets import make_grouped_classification

    return make_grouped_classification(
        n_groups=n_groups, n_features=6, n_classes=n_classes, min_rows=20, max_rows=20,
        random_state=0, split=True,
    )


def _metrics(y, proba) -> dict:
    from sklearn.metrics import log_loss

    proba = np.clip(proba, 1e-12, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    return {"accuracy": float(np.mean(proba.argmax(axis=1) == y)),
            "log_loss": float(log_loss(y, proba, labels=np.arange(proba.shape[1])))}


def _baseline(method, X, X_te, y, g, g_te):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import TargetEncoder

    K = int(y.max()) + 1
    if method == "pooled":
        return HistGradientBoostingClassifier(random_state=0).fit(X, y).predict_proba(X_te)
    if method == "hgb+te":
        enc = TargetEncoder(target_type="binary" if K == 2 else "multiclass")
        A = np.c_[X, enc.fit_transform(g[:, None], y)]
        B = np.c_[X_te, enc.transform(g_te[:, None])]
        return HistGradientBoostingClassifier(random_state=0).fit(A, y).predict_proba(B)
    proba = np.empty((len(X_te), K))  # per-group logistic regressions
    train = np.split(np.argsort(g, kind="stable"), np.cumsum(np.bincount(g))[:-1])
    test = np.split(np.argsort(g_te, kind="stable"), np.cumsum(np.bincount(g_te))[:-1])
    for rows, out in zip(train, test):
        labels = np.unique(y[rows])
        if labels.size == 1:
            p = (np.bincount(y[rows], minlength=K) + 1.0) / (rows.size + K)
            proba[out] = p
            continue
        lr = LogisticRegression(max_iter=200).fit(X[rows], y[rows])
        proba[out] = 1.0 / (rows.size + K)  # classes the group never showed
        proba[np.ix_(out, labels)] = lr.predict_proba(X_te[out]) * (1 - (K - labels.size) / (rows.size + K))
    return proba


def one(spec: dict) -> dict:
    """One fit, in this process: ``spec`` names the data, method and seed."""
    import resource
    import time
    import warnings

    from ._common import cpu_seconds, quiet, seed_data

    quiet()
    warnings.simplefilter("default", category=Warning)  # count our own warnings
    if spec["data"] == "moons":
        X, X_te, y, y_te, g, g_te = seed_data(n_groups=spec.get("groups", 500))
        subset = MOONS_SUBSET
    else:
        X, X_te, y, y_te, g, g_te = grouped_data(spec["groups"], spec["classes"])
        subset = SUBSET
    method = spec["method"]
    if spec.get("only_subset"):
        X, y, g = X[g < subset], y[g < subset], g[g < subset]
        X_te, y_te, g_te = X_te[g_te < subset], y_te[g_te < subset], g_te[g_te < subset]
    out: dict = {}
    start, start_cpu = time.perf_counter(), cpu_seconds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if method in ("pooled", "hgb+te", "per-group"):
            proba = _baseline(method, X, X_te, y, g, g_te)
            fit_end = time.perf_counter()
        else:
            from skhbnn import HierarchicalBayesianMLPClassifier

            params = dict(random_state=spec.get("seed", 0), progressbar=False,
                          **spec.get("params", {}))
            est = HierarchicalBayesianMLPClassifier(**params).fit(X, y, groups=g)
            fit_end = time.perf_counter()
            out["fit_cpu"] = cpu_seconds() - start_cpu
            proba = est.predict_proba(X_te, groups=g_te)
            out["inference"] = getattr(est, "inference_", None)
            d = est.diagnostics_ or {}
            out["chain_weights"] = d.get("chain_weights")
            out["stages"] = d.get("svi_stage_seconds")
            out["pareto_k"] = d.get("pareto_k")
            out["within_mode_rhat"] = d.get("within_mode_rhat")
            out["divergences"] = d.get("divergences")
            out["min_ess"] = d.get("min_ess")
    out["fit"] = fit_end - start
    out["predict"] = time.perf_counter() - fit_end
    ours = [w for w in caught
            if "skhbnn" in str(w.filename) or "Convergence" in type(w.message).__name__]
    out["warnings"] = sorted({type(w.message).__name__ for w in ours})
    out["warning_messages"] = sorted({str(w.message)[:400] for w in ours})
    out["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    out["all"] = _metrics(y_te, proba)
    sub = g_te < subset
    out["subset"] = _metrics(y_te[sub], proba[sub])
    return out


def _child(spec: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scale", json.dumps(spec)],
        capture_output=True, text=True, check=False,
    )
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}


def _show(label: str, res: dict, subset_label: str) -> None:
    if "error" in res:
        row(label, "FAILED", res["error"])
        return
    a, s = res["all"], res["subset"]
    cpu = f"CPU {seconds(res['fit_cpu']):>7}" if "fit_cpu" in res else " " * 11
    route = f" [{res['inference']}]" if res.get("inference") else ""
    row(label + route, f"fit {seconds(res['fit']):>7}", cpu, f"peak {res['peak_gb']:.2f} GB",
        f"all {percent(a['accuracy'])} / {a['log_loss']:.4f}",
        f"{subset_label} {percent(s['accuracy'])} / {s['log_loss']:.4f}",
        f"k-hat <= {max(res['pareto_k']):.1f}" if res.get("pareto_k") else "",
        ("warns " + ",".join(res["warnings"])) if res["warnings"] else "")
    for message in res.get("warning_messages", []):
        print(f"    {message}")


def _grouped_part(groups: int, classes: int, seeds, with_advi: bool, with_nuts: bool) -> dict:
    header(f"{groups} groups x 10 training rows, {classes} classes "
           f"(accuracy / log loss; first {SUBSET} groups)")
    base = {"data": "grouped", "groups": groups, "classes": classes}
    res = {}
    for seed in seeds:
        res[f"skhbnn/{seed}"] = _child({**base, "method": "skhbnn", "seed": seed})
        _show(f"skhbnn defaults, random_state={seed}", res[f"skhbnn/{seed}"], f"first {SUBSET}")
    if with_nuts:
        res["nuts"] = _child({**base, "method": "skhbnn", "only_subset": True,
                              "params": {"inference": "nuts"}})
        _show(f"NUTS on the first {SUBSET} groups", res["nuts"], f"first {SUBSET}")
    if with_advi:
        res["advi"] = _child({**base, "method": "skhbnn", "params": {"inference": "advi"}})
        _show("inference='advi' (30,000 iterations)", res["advi"], f"first {SUBSET}")
    # one logistic regression per group costs ~10-60 ms: not at 100k groups
    for method in ("hgb+te", "pooled", "per-group")[: 3 if groups <= 10_000 else 2]:
        res[method] = _child({**base, "method": method})
        _show(method, res[method], f"first {SUBSET}")
    fits = [r for k, r in res.items() if k.startswith("skhbnn/") and "all" in r]
    if fits and "subset" in res.get("nuts", {}):
        acc = [r["subset"]["accuracy"] - res["nuts"]["subset"]["accuracy"] for r in fits]
        row(f"skhbnn - NUTS, first {SUBSET} groups (min / median)",
            f"accuracy {100 * min(acc):+.2f} / {100 * float(np.median(acc)):+.2f} points")
    if fits and "all" in res.get("hgb+te", {}):
        ll = [r["all"]["log_loss"] - res["hgb+te"]["all"]["log_loss"] for r in fits]
        row("skhbnn - hgb+te, all groups (max / median)",
            f"log loss {max(ll):+.4f} / {float(np.median(ll)):+.4f}")
    return res


def _moons_part(seeds) -> dict:
    header(f"rotated moons, 500 groups x 50 points (first {MOONS_SUBSET} groups)")
    res = {}
    for seed in seeds:
        for label, params in (("defaults", {}), ("use_bias=False", {"use_bias": False})):
            key = f"svi {label}/{seed}"
            res[key] = _child({"data": "moons", "method": "skhbnn", "seed": seed,
                               "params": {"inference": "svi", **params}})
            _show(f"SVI {label}, random_state={seed}", res[key], f"first {MOONS_SUBSET}")
    if "advi" in _refs():  # the same model as each SVI row, at ADVI's default iterations
        for label, params in (("defaults", {}), ("use_bias=False", {"use_bias": False})):
            res[f"advi {label}"] = _child({"data": "moons", "method": "skhbnn", "seed": seeds[0],
                                           "params": {"inference": "advi", **params}})
            _show(f"inference='advi', {label}", res[f"advi {label}"], f"first {MOONS_SUBSET}")
    if "nuts" in _refs():
        res["nuts"] = _child({"data": "moons", "groups": MOONS_SUBSET, "method": "skhbnn",
                              "params": {"inference": "nuts", "use_bias": False}})
        _show(f"NUTS on {MOONS_SUBSET} groups, use_bias=False", res["nuts"],
              f"first {MOONS_SUBSET}")
    for label in ("defaults", "use_bias=False"):
        advi = res.get(f"advi {label}", {})
        fits = [r for k, r in res.items() if k.startswith(f"svi {label}/") and "fit" in r]
        if "fit" in advi and fits:
            wall = [advi["fit"] / r["fit"] for r in fits]
            cpu = [advi["fit_cpu"] / r["fit_cpu"] for r in fits]
            row(f"ADVI / SVI {label}, the same model: wall (min / median)",
                f"{min(wall):.1f}x / {float(np.median(wall)):.1f}x",
                f"CPU {min(cpu):.1f}x / {float(np.median(cpu)):.1f}x")
    return res


def _refs() -> set:
    return set(os.environ.get("SKHBNN_SCALE_REFS", "nuts,advi").split(","))


def run(quick: bool = False) -> dict:
    parts = os.environ.get("SKHBNN_SCALE", "1000x2" if quick else FULL_PARTS).split(",")
    env_seeds = os.environ.get("SKHBNN_SCALE_SEEDS")
    results = {}
    for part in parts:
        if part == "moons":
            seeds = [int(s) for s in (env_seeds or "0,1,2").split(",")]
            results[part] = _moons_part(seeds)
            continue
        groups, classes = (int(v) for v in part.split("x"))
        default = "0" if quick or groups > 10_000 else "0,1,2"
        seeds = [int(s) for s in (env_seeds or default).split(",")]
        results[part] = _grouped_part(
            groups, classes, seeds, with_advi=groups <= 1000 and not quick and "advi" in _refs(),
            with_nuts=groups <= 10_000 and not quick and "nuts" in _refs())
    return results


if __name__ == "__main__":
    print(json.dumps(one(json.loads(sys.argv[1])), default=float))
