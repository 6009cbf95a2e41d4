"""The vectorised R-hat / bulk ESS agree with ArviZ's, column by column."""

import arviz as az
import numpy as np
import pytest

from skhbnn.diagnostics import ess_bulk, invariant_diagnostics, rhat_rank


def _chains(rng, n_chains, n_draws, k=12, shift=2.0):
    """Autocorrelated chains; the first 4 columns of chain 1 sit elsewhere."""
    x = rng.normal(size=(n_chains, n_draws, k)).cumsum(axis=1) * 0.1
    x += rng.normal(size=x.shape)
    if n_chains > 1:
        x[1, :, :4] += shift
    return x


@pytest.mark.parametrize("n_chains, n_draws", [(2, 1000), (4, 101), (3, 60), (1, 500)])
def test_rhat_and_ess_match_arviz(n_chains, n_draws):
    x = _chains(np.random.default_rng(n_draws), n_chains, n_draws)
    ess_ref = np.array([float(az.ess(x[:, :, j])) for j in range(x.shape[2])])
    np.testing.assert_allclose(ess_bulk(x), ess_ref, rtol=1e-10)
    if n_chains > 1:
        rhat_ref = np.array([float(az.rhat(x[:, :, j])) for j in range(x.shape[2])])
        np.testing.assert_allclose(rhat_rank(x), rhat_ref, rtol=1e-10)
        assert (rhat_ref[:4] > 1.1).all()  # the test data has disagreeing chains


def test_invariant_diagnostics_skip_constant_columns_and_single_chains():
    rng = np.random.default_rng(0)
    x = _chains(rng, 2, 200, k=3)
    x[:, :, 2] = 0.5  # a saturated probability
    diag = invariant_diagnostics({"proba": x}, 0)
    assert diag["max_rhat"] == pytest.approx(rhat_rank(x[:, :, :2]).max())
    assert diag["min_ess"] == pytest.approx(ess_bulk(x[:, :, :2]).min())
    one = invariant_diagnostics({"proba": x[:1]}, 0)
    assert np.isnan(one["max_rhat"]) and np.isfinite(one["min_ess"])
