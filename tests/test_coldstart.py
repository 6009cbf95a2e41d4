"""Cold start: the population prior and ``fit_new_group``.

A new group's posterior given the fitted population, without refitting the
others: a flat BNN under :class:`~skhbnn.PopulationPrior` (the mixture over
posterior draws of ``N(mu_s, sd_s^2)``), served by the hierarchical
estimator after :meth:`fit_new_group`.  The kernels' density of the mixture
is checked against PyMC's in tests/test_kernel_properties.py (population
priors are one of its prior kinds).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal
from sklearn.metrics import log_loss

import skhbnn
from skhbnn import (
    BayesianMLPClassifier,
    BayesianMLPRegressor,
    HierarchicalBayesianMLPClassifier,
    HierarchicalBayesianMLPRegressor,
    PopulationPrior,
)
from skhbnn.datasets import make_grouped_regression, make_rotated_moons
from skhbnn.models import FlatModel
from skhbnn.network import NetworkSpec

from .conftest import TINY

# max_draws=None: the population prior below is built from exactly chains x draws
# draws (a continued fit would hold more, tests/test_continuation.py)
SMALL = dict(draws=150, tune=150, chains=2, progressbar=False, random_state=0, max_draws=None)
N_POP = 6


@pytest.fixture(scope="module")
def moons():
    """9 groups of rotated moons: 6 population groups train on 40 points,
    3 new ones are held out (40 points to learn from, 40 to test)."""
    X, y, g = make_rotated_moons(n_groups=N_POP + 3, n_samples=80, random_state=5)
    train = np.tile(np.r_[np.ones(40, bool), np.zeros(40, bool)], N_POP + 3)
    return X, y, g, train


@pytest.fixture(scope="module")
def hier(moons):
    X, y, g, train = moons
    pop = (g < N_POP) & train
    return HierarchicalBayesianMLPClassifier(**SMALL).fit(X[pop], y[pop], groups=g[pop])


def test_log_density_is_the_mixture_of_normals():
    rng = np.random.default_rng(0)
    means, sds = rng.normal(size=(3, 4)), rng.uniform(0.5, 2.0, size=(3, 4))
    prior = PopulationPrior(means, sds, np.array([1.0, 2.0, 1.0]))
    theta = rng.normal(size=(5, 4))
    expected = np.log(sum(
        w * multivariate_normal(means[s], np.diag(sds[s] ** 2)).pdf(theta)
        for s, w in enumerate([0.25, 0.5, 0.25])
    ))
    np.testing.assert_allclose(prior.log_density(theta), expected, rtol=1e-10)
    draws = prior.sample(20000, random_state=1)
    np.testing.assert_allclose(draws.mean(axis=0), 0.25 * means[0] + 0.5 * means[1]
                               + 0.25 * means[2], atol=0.05)


def test_population_prior_holds_the_group_distribution(hier):
    prior = hier.population_prior()
    spec = hier.network_
    kept = hier.chain_weights_ is None or np.all(hier.chain_weights_ > 0)
    n = 2 * 150 if kept else int(150 * np.sum(hier.chain_weights_ > 0))
    assert prior.means.shape == prior.sds.shape == (n, spec.n_params)
    np.testing.assert_allclose(prior.weights.sum(), 1.0)
    # component s: draw s of the group means, every weight of layer l with sd{l}
    draws = {k: v.reshape(-1, *v.shape[2:]) for k, v in hier.posterior_draws_.items()}
    cuts = spec.param_slices()
    keep = np.flatnonzero(np.repeat(hier.chain_weights_ > 0, 150)) if not kept else np.arange(n)
    np.testing.assert_array_equal(prior.means[:, cuts["w1"]],
                                  draws["w1_mu"][keep].reshape(n, -1))
    np.testing.assert_array_equal(prior.sds[:, cuts["w1"]][:, 0], draws["sd1"][keep])
    np.testing.assert_array_equal(prior.sds[:, cuts["b0"]][:, 0], draws["sd_b0"][keep])
    few = hier.population_prior(n_components=7)
    assert few.means.shape == (7, spec.n_params)
    assert set(map(tuple, few.means)) <= set(map(tuple, prior.means))


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(means=np.zeros((3, 5)), sds=np.ones((3, 5))), "has 7 parameters"),
        (dict(sds=-np.ones((3, 7))), "positive sds"),
        (dict(means=np.full((3, 7), np.nan)), "NaN"),
        (dict(weights=np.ones(2)), "one weight per component"),
    ],
)
def test_a_wrong_population_prior_is_refused_before_sampling(change, match):
    spec_args = dict(hidden_layer_sizes=(2,))
    fields = dict(means=np.zeros((3, 7)), sds=np.ones((3, 7)), weights=np.ones(3))
    fields.update(change)
    X = np.random.default_rng(0).normal(size=(20, 1))
    y = (X[:, 0] > 0).astype(int)
    # a 1-2-1 network with biases has 2 + 2 + 2 + 1 = 7 parameters
    with pytest.raises(ValueError, match=match):
        BayesianMLPClassifier(prior=PopulationPrior(**fields), **spec_args, **TINY).fit(X, y)


def test_chains_start_at_a_component():
    spec = NetworkSpec(1, (2,), 1, "tanh", use_bias=True)
    means = np.arange(21.0).reshape(3, 7) * 10
    prior = PopulationPrior(means, np.full((3, 7), 0.01), np.ones(3))
    X = np.zeros((4, 1))
    problem = FlatModel(spec, prior=prior).build_kernel(X, np.array([0, 1, 0, 1]))
    for seed in range(5):
        x = problem.initial_point(seed)
        assert np.min(np.abs(means - x).max(axis=1)) <= 0.01


def _new_group(moons, g, k):
    X, y, groups, train = moons
    rows = np.flatnonzero((groups == g) & train)[:k]
    test = np.flatnonzero((groups == g) & ~train)
    return X[rows], y[rows], X[test], y[test]


def test_the_population_prior_learns_a_new_group_from_few_points(hier, moons):
    """K = 8 points of each of the 3 held-out groups: the population prior
    beats the default Normal(0, 1) prior in mean test log loss, and the
    MvNormal prior is not better than it (measured with these settings:
    population 0.400 with its chains averaged, the default, and 0.389
    stacked; default 0.477, MvNormal 0.441; a hierarchical refit with the
    24 new points 0.377)."""
    prior = hier.population_prior()
    losses = {"default": [], "population": [], "mvnormal": []}
    for g in range(N_POP, N_POP + 3):
        Xk, yk, Xt, yt = _new_group(moons, g, 8)
        for name, p in [("default", None), ("population", prior),
                        ("mvnormal", hier.informed_prior())]:
            flat = BayesianMLPClassifier(prior=p, **SMALL).fit(Xk, yk)
            losses[name].append(log_loss(yt, flat.predict_proba(Xt), labels=[0, 1]))
    mean = {k: float(np.mean(v)) for k, v in losses.items()}
    assert mean["population"] < mean["default"] - 0.05, mean
    assert mean["population"] < mean["mvnormal"] + 0.02, mean


@pytest.fixture(scope="module")
def extended(hier, moons):
    Xk, yk, _, _ = _new_group(moons, N_POP, 10)
    return copy.deepcopy(hier).fit_new_group(Xk, yk, group="shop-new")


def test_fit_new_group_serves_the_group_as_a_fitted_one(extended, hier, moons):
    Xk, yk, Xt, _ = _new_group(moons, N_POP, 10)
    flat = BayesianMLPClassifier(prior=hier.population_prior(), **SMALL).fit(Xk, yk)
    labels = np.array(["shop-new"] * len(Xt), dtype=object)
    np.testing.assert_array_equal(extended.predict_proba(Xt, groups=labels),
                                  flat.predict_proba(Xt))
    np.testing.assert_array_equal(extended.predict_std(Xt, groups=labels),
                                  flat.predict_std(Xt))
    np.testing.assert_array_equal(extended.predict_log_proba(Xt, groups=labels),
                                  flat.predict_log_proba(Xt))
    # rows of fitted, added and unseen groups in one call: each routed to its own
    X, _, g, _ = moons
    mixed = np.r_[labels[:3], g[:3], ["never"] * 3].astype(object)
    rows = np.r_[Xt[:3], X[:3], X[:3]]
    proba = extended.predict_proba(rows, groups=mixed)
    np.testing.assert_array_equal(proba[:3], flat.predict_proba(Xt[:3]))
    np.testing.assert_array_equal(proba[3:6], hier.predict_proba(X[:3], groups=g[:3]))
    np.testing.assert_array_equal(proba[6:], hier.predict_proba(X[:3], groups=["never"] * 3))
    assert list(extended.new_group_estimators_) == ["shop-new"]
    assert not hasattr(hier, "new_group_estimators_")  # the original is untouched


def test_fit_new_group_is_refused_for_bad_input(hier, moons):
    X, y, g, _ = moons
    Xk, yk, _, _ = _new_group(moons, N_POP, 10)
    est = copy.deepcopy(hier)
    with pytest.raises(ValueError, match="was seen in fit"):
        est.fit_new_group(Xk, yk, group=g[0])
    with pytest.raises(ValueError, match="not fitted on"):
        est.fit_new_group(Xk, np.where(yk == 1, 7, 0), group="x")
    with pytest.raises(ValueError, match="label"):
        est.fit_new_group(Xk, yk)
    with pytest.raises(ValueError, match="features"):
        est.fit_new_group(Xk[:, :1], yk, group="x")
    with pytest.raises(ValueError, match="n_components must be a positive integer"):
        est.fit_new_group(Xk, yk, group="x", n_components=0)
    assert not hasattr(est, "new_group_estimators_")


def test_fit_new_group_reads_the_group_column_and_survives_save_and_refit(tmp_path, moons):
    X, y, g, train = moons
    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "shop": g})
    pop = (g < 3) & train
    est = HierarchicalBayesianMLPClassifier(group_column="shop", **TINY).fit(df[pop], y[pop])
    new = (g == N_POP) & train
    est.fit_new_group(df[new][:10], y[new][:10])
    assert list(est.new_group_estimators_) == [N_POP]
    test = df[(g == N_POP) & ~train]
    back = skhbnn.load(est.save(tmp_path / "model.nc"))
    assert isinstance(back.new_group_estimators_[N_POP].prior, PopulationPrior)
    np.testing.assert_array_equal(back.predict_proba(test), est.predict_proba(test))
    two = np.flatnonzero(g >= N_POP + 1)[[0, -1]]  # rows of two new groups
    with pytest.raises(ValueError, match="one group"):
        est.fit_new_group(df.iloc[two], y[two])
    est.fit(df[pop], y[pop])  # a refit forgets the groups added to the old fit
    assert not hasattr(est, "new_group_estimators_")


def test_the_regressor_learns_a_new_group_too():
    X, y, g = make_grouped_regression(n_groups=5, n_samples=30, random_state=0)
    pop = g < 4
    hier = HierarchicalBayesianMLPRegressor(**TINY).fit(X[pop], y[pop], groups=g[pop])
    prior = hier.population_prior()
    assert prior.target_scale == (hier.y_mean_, hier.y_scale_)
    new = np.flatnonzero(g == 4)
    hier.fit_new_group(X[new[:6]], y[new[:6]], group="new")
    flat = BayesianMLPRegressor(prior=prior, **TINY).fit(X[new[:6]], y[new[:6]])
    labels = ["new"] * (len(new) - 6)
    mean, std = hier.predict(X[new[6:]], groups=labels, return_std=True)
    np.testing.assert_array_equal(mean, flat.predict(X[new[6:]]))
    assert np.all(std > 0)
    assert hier.sample_y(X[new[6:]], groups=labels, n_samples=3).shape == (len(labels), 3)


def test_the_pymc_route_samples_under_a_population_prior(hier, moons):
    Xk, yk, Xt, yt = _new_group(moons, N_POP, 10)
    prior = hier.population_prior(n_components=20)
    settings = dict(draws=40, tune=40, chains=1, progressbar=False, random_state=0)
    flat = BayesianMLPClassifier(prior=prior, sampler="pymc", **settings).fit(Xk, yk)
    assert flat.predict_proba(Xt).shape == (len(Xt), 2)
    assert np.mean(flat.predict(Xt) == yt) > 0.6


def test_chains_under_a_population_prior_are_averaged_by_default(hier, moons):
    """combine_chains="auto": chains started in components drawn by their
    posterior probability are averaged (the modes weighed by the chains
    that started in them); "stacking" stays selectable."""
    Xk, yk, _, _ = _new_group(moons, N_POP + 1, 10)
    prior = hier.population_prior()
    auto = BayesianMLPClassifier(prior=prior, **SMALL).fit(Xk, yk)
    assert auto.chain_weights_ is None
    assert auto.diagnostics_["combination"] == "population"
    assert "chain_modes" in auto.diagnostics_
    stacked = BayesianMLPClassifier(prior=prior, combine_chains="stacking", **SMALL).fit(Xk, yk)
    assert stacked.diagnostics_["combination"] in ("stacking", "equal")
    # without a population prior "auto" is stacking
    plain = BayesianMLPClassifier(**SMALL).fit(Xk, yk)
    assert plain.diagnostics_["combination"] in ("stacking", "equal")


def test_modes_averaged_by_design_do_not_warn():
    from skhbnn.diagnostics import invariant_diagnostics, reliability_problems

    rng = np.random.default_rng(0)
    # two chains in clearly different modes, each well mixed
    proba = np.concatenate([rng.normal(0.2, 0.01, (1, 400, 3)),
                            rng.normal(0.8, 0.01, (1, 400, 3))])
    equal = invariant_diagnostics({"proba": proba}, 0)
    population = invariant_diagnostics({"proba": proba}, 0, modes=np.array([0, 1]),
                                       combination="population")
    assert any("different modes" in p for p in reliability_problems(equal))
    assert population["combination"] == "population"
    assert reliability_problems(population) == []
