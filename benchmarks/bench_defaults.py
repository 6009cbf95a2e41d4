"""The defaults suite: the hierarchical classifier at its PACKAGE DEFAULTS on
grouped data sets with the traits real grouped data has.

Data sets (each split per group: the first part of a group trains, the rest
tests; generators fixed in ``skhbnn.datasets``):

* ``moons-31``, ``moons-7``, ``moons-11``: the seed's generator
  (``make_rotated_moons``, 18 groups x (50 + 50) rows, 2 features) on three
  data seeds; 31 is the post's.  Point-symmetric data: the bias-free network
  of the post is exactly right here;
* ``offsets``: ``make_grouped_classification(n_groups=40, n_features=10)``,
  groups of 4-139 rows that differ in intercepts (class balance), slopes and
  feature means: biases are needed;
* ``multiclass``: the same generator with 3 classes, 40 groups, 6 features;
* ``midsize``: the same generator with 200 groups of 10-160 rows (about
  5.6k training rows), 8 features.

Models: ``HierarchicalBayesianMLPClassifier()`` with ``random_state`` only
(and ``progressbar=False``) over ``SEEDS`` (``inference="auto"`` takes NUTS on all but
``midsize``, which goes to SVI); ``HistGradientBoostingClassifier``
and ``LogisticRegression`` at their defaults on the features plus the one-hot
group (one thread); on the moons sets also one default
``BayesianMLPClassifier`` per group (the seed's "flat" approach; first seed).

Reported per data set and model: test accuracy and log loss (median and
min-max over the seeds), fit wall and CPU seconds (median), how many fits
raised a ``ConvergenceWarning``, and from ``diagnostics_`` the number of
modes the chains sat in, the divergence rate and the worst ESS.

``--quick``: one seed, 200 tune + 200 draws, the two smallest data sets.
``SKHBNN_SUITE=moons-31,offsets`` (comma-separated names, ``seed-targets``
for the part below) runs only those.

First, the post's data at the defaults over ``random_state`` 0..9, each fit
timed next to the bias-free network at the 0.1 defaults
(:func:`run_seed_targets`).  ``SKHBNN_SEED_PARAMS='{"use_bias": "auto"}'``
(JSON) fits that setting in place of the defaults there, against the same
baseline in the same run.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np

from ._common import cpu_seconds, environment, header, row

SEEDS = (0, 1, 2)
QUICK = {"draws": 200, "tune": 200}


def datasets(quick: bool = False) -> dict:
    from skhbnn.datasets import make_grouped_classification, make_rotated_moons

    out = {
        "moons-31": make_rotated_moons(random_state=31, split=True),
        "offsets": make_grouped_classification(n_groups=40, n_features=10, random_state=0,
                                               split=True),
    }
    if quick:
        return out
    out["moons-7"] = make_rotated_moons(random_state=7, split=True)
    out["moons-11"] = make_rotated_moons(random_state=11, split=True)
    out["multiclass"] = make_grouped_classification(
        n_groups=40, n_features=6, n_classes=3, random_state=1, split=True
    )
    out["midsize"] = make_grouped_classification(
        n_groups=200, n_features=8, min_rows=10, max_rows=160, random_state=2, split=True
    )
    return out


def describe(name, data) -> str:
    X_tr, _, y_tr, y_te, g_tr, g_te = data
    sizes = np.bincount(np.concatenate([g_tr, g_te]))
    return (
        f"{name}: {len(sizes)} groups, {X_tr.shape[1]} features, {len(np.unique(y_tr))} "
        f"classes, {len(y_tr)} train / {len(y_te)} test rows, group sizes "
        f"{sizes.min()}-{sizes.max()}"
    )


def _metrics(y_te, proba, classes) -> dict:
    from sklearn.metrics import log_loss

    return {
        "accuracy": float(np.mean(classes[np.argmax(proba, axis=1)] == y_te)),
        "log_loss": float(log_loss(y_te, proba, labels=classes)),
    }


def _timed_fit(fn) -> tuple[dict, object]:
    from sklearn.exceptions import ConvergenceWarning

    start, start_cpu = time.perf_counter(), cpu_seconds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = fn()
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {"fit_s": time.perf_counter() - start, "fit_cpu_s": cpu_seconds() - start_cpu,
            "warned": int(n_warn > 0)}, result


def fit_hierarchical(data, seed, quick):
    from skhbnn import HierarchicalBayesianMLPClassifier

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    clf = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False,
                                            **(QUICK if quick else {}))
    res, _ = _timed_fit(lambda: clf.fit(X_tr, y_tr, groups=g_tr))
    res.update(_metrics(y_te, clf.predict_proba(X_te, groups=g_te), clf.classes_))
    d = clf.diagnostics_
    res.update(modes=len(set(d.get("chain_modes", [0]))),
               divergence_rate=d.get("divergence_rate"), min_ess=d["min_ess"],
               inference=clf.inference_, biases=bool(clf.network_.use_bias),
               n_draws=d["n_draws"])
    return res


def fit_plain_midsize(data, seed: int = 0) -> dict:
    """The baseline of issue 11's mid-size target: a plain PyMC script of the
    default model (``_common.plain_default_hierarchical_model``), compiled and
    sampled by nutpie with the estimator's NUTS settings (4 chains x (500 +
    500), target_accept 0.9); test probabilities are the posterior mean of
    the network's output, computed from the draws."""
    import nutpie

    from ._common import plain_default_hierarchical_model, plain_default_predict

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    n_groups = int(max(g_tr.max(), g_te.max())) + 1

    def fit():
        model = plain_default_hierarchical_model(X_tr, y_tr, g_tr, n_groups)
        compiled = nutpie.compile_pymc_model(model)
        return nutpie.sample(compiled, chains=4, draws=500, tune=500, target_accept=0.9,
                             seed=seed, cores=2, progress_bar=False)

    res, idata = _timed_fit(fit)
    p = plain_default_predict(idata.posterior, X_te, g_te)
    res.update(_metrics(y_te, np.c_[1 - p, p], np.array([0, 1])))
    return res


