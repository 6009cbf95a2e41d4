"""The hierarchical Bayesian MLP classifier: one network per group."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin

from ._base import BaseBayesianMLP, fit_with_classes, store_params
from .classifiers import _FLAT_FITTED, BayesianMLPClassifier
from .grouped import HierarchicalMixin
from .groups import resolve_groups
from .network import class_outputs, logits_to_proba
from .prediction import flatten_chains, grouped_pointwise_log_likelihood, posterior_moments
from .registry import register_estimator
from .validation import check_sample_weight


@register_estimator(
    fitted=(*_FLAT_FITTED, "groups_", "_encoder", "_prediction_seed", "new_group_estimators_")
)
class HierarchicalBayesianMLPClassifier(HierarchicalMixin, ClassifierMixin, BaseBayesianMLP):
    """Hierarchical Bayesian MLP: one network per group, sharing strength.

    Every group has its own weights, drawn around group-mean weights with one
    learned spread per layer, written non-centred:
    ``w[g] = mu + sd * raw[g]`` with ``mu ~ Normal(0, prior_sd)``,
    ``sd ~ HalfNormal(group_sd_prior)``, ``raw[g] ~ Normal(0, 1)``; one sd
    per layer for its weights and one for its biases.

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
        Whether layers have biases (each group has its own, around group-mean
        biases).  ``use_bias=False`` with ``(5, 5)`` and tanh on two features
        is the seed's 2-5-5-1 network.  "auto": a NUTS fit shares its chains
        out between the network with biases and the one without, stacks the
        chains of both, keeps the structure with the larger stacking weight
        and tops it up with new chains to ``chains`` (``network_.use_bias``
        and ``diagnostics_["structure_weights"]`` say which and why;
        :mod:`skhbnn.structures`).  Data that are symmetric about the origin,
        as the seed's are, get the bias-free network, data whose groups
        differ in intercepts the biases (``docs/inference.md``, "With or
        without biases").  With one chain, an SVI or ADVI fit, "auto" is
        ``True``.
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
    mass_matrix, max_draws
        NUTS's mass-matrix adaptation, and the draws per chain a fit whose
        chains have not mixed may grow to: as for :class:`BayesianMLPClassifier`.
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
    combine_chains : {"auto", "stacking", "equal"}, default="auto"
        How prediction combines the chains.  BNN chains often sit in
        different modes that NUTS does not cross; "stacking" (what "auto"
        is here) weights each chain by how well it predicts left-out
        training rows (PSIS-LOO; Yao, Vehtari & Gelman 2022), "equal"
        averages the chains.  The weights are ``chain_weights_`` and
        ``diagnostics_["chain_weights"]``.
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
    new_group_estimators_ : dict
        Set by :meth:`fit_new_group`: group label -> the fitted
        :class:`BayesianMLPClassifier` (under the population prior) that
        serves that group.
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
    >>> from skhbnn import HierarchicalBayesianMLPClassifier
    >>> from skhbnn.datasets import make_rotated_moons
    >>> X, y, groups = make_rotated_moons(n_groups=3, n_samples=30, random_state=0)
    >>> clf = HierarchicalBayesianMLPClassifier(draws=100, tune=100, random_state=0)
    >>> clf.fit(X, y, groups=groups).predict(X[:3], groups=groups[:3]).shape
    (3,)
    """

    _flat_class = BayesianMLPClassifier  # fit_new_group's estimator

    _parameter_constraints = {
        **BaseBayesianMLP._parameter_constraints,
        **HierarchicalMixin._group_constraints,
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
        spec = self._network_spec(X.shape[1], class_outputs(len(classes)))
        definition = self._definition(spec, len(encoder.classes_))
        self.classes_ = classes
        draws, (logits, new), sds, n_div = self._sample(
            definition, X, y_enc, codes, weights, encoder
        )
        spec = self.network_  # use_bias="auto": the structure kept
        self._finish_fit(
            self.idata_,
            X.shape[0],
            lambda r: self._pointwise(draws, spec, X, y_enc, codes, r),
            {
                "group_sd": sds,
                "proba": logits_to_proba(logits)[..., 1:],
                "population": logits_to_proba(new)[..., 1:],
            },
            n_div,
        )

    def _pointwise(self, draws, spec, X, y, codes, rows):
        return grouped_pointwise_log_likelihood(
            flatten_chains(draws), X[rows], y[rows], codes[rows], spec
        )

    def _fit_new_group(self, flat, X, y, sample_weight) -> None:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must be 1-D with one label per row of X ({X.shape[0]}); got shape "
                f"{y.shape}."
            )
        unknown = [c for c in np.unique(y.astype(self.classes_.dtype, copy=False))
                   if c not in set(self.classes_.tolist())]
        if unknown:
            raise ValueError(
                f"y holds classes {unknown[:10]} the model was not fitted on (its "
                f"classes_ are {self.classes_.tolist()[:10]}); a new group's labels must "
                "be classes the population has."
            )
        fit_with_classes(flat, X, y.astype(self.classes_.dtype, copy=False), self.classes_,
                         sample_weight)

    def group_mean_network(self) -> BayesianMLPClassifier:
        """A fitted :class:`BayesianMLPClassifier` predicting with the posterior
        draws of the group-mean weights ``w{l}_mu`` / ``b{l}_mu`` (the post's
        "decision surface of the group weights"; the prior network of
        :class:`~skhbnn.InformedPriorTransfer`)."""
        return BayesianMLPClassifier._from_draws(
            self._group_mean_draws(), self.network_, self.classes_,
            chain_weights=getattr(self, "chain_weights_", None),
            inference=getattr(self, "inference_", None),
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
            if not isinstance(code, (int, np.integer)):  # a group of fit_new_group
                for target, value in zip(out, code._moments(X[rows], log=log)):
                    target[rows] = value
                continue
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
