import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from skhbnn.prediction import posterior_moments
from skhbnn.network import NetworkSpec, forward, logits_to_proba


def _random_params(spec, rng, batch=()):
    return {
        name: rng.normal(size=(*batch, *shape)) for name, shape in spec.param_shapes().items()
    }


def test_seed_network_is_2_5_5_1_without_biases():
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=False)
    assert spec.param_shapes() == {"w0": (2, 5), "w1": (5, 5), "w2": (5, 1)}


def test_forward_matches_hand_written_seed_network():
    rng = np.random.default_rng(0)
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=False)
    p = _random_params(spec, rng)
    X = rng.normal(size=(7, 2))
    expected = np.tanh(np.tanh(X @ p["w0"]) @ p["w1"]) @ p["w2"]
    np.testing.assert_allclose(forward(p, X, spec), expected)


@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_numpy_and_pytensor_forward_agree(activation, n_outputs):
    rng = np.random.default_rng(1)
    spec = NetworkSpec(3, (4, 2), n_outputs, activation, use_bias=True)
    p = _random_params(spec, rng, batch=(5,))  # 5 "draws"
    X = rng.normal(size=(6, 3))
    symbolic = {k: pt.tensor(k, shape=(None,) * v.ndim) for k, v in p.items()}
    Xs = pt.matrix("X")
    fn = pytensor.function([Xs, *symbolic.values()], forward(symbolic, Xs, spec, xp=pt))
    np.testing.assert_allclose(fn(X, *p.values()), forward(p, X, spec), rtol=1e-10)
    assert forward(p, X, spec).shape == (5, 6, n_outputs)


def test_batched_groups_equal_per_group_loop():
    rng = np.random.default_rng(2)
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=True)
    p = _random_params(spec, rng, batch=(4,))  # 4 groups
    X = rng.normal(size=(4, 5, 2))  # padded (groups, rows, features)
    batched = forward(p, X, spec)
    for g in range(4):
        single = forward({k: v[g] for k, v in p.items()}, X[g], spec)
        np.testing.assert_allclose(batched[g], single)


def test_logits_to_proba_binary_and_softmax():
    logits = np.array([[0.0], [1000.0], [-1000.0]])
    np.testing.assert_allclose(logits_to_proba(logits), [[0.5, 0.5], [0, 1], [1, 0]])
    multi = logits_to_proba(np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]]))
    np.testing.assert_allclose(multi.sum(axis=1), 1.0)
    assert np.all(np.isfinite(multi))


def _reference_moments(params, X, spec):
    proba = logits_to_proba(forward(params, X, spec))  # float64 throughout
    return proba.mean(axis=0), proba.std(axis=0)


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("use_bias", [True, False])
def test_posterior_moments_match_a_float64_two_pass_reference(n_outputs, use_bias):
    """Hidden layers run in float32 and chunks merge: still within 1e-6."""
    spec = NetworkSpec(3, (6, 4), n_outputs, "tanh", use_bias=use_bias)
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=(700, *s)) for k, s in spec.param_shapes().items()}
    X = rng.normal(size=(5000, 3))  # more rows than one row block
    mean, std = posterior_moments(params, X, spec)
    ref_mean, ref_std = _reference_moments(params, X, spec)
    k = max(2, n_outputs)
    assert mean.dtype == std.dtype == np.float64 and mean.shape == (5000, k)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-6)
    np.testing.assert_allclose(std, ref_std, atol=1e-6)


def test_posterior_moments_keep_large_input_offsets_exact():
    """Features near 1e6 (timestamps, raw money): the first layer's X @ w0 + b0
    cancels to O(1) and must not be rounded to float32 first."""
    spec = NetworkSpec(2, (5,), 1, "tanh", use_bias=True)
    rng = np.random.default_rng(1)
    params = {k: rng.normal(size=(50, *s)) for k, s in spec.param_shapes().items()}
    offset = np.array([1e6, -3e6])
    params["b0"] = params["b0"] - np.einsum("i,sio->so", offset, params["w0"])
    X = offset + rng.normal(size=(300, 2))
    mean, std = posterior_moments(params, X, spec)
    ref_mean, ref_std = _reference_moments(params, X, spec)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-6)
    np.testing.assert_allclose(std, ref_std, atol=1e-6)


def test_posterior_moments_do_not_depend_on_the_other_rows():
    """Up to float32 rounding (BLAS may sum a 1-row product in another order)."""
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=True)
    rng = np.random.default_rng(2)
    params = {k: rng.normal(size=(300, *s)) for k, s in spec.param_shapes().items()}
    X = rng.normal(size=(9000, 2))
    full = posterior_moments(params, X, spec)
    for rows in (slice(0, 1), slice(4090, 4200), slice(8999, 9000)):
        part = posterior_moments(params, X[rows], spec)
        for a, b in zip(part, full):
            np.testing.assert_allclose(a, b[rows], rtol=0, atol=1e-7)


@pytest.mark.parametrize("n_jobs", [2, -1])
def test_posterior_moments_do_not_depend_on_n_jobs(n_jobs):
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=True)
    rng = np.random.default_rng(3)
    params = {k: rng.normal(size=(900, *s)) for k, s in spec.param_shapes().items()}
    X = rng.normal(size=(9000, 2))  # 3 row blocks x several draw chunks
    serial = posterior_moments(params, X, spec)
    threaded = posterior_moments(params, X, spec, n_jobs=n_jobs)
    for a, b in zip(threaded, serial):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("use_bias", [True, False])
def test_units_major_forward_is_the_transposed_forward(use_bias):
    spec = NetworkSpec(3, (4, 2), 3, "tanh", use_bias=use_bias)
    rng = np.random.default_rng(4)
    params = {k: rng.normal(size=(6, *s)) for k, s in spec.param_shapes().items()}
    X = rng.normal(size=(11, 3))
    np.testing.assert_allclose(
        forward(params, X.T, spec, units_major=True),
        np.swapaxes(forward(params, X, spec), -1, -2),
        rtol=1e-12,
        atol=1e-12,
    )
