"""Stochastic variational inference on the kernels (``inference="svi"``) and
``inference="auto"``.

The minibatch step is checked against the full log density (its ELBO
estimate averages to the full one over an epoch, the per-group gradient of a
batch group is that group's own), the fits end to end on every model kind:
hierarchical binary, multiclass and regression with per-group noise, flat
under an informed prior; reproducibility across threads, the diagnostics and
the warning of an unconverged fit, save and load.  The accuracy of the path
at scale is measured by ``python -m benchmarks scale``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import skhbnn
import skhbnn.inference
import skhbnn.svi
import skhbnn.variational
from skhbnn import (
    BayesianMLPClassifier,
    HierarchicalBayesianMLPClassifier,
    HierarchicalBayesianMLPRegressor,
)
from skhbnn.datasets import make_grouped_classification, make_grouped_regression
from skhbnn.kernels.svi_step import hierarchical_steps
from skhbnn.models import FlatModel, HierarchicalModel
from skhbnn.network import NetworkSpec
from skhbnn.svi import _Layout

SVI = dict(inference="svi", hidden_layer_sizes=(4,), draws=100, tune=60, chains=2,
           progressbar=False, random_state=0)


@pytest.fixture(scope="module")
def grouped():
    return make_grouped_classification(
        n_groups=40, n_features=3, min_rows=12, max_rows=12, random_state=1, split=True
    )


@pytest.fixture(scope="module")
def hier(grouped):
    X, _, y, _, g, _ = grouped
    return HierarchicalBayesianMLPClassifier(**SVI).fit(X, y, groups=g)


def _problem(G=6, rows=5, n_out=1, seed=0):
    rng = np.random.default_rng(seed)
    spec = NetworkSpec(n_features=2, hidden_layer_sizes=(3,), n_outputs=n_out)
    X = rng.normal(size=(G * rows, 2))
    y = rng.integers(0, max(2, n_out), size=G * rows)
    codes = np.repeat(np.arange(G), rows)
    return HierarchicalModel(spec, G).build_kernel(X, y, codes)


def _run(problem, x, batches, lr=0.0):
    """The steps of ``batches`` at the point ``x`` (zero draws), learning rate ``lr``."""
    lay = _Layout(problem)
    XT, y, w, starts, layout, act, player, floats = lay.data
    n_g = lay.glob.size
    tri = np.zeros(n_g * (n_g + 1) // 2)
    mean = x[lay.glob].copy()
    local_mean, local_log_sd = x[lay.local].copy(), np.zeros(lay.local.shape)
    n = batches.shape[0]
    elbo = np.empty(n)
    hierarchical_steps(
        XT, y, w, starts, layout, act, player, floats, lay.n_sd, lay.n_noise,
        lay.group_noise, mean, tri, local_mean, local_log_sd, np.zeros((3, n_g + tri.size)),
        np.zeros((4, *lay.local.shape)), np.zeros(lay.n_groups), batches,
        np.zeros((n, n_g)), np.zeros((n, batches.shape[1], lay.local.shape[1])), lr, lr, 0.9,
        0.999, np.array([0.0]), elbo,
    )
    return elbo, mean, local_mean


def test_minibatch_elbo_averages_to_the_full_one():
    """Each batch's terms are scaled by G / B: over an epoch of equal
    batches the estimates average to the full log density (plus the
    entropy, the same in every step)."""
    problem = _problem()
    rng = np.random.default_rng(1)
    x = rng.normal(size=problem.n_dim) * 0.5
    full, _, _ = _run(problem, x, np.arange(6)[None, :])
    order = rng.permutation(6)
    halves, _, _ = _run(problem, x, np.sort(order.reshape(3, 2), axis=1))
    logp = problem.logp_grad(x)[0]
    entropy = x.size * (0.5 + 0.5 * math.log(2 * math.pi))  # L = I, local sds 1
    assert full[0] == pytest.approx(logp + entropy, rel=1e-10)
    assert halves.mean() == pytest.approx(full[0], rel=1e-10)
    assert not np.allclose(halves, full[0])  # the batches do differ


def test_a_batch_group_moves_along_its_own_gradient():
    """Adam's first step moves each coordinate by ``lr * sign(gradient)``:
    the batch's groups by the signs of their own (unscaled) gradient in the
    full log density, the other groups not at all."""
    problem = _problem(G=6)
    lay = _Layout(problem)
    x = np.random.default_rng(2).normal(size=problem.n_dim) * 0.5
    grad = problem.logp_grad(x)[1]
    lr = 1e-6
    _, _, local = _run(problem, x, np.array([[1, 4, -1]]), lr=lr)
    moved = (local - x[lay.local]) / lr
    np.testing.assert_allclose(moved[[1, 4]], np.sign(grad[lay.local[[1, 4]]]), atol=1e-6)
    assert np.all(moved[[0, 2, 3, 5]] == 0)
    _, mean, _ = _run(problem, x, np.arange(6)[None, :], lr=lr)
    np.testing.assert_allclose((mean - x[lay.glob]) / lr, np.sign(grad[lay.glob]), atol=1e-6)


def test_svi_fit_predicts_and_reports(hier, grouped):
    X, X_te, y, y_te, g, g_te = grouped
    assert hier.inference_ == "svi"
    proba = hier.predict_proba(X_te, groups=g_te)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # better than the majority class on held-out rows
    assert np.mean(proba.argmax(axis=1) == y_te) > max(np.mean(y_te), 1 - np.mean(y_te)) + 0.05
    draws = hier.posterior_draws_
    assert draws["w0"].shape[:3] == (2, 100, 40) and draws["w0"].dtype == np.float32
    assert "w0_raw" not in draws and "w0_raw" not in hier.idata_.posterior
    assert hier.elbo_.shape[0] == 2 and np.isfinite(hier.elbo_[:, 0]).all()
    d = hier.diagnostics_
    assert d["inference"] == "svi" and len(d["pareto_k"]) == 2
    assert all(d["svi_converged"]) and math.isnan(d["within_mode_rhat"])
    assert d["min_ess"] >= 100  # independent draws: Kish's count of the weighted restarts
    assert set(d["svi_stage_seconds"]) == {"warm start", "svi", "draws", "pareto k"}


def test_svi_is_reproducible(hier, grouped):
    X, X_te, y, _, g, g_te = grouped
    again = HierarchicalBayesianMLPClassifier(**SVI).fit(X, y, groups=g)
    np.testing.assert_array_equal(
        again.predict_proba(X_te, groups=g_te), hier.predict_proba(X_te, groups=g_te)
    )
    np.testing.assert_array_equal(again.elbo_, hier.elbo_)


def test_svi_multiclass_and_new_groups():
    X, X_te, y, y_te, g, g_te = make_grouped_classification(
        n_groups=20, n_features=3, n_classes=3, min_rows=12, max_rows=12, random_state=2,
        split=True,
    )
    est = HierarchicalBayesianMLPClassifier(**SVI).fit(X, y, groups=g)
    proba = est.predict_proba(X_te, groups=g_te + 100)  # groups never seen: the population
    assert proba.shape == (len(y_te), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_svi_regression_with_a_noise_sd_per_group():
    X, y, g = make_grouped_regression(n_groups=15, n_features=2, random_state=0)
    est = HierarchicalBayesianMLPRegressor(group_noise=True, **SVI).fit(X, y, groups=g)
    assert est.posterior_draws_["sigma"].shape == (2, 100, 15)
    assert np.corrcoef(est.predict(X, groups=g), y)[0, 1] > 0.5


def test_svi_flat_under_an_informed_prior(hier, grouped):
    X, X_te, y, _, g, g_te = grouped
    prior = hier.informed_prior()
    rows = g == 0
    flat = BayesianMLPClassifier(prior=prior, **SVI).fit(X[rows], y[rows])
    assert flat.inference_ == "svi"
    assert flat.predict_proba(X_te[g_te == 0]).shape == (int(np.sum(g_te == 0)), 2)


def test_auto_takes_nuts_below_the_threshold_and_svi_above(monkeypatch, grouped):
    spec = NetworkSpec(n_features=3, hidden_layer_sizes=(5, 5), n_outputs=1)
    seed = FlatModel(spec)
    resolve = skhbnn.inference.resolve_inference
    assert resolve("auto", seed, 900, 1000, 4) == "nuts"  # the seed's data
    assert resolve("auto", seed, 100_000, 1000, 4) == "svi"
    assert resolve("nuts", seed, 100_000, 1000, 4) == "nuts"
    X, _, y, _, g, _ = grouped
    est = HierarchicalBayesianMLPClassifier(**{**SVI, "inference": "auto"})
    monkeypatch.setattr(skhbnn.inference, "AUTO_NUTS_SECONDS", 0.0)
    assert est.fit(X, y, groups=g).inference_ == "svi"


def test_an_unconverged_fit_warns(monkeypatch, grouped):
    X, _, y, _, g, _ = grouped
    monkeypatch.setattr(skhbnn.variational, "_MAX_EPOCHS", 3)
    with pytest.warns(ConvergenceWarning, match="epoch limit"):
        est = HierarchicalBayesianMLPClassifier(**SVI).fit(X, y, groups=g)
    assert est.diagnostics_["svi_converged"] == [False, False]


def test_the_variational_path_runs_the_vectorised_tanh(monkeypatch, grouped):
    """SVI's steps and its warm start evaluate abi.FAST_TANH (the same
    values as libm's tanh to 2e-16, tests/test_density.py), as NUTS does."""
    from skhbnn.kernels import abi

    seen = []
    real = skhbnn.svi.pack

    def spy(definition, data):
        out = real(definition, data)
        seen.append(int(out.header[abi.ACT]))
        return out

    monkeypatch.setattr(skhbnn.svi, "pack", spy)
    monkeypatch.setattr(skhbnn.variational, "_MAX_EPOCHS", 3)
    X, _, y, _, g, _ = grouped
    with pytest.warns(ConvergenceWarning, match="epoch limit"):
        HierarchicalBayesianMLPClassifier(**SVI).fit(X, y, groups=g)
    assert seen == [abi.FAST_TANH, abi.FAST_TANH]  # the full problem, the warm start's subset


