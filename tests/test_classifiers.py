import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
from skhbnn.diagnostics import warn_if_unreliable

from .conftest import TINY


@pytest.fixture(scope="module")
def flat(binary_data):
    X, y = binary_data
    return BayesianMLPClassifier(hidden_layer_sizes=(4,), **TINY).fit(X, y)


@pytest.fixture(scope="module")
def hier(moons_groups):
    X, y, g = moons_groups
    labels = np.array(["a", "b", "c", "d"], dtype=object)[g]
    return HierarchicalBayesianMLPClassifier(**TINY).fit(X, y, groups=labels)


def test_flat_fit_predict_shapes(flat, binary_data):
    X, y = binary_data
    proba, std = flat.predict_proba(X), flat.predict_std(X)
    assert proba.shape == std.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all(std >= 0) and np.all(std <= 0.5)
    assert (flat.predict(X) == y).mean() > 0.85
    assert flat.posterior_draws_["w0"].shape == (1, TINY["draws"], 2, 4)
    assert flat.n_features_in_ == 2 and list(flat.classes_) == [0, 1]


def test_predict_proba_is_exact_average_over_draws(flat, binary_data):
    """No Monte-Carlo: the mean over stored draws, so calls are identical."""
    X, _ = binary_data
    np.testing.assert_array_equal(flat.predict_proba(X), flat.predict_proba(X))
    w = {k: v[0] for k, v in flat.posterior_draws_.items()}
    a = np.tanh(X @ w["w0"] + w["b0"][:, None, :])
    p1 = 1 / (1 + np.exp(-(a @ w["w1"] + w["b1"][:, None, :])[..., 0]))
    # Prediction runs the hidden layers in float32: equal to 1e-7.
    np.testing.assert_allclose(flat.predict_proba(X)[:, 1], p1.mean(axis=0), rtol=0, atol=1e-7)
    np.testing.assert_allclose(flat.predict_std(X)[:, 1], p1.std(axis=0), rtol=0, atol=1e-7)


def test_string_labels_and_multiclass():
    X, y = make_blobs(n_samples=90, centers=3, random_state=0)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X, labels)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.network_.n_outputs == 3
    assert clf.predict_proba(X).shape == (90, 3)
    assert (clf.predict(X) == labels).mean() > 0.9


def test_seed_network_without_bias():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    clf = BayesianMLPClassifier(use_bias=False, **TINY).fit(X, y)
    assert set(clf.posterior_draws_) == {"w0", "w1", "w2"}
    assert clf.posterior_draws_["w2"].shape[-2:] == (5, 1)


def test_hierarchical_groups_and_draws(hier, moons_groups):
    X, y, g = moons_groups
    labels = np.array(["a", "b", "c", "d"], dtype=object)[g]
    assert list(hier.groups_) == ["a", "b", "c", "d"]
    d = hier.posterior_draws_
    assert d["w0"].shape == (1, TINY["draws"], 4, 2, 5)
    assert d["w0_mu"].shape == (1, TINY["draws"], 2, 5)
    assert d["sd0"].shape == (1, TINY["draws"])
    # Non-centred construction: w = mu + sd * raw.
    raw = np.asarray(hier.idata_.posterior["w0_raw"].values)
    np.testing.assert_allclose(d["w0"], d["w0_mu"][:, :, None] + d["sd0"][..., None, None, None] * raw)
    # biases have their own group sd per layer
    if hier.use_bias:
        raw_b = np.asarray(hier.idata_.posterior["b0_raw"].values)
        np.testing.assert_allclose(d["b0"], d["b0_mu"][:, :, None] + d["sd_b0"][..., None, None] * raw_b)
        assert not np.allclose(d["sd_b0"], d["sd0"])
    assert (hier.predict(X, groups=labels) == y).mean() > 0.8


def test_hierarchical_uses_each_groups_weights(hier, moons_groups):
    X, _, _ = moons_groups
    pa = hier.predict_proba(X[:5], groups=["a"] * 5)
    pb = hier.predict_proba(X[:5], groups=["b"] * 5)
    assert not np.allclose(pa, pb)
    mixed = hier.predict_proba(X[:2], groups=["a", "b"])
    np.testing.assert_allclose(mixed, [pa[0], pb[1]])


def test_unseen_group_population_predictive_is_deterministic(hier, moons_groups):
    X, _, _ = moons_groups
    p1 = hier.predict_proba(X[:10], groups=["new"] * 10)
    p2 = hier.predict_proba(X[:10], groups=["other new"] * 10)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, hier.predict_proba(X[:10], groups=["a"] * 10))
    # Wider than a known group: the new group's weights are uncertain too.
    assert hier.predict_std(X, groups=["new"] * len(X)).mean() > hier.predict_std(
        X, groups=["a"] * len(X)
    ).mean()


def test_unseen_group_error_policy(hier, moons_groups):
    X, _, _ = moons_groups
    strict = pickle.loads(pickle.dumps(hier)).set_params(new_groups="error")
    with pytest.raises(ValueError, match="not seen in fit"):
        strict.predict(X[:2], groups=["a", "zzz"])


def test_groups_required_when_several_were_fitted(hier, moons_groups):
    X, _, _ = moons_groups
    with pytest.raises(ValueError, match="groups is required.*group_column"):
        hier.predict(X)


def test_groups_none_is_one_group(binary_data):
    X, y = binary_data
    clf = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X, y)
    assert len(clf.groups_) == 1
    assert clf.predict(X).shape == (len(X),)