def fit_flat_per_group(data, seed, quick):
    from skhbnn import BayesianMLPClassifier

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    classes = np.unique(y_tr)
    proba = np.zeros((len(y_te), len(classes)))
    total = {"fit_s": 0.0, "fit_cpu_s": 0.0, "warned": 0}
    for g in np.unique(g_tr):
        tr, te = g_tr == g, g_te == g
        clf = BayesianMLPClassifier(random_state=1000 * seed + int(g), progressbar=False,
                                    **(QUICK if quick else {}))
        res, _ = _timed_fit(lambda: clf.fit(X_tr[tr], y_tr[tr]))
        for k in ("fit_s", "fit_cpu_s"):
            total[k] += res[k]
        total["warned"] = max(total["warned"], res["warned"])
        proba[te] = clf.predict_proba(X_te[te])
    total.update(_metrics(y_te, proba, classes))
    return total


def fit_sklearn(data, kind):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    n_groups = int(max(g_tr.max(), g_te.max())) + 1

    def with_groups(X, g):
        return np.column_stack([X, np.eye(n_groups)[g]])

    model = HistGradientBoostingClassifier(random_state=0) if kind == "HGB" else LogisticRegression(max_iter=1000)
    with threadpool_limits(1):
        res, _ = _timed_fit(lambda: model.fit(with_groups(X_tr, g_tr), y_tr))
        res.update(_metrics(y_te, model.predict_proba(with_groups(X_te, g_te)), model.classes_))
    return res


def _summary(runs: list[dict]) -> str:
    def span(key, fmt):
        v = np.array([r[key] for r in runs], dtype=float)
        if len(v) == 1:
            return fmt.format(v[0])
        return f"{fmt.format(np.median(v))} [{fmt.format(v.min())}-{fmt.format(v.max())}]"

    text = (
        f"acc {span('accuracy', '{:.2%}')}  log loss {span('log_loss', '{:.4f}')}  "
        f"fit {np.median([r['fit_s'] for r in runs]):.1f} s wall / "
        f"{np.median([r['fit_cpu_s'] for r in runs]):.1f} s CPU  "
        f"warned {sum(r['warned'] for r in runs)}/{len(runs)}"
    )
    if "modes" in runs[0]:
        text += (
            f"  modes {[r['modes'] for r in runs]}  div rate max "
            f"{max(r['divergence_rate'] or 0 for r in runs):.4f}  min ESS "
            f"{min(r['min_ess'] for r in runs):.0f}  inference {sorted({r['inference'] for r in runs})}"
        )
    if "n_draws" in runs[0]:  # draws per chain, after any continuation (max_draws)
        text += f"  draws per chain {[r['n_draws'] for r in runs]}"
    if "biases" in runs[0]:  # the structure use_bias="auto" kept, per fit
        text += f"  biases {[int(r['biases']) for r in runs]}"
    return text