def test_svi_fits_save_and_load(hier, grouped, tmp_path):
    _, X_te, _, _, _, g_te = grouped
    loaded = skhbnn.load(hier.save(tmp_path / "svi.nc"))
    assert loaded.inference_ == "svi"
    np.testing.assert_array_equal(loaded.elbo_, hier.elbo_)
    np.testing.assert_allclose(
        loaded.predict_proba(X_te, groups=g_te), hier.predict_proba(X_te, groups=g_te)
    )


def test_khat_is_small_for_good_weights_and_inf_where_the_tail_cannot_be_fitted():
    from skhbnn.variational import khat

    rng = np.random.default_rng(0)
    assert khat(rng.normal(0.0, 0.1, 100)) < 0.5  # nearly equal weights
    assert 0.7 < khat(rng.normal(0.0, 10.0, 100)) < math.inf
    # log ratios spread over thousands (millions of coordinates): ArviZ's
    # Pareto fit gives NaN; the weights are unusable, and k-hat says so
    assert khat(rng.normal(0.0, 1e4, 100)) == math.inf
    ratios = rng.normal(0.0, 0.1, 100)
    ratios[3] = np.nan  # a draw whose density failed counts as weight 0
    assert khat(ratios) < 0.7


def test_full_rank_sds_stay_below_the_prior_sd_on_a_wide_network():
    """The approximation of a flat (10, 10) network on 6 classes (246
    coordinates, N(0, 1) priors) must not be wider than the prior.  With
    every Cholesky parameter at Adam's full learning rate the noise in the
    off-diagonal gradients made the rows of L random-walk: median marginal
    sd 1.73, max 3.26, final ELBO -6,100 (against 0.25, 0.97 and -1,640)."""
    from skhbnn import svi

    X, y, _ = make_grouped_classification(n_groups=100, n_features=6, n_classes=6,
                                          min_rows=10, max_rows=10, random_state=0)
    problem = FlatModel(NetworkSpec(6, (10, 10), 6, "tanh", use_bias=True)).build_kernel(
        X, y, None, None)
    fit = svi.fit_one(problem, 0, max_epochs=5000, tol=0.0, n_rows=len(y))
    sds = np.sqrt(np.sum(fit.chol**2, axis=1))
    assert fit.converged
    assert np.median(sds) < 0.5 and sds.max() < 1.2


