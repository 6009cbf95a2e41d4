"""The flat Bayesian MLP regressor, and what both regressors share.

The likelihood is Normal around the network's one output with a learned
noise sd, ``sigma ~ HalfNormal(noise_prior)``.  ``fit`` standardises ``y``
(``y_mean_``, ``y_scale_``) and prediction undoes it, so the priors (weights
``Normal(0, prior_sd)``, noise ``HalfNormal(noise_prior)``) mean the same at
any unit of ``y``.  Prediction follows ``GaussianProcessRegressor`` and
``BayesianRidge``: ``predict(X, return_std=True)`` gives the posterior
predictive mean and sd (observation noise included), ``sample_y`` draws from
the posterior predictive.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval

from ._base import BaseBayesianMLP, diagnostic_rows, store_params
from .classifiers import _FLAT_FITTED
from .models import FlatModel
from .network import forward
from .prediction import (
    flatten_chains,
    pointwise_log_likelihood,
    posterior_moments,
)
from .registry import register_estimator
from .validation import check_regression_data, check_sample_weight

_REGRESSION_FITTED = (*(a for a in _FLAT_FITTED if a != "classes_"), "y_mean_", "y_scale_")


class _BaseRegressor(RegressorMixin, BaseBayesianMLP):
    """What both regressors share: the standardised target, the predictive
    moments and draws of the posterior predictive."""

    _MODE_INVARIANT = "mean"

    def _standardise(self, X, y, sample_weight):
        """Validated ``X``, the standardised target and the row weights;
        sets ``y_mean_`` and ``y_scale_``: those of an informed prior that
        names them (``MvNormalPrior.target_scale``), else ``y``'s own mean
        and sd (weighted when ``sample_weight`` is given; a constant ``y``
        keeps scale 1)."""
        X, y = check_regression_data(self, X, y)
        weights = check_sample_weight(sample_weight, X)
        target = getattr(getattr(self, "prior", None), "target_scale", None)
        if target is not None:
            mean, scale = target
        else:
            mean = float(np.average(y, weights=weights))
            scale = math.sqrt(float(np.average((y - mean) ** 2, weights=weights)))
        self.y_mean_ = float(mean)
        self.y_scale_ = float(scale) if scale > 0.0 and math.isfinite(scale) else 1.0
        return X, (y - self.y_mean_) / self.y_scale_, weights

    def _log_likelihood(self, values: np.ndarray) -> np.ndarray:
        """Pointwise log-likelihood of the standardised target, in ``y``'s units."""
        return values - math.log(self.y_scale_)

    def _invariants(self, outputs, sigma) -> dict:
        """Chain-comparable quantities: the predicted (standardised) means of
        the diagnostic rows and the noise sd(s)."""
        return {"mean": outputs, "noise": sigma.reshape(*sigma.shape[:2], -1)}

    def _row_moments(self, params: dict, sigma: np.ndarray, X: np.ndarray, weights):
        """Predictive mean and sd in ``y``'s units of rows ``X`` under weight
        draws ``params`` (leading draw axis), noise sds ``sigma`` (S,) and
        the draws' weights (``_draw_weights()``, computed once per call)."""
        mean, sd = posterior_moments(
            params, X, self.network_, n_jobs=self.n_jobs, weights=weights, output="value"
        )
        w = np.full(sigma.shape, 1.0 / sigma.size) if weights is None else weights / weights.sum()
        noise_var = float(np.sum(w * sigma.astype(np.float64) ** 2))
        std = np.sqrt(sd[:, 0] ** 2 + noise_var)
        return mean[:, 0] * self.y_scale_ + self.y_mean_, std * self.y_scale_

    def _row_samples(self, params: dict, sigma: np.ndarray, X: np.ndarray, index, rng):
        """Draws of the posterior predictive ``(len(index), n_rows)`` in ``y``'s
        units: for each chosen posterior draw, the network's output plus its
        own noise."""
        chosen = {k: np.asarray(params[k])[index] for k in self.network_.param_shapes()}
        f = forward(chosen, np.asarray(X, dtype=np.float64), self.network_)[..., 0]
        y = f + sigma[index][:, None] * rng.standard_normal(f.shape)
        return y * self.y_scale_ + self.y_mean_

    def _sample_index(self, n_samples: int, rng) -> np.ndarray:
        """Posterior draws for ``n_samples`` predictive draws, by their weight."""
        n_draws = int(np.prod(next(iter(self.posterior_draws_.values())).shape[:2]))
        weights = self._draw_weights()
        p = None if weights is None else weights / weights.sum()
        return rng.choice(n_draws, size=n_samples, p=p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags


@register_estimator(fitted=_REGRESSION_FITTED)
class BayesianMLPRegressor(_BaseRegressor):
    """Bayesian multi-layer perceptron regressor fitted with PyMC.

    The twin of :class:`BayesianMLPClassifier`: the same network, priors,
    samplers and chain combination, with a Normal likelihood around the
    network's output and a learned noise sd.  ``y`` is standardised inside
    ``fit`` and predictions are in ``y``'s units.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Units per hidden layer; ``"auto"`` is ``(5, 5)``.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden-layer activation.
    use_bias : bool or "auto", default=True
        Whether layers have biases.  ``"auto"``: with a ``prior``, the
        structure it was built for; without one, a NUTS fit samples both and
        keeps the one stacking prefers (see
        :class:`HierarchicalBayesianMLPClassifier`).
    prior_sd : float, default=1.0
        Standard deviation of the isotropic Normal prior on every weight
        (ignored when ``prior`` is given).
    prior : MvNormalPrior or None, default=None
        Informed prior, e.g. from
        :meth:`HierarchicalBayesianMLPRegressor.informed_prior`.
    noise_prior : float, default=1.0
        Scale of the HalfNormal prior on the noise sd, in units of the
        standardised ``y`` (1 is the sd of ``y`` itself).
    inference : {"auto", "nuts", "svi", "advi"}, default="auto"
        How the posterior is found.  "nuts": NUTS (exact, up to Monte Carlo
        error).  "svi": stochastic variational inference on skhbnn's kernels
        (minibatches of groups, full-rank Gaussian on the global parameters,
        one diagonal Gaussian per group, ``chains`` restarts from short NUTS
        warm starts, stacked like chains); for thousands of groups.  "auto":
        "nuts" when its fit is expected to take at most two minutes on a
        2-core machine, else "svi" (``docs/inference.md``, "Choosing the
        inference"); the route taken is ``inference_``.  "advi": PyMC's
        mean-field ADVI on the PyMC model (kept for comparison; slower and
        less accurate than "svi").
    sampler : {"auto", "nutpie", "nutpie-pytensor", "pymc"}, default="auto"
        The NUTS route (see :class:`BayesianMLPClassifier`).
    draws : int, default=500
        Posterior draws per chain (for "svi": per restart, shared out when
        there are more than 4 restarts, 250 each of 8; at most as many as fit
        in 1 GiB of float32 weights, at least 200 over all restarts and 20
        each; for "advi": draws from the approximation).
    tune : int, default=500
        NUTS tuning (warm-up) steps per chain ("svi": its warm starts' NUTS
        runs up to 200 of them).
    chains : int or "auto", default="auto"
        Number of NUTS chains (for "svi": restarts); "auto": 4 NUTS chains,
        8 SVI restarts.
    target_accept : float, default=0.9
        NUTS target acceptance rate in (0, 1).
    mass_matrix, max_draws
        NUTS's mass-matrix adaptation, and the draws per chain a fit whose
        chains have not mixed may grow to: as for :class:`BayesianMLPClassifier`.
    advi_iterations : int, default=30000
        Optimisation steps for ``inference="advi"``.
    random_state : int, RandomState instance or None, default=None
        Seeds sampling.  An int makes fits reproducible.
    log_likelihood : bool or "auto", default="auto"
        Store the pointwise log-likelihood of the training rows, in ``y``'s
        units, in ``idata_.log_likelihood`` (for ``az.loo``); "auto" up to 10
        million values.
    combine_chains : {"auto", "stacking", "equal"}, default="auto"
        How prediction combines chains that sit in different modes (see
        :class:`BayesianMLPClassifier`).
    progressbar : bool or "auto", default="auto"
        Show a progress bar while fitting.
    n_jobs : int, default=None
        Threads for prediction; results do not depend on it.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.
    y_mean_, y_scale_ : float
        The standardisation of ``y``: the network models ``(y - y_mean_) /
        y_scale_``.
    idata_ : arviz InferenceData (PyMC 5) or xarray DataTree (PyMC 6)
        The posterior; ``sigma`` is the noise sd on the standardised scale.
    posterior_draws_ : dict of str to ndarray
        Weights ``w{l}`` / biases ``b{l}`` and the noise sd ``sigma``, shape
        ``(chain, draw, ...)``.
    network_ : NetworkSpec
    chain_weights_ : ndarray of shape (chains,) or None
    diagnostics_ : dict or None
        As for :class:`BayesianMLPClassifier`, on the predicted means and the
        noise sd.
    inference_ : str
        The inference that ran, ``inference`` with "auto" resolved: "nuts",
        "svi" or "advi".
    elbo_ : ndarray of shape (chains, n_epochs)
        Only after a "svi" fit: each restart's ELBO per epoch (its mean
        estimate over the epoch's steps), NaN after the restart stopped.

    Examples
    --------
    >>> import numpy as np
    >>> from skhbnn import BayesianMLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(40, 1))
    >>> y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=40)
    >>> reg = BayesianMLPRegressor(draws=100, tune=100, random_state=0).fit(X, y)
    >>> mean, std = reg.predict(X[:3], return_std=True)
    >>> mean.shape, std.shape
    ((3,), (3,))
    """

    _parameter_constraints = {
        **BaseBayesianMLP._parameter_constraints,
        "prior": [None, HasMethods(["validate"])],
        "noise_prior": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes="auto",
        activation="tanh",
        use_bias=True,
        prior_sd=1.0,
        prior=None,
        noise_prior=1.0,
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

    def fit(self, X, y, sample_weight=None):
        """Sample the posterior of the network's weights and noise sd.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Finite real targets (one output).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row's log-likelihood term; ``None`` weighs every
            row 1.

        Returns
        -------
        self
        """
        return self._fit_atomically(lambda: self._fit(X, y, sample_weight=sample_weight))

    def _fit(self, X, y, sample_weight=None):
        self._validate_params()
        X, y_std, weights = self._standardise(X, y, sample_weight)
        spec = self._network_spec(X.shape[1], 1)
        if self.prior is not None:
            self.prior.validate(spec)
        seed = self._new_seed(self.random_state)
        definition = FlatModel(
            spec, prior_sd=self.prior_sd, prior=self.prior, likelihood="normal",
            noise_prior=self.noise_prior,
        )
        idata, draws, n_div, definition = self._infer(definition, seed, X, y_std, None, weights)
        spec = definition.spec  # use_bias="auto": the structure kept
        self.network_ = spec
        self.idata_ = idata
        self.posterior_draws_ = draws
        outputs = forward(draws, X[diagnostic_rows(X.shape[0])], spec)[..., 0]
        self._finish_fit(
            idata,
            X.shape[0],
            lambda r: self._pointwise(draws, spec, X, y_std, None, r),
            self._invariants(outputs, draws["sigma"]),
            n_div,
        )

    def _pointwise(self, draws, spec, X, y, codes, rows):
        flat = flatten_chains(draws)
        return self._log_likelihood(
            pointwise_log_likelihood(flat, X[rows], y[rows], spec, flat["sigma"])
        )

    @classmethod
    def _from_draws(cls, draws, spec, y_mean, y_scale, params=None, chain_weights=None,
                    inference=None):
        """A fitted regressor predicting from given draws (no sampling):
        ``w{l}`` / ``b{l}`` and ``sigma`` of shape ``(chain, draw, ...)``."""
        est = cls(**(params or {}))
        est.network_ = spec
        est.n_features_in_ = spec.n_features
        names = [*spec.param_shapes(), "sigma"]
        est.posterior_draws_ = {k: np.asarray(draws[k]) for k in names}
        est.y_mean_, est.y_scale_ = float(y_mean), float(y_scale)
        est.idata_ = None
        est.diagnostics_ = None
        est.chain_weights_ = chain_weights
        est.inference_ = inference  # the route that drew ``draws``
        return est

    def predict(self, X, return_std=False):
        """Posterior predictive mean of ``y`` (and its sd).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the posterior predictive sd: the spread of the
            network's output over the posterior plus the observation noise.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        X = self._check_fitted_X(X)
        draws = flatten_chains(self.posterior_draws_)
        mean, std = self._row_moments(draws, draws["sigma"], X, self._draw_weights())
        return (mean, std) if return_std else mean

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draws from the posterior predictive of ``y`` at ``X`` (as
        ``GaussianProcessRegressor.sample_y``): for each, a posterior draw of
        the weights and noise sd, chosen by its weight, then the network's
        output plus Normal noise.  Quantiles over the draws are predictive
        intervals.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=0

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples)
        """
        X = self._check_fitted_X(X)
        rng = _rng(random_state, n_samples)
        draws = flatten_chains(self.posterior_draws_)
        index = self._sample_index(n_samples, rng)
        return self._row_samples(draws, draws["sigma"], X, index, rng).T


def _rng(random_state, n_samples) -> np.random.Generator:
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed)


__all__ = ["BayesianMLPRegressor"]
