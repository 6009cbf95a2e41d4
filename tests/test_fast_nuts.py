"""NUTS with nutpie runs on skhbnn's kernels (``sampler="nutpie"``, the
default), compiles no model, and falls back to nutpie's own compilation of
the PyMC model, with one warning, wherever the kernel route fails.

The kernel route fills nutpie's private ``CompiledPyMCModel`` dataclass
(:mod:`skhbnn.kernels.nutpie`); ``pyproject.toml`` bounds nutpie to the
releases whose dataclass has the fields it needs, and
:func:`test_installed_nutpie_is_inside_the_bound_and_has_every_field` checks
both, so a CI run on any nutpie inside the bound proves the route works.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
import warnings
from collections import OrderedDict
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.validation import check_is_fitted

import skhbnn.inference
import skhbnn.kernels.nutpie
import skhbnn.kernels.problem
from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
from skhbnn.persistence.netcdf import idata_groups

from .conftest import TINY

nutpie = pytest.importorskip("nutpie")

_FALLBACK = "skhbnn's sampling kernels failed"


def _fit(kind, moons_groups, sampler="auto", group=0, hidden=(3,)):
    """A flat network on one group, or the hierarchical one on all groups."""
    X, y, g = moons_groups
    if kind == "flat":
        est = BayesianMLPClassifier(hidden_layer_sizes=hidden, sampler=sampler, **TINY)
        return est.fit(X[g == group], y[g == group])
    est = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=hidden, sampler=sampler, **TINY)
    return est.fit(X, y, groups=g)


def _score(est, kind, moons_groups):
    X, y, g = moons_groups
    if kind == "flat":
        return est.score(X[g == 0], y[g == 0])
    return float(np.mean(est.predict(X, groups=g) == y))


def _fit_recording_warnings(kind, moons_groups, sampler="auto"):
    """``(estimator, [RuntimeWarning messages])`` of one fit."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = _fit(kind, moons_groups, sampler)
    return est, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def _assert_fell_back(est, kind, messages, compiles, moons_groups, *reason):
    """One RuntimeWarning that names the failure and what to do, one
    compilation of the PyMC model, and a fitted estimator."""
    assert len(messages) == 1, messages
    (message,) = messages
    assert message.startswith(_FALLBACK), message
    for text in reason:
        assert text in message, message
    assert "sampler='nutpie-pytensor'" in message  # what to do to choose it and silence this
    assert compiles == [1]
    check_is_fitted(est)
    assert _score(est, kind, moons_groups) > 0.75


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


# ------------------------------------------------------------- the kernel route
@pytest.mark.parametrize("sampler", ["auto", "nutpie"])
@pytest.mark.parametrize("kind", ["flat", "hier"])
def test_kernel_route_compiles_no_model(kind, sampler, moons_groups, compiles):
    est, messages = _fit_recording_warnings(kind, moons_groups, sampler)
    assert messages == []  # no fallback
    assert compiles == []
    assert _score(est, kind, moons_groups) > 0.75


@pytest.mark.parametrize("kind", ["flat", "hier"])
def test_both_routes_give_the_same_posterior_variables(kind, moons_groups):
    fast = _fit(kind, moons_groups, "nutpie").idata_.posterior
    slow = _fit(kind, moons_groups, "nutpie-pytensor").idata_.posterior
    # nutpie < 0.16.11 also stores the transformed sds (sd0_log__, ...) of
    # a compiled PyMC model; the kernel route stores what newer nutpie does
    transformed = {name for name in slow.data_vars if name.endswith("_log__")}
    assert set(fast.data_vars) == set(slow.data_vars) - transformed
    for name in fast.data_vars:
        assert fast[name].dims == slow[name].dims
        assert fast[name].shape == slow[name].shape


def test_kernel_route_is_reproducible(moons_groups):
    first = _fit("hier", moons_groups, "nutpie").posterior_draws_["w0"]
    second = _fit("hier", moons_groups, "nutpie").posterior_draws_["w0"]
    np.testing.assert_array_equal(first, second)


def _hier_problem(moons_groups):
    from skhbnn.models import HierarchicalModel
    from skhbnn.network import NetworkSpec

    X, y, g = moons_groups
    spec = NetworkSpec(n_features=2, hidden_layer_sizes=(3,), n_outputs=1)
    return HierarchicalModel(spec, n_groups=4).build_kernel(X, y.astype(float), g)


