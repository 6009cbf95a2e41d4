"""The hierarchical Bayesian MLP regressor: one network per group (see
:mod:`skhbnn.regressors` for the likelihood and the standardised target)."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import BaseBayesianMLP, store_params
from .grouped import HierarchicalMixin
from .groups import resolve_groups
from .prediction import flatten_chains, grouped_pointwise_log_likelihood
from .registry import register_estimator
from .regressors import _REGRESSION_FITTED, BayesianMLPRegressor, _BaseRegressor, _rng


@register_estimator(
    fitted=(
        *_REGRESSION_FITTED, "groups_", "_encoder", "_prediction_seed", "new_group_estimators_"
    )
)
class HierarchicalBayesianMLPRegressor(HierarchicalMixin, _BaseRegressor):
    """Hierarchical Bayesian MLP regressor: one network per group, sharing
    strength.

    The twin of :class:`HierarchicalBayesianMLPClassifier` (the same
    non-centred group model, groups, ``group_column`` and ``new_groups``),
    with a Normal likelihood around each group's network and a learned noise
    sd: one for all groups, or one per group with ``group_noise=True``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Units per hidden layer; ``"auto"`` is ``(5, 5)``.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden-layer activation.
    use_bias : bool or "auto", default=True
        Whether layers have biases (each group has its own).  "auto": a NUTS
        fit samples the network with and without biases and keeps the one
        stacking prefers (see :class:`HierarchicalBayesianMLPClassifier`).
    prior_sd : float, default=1.0
        Prior sd of the group-mean weights.
    group_sd_prior : float, default=1.0
        Scale of the HalfNormal prior on each layer's group sd of the weights.
    bias_group_sd_prior : float or None, default=None
        Scale of the HalfNormal prior on each layer's group sd of the biases;
        ``None`` means ``group_sd_prior``.
    noise_prior : float, default=1.0
        Scale of the HalfNormal prior on the noise sd(s), in units of the
        standardised ``y``.
    group_noise : bool, default=False
        One noise sd per group (independent HalfNormal priors) instead of
        one for all.  A group never seen in fit then takes, for each
        posterior draw, the noise sd of a fitted group drawn at random.
    group_column : str, int or None, default=None
        Column of X holding the group label (see
        :class:`HierarchicalBayesianMLPClassifier`).
    new_groups : {"population", "error"}, default="population"
        Predict groups never seen in fit with the population predictive, or
        raise ``ValueError``.
    inference, sampler, draws, tune, chains, target_accept, mass_matrix, max_draws, \
