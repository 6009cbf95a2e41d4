"""Calibration, measured: skhbnn's BNNs against scikit-learn on held-out rows.

Two data sets, both split per group (first part of each group trains, the
rest tests):

* ``moons``: the seed's data, ``make_rotated_moons(random_state=31,
  split=True)``: 18 groups x (50 train + 50 test) rows, 2 features;
* ``grouped``: ``make_grouped_classification(n_groups=40, n_features=10,
  random_state=0, split=True)``: 40 groups of 4 to 139 rows, 10 features,
  binary, a shared nonlinear signal plus group intercepts and slopes.

Models, all at their PACKAGE DEFAULTS (only ``random_state`` and, for skhbnn,
``progressbar=False`` are set):

* ``flat BNN``: one ``BayesianMLPClassifier`` per group, fitted on that
  group's rows (the seed's "flat" approach).  A group whose training rows
  hold a single class cannot be fitted (a classifier needs two classes); its
  test rows get the Laplace-smoothed class frequencies of its training rows,
  ``(n_k + 1) / (n + K)`` (and count as the most uncertain rows when ranked
  by ``predict_std``);
* ``hierarchical BNN``: one ``HierarchicalBayesianMLPClassifier`` on all
  rows with ``groups=``;
* ``MLP``, ``HGB``, ``LR``: ``MLPClassifier``, ``HistGradientBoostingClassifier``
  and ``LogisticRegression``, each fitted on the features plus the one-hot
  encoded group (so they can learn group offsets; the features are used as
  they come, already on unit scale).  They run on one thread
  (``threadpoolctl``): with its default of all cores, HGB's OpenMP threads
  spin on a shared, busy machine (one fit: 66 s instead of 1 s).

The BNNs and the MLP are fitted with ``random_state`` 1, 2, 3 (full run):
their rows report the median and the min - max over the three.  HGB (no
early stopping at these sizes) and LR are deterministic: one fit each.

Metrics on the test rows: accuracy, log loss, Brier score (mean squared
error of the positive-class probability), expected calibration error
(:func:`expected_calibration_error`: 10 equal-width bins on the max
probability), the accuracy on the 80% of test rows a model is most sure of
(abstaining on the 20% most uncertain; by max probability for every model,
and by ``predict_std`` for the BNNs), for the BNNs the "std gap" (within
each quintile bin of the max probability, split the rows at the bin's median
``predict_std``; the gap is the lower half's accuracy minus the upper half's,
less the same difference of their mean max probabilities, averaged over the
five bins: what ``predict_std`` tells beyond the max probability, 0 when it
tells nothing), and
the wall time of each fit (for the
flat BNN: all per-group fits together; two tiny untimed fits first load
skhbnn's kernels), wall and CPU (the machine is
shared), plus the BNNs' sampler diagnostics (divergences, worst R-hat and
ESS of ``diagnostics_``; for the flat BNN over all its groups).

Figures (full run: ``docs/img/``; ``--quick``: a temporary folder):
``calibration-moons.png`` and ``calibration-grouped.png`` (reliability
diagrams, ``sklearn.calibration.CalibrationDisplay``, of the fits with the
first ``random_state``) and ``calibration-uncertainty.png`` (what
``predict_std`` buys: selective-prediction curves, and the hierarchical
model's accuracy and confidence on test rows binned by its ``predict_std``).

``--quick`` fits one ``random_state`` with 200 tune + 200 draws: a smoke
run, not the measurement.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from ._common import cpu_seconds, environment, header, row

SEEDS = (1, 2, 3)
QUICK_SEEDS = (1,)
QUICK_SAMPLER = {"draws": 200, "tune": 200}
COVERAGE = 0.8  # selective accuracy: keep the 80% most certain test rows
IMG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "img")
MODELS = ("flat BNN", "hierarchical BNN", "MLP", "HGB", "LR")
BNNS = ("flat BNN", "hierarchical BNN")


# ---------------------------------------------------------------- metrics
def expected_calibration_error(y_true, proba, n_bins: int = 10) -> float:
    """Expected calibration error of the max probability.

    Each row's confidence ``c = max_k proba[k]`` falls into one of ``n_bins``
    equal-width bins of [0, 1]: bin ``b`` holds ``b / n_bins <= c < (b + 1) /
    n_bins`` (the last bin includes 1).  Then
    ``ECE = sum_b (n_b / n) * |accuracy_b - mean confidence_b|`` over the
    non-empty bins, where ``accuracy_b`` is the share of the bin's rows whose
    most probable class (the first one on ties) is the true class.

    Parameters
    ----------
    y_true : array-like of shape (n,), int class indices into proba's columns
    proba : array-like of shape (n, n_classes)
    n_bins : int, default=10
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    bins = np.clip(np.floor(confidence * n_bins).astype(int), 0, n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def selective_accuracy(y_true, proba, uncertainty, coverage: float = COVERAGE) -> float:
    """Accuracy on the ``coverage`` share of rows with the lowest uncertainty
    (ties broken by row order)."""
    keep = round(coverage * len(y_true))
    order = np.argsort(uncertainty, kind="stable")[:keep]
    return float(np.mean(np.asarray(proba).argmax(axis=1)[order] == np.asarray(y_true)[order]))


def scores(y_true, proba, std=None) -> dict:
    """The benchmark's metrics of binary predictions (classes 0 and 1)."""
    from sklearn.metrics import brier_score_loss, log_loss

    proba = np.asarray(proba, dtype=float)
    out = {
        "accuracy": float(np.mean(proba.argmax(axis=1) == y_true)),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, proba[:, 1])),
        "ece": expected_calibration_error(y_true, proba),
        "sel_acc_maxp": selective_accuracy(y_true, proba, -proba.max(axis=1)),
    }
    if std is not None:
        out["sel_acc_std"] = selective_accuracy(y_true, proba, std.max(axis=1))
        _, low, high = std_split(y_true, proba, std)
        gaps = [(lo[0] - hi[0]) - (lo[1] - hi[1]) for lo, hi in zip(low, high)]
        gaps = [g for g in gaps if not np.isnan(g)]
        out["std_gap"] = float(np.mean(gaps)) if gaps else float("nan")
    return out