def test_the_draw_cap_alone_does_not_warn_but_too_few_draws_do():
    """Where the 1 GiB cap binds, an SVI fit stores at least 200 draws over
    its restarts (25 each of the default 8), so Kish's count is >= 50 unless
    stacking puts most of the weight on one restart; independent draws need
    no more.  NUTS's threshold (100, autocorrelated draws) is unchanged."""
    from skhbnn.diagnostics import reliability_problems

    assert reliability_problems({"inference": "svi", "ess": {"draws": 94.0}}) == []
    assert any("effective sample size below 50" in p
               for p in reliability_problems({"inference": "svi", "ess": {"draws": 30.0}}))
    assert any("effective sample size below 100" in p
               for p in reliability_problems({"ess": {"proba": 94.0}}))
    floor = skhbnn.variational.n_stored_draws(1000, 8, {"w": (10**9,)})
    assert floor == 25
    # the restarts' weights of the 10,000 x 6 fit (benchmarks/README.md, session 13)
    w = np.array([0.21, 0.17, 0.06, 0.06, 0.09, 0.18, 0.24, 0.0])
    assert floor / np.sum(w**2) >= skhbnn.diagnostics.MIN_INDEPENDENT_ESS
    assert skhbnn.variational.n_stored_draws(1000, 4, {"w": (10**9,)}) == 50
    assert skhbnn.variational.n_stored_draws(1000, 40, {"w": (10**9,)}) == 20
    assert skhbnn.variational.n_stored_draws(80, 4, {"w": (10,)}) == 80
    # beyond 4 restarts the draws are shared out: 500 per restart of 4 is 250 of 8
    assert skhbnn.variational.n_stored_draws(500, 8, {"w": (10,)}) == 250
    assert skhbnn.variational.n_stored_draws(500, 2, {"w": (10,)}) == 500


