"""The flat and hierarchical Bayesian MLP classifiers."""

from __future__ import annotations

from functools import partial
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import (
    _N_DIAGNOSTIC_ROWS,
    BaseBayesianMLP,
    flatten_chains,
    posterior_moments,
)
from .groups import (
    NEW_GROUP_POLICIES,
    GroupEncoder,
    check_groups,
    pad_by_group,
    resolve_groups,
)
from .fast_nuts import flat_problem, hierarchical_problem
from .models import build_flat_model, build_hierarchical_model
from .network import forward, logits_to_proba
from .priors import MvNormalPrior, informed_prior
from .registry import register_estimator

_FLAT_FITTED = (
    "classes_", "n_features_in_", "feature_names_in_", "network_", "idata_",
    "posterior_draws_", "diagnostics_",
)

_SAMPLING_DOC = """
    inference : {"nuts", "advi"}, default="nuts"
        Full MCMC with NUTS, or mean-field ADVI (faster, less accurate
        uncertainty).
    sampler : {"auto", "nutpie", "pymc"}, default="auto"
        NUTS implementation; "auto" is nutpie when installed (it runs on
        skhbnn's compiled gradient kernels and is several times faster),
        else PyMC's.
    draws : int, default=1000
        Posterior draws per chain (for ADVI: draws from the approximation).
    tune : int, default=1000
        NUTS tuning (warm-up) steps per chain.
    chains : int, default=2
        Number of NUTS chains, run in parallel on up to that many cores.
    target_accept : float, default=0.9
        NUTS target acceptance rate in (0, 1); raise it if there are
        divergences.
    advi_iterations : int, default=30000
        Optimisation steps for ``inference="advi"``.
    random_state : int, RandomState instance or None, default=None
        Seeds sampling (and the population predictive of new groups).  An int
        makes fits reproducible.
    progressbar : bool or "auto", default="auto"
        Show a progress bar while fitting; "auto" shows it in an interactive
        terminal only.
    n_jobs : int, default=None
        Threads for prediction (``predict``, ``predict_proba``,
        ``predict_std``): ``None`` means 1, ``-1`` all CPUs.  Results do not
        depend on it.  Fitting runs ``chains`` chains in parallel regardless.
"""


