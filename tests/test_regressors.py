"""The regressors: BayesianMLPRegressor, HierarchicalBayesianMLPRegressor and
InformedPriorTransferRegressor (scikit-learn's own checks for them run in
tests/test_estimator_checks.py; the kernels' Normal likelihood is checked
against PyMC in tests/test_kernel_properties.py)."""

from __future__ import annotations

import pickle
import time

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skhbnn
import skhbnn._base
import skhbnn.inference
from skhbnn import (
    BayesianMLPClassifier,
    BayesianMLPRegressor,
    HierarchicalBayesianMLPClassifier,
    HierarchicalBayesianMLPRegressor,
    InformedPriorTransferRegressor,
)
from skhbnn.datasets import make_grouped_regression
from skhbnn.network import forward
from skhbnn.prediction import flatten_chains

from .conftest import TINY
from .test_bad_input import _no_sampling

SMALL = dict(TINY, hidden_layer_sizes=(8,))
TWO_CHAINS = dict(SMALL, chains=2)


@pytest.fixture(scope="module")
def curve():
    """A noisy sine in y's own units (offset 100, scale 30)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(60, 1))
    y = 100 + 30 * (np.sin(2 * X[:, 0]) + 0.2 * rng.normal(size=60))
    return X, y


@pytest.fixture(scope="module")
def flat(curve):
    X, y = curve
    return BayesianMLPRegressor(**TWO_CHAINS).fit(X, y)


@pytest.fixture(scope="module")
def grouped():
    X, y, g = make_grouped_regression(n_groups=5, n_samples=24, n_features=2, random_state=1)
    labels = np.array(["a", "b", "c", "d", "e"], dtype=object)[g]
    return X, 10 * y - 3, labels


@pytest.fixture(scope="module")
def hier(grouped):
    X, y, g = grouped
    return HierarchicalBayesianMLPRegressor(**SMALL).fit(X, y, groups=g)


# ------------------------------------------------------------------ flat
def test_flat_predict_shapes_and_fit(flat, curve):
    X, y = curve
    mean, std = flat.predict(X, return_std=True)
    assert mean.shape == std.shape == (len(X),)
    assert np.all(std > 0)
    assert flat.score(X, y) > 0.8  # R^2, RegressorMixin's default
    assert flat.posterior_draws_["sigma"].shape == (2, SMALL["draws"])
    assert flat.posterior_draws_["w0"].shape == (2, SMALL["draws"], 1, 8)
    assert not hasattr(flat, "classes_")


def test_prediction_is_the_exact_mixture_of_the_draws(flat, curve):
    """Mean: the draws' average output; sd: the output's spread over the
    draws plus the noise, both undone from the standardised scale."""
    X, _ = curve
    draws = flatten_chains(flat.posterior_draws_)
    f = forward(draws, X, flat.network_)[..., 0]  # (S, n), standardised
    weights = flat._draw_weights()
    w = np.full(f.shape[0], 1 / f.shape[0]) if weights is None else weights / weights.sum()
    mean = w @ f
    var = w @ (f - mean) ** 2 + w @ draws["sigma"] ** 2
    got_mean, got_std = flat.predict(X, return_std=True)
    # hidden layers run in float32 in prediction
    np.testing.assert_allclose(got_mean, mean * flat.y_scale_ + flat.y_mean_, rtol=1e-6)
    np.testing.assert_allclose(got_std, np.sqrt(var) * flat.y_scale_, rtol=1e-5)


def test_priors_are_scale_free(curve):
    """The same fit on y and on 1024 y: the standardised targets are equal to
    the last bit (a power of 2 scales exactly), so the sampler sees the same
    problem and the predictions scale exactly."""
    X, y = curve
    a = BayesianMLPRegressor(**SMALL).fit(X, y)
    b = BayesianMLPRegressor(**SMALL).fit(X, 1024 * y)
    ma, sa = a.predict(X, return_std=True)
    mb, sb = b.predict(X, return_std=True)
    np.testing.assert_allclose(mb, 1024 * ma, rtol=1e-12)
    np.testing.assert_allclose(sb, 1024 * sa, rtol=1e-12)


def test_regressors_sample_on_the_kernel_route_deterministically(grouped, monkeypatch):
    """The Normal likelihood is in the kernels: the default sampler never
    falls back to nutpie's PyMC route, and a random_state fixes the fit."""
    import warnings

    import skhbnn.inference

    def no_pytensor(*args, **kwargs):
        raise AssertionError("the regressor fell back to the pytensor route")

    monkeypatch.setattr(skhbnn.inference, "_nutpie_pytensor", no_pytensor)
    X, y, g = grouped
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for make, kw in ((BayesianMLPRegressor, {}), (HierarchicalBayesianMLPRegressor, {"groups": g})):
            a = make(**SMALL).fit(X, y, **kw).predict(X, return_std=True, **kw)
            b = make(**SMALL).fit(X, y, **kw).predict(X, return_std=True, **kw)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])


