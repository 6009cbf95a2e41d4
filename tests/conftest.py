"""Shared fixtures: tiny samplers and fits cached per module/session."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skhbnn.datasets import make_rotated_moons

# Small enough for a test suite, large enough for sane predictions.
# max_draws=None: tiny fits never mix; continuing their chains
# (tests/test_continuation.py) would only make the suite slower
TINY = dict(draws=60, tune=60, chains=1, progressbar=False, random_state=0, max_draws=None)


@pytest.fixture(autouse=True)
def _quiet_convergence():
    # Tiny test samplers trip the convergence warnings by design; tests that
    # check the warnings enable them explicitly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="session")
def moons_groups():
    """4 rotated-moons groups, 30 points each: X, y, groups."""
    return make_rotated_moons(n_groups=4, n_samples=30, random_state=3)


@pytest.fixture(scope="session")
def binary_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y
