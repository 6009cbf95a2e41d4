"""Grouped nonlinear regression: the hierarchical regressor at its PACKAGE
DEFAULTS against the ways users would otherwise model the groups.

Data (generator fixed here and in ``skhbnn.datasets``):
``make_grouped_regression(n_groups=30, n_samples=56)`` (one feature): per
group a sine of its own amplitude, direction, frequency, phase and offset
around a shared shape, noise sd 0.3.  Each group trains on 4-16 of its rows
(drawn per group: unequal, few) and is tested on 40 others.  Data seeds
``SEEDS``; each model's ``random_state`` is the data seed.

Models, all at their defaults (``progressbar=False``):

* ``HierarchicalBayesianMLPRegressor()`` with ``groups=``;
* one ``BayesianMLPRegressor()`` per group (flat, on that group's rows);
* one pooled ``BayesianMLPRegressor()`` (all rows, no groups);
* ``Ridge()`` on the features plus the group one-hot;
* ``HistGradientBoostingRegressor`` with the group as a categorical feature
  (``categorical_features``), and with the group target-encoded
  (``TargetEncoder``, cross-fitted as scikit-learn does).

Reported per model: test RMSE, and for the BNNs the mean log predictive
density of the test rows (``mlpd``: the log of the posterior predictive
density, exact over the stored draws) and the coverage of the central 90%
predictive interval (from 4000 ``sample_y`` draws per row); median and
min-max over the seeds; fit wall and CPU seconds (median).  The first seed's
fits draw ``docs/img/regression-bands.png``: six groups' training and test
points with the hierarchical and the per-group flat predictive mean and 90%
interval.

``--quick``: one seed, 200 tune + 200 draws for the BNNs, 10 groups.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._common import cpu_seconds, header, row

SEEDS = (0, 1, 2, 3, 4)
N_GROUPS = 30
N_TEST = 40
TRAIN_SIZES = (4, 16)  # each group trains on this many rows, inclusive range
QUICK = {"draws": 200, "tune": 200}


def split(random_state: int, n_groups: int = N_GROUPS):
    """``X_train, X_test, y_train, y_test, g_train, g_test``: per group 4-16
    training rows and ``N_TEST`` test rows."""
    from skhbnn.datasets import make_grouped_regression

    X, y, g = make_grouped_regression(
        n_groups=n_groups, n_samples=TRAIN_SIZES[1] + N_TEST, random_state=random_state
    )
    rng = np.random.default_rng([random_state, 1])
    train = np.zeros(len(y), dtype=bool)
    test = np.zeros(len(y), dtype=bool)
    for group in range(n_groups):
        rows = np.flatnonzero(g == group)
        k = rng.integers(TRAIN_SIZES[0], TRAIN_SIZES[1] + 1)
        train[rows[:k]] = True
        test[rows[TRAIN_SIZES[1] :]] = True
    return X[train], X[test], y[train], y[test], g[train], g[test]


def _log_density(est, X, y, groups=None):
    """Mean log posterior predictive density of ``y`` at ``X`` (in ``y``'s
    units), exact over the fitted draws and their chain weights."""
    from scipy.special import logsumexp

    from skhbnn.network import forward
    from skhbnn.prediction import flatten_chains

    draws = flatten_chains(est.posterior_draws_)
    weights = est._draw_weights()
    n = next(iter(draws.values())).shape[0]
    log_w = np.full(n, -np.log(n)) if weights is None else np.log(weights / weights.sum())
    if groups is None:
        parts = [(np.ones(len(y), dtype=bool), draws, draws["sigma"])]
    else:
        X, routed = est._rows_by_group(X, groups)
        parts = [(rows, est._params_of(c, draws), est._sigma_of(c, draws)) for rows, c in routed]
    out = np.empty(len(y))
    for rows, params, sigma in parts:
        f = forward(params, X[rows], est.network_)[..., 0] * est.y_scale_ + est.y_mean_
        s = sigma[:, None] * est.y_scale_
        logp = -0.5 * ((y[rows] - f) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
        out[rows] = logsumexp(logp + log_w[:, None], axis=0)
    return float(out.mean())


def _coverage(samples, y, level=0.9):
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=1)
    return float(np.mean((y >= lo) & (y <= hi)))


def _timed(fit):
    start, cpu = time.perf_counter(), cpu_seconds()
    out = fit()
    return out, time.perf_counter() - start, cpu_seconds() - cpu


FIGURE = "docs/img/regression-bands.png"


def figure(hier, flats, data, path=FIGURE, n_show=6):
    """Six groups: training points, test points, and each model's predictive
    mean with its central 90% interval along the feature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Xtr, Xte, ytr, yte, gtr, gte = data
    grid = np.linspace(-2, 2, 200)[:, None]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), sharex=True, sharey=True)
    for ax, group in zip(axes.ravel(), np.unique(gtr)[:n_show]):
        for est, colour, label, kw in (
            (flats[group], "tab:orange", "flat BNN of the group", {}),
            (hier, "tab:blue", "hierarchical BNN", {"groups": np.full(len(grid), group)}),
        ):
            mean = est.predict(grid, **kw)
            samples = est.sample_y(grid, n_samples=2000, random_state=0, **kw)
            lo, hi = np.quantile(samples, [0.05, 0.95], axis=1)
            ax.fill_between(grid[:, 0], lo, hi, color=colour, alpha=0.2, lw=0)
            ax.plot(grid[:, 0], mean, color=colour, label=label)
        te, tr = gte == group, gtr == group
        ax.scatter(Xte[te, 0], yte[te], s=8, color="0.6", label="test rows")
        ax.scatter(Xtr[tr, 0], ytr[tr], s=22, color="k", label="training rows")
        ax.set_title(f"group {group}: {tr.sum()} training rows", fontsize=10)
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Posterior predictive mean and 90% interval, package defaults")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run_seed(seed: int, quick: bool = False, n_groups: int = N_GROUPS, plot: bool = False) -> dict:
    from sklearn.compose import ColumnTransformer, make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, TargetEncoder

    from skhbnn import BayesianMLPRegressor, HierarchicalBayesianMLPRegressor

    Xtr, Xte, ytr, yte, gtr, gte = split(seed, n_groups)
    bnn = dict(random_state=seed, progressbar=False, **(QUICK if quick else {}))
    results = {}

    def rmse(pred):
        return float(np.sqrt(np.mean((pred - yte) ** 2)))

    def bnn_metrics(est, pred, groups=None):
        kw = {} if groups is None else {"groups": groups}
        samples = est.sample_y(Xte, n_samples=4000, random_state=seed, **kw)
        return {
            "rmse": rmse(pred),
            "mlpd": _log_density(est, Xte, yte, groups),
            "coverage90": _coverage(samples, yte),
        }

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hier, wall, cpu = _timed(
            lambda: HierarchicalBayesianMLPRegressor(**bnn).fit(Xtr, ytr, groups=gtr)
        )
    warned = any("unreliable" in str(w.message) for w in caught)
    results["hierarchical BNN"] = {
        **bnn_metrics(hier, hier.predict(Xte, groups=gte), gte), "wall": wall, "cpu": cpu,
        "warned": warned,
    }

    def pooled_fit():
        return BayesianMLPRegressor(**bnn).fit(Xtr, ytr)

    pooled, wall, cpu = _timed(pooled_fit)
    results["pooled BNN"] = {**bnn_metrics(pooled, pooled.predict(Xte)), "wall": wall, "cpu": cpu}

    def per_group():
        models = {}
        for group in np.unique(gtr):
            rows = gtr == group
            models[group] = BayesianMLPRegressor(**bnn).fit(Xtr[rows], ytr[rows])
        return models

    models, wall, cpu = _timed(per_group)
    pred = np.empty(len(yte))
    samples = np.empty((len(yte), 4000))
    density = np.empty(len(yte))
    for group, est in models.items():
        rows = gte == group
        pred[rows] = est.predict(Xte[rows])
        samples[rows] = est.sample_y(Xte[rows], n_samples=4000, random_state=seed)
        density[rows] = _log_density(est, Xte[rows], yte[rows]) * rows.sum()
    results["flat BNN per group"] = {
        "rmse": rmse(pred), "mlpd": float(density.sum() / len(yte)),
        "coverage90": _coverage(samples, yte), "wall": wall, "cpu": cpu,
    }

    Ftr, Fte = np.column_stack([Xtr, gtr]), np.column_stack([Xte, gte])
    group_col = Xtr.shape[1]
    onehot = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), [group_col]), remainder="passthrough"
    )
    baselines = {
        "Ridge + group one-hot": make_pipeline(onehot, Ridge()),
        "HGB, group categorical": HistGradientBoostingRegressor(
            categorical_features=[group_col], random_state=seed
        ),
        "HGB, group target-encoded": make_pipeline(
            ColumnTransformer(
                [("group", TargetEncoder(random_state=seed), [group_col])],
                remainder="passthrough",
            ),
            HistGradientBoostingRegressor(random_state=seed),
        ),
    }
    for name, model in baselines.items():
        model, wall, cpu = _timed(lambda m=model: m.fit(Ftr, ytr))
        results[name] = {"rmse": rmse(model.predict(Fte)), "wall": wall, "cpu": cpu}
    results["_data"] = {"train_rows": int(len(ytr)), "test_rows": int(len(yte)),
                        "groups": int(n_groups)}
    if plot:
        figure(hier, models, (Xtr, Xte, ytr, yte, gtr, gte))
    return results