def test_expand_writes_the_free_variables_alone_when_asked(moons_groups):
    problem = _hier_problem(moons_groups)
    x = problem.initial_point(0)
    full = problem.expand(x)
    short = dataclasses.replace(problem, shapes=problem.free_shapes()).expand(x)
    assert list(short) == list(problem.free)
    assert set(full) - set(short) == {"w0", "b0", "w1", "b1"}  # the per-group weights
    assert sum(v.size for v in short.values()) == problem.n_dim
    for name, value in short.items():
        np.testing.assert_array_equal(value, full[name])
    model = skhbnn.kernels.nutpie.compiled_model(problem, free_only=True)
    assert model.n_expanded == problem.n_dim


def test_kept_draws_are_nutpies_own_conversion(moons_groups):
    """Converting only the kept draws (the warm-up rows sliced off first)
    gives what nutpie's own conversion keeps, to the bit."""
    problem = _hier_problem(moons_groups)
    model = skhbnn.kernels.nutpie.compiled_model(problem, free_only=True)
    settings = dict(draws=30, tune=40, chains=2, cores=1, seed=3, progress_bar=False)
    kept = skhbnn.inference._sample_kept(model, **settings)
    own = skhbnn.inference._sample_nutpie(model, **settings)
    assert set(idata_groups(kept)) == set(idata_groups(own)) == {"posterior", "sample_stats"}
    assert set(kept.posterior.data_vars) == set(own.posterior.data_vars) == set(problem.free)
    for name in own.posterior.data_vars:
        np.testing.assert_array_equal(kept.posterior[name].values, own.posterior[name].values)
    for name in ("diverging", "n_steps", "step_size"):
        np.testing.assert_array_equal(kept.sample_stats[name].values,
                                      own.sample_stats[name].values)


# ------------------------------------------------------------------- fallbacks
def test_falls_back_when_nutpie_lacks_a_field(moons_groups, compiles, monkeypatch):
    monkeypatch.setattr(
        skhbnn.kernels.nutpie,
        "NEEDED_FIELDS",
        skhbnn.kernels.nutpie.NEEDED_FIELDS | {"no_such_field"},
    )
    est, messages = _fit_recording_warnings("flat", moons_groups, "nutpie")
    _assert_fell_back(
        est, "flat", messages, compiles, moons_groups, "KernelRouteUnavailable",
        "no_such_field",
    )


def test_falls_back_when_nutpie_sample_rejects_the_kernel_model(
    moons_groups, compiles, monkeypatch
):
    real = skhbnn.inference._sample_nutpie
    calls = []

    def kept(compiled, **settings):  # the kernel model: nothing has been compiled yet
        calls.append(len(compiles))
        raise RuntimeError("nutpie rejected the model")

    def sample(compiled, **settings):
        calls.append(len(compiles))
        return real(compiled, **settings)

    monkeypatch.setattr(skhbnn.inference, "_sample_kept", kept)
    monkeypatch.setattr(skhbnn.inference, "_sample_nutpie", sample)
    est, messages = _fit_recording_warnings("flat", moons_groups, "nutpie")
    assert calls == [0, 1]  # the kernel model, then the compiled PyMC model
    _assert_fell_back(
        est, "flat", messages, compiles, moons_groups, "RuntimeError",
        "nutpie rejected the model",
    )


def test_falls_back_when_numba_cannot_build_the_callbacks(moons_groups, compiles, monkeypatch):
    def broken():
        raise RuntimeError("no cache locator")

    # the kernel route looks callbacks up at call time: one patch reaches it
    monkeypatch.setattr(skhbnn.kernels.problem, "callbacks", broken)
    est, messages = _fit_recording_warnings("flat", moons_groups, "nutpie")
    _assert_fell_back(est, "flat", messages, compiles, moons_groups, "no cache locator")


def test_nutpie_pytensor_route_warns_not_and_compiles_once_per_structure(
    moons_groups, compiles, monkeypatch
):
    def no_kernels(problem):
        raise AssertionError("sampler='nutpie-pytensor' must not build the kernel model")

    monkeypatch.setattr(skhbnn.kernels.nutpie, "compiled_model", no_kernels)
    X, y, g = moons_groups
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        draws = []
        for group in (0, 1):  # same structure, new data: compiled once
            est = _fit("flat", moons_groups, "nutpie-pytensor", group=group)
            assert est.score(X[g == group], y[g == group]) > 0.6
            draws.append(est.posterior_draws_["w0"])
        assert compiles == [1]
        assert not np.array_equal(*draws)  # the re-used model sampled the new data
        _fit("flat", moons_groups, "nutpie-pytensor", hidden=(4,))  # a new structure
        assert compiles == [1, 1]


# -------------------------------------------------------------- the nutpie bound
def _nutpie_requirement() -> str:
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    found = [d for d in dependencies if re.match(r"nutpie\s*([<>=!~;\[]|$)", d)]
    assert len(found) == 1, dependencies
    return found[0]


