"""Properties (hypothesis) of the forward pass and of ``predict_proba``.

The forward pass is checked on random network shapes, weights and inputs,
including saturating scales; ``predict_proba`` on one module-scoped fit per
estimator class, with rows permuted, subsetted and repeated.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
from skhbnn.network import ACTIVATIONS, NetworkSpec, forward, logits_to_proba

from .conftest import TINY

# Modest example counts: every pytensor check compiles a function.
FAST = settings(max_examples=40, deadline=None)
COMPILING = settings(max_examples=10, deadline=None)
ON_FIT = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Scales of weights and inputs: from tiny to far into saturation.
SCALES = st.sampled_from([1e-6, 1e-2, 1.0, 10.0, 1e3, 1e6])


@st.composite
def networks(draw):
    """A random spec, weights (optionally with a leading draw axis) and X."""
    spec = NetworkSpec(
        n_features=draw(st.integers(1, 4)),
        hidden_layer_sizes=tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))),
        n_outputs=draw(st.sampled_from([1, 2, 3, 5])),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        use_bias=draw(st.booleans()),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = draw(st.sampled_from([(), (1,), (3,)]))
    w_scale, x_scale = draw(SCALES), draw(SCALES)
    params = {
        name: w_scale * rng.standard_normal((*batch, *shape))
        for name, shape in spec.param_shapes().items()
    }
    X = x_scale * rng.standard_normal((draw(st.integers(1, 7)), spec.n_features))
    return spec, params, X


@FAST
@given(networks())
def test_forward_probabilities_are_distributions(net):
    spec, params, X = net
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # even saturated
        logits = forward(params, X, spec)
        proba = logits_to_proba(logits)
    batch = next(iter(params.values())).shape[:-2]
    assert logits.shape == (*batch, X.shape[0], spec.n_outputs)
    assert proba.shape == (*batch, X.shape[0], max(2, spec.n_outputs))
    assert np.all(np.isfinite(proba))
    assert np.all((proba >= 0.0) & (proba <= 1.0))
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


@FAST
@given(
    logits=st.lists(
        st.floats(-1e300, 1e300, allow_nan=False), min_size=1, max_size=6
    ).map(np.array),
    n_outputs=st.sampled_from([1, 2, 4]),
)
def test_logits_to_proba_never_overflows(logits, n_outputs):
    logits = np.resize(logits, (len(logits), n_outputs))
    with np.errstate(over="raise", invalid="raise"):
        proba = logits_to_proba(logits)
    assert np.all((proba >= 0.0) & (proba <= 1.0))
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


@COMPILING
@given(networks())
def test_numpy_forward_equals_pytensor_forward(net):
    spec, params, X = net
    symbolic = {k: pt.tensor(k, shape=(None,) * v.ndim) for k, v in params.items()}
    X_sym = pt.matrix("X")
    fn = pytensor.function(
        [X_sym, *symbolic.values()], forward(symbolic, X_sym, spec, xp=pt)
    )
    expected = forward(params, X, spec)
    got = fn(X, *params.values())
    assert got.shape == expected.shape
    # Same float64 arithmetic up to operation order: relative to the largest logit.
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * scale)


# ------------------------------------------------------------ predict_proba
@pytest.fixture(scope="module")
def fits(moons_groups):
    """One tiny fit per estimator class and the rows to predict: the training
    rows, far-away rows, and (hierarchical) a group never seen in fit."""
    X, y, g = moons_groups
    labels = np.array(["a", "b", "c", "d"], dtype=object)[g]
    flat = BayesianMLPClassifier(hidden_layer_sizes=(4,), **TINY).fit(X, y)
    hier = HierarchicalBayesianMLPClassifier(**TINY).fit(X, y, groups=labels)
    rng = np.random.default_rng(7)
    X_new = np.r_[X[::6], 20 * rng.standard_normal((6, 2))]
    groups = np.r_[labels[::6], ["new"] * 6].astype(object)
    groups[::5] = "new"  # unseen groups spread among seen ones
    return {"flat": (flat, X_new, None), "hier": (hier, X_new, groups)}


def _proba(est, X, groups):
    if groups is None:
        return est.predict_proba(X)
    return est.predict_proba(X, groups=groups)


@pytest.mark.parametrize("kind", ["flat", "hier"])
@ON_FIT
@given(data=st.data())
def test_predict_proba_permutes_with_rows(kind, fits, data):
    est, X, groups = fits[kind]
    perm = np.array(data.draw(st.permutations(range(len(X)))))
    full = _proba(est, X, groups)
    permuted = _proba(est, X[perm], None if groups is None else groups[perm])
    # Hidden layers run in float32: BLAS may round a row differently with
    # other rows around it, far below any decision (1e-7).
    np.testing.assert_allclose(permuted, full[perm], rtol=0, atol=1e-7)
    assert np.all(np.isfinite(full)) and np.all((full >= 0) & (full <= 1))
    np.testing.assert_allclose(full.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("kind", ["flat", "hier"])
@ON_FIT
@given(data=st.data())
def test_predict_proba_of_any_rows_is_the_same(kind, fits, data):
    """Any subset (with repeats, in any order) gets the same rows: no state,
    no batch effects, the population predictive of new groups included."""
    est, X, groups = fits[kind]
    rows = np.array(
        data.draw(st.lists(st.integers(0, len(X) - 1), min_size=1, max_size=2 * len(X)))
    )
    full = _proba(est, X, groups)
    subset = _proba(est, X[rows], None if groups is None else groups[rows])
    np.testing.assert_allclose(subset, full[rows], rtol=0, atol=1e-7)


@pytest.mark.parametrize("kind", ["flat", "hier"])
def test_pickled_estimator_predicts_identically(kind, fits):
    est, X, groups = fits[kind]
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(_proba(clone, X, groups), _proba(est, X, groups))
    kw = {} if groups is None else {"groups": groups}
    np.testing.assert_array_equal(clone.predict_std(X, **kw), est.predict_std(X, **kw))