# ---------------------------------------------------------------- data
def datasets() -> dict:
    from skhbnn.datasets import make_grouped_classification, make_rotated_moons

    return {
        "moons": make_rotated_moons(random_state=31, split=True),
        "grouped": make_grouped_classification(
            n_groups=40, n_features=10, n_classes=2, random_state=0, split=True
        ),
    }


def _describe(name, data) -> str:
    X_tr, _, y_tr, y_te, g_tr, g_te = data
    sizes = np.bincount(np.concatenate([g_tr, g_te]))
    balance = np.array([y_tr[g_tr == g].mean() for g in np.unique(g_tr)])
    single = sum(len(np.unique(y_tr[g_tr == g])) < 2 for g in np.unique(g_tr))
    return (
        f"{name}: {len(sizes)} groups, {X_tr.shape[1]} features, {len(y_tr)} train / "
        f"{len(y_te)} test rows, group sizes {sizes.min()}-{sizes.max()} (median "
        f"{np.median(sizes):.0f}), class-1 share of train rows per group "
        f"{balance.min():.2f}-{balance.max():.2f}, {single} group(s) with one class in train"
    )


# ---------------------------------------------------------------- models
def _sampler(quick: bool) -> dict:
    return dict(QUICK_SAMPLER) if quick else {}