advi_iterations, random_state, log_likelihood, combine_chains, progressbar, n_jobs
        As for :class:`BayesianMLPRegressor`.

    Attributes
    ----------
    groups_ : ndarray of shape (n_groups,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    y_mean_, y_scale_ : float
        The standardisation of ``y`` (over all groups).
    idata_ : arviz InferenceData (PyMC 5) or xarray DataTree (PyMC 6)
    posterior_draws_ : dict of str to ndarray
        As for :class:`HierarchicalBayesianMLPClassifier`, plus ``sigma``:
        shape ``(chain, draw)``, or ``(chain, draw, n_groups)`` with
        ``group_noise=True``.
    network_ : NetworkSpec
    chain_weights_ : ndarray of shape (chains,) or None
    diagnostics_ : dict or None
    new_group_estimators_ : dict
        Set by :meth:`fit_new_group`: group label -> its fitted
        :class:`BayesianMLPRegressor`.

    Examples
    --------
    >>> from skhbnn import HierarchicalBayesianMLPRegressor
    >>> from skhbnn.datasets import make_grouped_regression
    >>> X, y, groups = make_grouped_regression(n_groups=3, n_samples=15, random_state=0)
    >>> reg = HierarchicalBayesianMLPRegressor(draws=100, tune=100, random_state=0)
    >>> reg.fit(X, y, groups=groups).predict(X[:3], groups=groups[:3]).shape
    (3,)
    """

    _flat_class = BayesianMLPRegressor

    _parameter_constraints = {
        **BaseBayesianMLP._parameter_constraints,
        **HierarchicalMixin._group_constraints,
        "noise_prior": [Interval(Real, 0, None, closed="neither")],
        "group_noise": ["boolean"],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes="auto",
        activation="tanh",
        use_bias=True,
        prior_sd=1.0,
        group_sd_prior=1.0,
        bias_group_sd_prior=None,
        noise_prior=1.0,
        group_noise=False,
        group_column=None,
        new_groups="population",
        inference="auto",
        sampler="auto",
        draws=500,
        tune=500,
        chains="auto",
        target_accept=0.9,
        mass_matrix="diag",
        max_draws="auto",
        advi_iterations=30000,
        random_state=None,
        log_likelihood="auto",
        combine_chains="auto",
        progressbar="auto",
        n_jobs=None,
    ):
        store_params(self, locals())

    def fit(self, X, y, groups=None, sample_weight=None):
        """Sample the posterior of the hierarchical network.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Finite real targets (one output).
        groups : array-like of shape (n_samples,), default=None
            Group label of each row; ``None`` means one group, unless
            ``group_column`` is set.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row's log-likelihood term.

        Returns
        -------
        self
        """
        return self._fit_atomically(lambda: self._fit(X, y, groups, sample_weight))

    def _fit(self, X, y, groups, sample_weight=None):
        self._validate_params()
        X, groups = resolve_groups(X, groups, self.group_column)
        X, y_std, weights = self._standardise(X, y, sample_weight)
        encoder, codes = self._encode_groups(groups, X.shape[0])
        spec = self._network_spec(X.shape[1], 1)
        definition = self._definition(
            spec, len(encoder.classes_), likelihood="normal", noise_prior=self.noise_prior,
            group_noise=bool(self.group_noise),
        )
        draws, (outputs, new), sds, n_div = self._sample(
            definition, X, y_std, codes, weights, encoder
        )
        spec = self.network_  # use_bias="auto": the structure kept
        invariants = {
            "group_sd": sds,
            **self._invariants(outputs[..., 0], draws["sigma"]),
            "population": new[..., 0],
        }
        self._finish_fit(
            self.idata_,
            X.shape[0],
            lambda r: self._pointwise(draws, spec, X, y_std, codes, r),
            invariants,
            n_div,
        )

    def _pointwise(self, draws, spec, X, y, codes, rows):
        flat = flatten_chains(draws)
        return self._log_likelihood(grouped_pointwise_log_likelihood(
            flat, X[rows], y[rows], codes[rows], spec, flat["sigma"]
        ))

    def _sigma_of(self, code: int, draws: dict) -> np.ndarray:
        """The noise sd draws ``(S,)`` of a group (code -1: a new one)."""
        sigma = draws["sigma"]
        if sigma.ndim == 1:
            return sigma
        if code >= 0:
            return sigma[:, code]
        # a new group: per draw, the noise sd of a fitted group at random
        rng = np.random.default_rng([self._prediction_seed, 1])
        return sigma[np.arange(sigma.shape[0]), rng.integers(0, sigma.shape[1], sigma.shape[0])]

    def _fit_new_group(self, flat, X, y, sample_weight) -> None:
        flat.fit(X, y, sample_weight=sample_weight)

    def group_mean_network(self) -> BayesianMLPRegressor:
        """A fitted :class:`BayesianMLPRegressor` predicting with the posterior
        draws of the group-mean weights (and the population's noise sd)."""
        draws = self._group_mean_draws()
        flat_sigma = self._sigma_of(-1, flatten_chains(self.posterior_draws_))
        draws["sigma"] = flat_sigma.reshape(self.posterior_draws_["sigma"].shape[:2])
        return BayesianMLPRegressor._from_draws(
            draws, self.network_, self.y_mean_, self.y_scale_,
            chain_weights=getattr(self, "chain_weights_", None),
            inference=getattr(self, "inference_", None),
        )

    def predict(self, X, groups=None, return_std=False):
        """Posterior predictive mean of ``y`` of every row under its group's
        network (the population predictive for groups not seen in fit), and
        with ``return_std=True`` its sd (observation noise included).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,), default=None
            Group of each row; ignored when ``group_column`` is set.
        return_std : bool, default=False

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        X, parts = self._rows_by_group(X, groups)
        draws = flatten_chains(self.posterior_draws_)
        mean, std = np.empty(X.shape[0]), np.empty(X.shape[0])
        weights = self._draw_weights()
        for rows, code in parts:
            if not isinstance(code, (int, np.integer)):  # a group of fit_new_group
                mean[rows], std[rows] = code.predict(X[rows], return_std=True)
                continue
            mean[rows], std[rows] = self._row_moments(
                self._params_of(code, draws), self._sigma_of(code, draws), X[rows], weights
            )
        return (mean, std) if return_std else mean

    def sample_y(self, X, groups=None, n_samples=1, random_state=0):
        """Draws from the posterior predictive of ``y`` at ``X``, every row
        under its group's network (see :meth:`BayesianMLPRegressor.sample_y`);
        all rows share the chosen posterior draws.

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples)
        """
        X, parts = self._rows_by_group(X, groups)
        rng = _rng(random_state, n_samples)
        draws = flatten_chains(self.posterior_draws_)
        index = self._sample_index(n_samples, rng)
        out = np.empty((n_samples, X.shape[0]))
        for rows, code in parts:
            if not isinstance(code, (int, np.integer)):  # a group of fit_new_group
                out[:, rows] = code.sample_y(X[rows], n_samples, int(rng.integers(2**31 - 1))).T
                continue
            out[:, rows] = self._row_samples(
                self._params_of(code, draws), self._sigma_of(code, draws), X[rows], index, rng
            )
        return out.T


__all__ = ["HierarchicalBayesianMLPRegressor"]
