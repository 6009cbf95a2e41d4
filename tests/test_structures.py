"""use_bias="auto": chains shared out between the network with and without
biases, the structure stacking prefers kept (skhbnn.structures)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss

from skhbnn import (
    BayesianMLPClassifier,
    HierarchicalBayesianMLPClassifier,
    InformedPriorTransfer,
    structures,
)
from skhbnn.datasets import make_grouped_classification, make_rotated_moons
from skhbnn.network import forward
from skhbnn.variational import posterior_idata

AUTO = dict(use_bias="auto", draws=60, tune=60, chains=4, progressbar=False, random_state=0)


# ------------------------------------------------------------ the pieces
def test_split_chains_gives_the_odd_chain_to_the_biased_network():
    assert structures.split_chains(4) == [2, 2]
    assert structures.split_chains(5) == [3, 2]
    assert structures.split_chains(2) == [1, 1]


def test_part_seeds_differ_and_are_reproducible():
    assert structures.part_seed(7, 0) == 7
    assert structures.part_seed(7, 1) == structures.part_seed(7, 1) != 7


def test_choose_takes_the_heavier_structure_and_biases_on_a_tie():
    labels = np.array([0, 0, 1, 1])
    chosen, totals = structures.choose(labels, np.array([0.1, 0.2, 0.7, 0.0]))
    assert chosen == 1 and totals == pytest.approx([0.3, 0.7])
    assert structures.choose(labels, np.array([0.5, 0.0, 0.0, 0.5]))[0] == 0
    # no weights (all chains one mode): each structure weighs its chains' share
    assert structures.choose(labels, None) == (0, [0.5, 0.5])
    assert structures.choose(np.array([0, 1, 1]), None)[0] == 1


def _part(rng, chains, names):
    draws = {n: rng.normal(size=(chains, 5, *shape)) for n, shape in names.items()}
    return posterior_idata(draws), draws


def test_concat_draws_fills_what_a_bias_free_part_lacks_with_zeros():
    rng = np.random.default_rng(0)
    full = {"w0": (2, 3), "b0": (3,), "sd_b0": ()}
    _, draws_a = _part(rng, 2, full)
    _, draws_b = _part(rng, 3, {"w0": (2, 3)})
    draws = structures.concat_draws([draws_a, draws_b])
    assert list(draws) == list(full)
    assert draws["w0"].shape == (5, 5, 2, 3)
    np.testing.assert_array_equal(draws["w0"][2:], draws_b["w0"])
    np.testing.assert_array_equal(draws["b0"][:2], draws_a["b0"])
    assert not draws["b0"][2:].any() and not draws["sd_b0"][2:].any()


def test_concat_idata_renumbers_the_chains():
    rng = np.random.default_rng(1)
    idata_a, draws_a = _part(rng, 2, {"w0": (2, 3)})
    idata_b, draws_b = _part(rng, 1, {"w0": (2, 3)})
    post = structures.concat_idata([idata_a, idata_b]).posterior
    assert list(post["chain"].values) == [0, 1, 2]
    np.testing.assert_array_equal(
        post["w0"].values, np.concatenate([draws_a["w0"], draws_b["w0"]])
    )
    assert structures.concat_idata([idata_a]) is idata_a


def test_concat_divergences():
    np.testing.assert_array_equal(
        structures.concat_divergences([np.array([1, 0]), np.array([2])]), [1, 0, 2]
    )
    # a part without divergence counts makes the fit's unknown, not 0
    assert structures.concat_divergences([np.array([1]), None]) is None


def test_bias_free_drops_the_bias_variables_only():
    from skhbnn.models import HierarchicalModel
    from skhbnn.network import NetworkSpec

    definition = HierarchicalModel(NetworkSpec(2, (3,), 1), 4, group_sd_prior=0.5)
    free = structures.bias_free(definition)
    assert free.spec.use_bias is False and free.group_sd_prior == 0.5
    lost = {v.name for v in definition.variables()} - {v.name for v in free.variables()}
    assert lost == {"sd_b0", "sd_b1", "b0_mu", "b0_raw", "b1_mu", "b1_raw", "b0", "b1"}


# --------------------------------------------------------------- a fit
@pytest.fixture(scope="module")
def offsets_fit():
    """Groups that differ in their intercepts: the biases are needed."""
    X, y, g = make_grouped_classification(
        n_groups=8, n_features=3, min_rows=30, max_rows=40, group_scale=2.5, random_state=0
    )
    clf = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **AUTO)
    with warnings.catch_warnings():  # 60 draws: too few to pass the checks
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y, groups=g), X, y, g


def test_auto_keeps_the_biases_where_groups_differ_in_intercepts(offsets_fit):
    clf = offsets_fit[0]
    weights = clf.diagnostics_["structure_weights"]
    assert set(weights) == {"bias", "no_bias"}
    assert weights["bias"] > weights["no_bias"]
    assert clf.network_.use_bias
    assert "b0" in clf.posterior_draws_ and "sd_b0" in clf.posterior_draws_


def test_the_kept_structure_alone_makes_the_fit(offsets_fit):
    clf = offsets_fit[0]
    kept = 4  # 2 of each structure, and 2 more of the one kept
    assert {v.shape[0] for v in clf.posterior_draws_.values()} == {kept}
    assert clf.idata_.posterior.sizes["chain"] == kept
    assert clf.idata_.log_likelihood.sizes["chain"] == kept
    # the biased chains carry real biases (not the bias-free part's zeros)
    assert np.abs(clf.posterior_draws_["b0"]).max() > 0
    if clf.chain_weights_ is not None:
        assert clf.chain_weights_.shape == (kept,)


def test_auto_is_reproducible(offsets_fit):
    clf, X, y, g = offsets_fit
    again = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **AUTO).fit(
        X, y, groups=g
    )
    np.testing.assert_array_equal(
        again.predict_proba(X, groups=g), clf.predict_proba(X, groups=g)
    )


def test_the_default_is_the_network_with_biases():
    assert HierarchicalBayesianMLPClassifier().use_bias is True


def test_one_chain_and_svi_keep_the_biases(moons_groups):
    X, y, g = moons_groups
    one = HierarchicalBayesianMLPClassifier(
        hidden_layer_sizes=(3,), use_bias="auto", draws=30, tune=30, chains=1,
        progressbar=False, random_state=0,
    ).fit(X, y, groups=g)
    assert one.network_.use_bias and "structure_weights" not in one.diagnostics_
    svi = HierarchicalBayesianMLPClassifier(
        hidden_layer_sizes=(3,), use_bias="auto", inference="svi", draws=40, tune=30, chains=2,
        progressbar=False, random_state=0,
    ).fit(X, y, groups=g)
    assert svi.network_.use_bias and "structure_weights" not in svi.diagnostics_


def test_invalid_use_bias_is_rejected_before_sampling(moons_groups):
    X, y, g = moons_groups
    with pytest.raises(ValueError, match="use_bias"):
        HierarchicalBayesianMLPClassifier(use_bias="maybe").fit(X, y, groups=g)


def test_a_flat_network_takes_the_structure_of_its_prior(moons_groups):
    X, y, g = moons_groups
    hier = HierarchicalBayesianMLPClassifier(
        hidden_layer_sizes=(3,), use_bias=False, draws=30, tune=30, chains=1,
        progressbar=False, random_state=0,
    ).fit(X, y, groups=g)
    flat = BayesianMLPClassifier(
        hidden_layer_sizes=(3,), use_bias="auto", prior=hier.informed_prior(),
        draws=30, tune=30, chains=2, progressbar=False, random_state=0,
    ).fit(X[g == 0], y[g == 0])
    assert flat.network_.use_bias is False and "b0" not in flat.posterior_draws_
    assert "structure_weights" not in flat.diagnostics_
    population = BayesianMLPClassifier(
        hidden_layer_sizes=(3,), use_bias="auto", prior=hier.population_prior(50),
        draws=30, tune=30, chains=2, progressbar=False, random_state=0,
    ).fit(X[g == 0], y[g == 0])
    assert population.network_.use_bias is False


def test_transfer_from_an_auto_fit(offsets_fit):
    clf, X, y, g = offsets_fit
    transfer = InformedPriorTransfer(clf, prefit=True).fit(X, y, groups=g)
    assert all(est.network_.use_bias == clf.network_.use_bias
               for est in transfer.estimators_.values())


# ---------------------------------------------------- the seed's data
@pytest.mark.slow
def test_auto_takes_the_bias_free_network_on_the_seeds_data():
    """The post's rotated moons are point-symmetric: the bias-free network
    predicts left-out rows better (by about 15 nats of PSIS-LOO at the
    defaults, benchmarks/README.md) and scores better on the test rows."""
    X, X_test, y, y_test, g, g_test = make_rotated_moons(random_state=31, split=True)
    clf = HierarchicalBayesianMLPClassifier(
        use_bias="auto", draws=200, tune=200, progressbar=False, random_state=0
    ).fit(X, y, groups=g)
    assert clf.network_.use_bias is False
    assert clf.diagnostics_["structure_weights"]["no_bias"] > 0.5
    proba = clf.predict_proba(X_test, groups=g_test)
    assert np.mean(clf.classes_[proba.argmax(1)] == y_test) > 0.87
    assert log_loss(y_test, proba) < 0.32
    # the fit is a bias-free fit through and through
    assert not any(k.startswith(("b", "sd_b")) for k in clf.posterior_draws_)
    assert "b0" not in clf.idata_.posterior
    params = {k: clf.posterior_draws_[k][:, :, 0] for k in clf.network_.param_shapes()}
    assert forward(params, X[:3], clf.network_).shape[-2:] == (3, 1)


def test_an_auto_fit_saves_and_loads(offsets_fit, tmp_path):
    import skhbnn

    clf, X, y, g = offsets_fit
    path = tmp_path / "auto.nc"
    clf.save(path)
    loaded = skhbnn.load(path)
    assert loaded.use_bias == "auto" and loaded.network_ == clf.network_
    np.testing.assert_array_equal(
        loaded.predict_proba(X, groups=g), clf.predict_proba(X, groups=g)
    )


def test_fit_new_group_from_an_auto_fit(offsets_fit):
    import copy

    clf, X, y, g = offsets_fit
    hier = copy.deepcopy(clf)
    rows = np.flatnonzero(g == 0)[:12]
    hier.fit_new_group(X[rows], y[rows], group="new")
    flat = hier.new_group_estimators_["new"]
    assert flat.network_.use_bias == clf.network_.use_bias
    proba = hier.predict_proba(X[rows], groups=["new"] * len(rows))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
