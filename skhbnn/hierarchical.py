"""The hierarchical Bayesian MLP classifier: one network per group."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import _N_DIAGNOSTIC_ROWS, BaseBayesianMLP, store_params
from .classifiers import _FLAT_FITTED, BayesianMLPClassifier
from .groups import NEW_GROUP_POLICIES, GroupEncoder, check_groups, group_codes, resolve_groups
from .models import HierarchicalModel
from .models.hierarchical import group_sd_name
from .network import forward, logits_to_proba
from .prediction import flatten_chains, grouped_pointwise_log_likelihood, posterior_moments
from .priors import MvNormalPrior, informed_prior
from .registry import register_estimator
from .validation import check_sample_weight


def _group_sd(draws: dict, param: str, spec) -> np.ndarray:
    """Draws of the group sd that scales ``param``.  Fits saved by skhbnn
    0.1.0 have one sd per layer (``sd{l}``), biases included."""
    layer = spec.layer_of(param)
    name = group_sd_name(param, layer)
    return draws[name] if name in draws else draws[f"sd{layer}"]


class HierarchicalMixin:
    """What the hierarchical classifier and regressor share: groups, the
    model definition, the per-group draws and the population predictive.
    ``_flat_class`` is the flat twin (``group_mean_network``)."""

    _flat_class: type

    def _encode_groups(self, groups, n_rows: int):
        """``(encoder, codes)`` of the training rows' groups (``None``: one)."""
        if groups is None:  # one group: the plain-estimator case
            groups = np.zeros(n_rows, dtype=object)
        groups = check_groups(groups, n_rows)
        encoder = GroupEncoder().fit(groups)
        return encoder, encoder.transform(groups)

    def _definition(self, spec, n_groups: int, **likelihood) -> HierarchicalModel:
        return HierarchicalModel(
            spec, n_groups, prior_sd=self.prior_sd, group_sd_prior=self.group_sd_prior,
            bias_group_sd_prior=self.bias_group_sd_prior, **likelihood,
        )

    def _sample(self, definition, X, y, codes, weights, encoder):
        """Sample and store the posterior; return the draws, the diagnostic
        rows' network outputs under their own group's weights ``(C, S,
        rows, n_outputs)`` and the group sds ``(C, S, n_sd)``."""
        spec = definition.spec
        seed = self._new_seed(self.random_state)
        idata, draws, n_div = self._infer(definition, seed, X, y, codes, weights)
        self.groups_ = encoder.classes_
        self._encoder = encoder
        self.network_ = spec
        self.idata_ = idata
        self.posterior_draws_ = draws
        self._prediction_seed = seed
        rows = np.arange(min(_N_DIAGNOSTIC_ROWS, X.shape[0]))
        params = {k: draws[k][:, :, codes[rows]] for k in spec.param_shapes()}
        outputs = forward(params, X[rows][:, None, :], spec)[..., 0, :]
        group_sds = [v.name for v in definition.variables() if v.role == "group_sd"]
        sds = np.stack([draws[name] for name in group_sds], axis=-1)
        return draws, outputs, sds, n_div

    def _group_codes(self, groups, n_samples: int) -> np.ndarray:
        """Integer codes of fitted groups; -1 for groups never seen in fit."""
        fix = "new_groups='population'" if self.new_groups == "error" else None
        return group_codes(self._encoder, groups, n_samples, new_groups_fix=fix)

    def _rows_by_group(self, X, groups):
        """Validated ``X`` and ``[(rows, code)]`` per group present (code -1:
        groups not seen in fit)."""
        X, groups = resolve_groups(X, groups, self.group_column)
        X = self._check_fitted_X(X)
        codes = self._group_codes(groups, X.shape[0])
        return X, [(codes == code, code) for code in np.unique(codes)]

    def informed_prior(self, align="draws", joint: bool = False) -> MvNormalPrior:
        """MvNormal priors from the fitted group distribution (see
        :func:`skhbnn.priors.informed_prior`), for the flat estimator's
        ``prior``.

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
        draws = self.posterior_draws_
        weights = getattr(self, "chain_weights_", None)
        if weights is not None:  # chains stacking left out carry no population
            draws = {k: v[np.asarray(weights) > 0] for k, v in draws.items()}
        means = {n: draws[f"{n}_mu"] for n in names}
        sds = {n: _group_sd(draws, n, spec) for n in names}
        # a regressor's weights are on its standardised y: the prior says so
        target = (self.y_mean_, self.y_scale_) if hasattr(self, "y_scale_") else None
        return informed_prior(means, sds, spec, align=align, joint=joint, target_scale=target)

    def _group_mean_draws(self) -> dict:
        check_is_fitted(self)
        return {name: self.posterior_draws_[f"{name}_mu"] for name in self.network_.param_shapes()}

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
            sd = _group_sd(draws, name, spec).reshape((-1,) + (1,) * (mu.ndim - 1))
            out[name] = mu + sd * rng.standard_normal(mu.shape)
        return out

    def _params_of(self, code: int, draws: dict) -> dict:
        """One group's flattened weight draws; the population predictive's for
        code -1."""
        if code < 0:
            return self.group_params(None)
        return {k: draws[k][:, code] for k in self.network_.param_shapes()}


@register_estimator(fitted=(*_FLAT_FITTED, "groups_", "_encoder", "_prediction_seed"))
class HierarchicalBayesianMLPClassifier(HierarchicalMixin, ClassifierMixin, BaseBayesianMLP):
    """Hierarchical Bayesian MLP: one network per group, sharing strength.

    Every group has its own weights, drawn around group-mean weights with one
    learned spread per layer, written non-centred:
    ``w[g] = mu + sd * raw[g]`` with ``mu ~ Normal(0, prior_sd)``,
    ``sd ~ HalfNormal(group_sd_prior)``, ``raw[g] ~ Normal(0, 1)``; one sd
    per layer for its weights and one for its biases.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(5, 5)
        Units per hidden layer.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden-layer activation.
    use_bias : bool, default=True
        Whether layers have biases (each group has its own, around group-mean
        biases).  ``use_bias=False`` with ``(5, 5)`` and tanh on two features
        is the seed's 2-5-5-1 network.
    prior_sd : float, default=1.0
        Prior sd of the group-mean weights.
    group_sd_prior : float, default=1.0
        Scale of the HalfNormal prior on each layer's group sd of the weights.
    bias_group_sd_prior : float or None, default=None
        Scale of the HalfNormal prior on each layer's group sd of the biases;
        ``None`` means ``group_sd_prior``.
    group_column : str, int or None, default=None
        Column of X holding the group label (a DataFrame column name, or an
        integer position for arrays).  When set, groups are read from X in fit
        and predict, and the other columns are the features; this is how
        cross-validation and grid search see groups at predict time.
    new_groups : {"population", "error"}, default="population"
        A group never seen in fit is predicted with the population predictive
        (for each posterior draw, new group weights drawn from that draw's
        group distribution), or raises ``ValueError``.
    inference : {"nuts", "advi"}, default="nuts"
        Full MCMC with NUTS, or mean-field ADVI (faster, less accurate
        uncertainty).
    sampler : {"auto", "nutpie", "nutpie-pytensor", "pymc"}, default="auto"
        The NUTS route (see :mod:`skhbnn.inference`): "nutpie" samples with
        nutpie on skhbnn's compiled kernels (nothing to compile),
        "nutpie-pytensor" with nutpie on the PyMC model it compiles, "pymc"
        with PyMC's own NUTS; "auto" is "nutpie" when nutpie is installed,
        else "pymc".
    draws : int, default=500
        Posterior draws per chain (for ADVI: draws from the approximation).
    tune : int, default=500
        NUTS tuning (warm-up) steps per chain.
    chains : int, default=4
        Number of NUTS chains, run in parallel on up to that many cores.
        Four short chains find more of the posterior's modes than two long
        ones, at the same cost, and stacking combines them
        (``docs/inference.md``, "Defaults").
    target_accept : float, default=0.9
        NUTS target acceptance rate in (0, 1); raise it if there are
        divergences.
    advi_iterations : int, default=30000
        Optimisation steps for ``inference="advi"``.
    random_state : int, RandomState instance or None, default=None
        Seeds sampling (and the population predictive of new groups).  An int
        makes fits reproducible.
    log_likelihood : bool or "auto", default="auto"
        Store the pointwise log-likelihood of the training rows in
        ``idata_.log_likelihood`` (for ``az.loo`` and ``az.compare``); "auto"
        stores it when it has at most 10 million values (chains x draws x
        rows).
    combine_chains : {"stacking", "equal"}, default="stacking"
        How prediction combines the chains.  BNN chains often sit in
        different modes that NUTS does not cross; "stacking" weights each
        chain by how well it predicts left-out training rows (PSIS-LOO;
        Yao, Vehtari & Gelman 2022), "equal" averages the chains.  The
        weights are ``chain_weights_`` and ``diagnostics_["chain_weights"]``.
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
    groups_ : ndarray of shape (n_groups,)
        Group labels seen in fit; posterior arrays index groups in this order.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    idata_ : arviz InferenceData (PyMC 5) or xarray DataTree (PyMC 6)
    posterior_draws_ : dict of str to ndarray
        ``w{l}_mu`` / ``b{l}_mu`` group means, group sds ``sd{l}`` (weights) and
        ``sd_b{l}`` (biases), and per-group
        ``w{l}`` / ``b{l}`` (group axis after chain and draw).
    network_ : NetworkSpec
    chain_weights_ : ndarray of shape (chains,) or None
        Each chain's weight in prediction (``None``: equal weights).
    diagnostics_ : dict or None
        Mixing within modes (``within_mode_rhat``, ``min_ess`` of the
        combined predictive, ``divergence_rate``) and the modes between them
        (``max_rhat`` across chains, ``chain_weights``, ``mode_elpd_loo``);
        see :func:`skhbnn.diagnostics.invariant_diagnostics`.

    Examples
    --------
    >>> from skhbnn import HierarchicalBayesianMLPClassifier
    >>> from skhbnn.datasets import make_rotated_moons
    >>> X, y, groups = make_rotated_moons(n_groups=3, n_samples=30, random_state=0)
    >>> clf = HierarchicalBayesianMLPClassifier(draws=100, tune=100, random_state=0)
    >>> clf.fit(X, y, groups=groups).predict(X[:3], groups=groups[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        **BaseBayesianMLP._parameter_constraints,
        "group_sd_prior": [Interval(Real, 0, None, closed="neither")],
        "bias_group_sd_prior": [None, Interval(Real, 0, None, closed="neither")],
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
        bias_group_sd_prior=None,
        group_column=None,
        new_groups="population",
        inference="nuts",
        sampler="auto",
        draws=500,
        tune=500,
        chains=4,
        target_accept=0.9,
        advi_iterations=30000,
        random_state=None,
        log_likelihood="auto",
        combine_chains="stacking",
        progressbar="auto",
        n_jobs=None,
    ):
        store_params(self, locals())

    # --------------------------------------------------------------- fit
    def fit(self, X, y, groups=None, sample_weight=None):
        """Sample the posterior of the hierarchical network.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), default=None
            Group label of each row (any hashable values).  ``None`` means a
            single group, unless ``group_column`` is set.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row's log-likelihood term (an integer weight counts
            the row that many times); ``None`` weighs every row 1.

        Returns
        -------
        self
        """
        return self._fit_atomically(lambda: self._fit(X, y, groups, sample_weight))

    def _fit(self, X, y, groups, sample_weight=None):
        self._validate_params()
        X, groups = resolve_groups(X, groups, self.group_column)
        X, y_enc, classes = self._check_training_data(X, y)
        encoder, codes = self._encode_groups(groups, X.shape[0])
        weights = check_sample_weight(sample_weight, X)
        spec = self._network_spec(X.shape[1], 1 if len(classes) == 2 else len(classes))
        definition = self._definition(spec, len(encoder.classes_))
        self.classes_ = classes
        draws, logits, sds, n_div = self._sample(definition, X, y_enc, codes, weights, encoder)
        self._finish_fit(
            self.idata_,
            X.shape[0],
            lambda r: grouped_pointwise_log_likelihood(
                flatten_chains(draws), X[r], y_enc[r], codes[r], spec
            ),
            {"group_sd": sds, "proba": logits_to_proba(logits)[..., 1:]},
            n_div,
        )

    def group_mean_network(self) -> BayesianMLPClassifier:
        """A fitted :class:`BayesianMLPClassifier` predicting with the posterior
        draws of the group-mean weights ``w{l}_mu`` / ``b{l}_mu`` (the post's
        "decision surface of the group weights"; the prior network of
        :class:`~skhbnn.InformedPriorTransfer`)."""
        return BayesianMLPClassifier._from_draws(
            self._group_mean_draws(), self.network_, self.classes_,
            chain_weights=getattr(self, "chain_weights_", None),
        )

    # ----------------------------------------------------------- predict
    def _moments(self, X, groups, log=False):
        """``(mean, std)`` (and the log of the mean with ``log=True``) of every
        row under its group's network (the population predictive for groups
        not seen in fit)."""
        X, parts = self._rows_by_group(X, groups)
        draws = flatten_chains(self.posterior_draws_)
        shape = (X.shape[0], len(self.classes_))
        out = [np.empty(shape) for _ in range(3 if log else 2)]
        weights = self._draw_weights()
        for rows, code in parts:
            stats = posterior_moments(
                self._params_of(code, draws), X[rows], self.network_, n_jobs=self.n_jobs,
                log=log, weights=weights,
            )
            for target, value in zip(out, stats):
                target[rows] = value
        return tuple(out)

    def predict_log_proba(self, X, groups=None):
        """Log of :meth:`predict_proba`, computed stably over the posterior
        mixture: equal to ``np.log(predict_proba(X, groups))`` wherever that
        is finite, and finite where a probability underflows to 0.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,), default=None
            Group of each row; ignored when ``group_column`` is set.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._moments(X, groups, log=True)[2]

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


__all__ = ["HierarchicalBayesianMLPClassifier"]