def fit_flat(data, seed: int, quick: bool):
    """One BayesianMLPClassifier per group; returns proba, std, fit seconds."""
    from skhbnn import BayesianMLPClassifier

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    proba = np.zeros((len(y_te), 2))
    std = np.zeros((len(y_te), 2))
    fit_time = fit_cpu = 0.0
    diag = {"divergences": 0, "max_rhat": 1.0, "min_ess": np.inf}
    for g in np.unique(g_tr):
        tr, te = g_tr == g, g_te == g
        counts = np.bincount(y_tr[tr], minlength=2)
        if np.count_nonzero(counts) < 2:  # one class: smoothed frequencies
            proba[te] = (counts + 1) / (counts.sum() + 2)
            std[te] = np.inf  # no posterior: ranked most uncertain
            continue
        clf = BayesianMLPClassifier(
            random_state=1000 * seed + int(g), progressbar=False, **_sampler(quick)
        )
        start, start_cpu = time.perf_counter(), cpu_seconds()
        clf.fit(X_tr[tr], y_tr[tr])
        fit_time += time.perf_counter() - start
        fit_cpu += cpu_seconds() - start_cpu
        diag = _worst(diag, clf.diagnostics_)
        if np.any(te):
            proba[te], std[te] = clf.predict_proba(X_te[te], return_std=True)
    return proba, std, {"fit_s": fit_time, "fit_cpu_s": fit_cpu, **diag}


def _worst(diag: dict, new) -> dict:
    """Fold a fit's ``diagnostics_`` into the worst seen so far."""
    if not new:
        return diag
    return {
        "divergences": diag["divergences"] + int(new.get("divergences", 0)),
        "max_rhat": max(diag["max_rhat"], float(new.get("max_rhat", 1.0))),
        "min_ess": min(diag["min_ess"], float(new.get("min_ess", np.inf))),
    }


def fit_hierarchical(data, seed: int, quick: bool):
    from skhbnn import HierarchicalBayesianMLPClassifier

    X_tr, X_te, y_tr, _, g_tr, g_te = data
    clf = HierarchicalBayesianMLPClassifier(
        random_state=seed, progressbar=False, **_sampler(quick)
    )
    start, start_cpu = time.perf_counter(), cpu_seconds()
    clf.fit(X_tr, y_tr, groups=g_tr)
    fit = {"fit_s": time.perf_counter() - start, "fit_cpu_s": cpu_seconds() - start_cpu}
    proba, std = clf.predict_proba(X_te, groups=g_te, return_std=True)
    start = {"divergences": 0, "max_rhat": 1.0, "min_ess": np.inf}
    return proba, std, {**fit, **_worst(start, clf.diagnostics_)}


def _with_groups(data):
    """Features plus the one-hot group, train and test."""
    from sklearn.preprocessing import OneHotEncoder

    X_tr, X_te, _, _, g_tr, g_te = data
    enc = OneHotEncoder(sparse_output=False, handle_unknown="ignore").fit(g_tr[:, None])
    return (
        np.hstack([X_tr, enc.transform(g_tr[:, None])]),
        np.hstack([X_te, enc.transform(g_te[:, None])]),
    )