@register_estimator(fitted=_FLAT_FITTED)
class BayesianMLPClassifier(BaseBayesianMLP):
    __doc__ = (
        """Bayesian multi-layer perceptron classifier fitted with PyMC.

    Every weight has a prior (an isotropic ``Normal(0, prior_sd)`` or an
    informed :class:`~skhbnn.MvNormalPrior`); the posterior is sampled with
    NUTS (or approximated with ADVI) and predictions average the network over
    posterior draws.  Two classes use one logit and a Bernoulli likelihood;
    more classes use a softmax output and a Categorical likelihood.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(5, 5)
        Units per hidden layer.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden-layer activation.
    use_bias : bool, default=True
        Whether layers have biases.  ``use_bias=False`` with ``(5, 5)`` and
        tanh on two features is the seed's 2-5-5-1 network.
    prior_sd : float, default=1.0
        Standard deviation of the isotropic Normal prior on every weight
        (ignored when ``prior`` is given).
    prior : MvNormalPrior or None, default=None
        Informed prior, e.g. ``InformedPriorTransfer(...).fit(...).prior_``.
"""
        + _SAMPLING_DOC
        + """
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
    diagnostics_ : dict or None
        Divergences and R-hat / ESS of symmetry-invariant quantities (NUTS).

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from skhbnn import BayesianMLPClassifier
    >>> X, y = make_moons(n_samples=60, noise=0.2, random_state=0)
    >>> clf = BayesianMLPClassifier(draws=100, tune=100, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """
    )

    _parameter_constraints = {
        **BaseBayesianMLP._parameter_constraints,
        "prior": [None, HasMethods(["validate", "cholesky"])],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(5, 5),
        activation="tanh",
        use_bias=True,
        prior_sd=1.0,
        prior=None,
        inference="nuts",
        sampler="auto",
        draws=1000,
        tune=1000,
        chains=2,
        target_accept=0.9,
        advi_iterations=30000,
        random_state=None,
        progressbar="auto",
        n_jobs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.use_bias = use_bias
        self.prior_sd = prior_sd
        self.prior = prior
        self.inference = inference
        self.sampler = sampler
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.advi_iterations = advi_iterations
        self.random_state = random_state
        self.progressbar = progressbar
        self.n_jobs = n_jobs

    def _posterior_names(self, spec):
        return list(spec.param_shapes())

    def fit(self, X, y):
        """Sample the posterior of the network's weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        return self._fit_atomically(lambda: self._fit(X, y))

    def _fit(self, X, y, classes=None):
        self._validate_params()
        if classes is None:
            X, y_enc, classes = self._check_training_data(X, y)
        else:
            # Fitting one group of a larger problem (InformedPriorTransfer): the
            # classes are the whole problem's, and a group may lack some.
            X, y = self._validate_X(X, reset=True, y=y)
            y_enc = np.searchsorted(classes, y).astype(np.int64)
        spec = self._network_spec(X.shape[1], len(classes))
        if self.prior is not None:
            self.prior.validate(spec)
        seed = self._new_seed(self.random_state)
        args = (spec, X, y_enc)
        kwargs = {"prior_sd": self.prior_sd, "prior": self.prior}
        blocks = None if self.prior is None else tuple(self.prior.blocks(spec))
        idata, draws, n_div = self._infer(
            partial(build_flat_model, *args, **kwargs),
            spec,
            ("flat", spec, blocks),
            seed,
            problem=partial(flat_problem, *args, **kwargs),
        )
        self.classes_ = classes
        self.network_ = spec
        self.idata_ = idata
        self.posterior_draws_ = draws
        proba = logits_to_proba(forward(draws, X[:_N_DIAGNOSTIC_ROWS], spec))
        self._set_diagnostics({"proba": proba[..., 1:]}, n_div)

    @classmethod
    def _from_draws(cls, draws, spec, classes, params=None):
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
        return est

    def _moments(self, X):
        X = self._check_fitted_X(X)
        return posterior_moments(
            flatten_chains(self.posterior_draws_), X, self.network_, n_jobs=self.n_jobs
        )

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


@register_estimator(fitted=(*_FLAT_FITTED, "groups_", "_encoder", "_prediction_seed"))
class HierarchicalBayesianMLPClassifier(BaseBayesianMLP):
    __doc__ = (
        """Hierarchical Bayesian MLP: one network per group, sharing strength.

    Every group has its own weights, drawn around group-mean weights with one
    learned spread per layer, written non-centred:
    ``w[g] = mu + sd_layer * raw[g]`` with ``mu ~ Normal(0, prior_sd)``,
    ``sd_layer ~ HalfNormal(group_sd_prior)``, ``raw[g] ~ Normal(0, 1)``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(5, 5)
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
    use_bias : bool, default=True
    prior_sd : float, default=1.0
        Prior sd of the group-mean weights.
    group_sd_prior : float, default=1.0
        Scale of the HalfNormal prior on each layer's group sd.
    group_column : str, int or None, default=None
        Column of X holding the group label (a DataFrame column name, or an
        integer position for arrays).  When set, groups are read from X in fit
        and predict, and the other columns are the features; this is how
        cross-validation and grid search see groups at predict time.
    new_groups : {"population", "error"}, default="population"
        A group never seen in fit is predicted with the population predictive
        (for each posterior draw, new group weights drawn from that draw's
        group distribution), or raises ``ValueError``.
"""
        + _SAMPLING_DOC
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    groups_ : ndarray of shape (n_groups,)
        Group labels seen in fit; posterior arrays index groups in this order.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    idata_ : arviz InferenceData (PyMC 5) or xarray DataTree (PyMC 6)
    posterior_draws_ : dict of str to ndarray
        ``w{l}_mu`` / ``b{l}_mu`` group means, ``sd{l}`` group sds and per-group
        ``w{l}`` / ``b{l}`` (group axis after chain and draw).
    network_ : NetworkSpec
    diagnostics_ : dict or None

    Examples
    --------
    >>> from skhbnn import HierarchicalBayesianMLPClassifier
    >>> from skhbnn.datasets import make_rotated_moons
    >>> X, y, groups = make_rotated_moons(n_groups=3, n_samples=30, random_state=0)
    >>> clf = HierarchicalBayesianMLPClassifier(draws=100, tune=100, random_state=0)
    >>> clf.fit(X, y, groups=groups).predict(X[:3], groups=groups[:3]).shape
    (3,)
    """
    )

    _parameter_constraints = {
        **BaseBayesianMLP._parameter_constraints,
        "group_sd_prior": [BaseBayesianMLP._parameter_constraints["prior_sd"][0]],
        "group_column": [None, str, Integral],
        "new_groups": [StrOptions(set(NEW_GROUP_POLICIES))],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(5, 5),
        activation="tanh",
        use_bias=True,
        prior_sd=1.0,
        group_sd_prior=1.0,
        group_column=None,
        new_groups="population",
        inference="nuts",
        sampler="auto",
        draws=1000,
        tune=1000,
        chains=2,
        target_accept=0.9,
        advi_iterations=30000,
        random_state=None,
        progressbar="auto",
        n_jobs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.use_bias = use_bias
        self.prior_sd = prior_sd
        self.group_sd_prior = group_sd_prior
        self.group_column = group_column
        self.new_groups = new_groups
        self.inference = inference
        self.sampler = sampler
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.advi_iterations = advi_iterations
        self.random_state = random_state
        self.progressbar = progressbar
        self.n_jobs = n_jobs

    def _posterior_names(self, spec):
        names = []
        for name in spec.param_shapes():
            names += [name, f"{name}_mu"]
        return names + [f"sd{layer}" for layer in range(spec.n_layers)]

    # ------------------------------------------------------------ groups
    def _split_groups(self, X, groups):
        """Features and raw group labels (or None), from X's column or ``groups``."""
        return resolve_groups(X, groups, self.group_column)

    def _group_codes(self, groups, n_samples: int) -> np.ndarray:
        """Integer codes of fitted groups; -1 for groups never seen in fit."""
        if groups is None:
            if len(self.groups_) == 1:
                return np.zeros(n_samples, dtype=np.intp)
            raise ValueError(
                f"groups is required: the model was fitted on {len(self.groups_)} "
                "groups. Pass groups=..., or set group_column so that groups travel "
                "inside X (needed when scikit-learn scores during cross-validation)."
            )
        codes = self._encoder.transform(check_groups(groups, n_samples))
        if self.new_groups == "error" and (codes < 0).any():
            unseen = list(pd.unique(pd.Series(np.asarray(groups, dtype=object)[codes < 0])))
            raise ValueError(
                f"groups {unseen[:10]} were not seen in fit and new_groups='error'; "
                "set new_groups='population' to predict them from the group "
                "distribution."
            )
        return codes

    # --------------------------------------------------------------- fit
    def fit(self, X, y, groups=None):
        """Sample the posterior of the hierarchical network.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), default=None
            Group label of each row (any hashable values).  ``None`` means a
            single group, unless ``group_column`` is set.

        Returns
        -------
        self
        """
        return self._fit_atomically(lambda: self._fit(X, y, groups))

    def _fit(self, X, y, groups):
        self._validate_params()
        X, groups = self._split_groups(X, groups)
        X, y_enc, classes = self._check_training_data(X, y)
        if groups is None:  # one group: the plain-classifier case
            groups = np.zeros(X.shape[0], dtype=object)
        groups = check_groups(groups, X.shape[0])
        encoder = GroupEncoder().fit(groups)
        codes = encoder.transform(groups)
        n_groups = len(encoder.classes_)
        spec = self._network_spec(X.shape[1], len(classes))
        seed = self._new_seed(self.random_state)
        priors = {"prior_sd": self.prior_sd, "group_sd_prior": self.group_sd_prior}

        def model():
            X_pad, y_pad, obs_index = pad_by_group(X, y_enc, codes, n_groups)
            y_obs = y_pad.reshape(-1)[obs_index]
            return build_hierarchical_model(spec, X_pad, y_obs, obs_index, **priors)

        idata, draws, n_div = self._infer(
            model,
            spec,
            ("hierarchical", spec, n_groups),
            seed,
            problem=partial(hierarchical_problem, spec, X, y_enc, codes, n_groups, **priors),
        )
        self.classes_ = classes
        self.groups_ = encoder.classes_
        self._encoder = encoder
        self.network_ = spec
        self.idata_ = idata
        self.posterior_draws_ = draws
        self._prediction_seed = seed
        rows = np.arange(min(_N_DIAGNOSTIC_ROWS, X.shape[0]))
        # Each diagnostic row under its own group's weights: (C, S, rows, ...).
        params = {k: draws[k][:, :, codes[rows]] for k in spec.param_shapes()}
        proba = logits_to_proba(forward(params, X[rows][:, None, :], spec))[..., 0, :]
        sds = np.stack([draws[f"sd{layer}"] for layer in range(spec.n_layers)], axis=-1)
        self._set_diagnostics({"group_sd": sds, "proba": proba[..., 1:]}, n_div)

    def informed_prior(self, align="draws", joint: bool = False) -> MvNormalPrior:
        """MvNormal priors from the fitted group distribution (see
        :func:`skhbnn.priors.informed_prior`), for :class:`BayesianMLPClassifier`.

        Parameters
        ----------
        align : {"draws", "chains", "none"}, default="draws"
            Map the hidden units of every posterior draw (or only of every
            chain) onto one labelling before pooling them; see
            :mod:`skhbnn.alignment`.
        joint : bool, default=False
            One MvNormal over all weights, keeping cross-layer correlations,
            instead of one per weight matrix / bias vector.
        """
        check_is_fitted(self)
        spec = self.network_
        names = spec.param_shapes()
        means = {n: self.posterior_draws_[f"{n}_mu"] for n in names}
        sds = {n: self.posterior_draws_[f"sd{spec.layer_of(n)}"] for n in names}
        return informed_prior(means, sds, spec, align=align, joint=joint)

    def group_mean_network(self) -> BayesianMLPClassifier:
        """A fitted :class:`BayesianMLPClassifier` predicting with the posterior
        draws of the group-mean weights ``w{l}_mu`` / ``b{l}_mu`` (the post's
        "decision surface of the group weights"; the prior network of
        :class:`~skhbnn.InformedPriorTransfer`)."""
        check_is_fitted(self)
        spec = self.network_
        mu = {name: self.posterior_draws_[f"{name}_mu"] for name in spec.param_shapes()}
        return BayesianMLPClassifier._from_draws(mu, spec, self.classes_)

    # ----------------------------------------------------------- predict
    def group_params(self, group=None) -> dict:
        """Posterior draws of one group's weights, shape ``(n_draws, ...)``.

        ``group=None`` gives draws of the population predictive: for each
        posterior draw, weights of a new group drawn from that draw's group
        distribution (fixed random numbers, so predictions are deterministic).
        """
        draws = flatten_chains(self.posterior_draws_)
        spec = self.network_
        if group is not None:
            code = self._encoder.transform(np.array([group], dtype=object))[0]
            if code < 0:
                raise ValueError(f"group {group!r} was not seen in fit.")
            return {k: draws[k][:, code] for k in spec.param_shapes()}
        rng = np.random.default_rng(self._prediction_seed)
        out = {}
        for name in spec.param_shapes():
            mu = draws[f"{name}_mu"]
            sd = draws[f"sd{spec.layer_of(name)}"].reshape((-1,) + (1,) * (mu.ndim - 1))
            out[name] = mu + sd * rng.standard_normal(mu.shape)
        return out

    def _moments(self, X, groups):
        X, groups = self._split_groups(X, groups)
        X = self._check_fitted_X(X)
        codes = self._group_codes(groups, X.shape[0])
        draws = flatten_chains(self.posterior_draws_)
        names = list(self.network_.param_shapes())
        n_classes = len(self.classes_)
        mean = np.empty((X.shape[0], n_classes))
        std = np.empty((X.shape[0], n_classes))
        for code in np.unique(codes):
            rows = codes == code
            if code < 0:
                params = self.group_params(None)
            else:
                params = {k: draws[k][:, code] for k in names}
            mean[rows], std[rows] = posterior_moments(
                params, X[rows], self.network_, n_jobs=self.n_jobs
            )
        return mean, std

    def predict_proba(self, X, groups=None, return_std=False):
        """Posterior-mean class probabilities, shape (n_samples, n_classes).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,), default=None
            Group of each row; ignored when ``group_column`` is set.
        return_std : bool, default=False
            Also return :meth:`predict_std`'s sd, from the same pass.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        std : ndarray of shape (n_samples, n_classes)
            Only when ``return_std=True``.
        """
        mean, std = self._moments(X, groups)
        return (mean, std) if return_std else mean

    def predict_std(self, X, groups=None):
        """Posterior sd of the class probabilities, shape (n_samples, n_classes)."""
        return self._moments(X, groups)[1]

    def predict(self, X, groups=None):
        """Most probable class of each row under its group's network."""
        return self._predict_from_moments(self._moments(X, groups)[0])


__all__ = ["BayesianMLPClassifier", "HierarchicalBayesianMLPClassifier", "MvNormalPrior"]