@pytest.mark.parametrize("fixture", ["flat", "hier"])
def test_pickle_roundtrip_gives_identical_predictions(fixture, request, moons_groups):
    est = request.getfixturevalue(fixture)
    X, _, g = moons_groups
    kw = {"groups": np.array(["a", "b", "c", "d"], dtype=object)[g]} if fixture == "hier" else {}
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X, **kw), est.predict_proba(X, **kw))
    np.testing.assert_array_equal(again.predict_std(X, **kw), est.predict_std(X, **kw))


def test_random_state_reproduces_fit(binary_data):
    X, y = binary_data
    a = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X, y)
    b = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_samplers(sampler, binary_data):
    X, y = binary_data
    kw = {**TINY, "draws": 50, "tune": 50}
    clf = BayesianMLPClassifier(hidden_layer_sizes=(3,), sampler=sampler, **kw).fit(X, y)
    assert (clf.predict(X) == y).mean() > 0.85
    assert clf.diagnostics_["divergences"] >= 0


def test_advi(binary_data):
    X, y = binary_data
    clf = BayesianMLPClassifier(
        hidden_layer_sizes=(3,), inference="advi", advi_iterations=10000, draws=100,
        random_state=0, progressbar=False,
    ).fit(X, y)
    assert clf.posterior_draws_["w0"].shape == (1, 100, 2, 3)
    assert clf.diagnostics_ is None
    assert (clf.predict(X) == y).mean() > 0.85


def test_diagnostics_are_on_invariant_quantities(hier):
    diag = hier.diagnostics_
    assert set(diag) >= {"divergences", "max_rhat", "min_ess", "rhat", "ess"}
    assert set(diag["rhat"]) <= {"group_sd", "proba", "population"}
    assert set(diag["ess"]) == {"group_sd", "proba", "population"}


def test_bad_diagnostics_warn_with_advice():
    diag = {"divergences": 3, "rhat": {"population": 1.4}, "ess": {}}
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        warn_if_unreliable(diag, "Est")
    msgs = [str(w.message) for w in rec if issubclass(w.category, ConvergenceWarning)]
    assert len(msgs) == 1
    assert "target_accept" in msgs[0] and "R-hat" in msgs[0] and "population" in msgs[0]


def test_not_fitted():
    with pytest.raises(NotFittedError):
        BayesianMLPClassifier().predict(np.zeros((2, 2)))
    with pytest.raises(NotFittedError):
        HierarchicalBayesianMLPClassifier().predict_std(np.zeros((2, 2)), groups=[1, 2])


def test_predict_proba_return_std_is_one_pass_of_both(flat, hier, binary_data, moons_groups):
    X, _ = binary_data
    proba, std = flat.predict_proba(X, return_std=True)
    np.testing.assert_array_equal(proba, flat.predict_proba(X))
    np.testing.assert_array_equal(std, flat.predict_std(X))
    X, _, g = moons_groups
    groups = np.array(["a", "b", "c", "new"], dtype=object)[g]
    proba, std = hier.predict_proba(X, groups=groups, return_std=True)
    np.testing.assert_array_equal(proba, hier.predict_proba(X, groups=groups))
    np.testing.assert_array_equal(std, hier.predict_std(X, groups=groups))


def test_prediction_threads_give_identical_results(flat, hier, binary_data, moons_groups):
    import copy

    X, _ = binary_data
    threaded = copy.deepcopy(flat).set_params(n_jobs=2)
    np.testing.assert_array_equal(threaded.predict_proba(X), flat.predict_proba(X))
    X, _, g = moons_groups
    groups = np.array(["a", "b", "c", "d"], dtype=object)[g]
    threaded = copy.deepcopy(hier).set_params(n_jobs=-1)
    np.testing.assert_array_equal(
        threaded.predict_std(X, groups=groups), hier.predict_std(X, groups=groups)
    )


@pytest.mark.parametrize(
    "n_classes, layers", [(2, (5, 5)), (3, (5, 5)), (4, (6, 6)), (6, (10, 10))]
)
def test_auto_hidden_layers_grow_with_the_classes(n_classes, layers):
    """``hidden_layer_sizes="auto"`` (the default): two layers of
    max(5, 2 (K - 1)) units, in the flat and the hierarchical classifier."""
    from skhbnn import BayesianMLPRegressor, HierarchicalBayesianMLPRegressor

    for cls in (BayesianMLPClassifier, HierarchicalBayesianMLPClassifier):
        est = cls()
        assert est.hidden_layer_sizes == "auto"
        n_outputs = 1 if n_classes == 2 else n_classes
        assert est._network_spec(3, n_outputs).hidden_layer_sizes == layers
        # an explicit value is taken as it is
        assert cls(hidden_layer_sizes=(4,))._network_spec(3, n_outputs).hidden_layer_sizes == (4,)
    for cls in (BayesianMLPRegressor, HierarchicalBayesianMLPRegressor):
        assert cls()._network_spec(3, 1).hidden_layer_sizes == (5, 5)


def test_auto_hidden_layers_in_a_fit():
    X, y = make_blobs(n_samples=80, centers=4, n_features=2, random_state=0)
    clf = BayesianMLPClassifier(**TINY).fit(X, y)
    assert clf.network_.hidden_layer_sizes == (6, 6)
    assert clf.posterior_draws_["w0"].shape[-2:] == (2, 6)