def fit_sklearn(name, data, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    model = {
        "MLP": lambda: MLPClassifier(random_state=seed),
        "HGB": lambda: HistGradientBoostingClassifier(random_state=seed),
        "LR": lambda: LogisticRegression(),
    }[name]()
    F_tr, F_te = _with_groups(data)
    # One thread (OpenMP and BLAS): on a shared, busy machine HGB's OpenMP
    # threads spin (66 s instead of 1 s for one fit here); results are the same.
    with threadpool_limits(1):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        model.fit(F_tr, data[2])
        fit = {"fit_s": time.perf_counter() - start, "fit_cpu_s": cpu_seconds() - start_cpu}
        return model.predict_proba(F_te), None, fit


def _fit(name, data, seed, quick):
    if name == "flat BNN":
        return fit_flat(data, seed, quick)
    if name == "hierarchical BNN":
        return fit_hierarchical(data, seed, quick)
    return fit_sklearn(name, data, seed)


# ---------------------------------------------------------------- report
METRICS = (
    ("accuracy", "accuracy", "{:.3f}"),
    ("log_loss", "log loss", "{:.3f}"),
    ("brier", "Brier", "{:.3f}"),
    ("ece", "ECE", "{:.3f}"),
    ("sel_acc_maxp", f"acc@{COVERAGE:.0%} (max p)", "{:.3f}"),
    ("sel_acc_std", f"acc@{COVERAGE:.0%} (std)", "{:.3f}"),
    ("std_gap", "std gap", "{:+.3f}"),
    ("fit_s", "fit wall s", "{:.1f}"),
    ("fit_cpu_s", "fit CPU s", "{:.1f}"),
    ("max_rhat", "max R-hat", "{:.2f}"),
)


def _summary(values, fmt) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return (
        f"{fmt.format(np.median(values))} "
        f"[{fmt.format(min(values))}, {fmt.format(max(values))}]"
    )


def markdown_table(results: dict) -> str:
    """One data set's results as a markdown table (median [min, max] over seeds)."""
    lines = [
        "| model | " + " | ".join(label for _, label, _ in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for model, runs in results.items():
        cells = [
            _summary([run.get(key) for run in runs], fmt) for key, _, fmt in METRICS
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _versions() -> str:
    import matplotlib
    import numpy
    import sklearn

    import skhbnn

    return (
        f"skhbnn {skhbnn.__version__}  scikit-learn {sklearn.__version__}  "
        f"numpy {numpy.__version__}  matplotlib {matplotlib.__version__}"
    )


# ---------------------------------------------------------------- figures
def reliability_figure(title, y_te, probas: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay

    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(6.4, 7.2), gridspec_kw={"height_ratios": [3, 1.2]}, sharex=True
    )
    for name, proba in probas.items():
        CalibrationDisplay.from_predictions(
            y_te, proba[:, 1], n_bins=10, name=name, ax=ax
        )
        hist.hist(proba[:, 1], bins=10, range=(0, 1), histtype="step", lw=1.5, label=name)
    ax.set_title(f"Reliability diagram, {title} (test rows)")
    ax.set_xlabel("")
    ax.legend(loc="upper left", fontsize=8)
    hist.set_xlabel("mean predicted probability of class 1 (10 equal-width bins)")
    hist.set_ylabel("test rows")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _selective_curve(y, proba, uncertainty):
    order = np.argsort(uncertainty, kind="stable")
    correct = (proba.argmax(axis=1) == y)[order]
    kept = np.arange(1, len(y) + 1)
    return kept / len(y), np.cumsum(correct) / kept


def std_split(y, proba, std, n_bins: int = 5):
    """Per quantile bin of the max probability, the rows below and above the
    bin's median ``predict_std``: ``(edges, [(accuracy, confidence) low],
    [(accuracy, confidence) high])``."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    s = std.max(axis=1)
    edges = np.quantile(conf, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    low, high = [], []
    for b in range(n_bins):
        rows = np.flatnonzero(which == b)
        order = rows[np.argsort(s[rows], kind="stable")]
        half = len(order) // 2
        for part, out in ((order[:half], low), (order[half:], high)):
            # A bin with fewer than 2 rows has no halves (tiny inputs only).
            out.append((correct[part].mean(), conf[part].mean()) if half else (np.nan,) * 2)
    return edges, low, high


def _std_beyond_max_p(ax, y, proba, std, n_bins: int = 5) -> None:
    edges, low, high = std_split(y, proba, std, n_bins)
    x = np.arange(n_bins)
    for shift, part, label, color in (
        (-0.2, low, "lower half of predict_std", "C0"),
        (0.2, high, "upper half of predict_std", "C3"),
    ):
        acc, conf = np.array(part).T
        ax.bar(x + shift, acc, 0.4, color=color, alpha=0.8, label=f"accuracy, {label}")
        ax.plot(x + shift, conf, "k_", ms=18, mew=2)
    ax.plot([], [], "k_", ms=12, mew=2, label="mean max probability of the half")
    ax.set_xticks(x, [f"{edges[b]:.2f}-\n{edges[b + 1]:.2f}" for b in range(n_bins)], fontsize=8)
    ax.set_ylim(0.4, 1.05)
    ax.set_xlabel("max probability, quintile bins of test rows")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")


def uncertainty_figure(curves: dict, path: str) -> None:
    """``curves[data set] = (y_te, {model: (proba, std or None)})``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    fig, axes = plt.subplots(2, len(names), figsize=(5.6 * len(names), 8.4))
    for j, dname in enumerate(names):
        y, models = curves[dname]
        ax = axes[0, j]
        for i, (model, (proba, std)) in enumerate(models.items()):
            color = f"C{i}"
            cov, acc = _selective_curve(y, proba, -proba.max(axis=1))
            ax.plot(cov, acc, color=color, lw=1.4, label=f"{model}, by max p")
            if std is not None:
                cov, acc = _selective_curve(y, proba, std.max(axis=1))
                ax.plot(cov, acc, color=color, lw=1.4, ls="--", label=f"{model}, by predict_std")
        ax.set_xlim(0.1, 1.0)
        ax.set_xlabel("coverage (share of test rows kept, most certain first)")
        ax.set_ylabel("accuracy on the kept rows")
        ax.set_title(f"{dname}: selective prediction")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")

        ax.set_ylim(0.45, 1.0)
        ax = axes[1, j]
        _std_beyond_max_p(ax, y, *models["hierarchical BNN"])
        ax.set_title(f"{dname}: hierarchical BNN, rows split by predict_std", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def warm_up() -> float:
    """Load (or, after an edit of the kernels, compile) skhbnn's numba kernels
    with two tiny fits, so that no timed fit pays for it; returns seconds."""
    from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
    from skhbnn.datasets import make_rotated_moons

    X, y, g = make_rotated_moons(n_groups=2, n_samples=20, random_state=0)
    tiny = {"draws": 10, "tune": 10, "chains": 1, "progressbar": False, "random_state": 0}
    start = time.perf_counter()
    BayesianMLPClassifier(**tiny).fit(X, y)
    HierarchicalBayesianMLPClassifier(**tiny).fit(X, y, groups=g)
    return time.perf_counter() - start


# ---------------------------------------------------------------- run
def run(quick: bool = False) -> dict:
    seeds = QUICK_SEEDS if quick else SEEDS
    out_dir = os.path.join(tempfile.gettempdir(), "skhbnn-calibration") if quick else IMG_DIR
    os.makedirs(out_dir, exist_ok=True)
    header(
        "calibration: package defaults"
        + (f" (QUICK: {QUICK_SAMPLER})" if quick else "")
        + f", random_state {list(seeds)} for the BNNs and the MLP"
    )
    print(f"  {environment()}", flush=True)
    print(f"  {_versions()}", flush=True)
    print(f"  warm-up (untimed): kernels loaded in {warm_up():.1f} s", flush=True)
    results, curves = {}, {}
    for dname, data in datasets().items():
        print(f"  {_describe(dname, data)}", flush=True)
        y_te = data[3]
        res = {m: [] for m in MODELS}
        first = {}
        for model in MODELS:
            model_seeds = seeds if model in (*BNNS, "MLP") else seeds[:1]
            for seed in model_seeds:
                proba, std, fit = _fit(model, data, seed, quick)
                r = {**scores(y_te, proba, std), **fit, "seed": seed}
                res[model].append(r)
                first.setdefault(model, (proba, std))
                diag = (
                    f"  div {r['divergences']}  max R-hat {r['max_rhat']:.3f}  "
                    f"min ESS {r['min_ess']:.0f}" if "max_rhat" in r else ""
                )
                row(
                    f"{dname} / {model} / random_state {seed}",
                    f"acc {r['accuracy']:.3f}  log loss {r['log_loss']:.3f}  "
                    f"Brier {r['brier']:.3f}  ECE {r['ece']:.3f}  "
                    f"fit {r['fit_s']:.1f} s wall / {r['fit_cpu_s']:.1f} s CPU" + diag,
                )
        table = markdown_table(res)
        print(f"\n  {dname} (median [min, max] over random_state {list(seeds)}):\n")
        print(table + "\n", flush=True)
        reliability_figure(
            dname, y_te, {m: p for m, (p, _) in first.items()},
            os.path.join(out_dir, f"calibration-{dname}.png"),
        )
        results[dname] = res
        curves[dname] = (y_te, first)
    uncertainty_figure(curves, os.path.join(out_dir, "calibration-uncertainty.png"))
    print(f"  figures in {out_dir}", flush=True)
    return results
