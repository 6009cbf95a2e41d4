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


_FIT_IN_A_FRESH_PROCESS = """
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np
from skhbnn import HierarchicalBayesianMLPClassifier
from skhbnn.datasets import make_rotated_moons
from skhbnn.fast_nuts import hierarchical_problem
from skhbnn.network import NetworkSpec
X, y, g = make_rotated_moons(n_groups=3, n_samples=20, random_state=5)
problem = hierarchical_problem(NetworkSpec(2, (4, 3), 1, "tanh", True), X, y, g, 3)
rng = np.random.default_rng(0)
values = [np.concatenate([[lp], grad]) for lp, grad in (
    problem.logp_grad(rng.normal(size=problem.n_dim) * scale) for scale in (0.1, 1.0, 3.0, 10.0)
)]
est = HierarchicalBayesianMLPClassifier(
    draws=30, tune=30, chains=1, progressbar=False, random_state=4
).fit(X, y, groups=g)
np.save(sys.argv[1], np.concatenate(values + [est.posterior_draws_["w0"].ravel()]))
"""


@pytest.mark.slow
def test_compiling_and_loading_from_numba_cache_give_the_same_fit(tmp_path):
    """The first process after an install compiles the kernels, every later
    one loads them from numba's cache: both must compute the same numbers,
    so a random_state gives the same fit in each."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    outputs = []
    for run in ("compiles", "loads"):
        out = tmp_path / f"{run}.npy"
        subprocess.run(
            [sys.executable, "-c", _FIT_IN_A_FRESH_PROCESS, str(out)],
            env=env,
            check=True,
            timeout=600,
        )
        outputs.append(np.load(out))
    assert any((tmp_path / "numba-cache").rglob("*.nbc"))  # the second run could load
    np.testing.assert_array_equal(outputs[0], outputs[1])
