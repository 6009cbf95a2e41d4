import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

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