def test_sample_y_draws_the_posterior_predictive(flat, curve):
    X, _ = curve
    a = flat.sample_y(X[:5], n_samples=4000, random_state=1)
    assert a.shape == (5, 4000)
    np.testing.assert_array_equal(a, flat.sample_y(X[:5], n_samples=4000, random_state=1))
    assert not np.array_equal(a, flat.sample_y(X[:5], n_samples=4000, random_state=2))
    mean, std = flat.predict(X[:5], return_std=True)
    # Monte Carlo error of 4000 draws: 5 standard errors of the mean, 10% of the sd
    assert np.all(np.abs(a.mean(axis=1) - mean) < 5 * std / np.sqrt(4000))
    np.testing.assert_allclose(a.std(axis=1), std, rtol=0.1)
    assert flat.sample_y(X[:2]).shape == (2, 1)


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_sample_y_refuses_bad_n_samples(flat, curve, n):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        flat.sample_y(curve[0][:2], n_samples=n)


def test_log_likelihood_is_in_the_units_of_y(flat, curve):
    X, y = curve
    ll = np.asarray(flat.idata_.log_likelihood["y_obs"].values)
    assert ll.shape == (2, SMALL["draws"], len(y))
    d = {k: v[1, 7] for k, v in flat.posterior_draws_.items()}  # chain 1, draw 7
    f = forward(d, X, flat.network_)[:, 0] * flat.y_scale_ + flat.y_mean_
    expected = stats.norm.logpdf(y, f, d["sigma"] * flat.y_scale_)
    np.testing.assert_allclose(ll[1, 7], expected, rtol=1e-9)
    loo = az.loo(flat.idata_)  # ArviZ 0.x: elpd_loo; ArviZ 1.x: elpd
    assert np.isfinite(float(getattr(loo, "elpd_loo", getattr(loo, "elpd", np.nan))))


def test_diagnostics_follow_the_predicted_mean_and_the_noise(flat):
    diag = flat.diagnostics_
    assert set(diag["rhat"]) == {"mean", "noise"}
    assert diag["divergences"] >= 0


def test_weighted_fit_counts_rows(curve):
    """An integer weight counts its row that many times: a weight-2 fit on
    half the rows sees the same standardised data as the doubled rows, so
    y_mean_ / y_scale_ agree exactly; zero weights drop rows from them."""
    X, y = curve
    w = np.r_[np.full(30, 2.0), np.zeros(30)]
    a = BayesianMLPRegressor(**SMALL).fit(X, y, sample_weight=w)
    doubled = np.r_[y[:30], y[:30]]
    assert a.y_mean_ == pytest.approx(doubled.mean())
    assert a.y_scale_ == pytest.approx(doubled.std())