def run_seed_targets(seeds=range(10), quick: bool = False) -> dict:
    """The post's data (seed 31) at the defaults over ``random_state`` 0..9,
    each fit timed next to the bias-free network at the 0.1 defaults
    (``use_bias=False``, 2 chains x (1000 + 1000)), alternating, in the
    same run: the time ratio is per pair."""
    from skhbnn import HierarchicalBayesianMLPClassifier

    data = datasets()["moons-31"]
    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    # the bias-free fit as it was when issue 11 was filed: it never continued
    # its chains (max_draws, session 21)
    baseline = dict(use_bias=False, chains=2, draws=1000, tune=1000, max_draws=None)
    setting = json.loads(os.environ.get("SKHBNN_SEED_PARAMS", "{}"))
    out = {"defaults": [], "baseline": []}
    for seed in seeds:
        for key, params in (("defaults", setting), ("baseline", baseline)):
            if quick:
                params = {**params, **QUICK}
            clf = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False, **params)
            res, _ = _timed_fit(lambda: clf.fit(X_tr, y_tr, groups=g_tr))
            res.update(_metrics(y_te, clf.predict_proba(X_te, groups=g_te), clf.classes_))
            out[key].append(res)
            print(f"  random_state {seed} {key:<9} acc {res['accuracy']:.2%}  log loss "
                  f"{res['log_loss']:.4f}  fit {res['fit_s']:.1f} s / {res['fit_cpu_s']:.1f} s CPU"
                  f"  warned {res['warned']}  biases {int(clf.network_.use_bias)}  draws per "
                  f"chain {clf.diagnostics_['n_draws']}", flush=True)
    ratio = [b["fit_s"] / d["fit_s"] for d, b in zip(out["defaults"], out["baseline"])]
    ratio_cpu = [b["fit_cpu_s"] / d["fit_cpu_s"] for d, b in zip(out["defaults"], out["baseline"])]
    row(f"seed data: defaults{' + ' + json.dumps(setting) if setting else ''}",
        _summary(out["defaults"]))
    row("seed data: use_bias=False, 2 x (1000 + 1000)", _summary(out["baseline"]))
    row("baseline / defaults fit time (median, wall / CPU)",
        f"{np.median(ratio):.2f}x / {np.median(ratio_cpu):.2f}x; mean fit "
        f"{np.mean([d['fit_s'] for d in out['defaults']]):.1f} s vs "
        f"{np.mean([b['fit_s'] for b in out['baseline']]):.1f} s")
    return out


def run(quick: bool = False) -> dict:
    header(f"defaults suite ({'quick' if quick else 'full'})  {environment()}")
    seeds = SEEDS[:1] if quick else SEEDS
    only = [n for n in os.environ.get("SKHBNN_SUITE", "").split(",") if n]
    results = {}
    if not only or "seed-targets" in only:
        header("the post's data at the defaults, random_state 0..9, against the bias-free network")
        results["seed targets"] = run_seed_targets(range(1) if quick else range(10), quick)
    for name, data in datasets(quick).items():
        if only and name not in only:
            continue
        print(describe(name, data), flush=True)
        res = {"hierarchical": [fit_hierarchical(data, s, quick) for s in seeds]}
        row(f"{name}: hierarchical BNN (defaults)", _summary(res["hierarchical"]))
        if name.startswith("moons"):
            res["flat BNN per group"] = [fit_flat_per_group(data, s, quick) for s in seeds[:1]]
            row(f"{name}: flat BNN per group", _summary(res["flat BNN per group"]))
        if name == "midsize" and not quick:  # issue 11: >= 5x a plain PyMC + nutpie script
            res["plain PyMC + nutpie"] = [fit_plain_midsize(data)]
            row(f"{name}: plain PyMC + nutpie script", _summary(res["plain PyMC + nutpie"]))
            ours = res["hierarchical"]
            row(f"{name}: plain script / defaults fit time (min over seeds, wall / CPU)",
                f"{res['plain PyMC + nutpie'][0]['fit_s'] / max(r['fit_s'] for r in ours):.1f}x / "
                f"{res['plain PyMC + nutpie'][0]['fit_cpu_s'] / max(r['fit_cpu_s'] for r in ours):.1f}x")
        for kind in ("HGB", "LR"):
            res[kind] = [fit_sklearn(data, kind)]
            row(f"{name}: {kind} + group one-hot", _summary(res[kind]))
        results[name] = res
    return results


if __name__ == "__main__":
    run()
