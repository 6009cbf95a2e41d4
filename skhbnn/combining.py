"""After sampling: the pointwise log-likelihood stored, the chains' modes
and stacking weights, the diagnostics (a mixin of every estimator,
:class:`skhbnn._base.BaseBayesianMLP`)."""

from __future__ import annotations

import numpy as np

from . import structures
from .continuation import ContinueChains, max_draws_of
from .diagnostics import (
    RHAT_THRESHOLD,
    invariant_diagnostics,
    min_draws_per_chain,
    only_unmixed,
    warn_if_unreliable,
)
from .inference import add_log_likelihood, resolve_sampler
from .priors import PopulationPrior
from .stacking import (
    chain_loo,
    chain_modes,
    draw_weights,
    mode_stacking,
    stacking_weights,
)
from .variational import variational_diagnostics

# log_likelihood="auto" stores the pointwise log-likelihood (chains x draws x
# rows float64 values) up to this many values: 80 MB.
_MAX_LOG_LIKELIHOOD_VALUES = 10_000_000
# Stacking without a stored log-likelihood reads at most this many rows,
# evenly spaced: PSIS-LOO costs ~0.6 ms per row and chain, and 2,000 rows fix
# the weights of a few chains well (13 s of a 24 s SVI fit on 25k rows had
# gone to 5,000 rows).
_MAX_STACKING_ROWS = 2000


