"""Cold start: a new group learnt from K labelled points, at PACKAGE DEFAULTS.

Data: the post's generator, ``make_rotated_moons(n_groups=20, n_samples=100,
random_state=seed)`` for data seeds ``SEEDS``; every group's first 50 points
train and its last 50 test (the post's split).  Groups 0-14 are the
population: ``HierarchicalBayesianMLPClassifier()`` is fitted on their
training points.  Groups 15-19 are new: each learns from the first ``K`` of
its training points (``K`` in ``KS``; the first point of the missing class
swapped in if those ``K`` hold one class) and is scored on its 50 test
points.  Every estimator runs at its defaults with ``random_state=0``.

Ways to learn a new group:

* ``default prior``: ``BayesianMLPClassifier()``, ``Normal(0, 1)`` weights;
* ``MvNormal prior``: under ``hier.informed_prior()`` (the post's method:
  one MvNormal per weight matrix, hidden units aligned);
* ``population prior``: under ``hier.population_prior()`` (the population
  predictive: a mixture over 500 posterior draws);
* ``fit_new_group``: ``hier.fit_new_group(X_K, y_K, group=...)``, then
  ``hier.predict_proba(X_test, groups=...)`` (the same posterior, served by
  the hierarchical estimator);
* ``hierarchical refit``: ``HierarchicalBayesianMLPClassifier()`` refitted on
  the population's training points plus the K points of all five new groups
  (one fit per seed and K; its time is that fit's).

Reported per K and method: test accuracy and log loss averaged over the
new groups of all seeds (and the spread of the per-seed averages), and the
median wall and CPU seconds of one fit; the ratio of a refit's time to a
new-group fit's, from the same run.  The first seed's third new group draws
``docs/img/coldstart-surfaces.png``: its decision surface at K = 5, 15, 50
under the default, MvNormal and population priors.

Then the post's own setting at K = 50 (``post_groups``): its data (seed 31,
18 groups x 50 training points), ``HierarchicalBayesianMLPClassifier()`` at
``random_state`` in ``POST_STATES``, and ``InformedPriorTransfer(hier,
prefit=True)`` with the population prior (the default) and with the post's
MvNormal prior (``prior_type="mvnormal"``): every group's flat model learns
from the 50 points the population saw (as in the post), all scored on the
900 test points.  ``SKHBNN_COLDSTART=post`` runs only this part,
``=new`` only the new groups.

``--quick``: one seed, two new groups, K = 10, 200 tune + 200 draws; no
post part.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._common import cpu_seconds, header, row

SEEDS = (0, 1, 2)
POST_STATES = (0, 1, 2)
N_POPULATION = 15
N_NEW = 5
N_TRAIN = 50
KS = (5, 10, 20, 50)
QUICK = {"draws": 200, "tune": 200}
FIGURE = "docs/img/coldstart-surfaces.png"
FIGURE_KS = (5, 15, 50)
METHODS = ("default prior", "MvNormal prior", "population prior", "fit_new_group",
           "hierarchical refit")


def data(seed: int):
    """``(X, y, groups, train)``: 20 groups x 100 points, ``train`` the
    first 50 of each group."""
    from skhbnn.datasets import make_rotated_moons

    X, y, groups = make_rotated_moons(
        n_groups=N_POPULATION + N_NEW, n_samples=2 * N_TRAIN, random_state=seed
    )
    train = np.tile(np.r_[np.ones(N_TRAIN, bool), np.zeros(N_TRAIN, bool)],
                    N_POPULATION + N_NEW)
    return X, y, groups, train


def first_k(y, rows, k: int) -> np.ndarray:
    """The first ``k`` of ``rows``, with both classes: if they hold one,
    the last is replaced by the first row of the other class."""
    pick = rows[:k].copy()
    if len(np.unique(y[pick])) < 2:
        other = rows[k:][y[rows[k:]] != y[pick[0]]]
        pick[-1] = other[0]
    return pick


def _timed(fit):
    start, cpu = time.perf_counter(), cpu_seconds()
    out = fit()
    return out, time.perf_counter() - start, cpu_seconds() - cpu


def _scores(proba, y):
    from sklearn.metrics import log_loss

    return {"accuracy": float(np.mean(proba.argmax(axis=1) == y)),
            "log_loss": float(log_loss(y, proba, labels=[0, 1]))}


def run_seed(seed: int, quick: bool = False, plot: bool = False) -> dict:
    from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier

    settings = {"random_state": 0, "progressbar": False, **(QUICK if quick else {})}
    X, y, groups, train = data(seed)
    population = (groups < N_POPULATION) & train
    hier, wall, cpu = _timed(lambda: HierarchicalBayesianMLPClassifier(**settings).fit(
        X[population], y[population], groups=groups[population]))
    out = {"_population_fit": {"wall": wall, "cpu": cpu}}
    new = range(N_POPULATION, N_POPULATION + (2 if quick else N_NEW))
    ks = (10,) if quick else KS
    priors = {"default prior": None, "MvNormal prior": hier.informed_prior(),
              "population prior": hier.population_prior()}
    surfaces = {}
    for k in ks:
        picks = {g: first_k(y, np.flatnonzero((groups == g) & train), k) for g in new}
        tests = {g: np.flatnonzero((groups == g) & ~train) for g in new}
        results = {m: [] for m in METHODS}
        for g in new:
            Xk, yk, Xt, yt = X[picks[g]], y[picks[g]], X[tests[g]], y[tests[g]]
            for method, prior in priors.items():
                flat, wall, cpu = _timed(
                    lambda: BayesianMLPClassifier(prior=prior, **settings).fit(Xk, yk))
                results[method].append(
                    {**_scores(flat.predict_proba(Xt), yt), "wall": wall, "cpu": cpu,
                     "warned": _warned(flat)})
            fitted, wall, cpu = _timed(lambda: hier.fit_new_group(Xk, yk, group=f"new{g}"))
            proba = hier.predict_proba(Xt, groups=np.full(len(yt), f"new{g}", dtype=object))
            results["fit_new_group"].append({**_scores(proba, yt), "wall": wall, "cpu": cpu})
        rows = np.concatenate([np.flatnonzero(population)] + list(picks.values()))
        refit, wall, cpu = _timed(lambda: HierarchicalBayesianMLPClassifier(**settings).fit(
            X[rows], y[rows], groups=groups[rows]))
        for g in new:
            proba = refit.predict_proba(X[tests[g]], groups=groups[tests[g]])
            results["hierarchical refit"].append(
                {**_scores(proba, y[tests[g]]), "wall": wall, "cpu": cpu})
        out[k] = results
    if plot:
        _figure(X, y, groups, train, hier, settings)
    return out


def _warned(est) -> bool:
    from skhbnn.diagnostics import reliability_problems

    return bool(est.diagnostics_ and reliability_problems(est.diagnostics_))


def _figure(X, y, groups, train, hier, settings, path=FIGURE):
    """One new group's decision surface at K = 5, 15, 50 under each prior."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhbnn import BayesianMLPClassifier

    g = N_POPULATION + 2
    rows = np.flatnonzero((groups == g) & train)
    tests = np.flatnonzero((groups == g) & ~train)
    priors = {"default prior": None, "MvNormal prior": hier.informed_prior(),
              "population prior": hier.population_prior()}
    lim = np.abs(X[groups == g]).max() * 1.1
    grid = np.linspace(-lim, lim, 80)
    xx, yy = np.meshgrid(grid, grid)
    points = np.c_[xx.ravel(), yy.ravel()]
    fig, axes = plt.subplots(len(FIGURE_KS), len(priors), figsize=(9.6, 9.0),
                             sharex=True, sharey=True)
    for i, k in enumerate(FIGURE_KS):
        pick = first_k(y, rows, k)
        for j, (name, prior) in enumerate(priors.items()):
            flat = BayesianMLPClassifier(prior=prior, **settings).fit(X[pick], y[pick])
            p = flat.predict_proba(points)[:, 1].reshape(xx.shape)
            acc = np.mean(flat.predict(X[tests]) == y[tests])
            ax = axes[i, j]
            ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.8)
            ax.scatter(*X[tests].T, c=y[tests], cmap="RdBu_r", s=8, alpha=0.35,
                       edgecolors="none")
            ax.scatter(*X[pick].T, c=y[pick], cmap="RdBu_r", s=30, edgecolors="k")
            ax.set_title(f"{name}, K = {k}\ntest accuracy {100 * acc:.0f}%", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("A new group learnt from K points (large dots); small dots: its test "
                 "points", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  figure: {path}", flush=True)


def post_groups(states=POST_STATES) -> dict:
    """The post's 18 groups at K = 50: hierarchical vs the transfers."""
    from sklearn.metrics import log_loss

    from skhbnn import HierarchicalBayesianMLPClassifier, InformedPriorTransfer
    from skhbnn.datasets import make_rotated_moons

    X_tr, X_te, y_tr, y_te, g_tr, g_te = make_rotated_moons(random_state=31, split=True)
    header("The post's 18 groups, K = 50 (points the population saw), package defaults")
    row("random_state / model", "test accuracy", "test log loss", "fit wall")
    out = {}
    for state in states:
        hier, wall, _ = _timed(lambda: HierarchicalBayesianMLPClassifier(
            random_state=state, progressbar=False).fit(X_tr, y_tr, groups=g_tr))
        models = {"hierarchical": (hier, wall)}
        for kind in ("population", "mvnormal"):
            models[f"{kind} prior"] = _timed(lambda: InformedPriorTransfer(
                hier, prefit=True, prior_type=kind).fit(X_tr, y_tr, groups=g_tr))[:2]
        for name, (model, wall) in models.items():
            proba = model.predict_proba(X_te, groups=g_te)
            line = {"accuracy": float(np.mean(proba.argmax(axis=1) == y_te)),
                    "log_loss": float(log_loss(y_te, proba)), "wall": wall}
            out.setdefault(name, []).append(line)
            row(f"{state} {name}", f"{100 * line['accuracy']:.2f}%",
                f"{line['log_loss']:.4f}", f"{wall:.1f} s")
    for name, lines in out.items():
        acc = [100 * r["accuracy"] for r in lines]
        loss = [r["log_loss"] for r in lines]
        row(f"median [min-max] {name}", f"{np.median(acc):.2f}% [{min(acc):.2f}-{max(acc):.2f}]",
            f"{np.median(loss):.4f} [{min(loss):.4f}-{max(loss):.4f}]")
    return out


def run(quick: bool = False) -> dict:
    import os

    part = os.environ.get("SKHBNN_COLDSTART", "")
    if part == "post":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {"post": post_groups()}
    seeds = SEEDS[:1] if quick else SEEDS
    header(
        f"Cold start: {N_POPULATION} population groups x {N_TRAIN} training points, "
        f"new groups learnt from K points, data seeds {list(seeds)}; package defaults"
    )
    per_seed = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in seeds:
            per_seed[seed] = run_seed(seed, quick, plot=not quick and seed == seeds[0])
            print(f"  seed {seed}: population fit "
                  f"{per_seed[seed]['_population_fit']['wall']:.1f} s", flush=True)
    summary = {}
    ks = [k for k in per_seed[seeds[0]] if not isinstance(k, str)]
    row("K / method", "accuracy [per-seed range]", "log loss [per-seed range]",
        "fit wall", "fit CPU", "refit / fit (wall)")
    for k in ks:
        refit_wall = np.median([r["wall"] for s in seeds
                                for r in per_seed[s][k]["hierarchical refit"]])
        for method in METHODS:
            rs = {s: per_seed[s][k][method] for s in seeds}
            everything = [r for s in seeds for r in rs[s]]
            line = {
                "accuracy": float(np.mean([r["accuracy"] for r in everything])),
                "log_loss": float(np.mean([r["log_loss"] for r in everything])),
                "seed_accuracy": [float(np.mean([r["accuracy"] for r in rs[s]])) for s in seeds],
                "seed_log_loss": [float(np.mean([r["log_loss"] for r in rs[s]])) for s in seeds],
                "wall": float(np.median([r["wall"] for r in everything])),
                "cpu": float(np.median([r["cpu"] for r in everything])),
                "n_groups": len(everything),
            }
            line["refit_ratio"] = refit_wall / line["wall"]
            summary[f"K={k} {method}"] = line
            row(f"K={k:<3} {method}",
                f"{100 * line['accuracy']:.2f}% "
                f"[{100 * min(line['seed_accuracy']):.1f}-{100 * max(line['seed_accuracy']):.1f}]",
                f"{line['log_loss']:.4f} "
                f"[{min(line['seed_log_loss']):.3f}-{max(line['seed_log_loss']):.3f}]",
                f"{line['wall']:.1f} s", f"{line['cpu']:.1f} s",
                f"{line['refit_ratio']:.1f}x")
    result = {"per_seed": per_seed, "summary": summary}
    if not quick and part != "new":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result["post"] = post_groups()
    return result