def test_restarts_at_the_draw_floor_are_checked_and_stacked():
    """25 independent draws per restart (the floor of 8 restarts) are enough
    to compare restarts (R-hat across them decides which modes stacking
    weighs); 10 are not, and 25 autocorrelated NUTS draws are not."""
    from skhbnn.diagnostics import (
        invariant_diagnostics,
        min_draws_per_chain,
        reliability_problems,
    )
    from skhbnn.stacking import chain_modes

    assert min_draws_per_chain("svi") <= skhbnn.variational._MIN_DRAWS_PER_RESTART
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 25, 3))
    x[4:] += 3.0  # two groups of restarts that predict differently
    modes = chain_modes({"proba": x}, 1.05, min_draws_per_chain("svi"))
    # the two places are told apart (restarts within one may be split by noise:
    # each restart is its own approximation, which stacking then weighs)
    assert not set(modes[:4]) & set(modes[4:])
    diag = invariant_diagnostics({"proba": x}, None, modes=modes,
                                 min_draws=min_draws_per_chain("svi"))
    assert diag["max_rhat"] > 1.05
    too_few = [p for p in reliability_problems({**diag, "inference": "svi"}) if "too few" in p]
    assert too_few == []
    assert any("too few" in p for p in reliability_problems({**diag, "inference": "nuts"}))
    assert any("too few" in p for p in reliability_problems({"inference": "svi", "n_draws": 10}))


@pytest.mark.parametrize("inference, expected", [("svi", 8), ("nuts", 4)])
def test_chains_auto_runs_eight_svi_restarts_and_four_nuts_chains(monkeypatch, grouped,
                                                                   inference, expected):
    """``chains="auto"`` (the default) resolves by route before anything
    runs: 8 stacked SVI restarts (on 10,000 groups x 6 classes they halve
    the gap to NUTS that 4 leave), 4 NUTS chains; an int sets both."""
    import skhbnn._base

    seen = {}

    class Stop(Exception):
        pass

    def capture(*args, chains, **kwargs):
        seen["chains"] = chains
        raise Stop

    monkeypatch.setattr(skhbnn._base, "fit_svi", capture)
    monkeypatch.setattr(skhbnn._base, "sample_nuts", capture)
    X, _, y, _, g, _ = grouped
    params = {**SVI, "inference": inference}
    params.pop("chains")
    est = HierarchicalBayesianMLPClassifier(**params)
    assert est.chains == "auto"
    with pytest.raises(Stop):
        est.fit(X, y, groups=g)
    assert seen["chains"] == expected
    with pytest.raises(Stop):
        est.set_params(chains=3).fit(X, y, groups=g)
    assert seen["chains"] == 3