def stacking_rows(n_rows: int, n_draws_total: int) -> np.ndarray:
    """The training rows stacking reads without a stored log-likelihood:
    at most ``_MAX_STACKING_ROWS``, and at most ``_MAX_LOG_LIKELIHOOD_VALUES``
    values over ``n_draws_total`` draws, evenly spaced."""
    n_used = max(1, min(n_rows, _MAX_STACKING_ROWS,
                        _MAX_LOG_LIKELIHOOD_VALUES // n_draws_total))
    return np.unique(np.linspace(0, n_rows - 1, n_used).round().astype(int))


class PosteriorCombination:
    """How an estimator's chains become one predictive: the pointwise
    log-likelihood (``idata_.log_likelihood``), the chains' modes, their
    stacking weights (``chain_weights_``), ``diagnostics_`` and the warning.
    Needs ``_MODE_INVARIANT``, ``inference_``, ``combine_chains``,
    ``log_likelihood`` and ``posterior_draws_`` of the estimator."""

    def _chain_stacking_weights(self, draws: dict, spec, data: tuple) -> np.ndarray:
        """Stacking weights of every chain of ``draws`` (no modes: each chain
        its own), from the PSIS-LOO densities of at most
        ``_MAX_STACKING_ROWS`` evenly spaced training rows."""
        X, y, codes, _ = data
        n_chains, n_draws = next(iter(draws.values())).shape[:2]
        rows = stacking_rows(X.shape[0], n_chains * n_draws)
        values = self._pointwise(draws, spec, X, y, codes, rows)
        lpd, _ = chain_loo(values.reshape(n_chains, n_draws, len(rows)))
        return stacking_weights(lpd)

    def _finish_fit(self, idata, n_rows: int, pointwise, invariants, n_divergent) -> None:
        """After sampling: the pointwise log-likelihood, the chains' weights,
        the diagnostics.

        ``pointwise(rows)`` computes ``log p(y_i | theta)`` of the training
        rows ``rows`` over the flattened draws, shape ``(chain * draw,
        len(rows))``.  It is stored in ``idata`` as its ``log_likelihood``
        group (``az.loo``, ``az.compare``) always, never, or (``"auto"``)
        when it holds at most ``_MAX_LOG_LIKELIHOOD_VALUES`` values; with
        ``combine_chains="stacking"`` and several chains the same values give
        the chains' stacking weights (:mod:`skhbnn.stacking`); not stored,
        they are computed for at most ``_MAX_STACKING_ROWS`` evenly spaced
        rows.
        """
        n_chains, n_draws = (idata.posterior.sizes[d] for d in ("chain", "draw"))
        store = self.log_likelihood
        if store == "auto":
            store = n_chains * n_draws * n_rows <= _MAX_LOG_LIKELIHOOD_VALUES
        rows = np.arange(n_rows) if store else stacking_rows(n_rows, n_chains * n_draws)
        cache = {}

        def values():  # computed once, on first use
            if "values" not in cache:
                cache["values"] = pointwise(rows).reshape(n_chains, n_draws, len(rows))
            return cache["values"]

        if store:
            add_log_likelihood(idata, values())
        combination = self._combination()
        self.chain_weights_, modes, loo = self._stacking(invariants, values, combination)
        self._set_diagnostics(invariants, n_divergent, modes, loo, combination,
                              self.__dict__.pop("_structure_weights", None))

    def _stacking(self, invariants: dict, values, combination: str):
        """``(chain_weights, modes, loo)`` of the fitted chains: the chains'
        modes when there are several chains and they are stacked (or form a
        population prior), stacking weights when there are several modes
        (``values()``: the pointwise log-likelihood the weights are fitted
        to)."""
        n_chains = np.shape(invariants[self._MODE_INVARIANT])[0]
        modes = None
        if combination in ("stacking", "population") and n_chains > 1:
            # modes as prediction sees them: chains that predict alike are one
            key = self._MODE_INVARIANT
            modes = chain_modes({key: invariants[key]}, RHAT_THRESHOLD,
                                min_draws_per_chain(self.inference_))
        if combination == "stacking" and modes is not None and modes.max() > 0:
            weights, loo = mode_stacking(values(), modes)
            return weights, modes, loo
        return None, modes, None

    def _combination(self) -> str:
        """How prediction combines the chains: ``combine_chains``, its
        "auto" resolved (see the estimators' docstrings)."""
        if self.combine_chains != "auto":
            return self.combine_chains
        if isinstance(getattr(self, "prior", None), PopulationPrior):
            return "population"
        return "stacking"

    def _draw_weights(self):
        """Each flattened draw's weight in prediction, or ``None`` (equal)."""
        weights = getattr(self, "chain_weights_", None)
        if weights is None:
            return None
        return draw_weights(weights, next(iter(self.posterior_draws_.values())).shape[1])

    def _set_diagnostics(self, invariants: dict, n_divergent, modes=None, loo=None,
                         combination=None, structure_weights=None) -> None:
        if self.inference_ == "advi":
            self.diagnostics_ = None
            return
        self.diagnostics_ = invariant_diagnostics(
            invariants, n_divergent, getattr(self, "chain_weights_", None), modes, loo,
            combination="population" if combination == "population" else None,
            min_draws=min_draws_per_chain(self.inference_),
        )
        if self.inference_ == "nuts":  # what the warning may suggest instead
            self.diagnostics_["mass_matrix"] = getattr(self, "mass_matrix", "diag")
        if structure_weights is not None:  # use_bias="auto" (skhbnn.structures)
            self.diagnostics_["structure_weights"] = dict(
                zip(structures.STRUCTURES, (round(w, 4) for w in structure_weights))
            )
        if self.inference_ == "svi":
            info = self.__dict__.pop("_variational")
            self.diagnostics_.update(variational_diagnostics(
                info, getattr(self, "chain_weights_", None), self.diagnostics_["n_draws"]
            ))
        if self._continue_chains():
            raise ContinueChains
        warn_if_unreliable(self.diagnostics_, type(self).__name__)

    def _continue_chains(self) -> bool:
        """Whether this NUTS fit goes on (:mod:`skhbnn.continuation`): its
        chains have not mixed, and nothing else is wrong; they are on the
        kernel route, inside :func:`skhbnn._base.fit_atomically`, and may
        double their draws within ``max_draws`` (with ``use_bias="auto"``,
        the chains of the structure kept)."""
        diag = self.diagnostics_
        if ("_continue_from" not in self.__dict__ or self.inference_ != "nuts"
                or resolve_sampler(self.sampler) != "nutpie"):
            return False
        n_draws = diag["n_draws"]
        if 2 * n_draws > max_draws_of(getattr(self, "max_draws", None), self.draws):
            return False
        return only_unmixed(diag)
