"""predict_log_proba, and the pointwise log-likelihood in idata_ that ArviZ's
LOO tools read (az.loo, az.compare) on ArviZ 0.x and 1.x alike."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

import skhbnn.combining
from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier, InformedPriorTransfer
from skhbnn.network import NetworkSpec, forward

from .conftest import TINY


@pytest.fixture(scope="module")
def fitted(moons_groups):
    X, y, g = moons_groups
    flat = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X[g == 0], y[g == 0])
    hier = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY)
    hier.fit(X, y, groups=g)
    return flat, hier


def _y3(X, y):
    return (y + (X[:, 0] > 0.5)).astype(int)


# -------------------------------------------------------- predict_log_proba
def test_predict_log_proba_is_the_log_of_predict_proba(fitted, moons_groups):
    X, _, g = moons_groups
    flat, hier = fitted
    np.testing.assert_allclose(flat.predict_log_proba(X), np.log(flat.predict_proba(X)))
    np.testing.assert_allclose(
        hier.predict_log_proba(X, groups=g), np.log(hier.predict_proba(X, groups=g))
    )
    unseen = np.full(len(X), "new")
    np.testing.assert_allclose(
        hier.predict_log_proba(X, groups=unseen), np.log(hier.predict_proba(X, groups=unseen))
    )


def test_predict_log_proba_stays_finite_where_a_probability_underflows():
    """Logits of +-300: P(class 0) rounds to 0 in predict_proba, but its log
    over the mixture is about -300, not -inf."""
    spec = NetworkSpec(1, (1,), 1, "identity", use_bias=False)
    draws = {"w0": np.full((1, 4, 1, 1), 10.0), "w1": np.array([30.0, 30.0, 29.0, 31.0]).reshape(1, 4, 1, 1)}
    est = BayesianMLPClassifier._from_draws(draws, spec, np.array([0, 1]))
    X = np.array([[1.0], [-1.0], [0.01]])
    proba = est.predict_proba(X)
    log_proba = est.predict_log_proba(X)
    assert proba[0, 0] == 0.0 and proba[1, 1] == 0.0
    assert np.isfinite(log_proba).all()
    # log mean_s sigmoid(-z_s) for z_s = 10 * w1_s: about -290 (the smallest z dominates)
    z = 10.0 * draws["w1"].ravel()
    expected = np.logaddexp.reduce(-np.logaddexp(0.0, z)) - np.log(4)
    assert log_proba[0, 0] == pytest.approx(expected, rel=1e-9)
    finite = proba > 0
    np.testing.assert_allclose(log_proba[finite], np.log(proba[finite]))


def test_transfer_predict_log_proba(moons_groups):
    X, y, g = moons_groups
    hier = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY)
    transfer = InformedPriorTransfer(hier).fit(X, y, groups=g)
    np.testing.assert_allclose(
        transfer.predict_log_proba(X, groups=g), np.log(transfer.predict_proba(X, groups=g))
    )


# ---------------------------------------------------------- log_likelihood
def _log_likelihood(idata):
    return np.asarray(idata.log_likelihood["y_obs"].values)


def test_idata_holds_the_pointwise_log_likelihood_of_the_training_rows(fitted, moons_groups):
    X, y, g = moons_groups
    flat, hier = fitted
    spec = flat.network_
    values = _log_likelihood(flat.idata_)
    assert values.shape == (TINY["chains"], TINY["draws"], int((g == 0).sum()))
    # log p(y | x, theta) by hand for one draw
    theta = {k: v[0, 5] for k, v in flat.posterior_draws_.items()}
    z = forward(theta, X[g == 0], spec)[:, 0]
    expected = np.where(y[g == 0] == 1, -np.logaddexp(0, -z), -np.logaddexp(0, z))
    np.testing.assert_allclose(values[0, 5], expected, rtol=1e-10)
    assert _log_likelihood(hier.idata_).shape == (TINY["chains"], TINY["draws"], len(y))


def test_hierarchical_log_likelihood_uses_each_rows_group(fitted, moons_groups):
    X, y, g = moons_groups
    _, hier = fitted
    spec = hier.network_
    code = 2
    rows = np.flatnonzero(g == hier.groups_[code])
    theta = {k: hier.posterior_draws_[k][0, 7, code] for k in spec.param_shapes()}
    z = forward(theta, X[rows], spec)[:, 0]
    expected = np.where(y[rows] == 1, -np.logaddexp(0, -z), -np.logaddexp(0, z))
    np.testing.assert_allclose(_log_likelihood(hier.idata_)[0, 7, rows], expected, rtol=1e-10)


def test_az_loo_and_compare_work(fitted, moons_groups):
    X, y, g = moons_groups
    _, hier = fitted
    loo = az.loo(hier.idata_)
    elpd = float(getattr(loo, "elpd_loo", getattr(loo, "elpd", np.nan)))
    assert np.isfinite(elpd) and elpd < 0
    other = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(2,), **TINY).fit(X, y, groups=g)
    table = az.compare({"(3,)": hier.idata_, "(2,)": other.idata_})
    assert len(table) == 2


def test_multiclass_log_likelihood(moons_groups):
    X, y, g = moons_groups
    y3 = _y3(X, y)
    est = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X, y3)
    values = _log_likelihood(est.idata_)
    assert values.shape[-1] == len(y3) and (values <= 0).all()


def test_log_likelihood_can_be_turned_off_and_is_off_when_large(moons_groups, monkeypatch):
    X, y, g = moons_groups
    off = BayesianMLPClassifier(hidden_layer_sizes=(3,), log_likelihood=False, **TINY).fit(X, y)
    assert "log_likelihood" not in _groups(off.idata_)
    monkeypatch.setattr(skhbnn.combining, "_MAX_LOG_LIKELIHOOD_VALUES", TINY["draws"] * len(y) - 1)
    auto = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X, y)
    assert "log_likelihood" not in _groups(auto.idata_)
    forced = BayesianMLPClassifier(hidden_layer_sizes=(3,), log_likelihood=True, **TINY).fit(X, y)
    assert "log_likelihood" in _groups(forced.idata_)


def _groups(idata):
    return list(idata.children) if hasattr(idata, "children") else list(idata.groups())


def test_saved_log_likelihood_survives_save_and_load(fitted, tmp_path):
    import skhbnn

    flat, _ = fitted
    path = flat.save(tmp_path / "flat.nc")
    loaded = skhbnn.load(path)
    np.testing.assert_array_equal(_log_likelihood(loaded.idata_), _log_likelihood(flat.idata_))


def test_az_plot_khat_draws_the_pareto_k_of_a_fit(fitted):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    _, hier = fitted
    loo = az.loo(hier.idata_, pointwise=True)
    az.plot_khat(loo)