# ---------------------------------------------------------- hierarchical
def test_hierarchical_predicts_groups_and_new_groups(hier, grouped):
    X, y, g = grouped
    mean, std = hier.predict(X, groups=g, return_std=True)
    assert mean.shape == std.shape == (len(y),)
    assert 1 - np.mean((mean - y) ** 2) / np.var(y) > 0.7
    new_mean, new_std = hier.predict(X[:10], groups=["unseen"] * 10, return_std=True)
    # a new group is predicted by the population: wider than any fitted group
    assert np.all(new_std > std[:10])
    assert hier.sample_y(X[:4], g[:4], n_samples=3).shape == (4, 3)
    assert list(hier.groups_) == ["a", "b", "c", "d", "e"]
    assert set(hier.diagnostics_["ess"]) == {"group_sd", "mean", "noise", "population"}


def test_new_groups_error(grouped):
    X, y, g = grouped
    est = HierarchicalBayesianMLPRegressor(new_groups="error", **SMALL).fit(X, y, groups=g)
    with pytest.raises(ValueError, match="new_groups='population'"):
        est.predict(X[:2], groups=["zzz", "a"])


def test_group_noise_gives_one_noise_sd_per_group():
    """Two groups, one 10x noisier: per-group noise sds find it."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-2, 2, size=(80, 1))
    g = np.repeat([0, 1], 40)
    y = np.sin(X[:, 0]) + np.where(g == 0, 0.05, 0.5) * rng.normal(size=80)
    est = HierarchicalBayesianMLPRegressor(group_noise=True, **SMALL).fit(X, y, groups=g)
    sigma = est.posterior_draws_["sigma"]
    assert sigma.shape == (1, SMALL["draws"], 2)
    s0, s1 = sigma.mean(axis=(0, 1)) * est.y_scale_
    assert s1 > 3 * s0
    _, std = est.predict(X, groups=g, return_std=True)
    assert std[g == 1].mean() > 3 * std[g == 0].mean()
    # an unseen group's noise: a fitted group's, per draw
    assert np.isfinite(est.predict(X[:3], groups=[9, 9, 9], return_std=True)[1]).all()


def test_group_column_pipeline_and_group_kfold(grouped):
    X, y, g = grouped
    df = pd.DataFrame(X, columns=["x0", "x1"])
    df["store"] = g
    est = HierarchicalBayesianMLPRegressor(group_column="store", **SMALL)
    scores = cross_val_score(est, df, y, cv=GroupKFold(n_splits=2), groups=g)
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    pipe = make_pipeline(StandardScaler(), BayesianMLPRegressor(**SMALL))
    search = GridSearchCV(pipe, {"bayesianmlpregressor__prior_sd": [0.5, 1.0]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["bayesianmlpregressor__prior_sd"] in (0.5, 1.0)


def test_informed_prior_carries_the_standardisation(hier, grouped):
    X, y, g = grouped
    prior = hier.informed_prior()
    assert prior.target_scale == (hier.y_mean_, hier.y_scale_)
    rows = g == "a"
    flat = BayesianMLPRegressor(prior=prior, **SMALL).fit(X[rows][:6], y[rows][:6])
    assert (flat.y_mean_, flat.y_scale_) == prior.target_scale
    with pytest.raises(ValueError, match="prior was built from a regressor"):
        BayesianMLPClassifier(prior=prior, **SMALL).fit(X[:20], (y[:20] > 0).astype(int))


def test_group_mean_network_is_a_fitted_regressor(hier, grouped):
    X, _, _ = grouped
    net = hier.group_mean_network()
    assert isinstance(net, BayesianMLPRegressor)
    mean, std = net.predict(X[:5], return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)


def test_transfer_regressor_fits_flat_models_under_the_prior(hier, grouped):
    X, y, g = grouped
    transfer = InformedPriorTransferRegressor(hier, prefit=True).fit(X, y, groups=g)
    assert set(transfer.estimators_) == set(hier.groups_)
    assert all(isinstance(e, BayesianMLPRegressor) for e in transfer.estimators_.values())
    assert all(e.y_scale_ == hier.y_scale_ for e in transfer.estimators_.values())
    mean, std = transfer.predict(X, groups=g, return_std=True)
    assert 1 - np.mean((mean - y) ** 2) / np.var(y) > 0.5
    assert np.all(std > 0)
    # an unseen group goes to the prior network
    np.testing.assert_allclose(
        transfer.predict(X[:3], groups=["new"] * 3), transfer.prior_network_.predict(X[:3])
    )
    restored = pickle.loads(pickle.dumps(transfer))
    np.testing.assert_array_equal(restored.predict(X, groups=g), transfer.predict(X, groups=g))


# ------------------------------------------------------- saving, pickling
@pytest.mark.parametrize("which", ["flat", "hier"])
def test_save_load_and_pickle(which, request, curve, grouped, tmp_path):
    est = request.getfixturevalue(which)
    if which == "flat":
        X, kw = curve[0], {}
    else:
        X, kw = grouped[0], {"groups": np.r_[grouped[2][:-5], ["new"] * 5]}
    expected = est.predict(X, return_std=True, **kw)
    restored = skhbnn.load(est.save(tmp_path / "reg.nc"))
    assert type(restored) is type(est)
    assert set(vars(restored)) == set(vars(est))  # the registry names every attribute
    for got in (restored, pickle.loads(pickle.dumps(est))):
        for a, b in zip(got.predict(X, return_std=True, **kw), expected):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- bad y
BAD_Y = {
    "nan": (lambda y: np.r_[np.nan, y[1:]], r"y contains NaN or infinite values"),
    "inf": (lambda y: np.r_[np.inf, y[1:]], r"y contains NaN or infinite values"),
    "2-D": (lambda y: np.c_[y, y], r"fits one target, but y is 2-D.*MultiOutputRegressor"),
    "short": (lambda y: y[:-1], r"X and y must have the same number of rows"),
    "strings": (lambda y: np.array(["a"] * len(y), dtype=object), r"could not convert|numeric"),
    "None": (lambda y: None, r"requires y to be passed"),
}


@pytest.mark.parametrize("case", list(BAD_Y))
@pytest.mark.parametrize("cls", [BayesianMLPRegressor, HierarchicalBayesianMLPRegressor,
                                 InformedPriorTransferRegressor])
def test_bad_y_fails_before_sampling(cls, case, curve, monkeypatch):
    X, y = curve
    _no_sampling(monkeypatch)
    build, match = BAD_Y[case]
    est = cls() if cls is not InformedPriorTransferRegressor else cls(
        HierarchicalBayesianMLPRegressor(**SMALL)
    )
    before = dict(vars(est))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as info:
        est.fit(X, build(y))
    assert "sampling started" not in str(info.value)
    assert time.perf_counter() - start < 1.0
    assert vars(est) == before


@pytest.mark.parametrize("cls", [BayesianMLPRegressor, HierarchicalBayesianMLPRegressor])
def test_advi_fits_a_regressor(cls, grouped):
    X, y, g = grouped
    kw = {} if cls is BayesianMLPRegressor else {"groups": g}
    est = cls(inference="advi", advi_iterations=3000, draws=100, random_state=0,
              progressbar=False).fit(X, y, **kw)
    assert est.posterior_draws_["sigma"].shape[:2] == (1, 100)
    assert est.diagnostics_ is None
    mean, std = est.predict(X, return_std=True, **kw)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)


def test_hierarchical_classifier_unchanged_by_the_shared_machinery():
    """The refactoring that shares groups between classifier and regressor
    kept the classifier's attributes."""
    assert issubclass(HierarchicalBayesianMLPClassifier, skhbnn.grouped.HierarchicalMixin)
    assert not hasattr(HierarchicalBayesianMLPRegressor, "predict_proba")
