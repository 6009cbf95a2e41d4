"""The flat Bayesian MLP classifier."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import HasMethods

from ._base import BaseBayesianMLP, diagnostic_rows, store_params
from .models import FlatModel
from .network import class_outputs, forward, logits_to_proba
from .prediction import flatten_chains, pointwise_log_likelihood, posterior_moments
from .registry import register_estimator
from .validation import check_sample_weight

_FLAT_FITTED = (
    "classes_", "n_features_in_", "feature_names_in_", "network_", "idata_",
    "posterior_draws_", "diagnostics_", "chain_weights_", "inference_", "elbo_",
)

@register_estimator(fitted=_FLAT_FITTED)
class BayesianMLPClassifier(ClassifierMixin, BaseBayesianMLP):
    """Bayesian multi-layer perceptron classifier fitted with PyMC.

    Every weight has a prior (an isotropic ``Normal(0, prior_sd)`` or an
    informed :class:`~skhbnn.MvNormalPrior`); the posterior is sampled with
    NUTS (or approximated with ADVI) and predictions average the network over
    posterior draws.  Two classes use one logit and a Bernoulli likelihood;
    more classes use a softmax output and a Categorical likelihood.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Units per hidden layer.  ``"auto"``: ``(5, 5)`` up to 3 classes, two
        layers of ``2 (K - 1)`` units for ``K`` > 3 classes (two per free
        logit; ``(10, 10)`` for 6 classes, measured in ``benchmarks/README.md``,
        "Thousands of groups").
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden-layer activation.
    use_bias : bool or "auto", default=True
        Whether layers have biases.  ``use_bias=False`` with ``(5, 5)`` and
        tanh on two features is the seed's 2-5-5-1 network.  ``"auto"``: with
        a ``prior``, the structure it was built for; without one, a NUTS fit
        samples both and keeps the one stacking prefers (see
        :class:`HierarchicalBayesianMLPClassifier`).
    prior_sd : float, default=1.0
        Standard deviation of the isotropic Normal prior on every weight
        (ignored when ``prior`` is given).
    prior : MvNormalPrior or None, default=None
        Informed prior, e.g. ``InformedPriorTransfer(...).fit(...).prior_``.
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
        The NUTS route (see :mod:`skhbnn.inference`): "nutpie" samples with
        nutpie on skhbnn's compiled kernels (nothing to compile),
        "nutpie-pytensor" with nutpie on the PyMC model it compiles, "pymc"
        with PyMC's own NUTS; "auto" is "nutpie" when nutpie is installed,
        else "pymc".
    draws : int, default=500
        Posterior draws per chain (for "svi": per restart, shared out when
        there are more than 4 restarts, 250 each of 8; at most as many as fit
        in 1 GiB of float32 weights, at least 200 over all restarts and 20
        each; for "advi": draws from the approximation).
    tune : int, default=500
        NUTS tuning (warm-up) steps per chain ("svi": its warm starts' NUTS
        runs up to 200 of them).
    chains : int or "auto", default="auto"
        Number of NUTS chains (for "svi": restarts), run in parallel on up
        to that many cores.  "auto": 4 NUTS chains, 8 SVI restarts.
        Four short chains find more of the posterior's modes than two long
        ones, at the same cost, and stacking combines them; an SVI restart
        covers less of the posterior than a chain and costs less, so more of
        them are stacked (``docs/inference.md``, "Defaults").
    target_accept : float, default=0.9
        NUTS target acceptance rate in (0, 1); raise it if there are
        divergences.
    mass_matrix : {"diag", "low_rank"}, default="diag"
        NUTS's mass-matrix adaptation (nutpie's ``adaptation``).  "low_rank"
        corrects the diagonal mass matrix along correlated directions of the
        posterior.  Where chains drift within their mode (the
        ``ConvergenceWarning`` says "not mixed within their mode") it can
        mix them, at several times the fit time: on the post's data it did
        in 9 of 10 fits, on larger posteriors less often
        (``docs/inference.md``, "When chains drift").  Needs nutpie; unused
        by SVI and ADVI.
    max_draws : int, "auto" or None, default="auto"
        Draws per chain a NUTS fit may grow to when its chains have not
        mixed.  A fit whose predictive is unreliable only because of that
        (within-mode split R-hat above 1.05 or fewer than 100 effective
        draws) continues every chain from its last draw, doubling its draws,
        until the diagnostics pass or the chains hold ``max_draws``; only
        then does it warn (``diagnostics_["n_draws"]``: the draws per chain
        it holds).  "auto": 4 x ``draws``; ``None``: never.  On the post's
        data 4 in 10 default fits needed it (``docs/inference.md``, "When
        chains drift").  Only on nutpie's kernel route.
    advi_iterations : int, default=30000
        Optimisation steps for ``inference="advi"``.
    random_state : int, RandomState instance or None, default=None
        Seeds sampling.  An int makes fits reproducible.
    log_likelihood : bool or "auto", default="auto"
        Store the pointwise log-likelihood of the training rows in
        ``idata_.log_likelihood`` (for ``az.loo`` and ``az.compare``); "auto"
        stores it when it has at most 10 million values (chains x draws x
        rows).
    combine_chains : {"auto", "stacking", "equal"}, default="auto"
        How prediction combines the chains.  BNN chains often sit in
        different modes that NUTS does not cross; "stacking" weights each
        chain by how well it predicts left-out training rows (PSIS-LOO;
        Yao, Vehtari & Gelman 2022), "equal" averages the chains.  "auto" is
        "stacking", except under a :class:`~skhbnn.PopulationPrior`: there
        each chain starts in a component drawn by its posterior probability
        given the data, so averaging the chains weighs the modes by their
        posterior mass (``diagnostics_["combination"]`` is "population";
        measured better than stacking on few rows, ``docs/recipes.md``).
        The weights are ``chain_weights_`` and ``diagnostics_["chain_weights"]``.
    progressbar : bool or "auto", default="auto"
        Show a progress bar while fitting; "auto" shows it in an interactive
        terminal, except for the clones that cross-validation, grid search
        and :class:`~skhbnn.InformedPriorTransfer` fit.
    n_jobs : int, default=None
        Threads for prediction (``predict``, ``predict_proba``,
        ``predict_std``): ``None`` means 1, ``-1`` all CPUs.  Results do not
        depend on it.  Fitting runs ``chains`` chains in parallel regardless.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.
    idata_ : arviz InferenceData (PyMC 5) or xarray DataTree (PyMC 6)
        The posterior; see :mod:`skhbnn.models` for variable names.
    posterior_draws_ : dict of str to ndarray
        Weights ``w{l}`` / biases ``b{l}``, shape ``(chain, draw, ...)``,
        used for prediction (plain numpy: pickles without PyMC).
    network_ : NetworkSpec
    chain_weights_ : ndarray of shape (chains,) or None
        Each chain's weight in prediction (``None``: equal weights).
    diagnostics_ : dict or None
        Mixing within modes (``within_mode_rhat``, ``min_ess`` of the
        combined predictive, ``divergence_rate``) and the modes between them
        (``max_rhat`` across chains, ``chain_weights``, ``mode_elpd_loo``);
        see :func:`skhbnn.diagnostics.invariant_diagnostics`.
    inference_ : str
        The inference that ran, ``inference`` with "auto" resolved: "nuts",
        "svi" or "advi".
    elbo_ : ndarray of shape (chains, n_epochs)
        Only after a "svi" fit: each restart's ELBO per epoch (its mean
        estimate over the epoch's steps), NaN after the restart stopped.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from skhbnn import BayesianMLPClassifier
    >>> X, y = make_moons(n_samples=60, noise=0.2, random_state=0)
    >>> clf = BayesianMLPClassifier(draws=100, tune=100, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        **BaseBayesianMLP._parameter_constraints,
        "prior": [None, HasMethods(["validate"])],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes="auto",
        activation="tanh",
        use_bias=True,
        prior_sd=1.0,
        prior=None,
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
        """Sample the posterior of the network's weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row's log-likelihood term (an integer weight counts
            the row that many times); ``None`` weighs every row 1.

        Returns
        -------
        self
        """
        return self._fit_atomically(lambda: self._fit(X, y, sample_weight=sample_weight))

    def _fit(self, X, y, classes=None, sample_weight=None):
        self._validate_params()
        if classes is None:
            X, y_enc, classes = self._check_training_data(X, y)
        else:
            # Fitting one group of a larger problem (InformedPriorTransfer): the
            # classes are the whole problem's, and a group may lack some.
            X, y = self._validate_X(X, reset=True, y=y)
            y_enc = np.searchsorted(classes, y).astype(np.int64)
        weights = check_sample_weight(sample_weight, X)
        spec = self._network_spec(X.shape[1], class_outputs(len(classes)))
        if self.prior is not None:
            self.prior.validate(spec)
            if getattr(self.prior, "target_scale", None) is not None:
                raise ValueError(
                    "prior was built from a regressor (it has a target_scale); a "
                    "classifier needs a prior from a hierarchical classifier."
                )
        seed = self._new_seed(self.random_state)
        definition = FlatModel(spec, prior_sd=self.prior_sd, prior=self.prior)
        idata, draws, n_div, definition = self._infer(definition, seed, X, y_enc, None, weights)
        spec = definition.spec  # use_bias="auto": the structure kept
        self.classes_ = classes
        self.network_ = spec
        self.idata_ = idata
        self.posterior_draws_ = draws
        proba = logits_to_proba(forward(draws, X[diagnostic_rows(X.shape[0])], spec))
        self._finish_fit(
            idata,
            X.shape[0],
            lambda r: self._pointwise(draws, spec, X, y_enc, None, r),
            {"proba": proba[..., 1:]},
            n_div,
        )

    def _pointwise(self, draws, spec, X, y, codes, rows):
        return pointwise_log_likelihood(flatten_chains(draws), X[rows], y[rows], spec)

    @classmethod
    def _from_draws(cls, draws, spec, classes, params=None, chain_weights=None,
                    inference=None):
        """A fitted classifier predicting from given weight draws (no sampling).

        ``draws`` hold ``w{l}`` / ``b{l}`` of shape ``(chain, draw, ...)``; used
        for the group-mean network of a hierarchical fit.
        """
        est = cls(**(params or {}))
        est.classes_ = np.asarray(classes)
        est.network_ = spec
        est.n_features_in_ = spec.n_features
        est.posterior_draws_ = {k: np.asarray(draws[k]) for k in spec.param_shapes()}
        est.idata_ = None
        est.diagnostics_ = None
        est.chain_weights_ = chain_weights
        est.inference_ = inference  # the route that drew ``draws``
        return est

    def _moments(self, X, log=False):
        X = self._check_fitted_X(X)
        return posterior_moments(
            flatten_chains(self.posterior_draws_), X, self.network_, n_jobs=self.n_jobs,
            log=log, weights=self._draw_weights(),
        )

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably over the posterior
        mixture: equal to ``np.log(predict_proba(X))`` wherever that is
        finite, and finite where a probability underflows to 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._moments(X, log=True)[2]

    def predict_proba(self, X, return_std=False):
        """Posterior-mean class probabilities, shape (n_samples, n_classes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return :meth:`predict_std`'s sd, computed in the same pass
            over the posterior draws (half the work of two calls).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        std : ndarray of shape (n_samples, n_classes)
            Only when ``return_std=True``.
        """
        mean, std = self._moments(X)
        return (mean, std) if return_std else mean

    def predict_std(self, X):
        """Posterior sd of the class probabilities, shape (n_samples, n_classes)."""
        return self._moments(X)[1]

    def predict(self, X):
        """Most probable class under the posterior-mean probabilities."""
        return self._predict_from_moments(self._moments(X)[0])


__all__ = ["BayesianMLPClassifier"]
