"""NUTS with nutpie runs on skhbnn's kernels, compiles no model, and falls
back to nutpie's own compilation where the kernel route is unavailable."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import skhbnn.fast_nuts
import skhbnn.inference
from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier

from .conftest import TINY

nutpie = pytest.importorskip("nutpie")


def _fit(kind, moons_groups):
    """A flat network on group 0, or the hierarchical one on all groups."""
    X, y, g = moons_groups
    if kind == "flat":
        return BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X[g == 0], y[g == 0])
    return HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(
        X, y, groups=g
    )


def _score(est, kind, moons_groups):
    X, y, g = moons_groups
    if kind == "flat":
        return est.score(X[g == 0], y[g == 0])
    return float(np.mean(est.predict(X, groups=g) == y))


@pytest.fixture
def compiles(monkeypatch):
    """Calls of nutpie.compile_pymc_model, from an empty compile cache."""
    calls = []
    real = nutpie.compile_pymc_model
    monkeypatch.setattr(
        nutpie, "compile_pymc_model", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    monkeypatch.setattr(skhbnn.inference, "_compiled_cache", OrderedDict())
    return calls


@pytest.mark.parametrize("kind", ["flat", "hier"])
def test_kernel_route_compiles_no_model(kind, moons_groups, compiles):
    est = _fit(kind, moons_groups)
    assert compiles == []
    assert _score(est, kind, moons_groups) > 0.75


@pytest.mark.parametrize("kind", ["flat", "hier"])
def test_both_routes_give_the_same_posterior_variables(kind, moons_groups, monkeypatch):
    fast = _fit(kind, moons_groups).idata_.posterior
    monkeypatch.setattr(skhbnn.inference, "KERNELS", False)
    slow = _fit(kind, moons_groups).idata_.posterior
    # nutpie < 0.16.11 also stores the transformed sds (sd0_log__, ...) of
    # a compiled PyMC model; the kernel route stores what newer nutpie does
    transformed = {name for name in slow.data_vars if name.endswith("_log__")}
    assert set(fast.data_vars) == set(slow.data_vars) - transformed
    for name in fast.data_vars:
        assert fast[name].dims == slow[name].dims
        assert fast[name].shape == slow[name].shape


def test_falls_back_to_compiling_when_nutpie_lacks_a_field(moons_groups, compiles, monkeypatch):
    monkeypatch.setattr(
        skhbnn.fast_nuts, "_NEEDED_FIELDS", skhbnn.fast_nuts._NEEDED_FIELDS | {"no_such_field"}
    )
    est = _fit("flat", moons_groups)
    assert compiles == [1]
    assert np.isfinite(est.predict_proba(moons_groups[0])).all()


def test_kernel_route_is_reproducible(moons_groups):
    first = _fit("hier", moons_groups).posterior_draws_["w0"]
    second = _fit("hier", moons_groups).posterior_draws_["w0"]
    np.testing.assert_array_equal(first, second)


def test_falls_back_with_a_warning_when_the_kernels_cannot_be_built(moons_groups, compiles, monkeypatch):
    def broken():
        raise RuntimeError("no cache locator")

    monkeypatch.setattr(skhbnn.fast_nuts, "_callbacks", broken)
    with pytest.warns(RuntimeWarning, match="kernels are unavailable.*no cache locator"):
        est = _fit("flat", moons_groups)
    assert compiles == [1]
    assert np.isfinite(est.predict_proba(moons_groups[0])).all()
