"""sample_weight: validated before sampling, routed by scikit-learn, and a
weighted fit that behaves like a fit on repeated (or dropped) rows.

An MCMC fit on repeated rows differs from the weighted fit by sampling noise,
so scikit-learn's exact equivalence checks are expected failures
(tests/test_estimator_checks.py); here the same claims are tested
statistically: over several seeds, a weighted fit is as close to the fit on
repeated rows as two fits on the same data with different seeds are to each
other, while a fit that ignored the weights would be far off.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_moons
from sklearn.model_selection import KFold, cross_validate

import skhbnn._base
import skhbnn.inference
from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier, InformedPriorTransfer

from .conftest import TINY

X, Y = make_moons(n_samples=40, noise=0.3, random_state=3)
GRID = np.column_stack(
    [a.ravel() for a in np.meshgrid(np.linspace(-1.5, 2.5, 15), np.linspace(-1, 1.5, 15))]
)
SEEDS = range(4)
SAMPLER = dict(hidden_layer_sizes=(3,), draws=400, tune=400, chains=1, progressbar=False)


def _fit_proba(seed, X_fit, y_fit, sample_weight=None):
    est = BayesianMLPClassifier(random_state=seed, **SAMPLER)
    return est.fit(X_fit, y_fit, sample_weight=sample_weight).predict_proba(GRID)[:, 1]


def _distance(a, b) -> float:
    return float(np.mean(np.abs(a - b)))


def _compare(weights, X_same, y_same):
    """Distances between a weighted fit and a fit on the equivalent data
    (same seed), the seed-to-seed spread of fits on that data, and the
    distance of a fit that ignores the weights."""
    weighted = [_fit_proba(s, X, Y, weights) for s in SEEDS]
    same = [_fit_proba(s, X_same, y_same) for s in SEEDS]
    ignored = [_fit_proba(s, X, Y) for s in SEEDS]
    paired = [_distance(w, r) for w, r in zip(weighted, same)]
    spread = [_distance(same[i], same[j]) for i in SEEDS for j in SEEDS if i < j]
    off = [_distance(u, r) for u, r in zip(ignored, same)]
    return np.array(paired), np.array(spread), np.array(off)


def _assert_equivalent(paired, spread, off):
    # Measured (PyMC 5 and 6, kernels): paired 0.005-0.012, spread
    # 0.005-0.009, a fit ignoring the weights 0.08-0.09 away.  A weighted fit
    # must be within sampling noise of the equivalent data: its median
    # distance at most twice the median seed-to-seed spread (and every one
    # within three times the largest), while ignoring the weights would be
    # more than three times the spread away (so the test can fail).
    assert np.median(paired) <= 2.0 * np.median(spread), (paired, spread)
    assert paired.max() <= 3.0 * spread.max(), (paired, spread)
    assert np.median(off) > 3.0 * np.median(spread), (off, spread)


def test_integer_weights_match_repeated_rows():
    counts = np.random.default_rng(0).integers(1, 5, size=len(Y))
    _assert_equivalent(
        *_compare(counts.astype(float), np.repeat(X, counts, axis=0), np.repeat(Y, counts))
    )


def test_zero_weights_match_dropped_rows():
    keep = np.random.default_rng(1).random(len(Y)) > 0.45
    _assert_equivalent(*_compare(keep.astype(float), X[keep], Y[keep]))


def test_unit_weights_give_the_same_fit_as_no_weights():
    """Weights of 1 multiply every likelihood term by exactly 1.0."""
    est = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY)
    a = est.fit(X, Y).predict_proba(GRID)
    b = est.fit(X, Y, sample_weight=np.ones(len(Y))).predict_proba(GRID)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_hierarchical_integer_weights_match_repeated_rows():
    rng = np.random.default_rng(2)
    groups = np.repeat([0, 1], len(Y) // 2)
    counts = rng.integers(1, 4, size=len(Y))
    settings = dict(hidden_layer_sizes=(3,), draws=300, tune=300, chains=1, progressbar=False)

    def proba(seed, Xf, yf, gf, w=None):
        est = HierarchicalBayesianMLPClassifier(random_state=seed, **settings)
        est.fit(Xf, yf, groups=gf, sample_weight=w)
        return est.predict_proba(GRID, groups=np.zeros(len(GRID)))[:, 1]

    seeds = range(3)
    weighted = [proba(s, X, Y, groups, counts.astype(float)) for s in seeds]
    same = [
        proba(s, np.repeat(X, counts, 0), np.repeat(Y, counts), np.repeat(groups, counts))
        for s in seeds
    ]
    paired = np.array([_distance(w, r) for w, r in zip(weighted, same)])
    spread = np.array([_distance(same[i], same[j]) for i in seeds for j in seeds if i < j])
    assert np.median(paired) <= 2.0 * np.median(spread) + 0.01, (paired, spread)


# ----------------------------------------------------------------- routing
def test_metadata_routing_passes_sample_weight_to_each_fold():
    weights = np.random.default_rng(3).integers(0, 3, size=len(Y)).astype(float)
    weights[:2] = 1.0
    est = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY)
    cv = KFold(2, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        est.set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        out = cross_validate(
            est, X, Y, cv=cv, params={"sample_weight": weights}, return_estimator=True
        )
    for (train, _), fitted in zip(cv.split(X), out["estimator"]):
        direct = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY)
        direct.fit(X[train], Y[train], sample_weight=weights[train])
        np.testing.assert_array_equal(fitted.predict_proba(GRID), direct.predict_proba(GRID))


def test_transfer_passes_weights_to_the_hierarchical_and_the_flat_fits(monkeypatch):
    seen = []
    real = skhbnn._base.BaseBayesianMLP._infer

    def spy(self, definition, seed, X_, y_, codes=None, weights=None):
        seen.append((definition.kind, None if weights is None else weights.copy()))
        return real(self, definition, seed, X_, y_, codes, weights)

    monkeypatch.setattr(skhbnn._base.BaseBayesianMLP, "_infer", spy)
    groups = np.repeat([0, 1], len(Y) // 2)
    weights = np.arange(len(Y), dtype=float) % 3 + 1
    hier = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY)
    InformedPriorTransfer(hier).fit(X, Y, groups=groups, sample_weight=weights)
    kinds = [kind for kind, _ in seen]
    assert kinds == ["hierarchical", "flat", "flat"]
    np.testing.assert_array_equal(seen[0][1], weights)
    np.testing.assert_array_equal(seen[1][1], weights[groups == 0])
    np.testing.assert_array_equal(seen[2][1], weights[groups == 1])


# -------------------------------------------------------------- bad input
def _boom(*args, **kwargs):
    raise AssertionError("sampling started")


@pytest.mark.parametrize(
    "weights, match",
    [
        (-np.ones(len(Y)), "sample_weight must be non-negative"),
        (np.r_[np.nan, np.ones(len(Y) - 1)], "sample_weight contains NaN or infinite"),
        (np.r_[np.inf, np.ones(len(Y) - 1)], "sample_weight contains NaN or infinite"),
        (np.ones(len(Y) - 1), "one weight per row of X"),
        (np.ones((len(Y), 2)), "one weight per row of X"),
        (np.zeros(len(Y)), "zero for every row"),
    ],
)
@pytest.mark.parametrize("kind", ["flat", "hier", "transfer"])
def test_bad_sample_weight_is_refused_before_sampling(kind, weights, match, monkeypatch):
    monkeypatch.setattr(skhbnn._base, "sample_nuts", _boom)
    monkeypatch.setattr(skhbnn.inference, "sample_nuts", _boom)
    kw = {} if kind == "flat" else {"groups": np.repeat([0, 1], len(Y) // 2)}
    est = {
        "flat": BayesianMLPClassifier(**TINY),
        "hier": HierarchicalBayesianMLPClassifier(**TINY),
        "transfer": InformedPriorTransfer(HierarchicalBayesianMLPClassifier(**TINY)),
    }[kind]
    with pytest.raises(ValueError, match=match):
        est.fit(X, Y, sample_weight=weights, **kw)


def test_transfer_refuses_a_group_whose_weights_are_all_zero(monkeypatch):
    monkeypatch.setattr(skhbnn._base, "sample_nuts", _boom)
    groups = np.repeat(["a", "b"], len(Y) // 2)
    weights = (groups == "a").astype(float)
    est = InformedPriorTransfer(HierarchicalBayesianMLPClassifier(**TINY))
    with pytest.raises(ValueError, match=r"zero for every row of groups \['b'\]"):
        est.fit(X, Y, groups=groups, sample_weight=weights)
