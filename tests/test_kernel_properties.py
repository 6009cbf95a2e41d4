"""The kernels agree with PyMC over random architectures (hypothesis).

tests/test_density.py checks fixed cases; here the structure is drawn: 1-3
hidden layers of width 1-5, 1-4 features, every activation, with and without
biases, binary or 3-4 classes; the flat model with no informed prior, a
per-parameter or a joint MvNormal prior (random SPD covariances); the
hierarchical model with 1-5 groups, one of which may have no rows; with or
without sample weights (0, fractions and counts).  Each example compares
log density, gradient and every expanded variable with PyMC's compiled
functions (tests/kernel_agreement.py), which compiles three PyMC functions:
a few seconds per example, hence the modest counts.
Examples are derandomized, so CI runs the same ones every time.

PyMC's functions are compiled for the ``vm`` linker (the ops' own Python
implementations, after the same graph rewrites): the graphs are tiny, and it
spares every new architecture a C (PyMC 5) or numba (PyMC 6) compilation,
which would cost several seconds an example.
"""

from __future__ import annotations

import pytest

pytest.importorskip("numba")

import pytensor
from hypothesis import HealthCheck, event, given, settings

from .kernel_agreement import check_flat, check_hierarchical
from .test_models import (
    FLAT_EDGES,
    HIERARCHICAL_EDGES,
    flat_cases,
    hierarchical_cases,
    with_examples,
)


def compiling(max_examples):
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def describe(case):
    spec = case.spec
    event(f"{len(spec.hidden_layer_sizes)} hidden layers")
    event(f"activation {spec.activation}")
    event("biases" if spec.use_bias else "no biases")
    event("binary" if spec.n_outputs == 1 else "multiclass")
    event("sample weights" if case.weighted else "no sample weights")


@compiling(20)  # about 2 s an example
@with_examples(FLAT_EDGES)
@given(flat_cases())
def test_flat_kernels_match_pymc_on_random_architectures(case):
    describe(case)
    event(f"prior {case.prior_kind}")
    X, y = case.data()
    with pytensor.config.change_flags(linker="vm"):
        check_flat(case.definition(), X, y, case.point_rng(), case.weights())


@compiling(16)  # about 3.5 s an example
@with_examples(HIERARCHICAL_EDGES)
@given(hierarchical_cases())
def test_hierarchical_kernels_match_pymc_on_random_architectures(case):
    describe(case)
    event("one group" if case.n_groups == 1 else "several groups")
    event("a group without rows" if case.empty_group is not None else "all groups have rows")
    X, y, codes = case.data()
    with pytensor.config.change_flags(linker="vm"):
        check_hierarchical(case.definition(), X, y, codes, case.point_rng(), case.weights())