def _satisfies(installed: str, requirement: str) -> tuple[bool, bool]:
    """``(has an upper bound, installed satisfies it)``."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version
    except ImportError:  # plain comparison of release numbers
        def release(text):
            return tuple(int(part) for part in re.findall(r"\d+", text)[:3])

        ops = {
            ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
            "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
        }
        clauses = re.findall(r"(>=|<=|==|!=|<|>)\s*([\w.]+)", requirement.split(";")[0])
        upper = any(op in ("<", "<=", "==") for op, _ in clauses)
        return upper, all(ops[op](release(installed), release(v)) for op, v in clauses)
    specifier = Requirement(requirement).specifier
    upper = any(s.operator in ("<", "<=", "==", "~=", "===") for s in specifier)
    return upper, specifier.contains(Version(installed), prereleases=True)


def test_installed_nutpie_is_inside_the_bound_and_has_every_field():
    """The kernel route uses nutpie's private CompiledPyMCModel: skhbnn must
    bound nutpie to releases whose dataclass was checked, and the installed
    one must have every field the route fills.  If this fails inside the
    bound, the bound is wrong."""
    from nutpie.compile_pymc import CompiledPyMCModel

    requirement = _nutpie_requirement()
    installed = version("nutpie")
    upper, inside = _satisfies(installed, requirement)
    assert upper, f"pyproject.toml's {requirement!r} has no upper bound"
    assert inside, f"nutpie {installed} is outside {requirement!r}"
    fields = {f.name for f in dataclasses.fields(CompiledPyMCModel)}
    missing = skhbnn.kernels.nutpie.NEEDED_FIELDS - fields
    assert not missing, f"nutpie {installed}'s CompiledPyMCModel lacks {sorted(missing)}"


# -------------------------------------------------- compiled vs loaded kernels
_FIT_IN_A_FRESH_PROCESS = """
import sys, warnings
warnings.simplefilter("ignore")
warnings.filterwarnings("error", message="skhbnn's sampling kernels failed")
import numpy as np
from skhbnn import HierarchicalBayesianMLPClassifier
from skhbnn.datasets import make_rotated_moons
from skhbnn.models import HierarchicalModel
from skhbnn.network import NetworkSpec
X, y, g = make_rotated_moons(n_groups=3, n_samples=20, random_state=5)
problem = HierarchicalModel(NetworkSpec(2, (4, 3), 1, "tanh", True), 3).build_kernel(X, y, g)
rng = np.random.default_rng(0)
values = [np.concatenate([[lp], grad]) for lp, grad in (
    problem.logp_grad(rng.normal(size=problem.n_dim) * scale) for scale in (0.1, 1.0, 3.0, 10.0)
)]
est = HierarchicalBayesianMLPClassifier(
    draws=30, tune=30, chains=1, progressbar=False, random_state=4, sampler="nutpie"
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


# ------------------------------------------------------------- mass_matrix
@pytest.mark.parametrize("sampler", ["nutpie", "nutpie-pytensor"])
@pytest.mark.parametrize("kind", ["flat", "hier"])
def test_mass_matrix_reaches_nutpie(kind, sampler, moons_groups, monkeypatch):
    """``mass_matrix`` is nutpie's ``adaptation`` on both nutpie routes; the
    default keeps nutpie's diagonal one."""
    seen = []
    real = nutpie.sample

    @functools.wraps(real)  # the signature skhbnn inspects
    def spy(*args, **kwargs):
        old = "low_rank" if kwargs.get("low_rank_modified_mass_matrix") else "diag"
        seen.append(kwargs.get("adaptation", old))  # nutpie 0.16.11's keyword, or 0.16.8's
        return real(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    X, y, g = moons_groups
    for mass_matrix in ("low_rank", "diag"):
        params = dict(hidden_layer_sizes=(3,), sampler=sampler, mass_matrix=mass_matrix, **TINY)
        if kind == "flat":
            est = BayesianMLPClassifier(**params).fit(X[g == 0], y[g == 0])
        else:
            est = HierarchicalBayesianMLPClassifier(**params).fit(X, y, groups=g)
        assert _score(est, kind, moons_groups) > 0.75
        assert est.diagnostics_["mass_matrix"] == mass_matrix
    assert seen == ["low_rank", "diag"]


def test_low_rank_mass_matrix_with_pymcs_sampler_is_refused_before_sampling(
    moons_groups, monkeypatch
):
    import pymc as pm

    monkeypatch.setattr(pm, "sample", lambda *a, **k: pytest.fail("sampled"))
    X, y, g = moons_groups
    est = HierarchicalBayesianMLPClassifier(sampler="pymc", mass_matrix="low_rank", **TINY)
    with pytest.raises(ValueError, match=r"mass_matrix='low_rank' needs nutpie.*sampler="):
        est.fit(X, y, groups=g)