def _summary(values, fmt):
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(np.median(values))} [{fmt(values.min())}-{fmt(values.max())}]"


def run(quick: bool = False) -> dict:
    seeds = SEEDS[:1] if quick else SEEDS
    n_groups = 10 if quick else N_GROUPS
    header(
        f"Grouped regression: {n_groups} groups x 4-16 training rows (+{N_TEST} test "
        f"rows each), data seeds {list(seeds)}; package defaults"
    )
    per_seed = {}
    for seed in seeds:
        per_seed[seed] = run_seed(seed, quick, n_groups, plot=not quick and seed == seeds[0])
        data = per_seed[seed]["_data"]
        print(f"  seed {seed}: {data['train_rows']} training rows", flush=True)
    models = [m for m in per_seed[seeds[0]] if not m.startswith("_")]
    row("model", "RMSE", "mlpd", "90% coverage", "fit wall", "fit CPU")
    summary = {}
    for model in models:
        rs = [per_seed[s][model] for s in seeds]
        line = {
            "rmse": _summary([r["rmse"] for r in rs], lambda v: f"{v:.4f}"),
            "mlpd": _summary([r["mlpd"] for r in rs], lambda v: f"{v:.4f}")
            if "mlpd" in rs[0] else "-",
            "coverage90": _summary([r["coverage90"] for r in rs], lambda v: f"{100 * v:.1f}%")
            if "coverage90" in rs[0] else "-",
            "wall": _summary([r["wall"] for r in rs], lambda v: f"{v:.1f} s"),
            "cpu": _summary([r["cpu"] for r in rs], lambda v: f"{v:.1f} s"),
        }
        row(model, line["rmse"], line["mlpd"], line["coverage90"], line["wall"], line["cpu"])
        summary[model] = line
    warned = sum(per_seed[s]["hierarchical BNN"]["warned"] for s in seeds)
    print(f"  hierarchical fits that raised ConvergenceWarning: {warned} of {len(seeds)}")
    return {"per_seed": per_seed, "summary": summary}
