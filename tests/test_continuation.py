"""NUTS chains continued when they have not mixed (skhbnn.continuation)."""

import numpy as np
import pytest

import skhbnn.combining as combining
from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
from skhbnn.continuation import max_draws_of
from skhbnn.diagnostics import only_unmixed
from skhbnn.models import FlatModel, HierarchicalModel
from skhbnn.network import NetworkSpec

pytest.importorskip("nutpie")


def _problems():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 3))
    codes = np.repeat(np.arange(4), 6)
    labels = (X[:, 0] > 0).astype(float)
    values = X[:, 1].copy()
    spec = NetworkSpec(n_features=3, hidden_layer_sizes=(4, 2), n_outputs=1, use_bias=True)
    return {
        "hierarchical classifier": HierarchicalModel(spec, 4).build_kernel(X, labels, codes),
        "hierarchical regressor, a noise sd per group": HierarchicalModel(
            spec, 4, likelihood="normal", group_noise=True
        ).build_kernel(X, values, codes),
        "flat classifier": FlatModel(spec).build_kernel(X, labels),
        "flat regressor": FlatModel(spec, likelihood="normal").build_kernel(X, values),
    }


@pytest.mark.parametrize("name", list(_problems()))
def test_pack_inverts_the_expand_callback(name):
    problem = _problems()[name]
    for seed in range(3):
        x = problem.initial_point(seed)
        np.testing.assert_allclose(problem.pack(problem.expand(x)), x, rtol=1e-12, atol=1e-12)


def _diag(**kw):
    diag = {"n_draws": 500, "within_mode_rhat": 1.01, "ess": {"proba": 400.0},
            "divergences": 0, "divergence_rate": 0.0, "rhat": {}, "combination": "stacking"}
    diag.update(kw)
    return diag


@pytest.mark.parametrize(
    "diag, expected",
    [
        (_diag(), False),  # nothing wrong
        (_diag(within_mode_rhat=1.1), True),
        (_diag(ess={"proba": 40.0}), True),
        (_diag(within_mode_rhat=1.1, ess={"proba": 40.0}), True),
        # a structural quantity's ESS is not judged, so nothing to cure
        (_diag(ess={"proba": 400.0, "group_sd": 10.0}), False),
        # more draws cure none of these
        (_diag(within_mode_rhat=1.1, divergences=60, divergence_rate=0.03), False),
        (_diag(n_draws=20, ess={}, within_mode_rhat=float("nan")), False),
        (_diag(ess={"proba": 40.0}, rhat={"proba": 1.3}, combination="equal"), False),
    ],
)
def test_only_unmixed_fits_are_continued(diag, expected):
    assert only_unmixed(diag) is expected


def test_max_draws_resolution():
    assert max_draws_of("auto", 500) == 2000
    assert max_draws_of(None, 500) == 500
    assert max_draws_of(800, 500) == 800
    assert max_draws_of(100, 500) == 500  # never fewer than draws


def _force_unmixed(monkeypatch, times):
    """``only_unmixed`` says yes ``times`` times, then no."""
    calls = []

    def fake(diag):
        calls.append(diag["n_draws"])
        return len(calls) <= times

    monkeypatch.setattr(combining, "only_unmixed", fake)
    return calls


def _hier(**kw):
    params = dict(hidden_layer_sizes=(3,), draws=60, tune=60, chains=2, random_state=0,
                  progressbar=False)
    params.update(kw)
    return HierarchicalBayesianMLPClassifier(**params)


def test_an_unmixed_fit_doubles_its_draws_from_where_the_chains_ended(monkeypatch, moons_groups):
    X, y, g = moons_groups
    plain = _hier(max_draws=None).fit(X, y, groups=g)
    calls = _force_unmixed(monkeypatch, times=1)
    est = _hier().fit(X, y, groups=g)
    assert calls == [60, 120]
    assert est.diagnostics_["n_draws"] == 120
    for name, value in est.posterior_draws_.items():
        assert value.shape[:2] == (2, 120), name
        # the first draws are the plain fit's: the chains went on
        np.testing.assert_array_equal(value[:, :60], plain.posterior_draws_[name])
    assert est.idata_.posterior.sizes["draw"] == 120
    for stat in ("diverging", "n_steps"):  # kept along the whole chains
        assert est.idata_.sample_stats[stat].shape == (2, 120), stat
        np.testing.assert_array_equal(est.idata_.sample_stats[stat].values[:, :60],
                                      plain.idata_.sample_stats[stat].values)
    assert est.predict_proba(X, groups=g).shape == (len(X), 2)
    # the same random_state gives the same continued fit
    _force_unmixed(monkeypatch, times=1)
    again = _hier().fit(X, y, groups=g)
    np.testing.assert_array_equal(again.posterior_draws_["w0"], est.posterior_draws_["w0"])


def test_max_draws_bounds_the_continuation(monkeypatch, moons_groups):
    X, y, g = moons_groups
    calls = _force_unmixed(monkeypatch, times=10)
    est = _hier(max_draws=150).fit(X, y, groups=g)
    assert est.diagnostics_["n_draws"] == 120  # 240 would pass 150
    calls.clear()
    est = _hier(max_draws=None).fit(X, y, groups=g)
    assert est.diagnostics_["n_draws"] == 60 and calls == []


def test_flat_fits_continue_too(monkeypatch, binary_data):
    X, y = binary_data
    _force_unmixed(monkeypatch, times=1)
    est = BayesianMLPClassifier(hidden_layer_sizes=(3,), draws=60, tune=60, chains=2,
                                random_state=0, progressbar=False).fit(X, y)
    assert est.diagnostics_["n_draws"] == 120
    assert est.posterior_draws_["w0"].shape[:2] == (2, 120)


def test_other_routes_do_not_continue(monkeypatch, binary_data):
    X, y = binary_data
    calls = _force_unmixed(monkeypatch, times=10)
    est = BayesianMLPClassifier(hidden_layer_sizes=(3,), draws=60, tune=60, chains=2,
                                random_state=0, progressbar=False, sampler="nutpie-pytensor")
    est.fit(X, y)
    assert est.diagnostics_["n_draws"] == 60 and calls == []


def test_use_bias_auto_continues_the_structure_it_kept(monkeypatch, moons_groups):
    X, y, g = moons_groups
    plain = _hier(use_bias="auto", max_draws=None).fit(X, y, groups=g)
    _force_unmixed(monkeypatch, times=1)
    est = _hier(use_bias="auto").fit(X, y, groups=g)
    assert est.network_.use_bias == plain.network_.use_bias
    assert est.diagnostics_["structure_weights"] == plain.diagnostics_["structure_weights"]
    assert est.diagnostics_["n_draws"] == 120
    assert set(est.posterior_draws_) == set(plain.posterior_draws_)
    for name, value in est.posterior_draws_.items():
        assert value.shape[:2] == (2, 120), name
        np.testing.assert_array_equal(value[:, :60], plain.posterior_draws_[name])
