"""InformedPriorTransfer: hierarchical posterior -> informed priors -> flat BNNs."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin
from sklearn.base import clone, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import fit_atomically, fit_with_classes, store_params
from .validation import (
    check_regression_data,
    check_sample_weight,
    check_training_data,
    validate_X,
)
from .alignment import ALIGN_OPTIONS
from .classifiers import BayesianMLPClassifier
from .hierarchical import HierarchicalBayesianMLPClassifier
from .hierarchical_regressor import HierarchicalBayesianMLPRegressor
from .regressors import BayesianMLPRegressor
from .grouped import shared_params
from .groups import GroupEncoder, check_groups, group_codes, resolve_groups, rows_of_codes
from .network import class_outputs
from .registry import register_estimator


_SHARED_PARAMS = shared_params(BayesianMLPClassifier, HierarchicalBayesianMLPClassifier)
_STRUCTURE_PARAMS = ("hidden_layer_sizes", "activation", "use_bias")


class _BaseTransfer(MetaEstimatorMixin, BaseEstimator):
    """What the classifier and regressor transfers share: the hierarchical
    fit, the informed prior, one flat fit per group, routing rows to their
    group's model.  Subclasses name the two estimator classes and how
    targets are checked and each group's flat model is fitted."""

    _hierarchical_class: type
    _flat_class: type
    _shared: tuple[str, ...]

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit", "informed_prior"])],
        "flat_estimator": [None, HasMethods(["fit", "predict"])],
        "prefit": ["boolean"],
        "group_column": [None, str, Integral],
        "new_groups": [StrOptions({"prior", "error"})],
        "prior_type": [StrOptions({"population", "mvnormal"})],
        "joint_prior": ["boolean"],
        "align": [StrOptions(set(ALIGN_OPTIONS))],
    }

    # ------------------------------------------------------------ helpers
    def _hierarchical(self, X, y, groups, weights):
        hier = self._hierarchical_class() if self.estimator is None else self.estimator
        if self.prefit:
            check_is_fitted(hier)
            if hier.n_features_in_ != X.shape[1]:
                raise ValueError(
                    f"the prefit estimator was fitted on {hier.n_features_in_} features "
                    f"but X has {X.shape[1]}; pass the same features."
                )
            return hier
        # Groups reach the hierarchical model explicitly, never via its column.
        return clone(hier).set_params(group_column=None).fit(
            X, y, groups=groups, sample_weight=weights
        )

    def _flat_template(self, hier, y):
        if self.flat_estimator is None:
            return self._flat_class(**{k: hier.get_params()[k] for k in self._shared})
        template = clone(self.flat_estimator)
        n_outputs = (hier.network_.n_outputs if hasattr(hier, "network_")  # as fit builds it
                     else class_outputs(np.unique(y).size) if is_classifier(hier) else 1)

        def value(est, k):  # hidden layers as fitted ("auto" resolved)
            return (est._check_hidden_layer_sizes(n_outputs) if k == "hidden_layer_sizes"
                    else est.get_params()[k])

        mismatch = [  # use_bias="auto" on either side matches: the prior decides
            k for k in _STRUCTURE_PARAMS if "auto" not in (str(value(template, k)), str(value(hier, k)))
            # atleast_1d: (5,) and 5 are the same layers; (5,) vs (5, 5) must not broadcast.
            and not np.array_equal(np.atleast_1d(value(template, k)), np.atleast_1d(value(hier, k)))
        ]
        if mismatch:
            raise ValueError(
                f"flat_estimator and estimator differ in {mismatch}; the informed prior "
                "only fits a network of the same structure."
            )
        return template

    # ---------------------------------------------------------------- fit
    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the hierarchical model, build :attr:`prior_`, fit flat models.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), default=None
            Group label of each row; ``None`` means one group.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row's log-likelihood term, in the hierarchical fit
            (unless ``prefit=True``) and in its group's flat fit.

        Returns
        -------
        self
        """
        return fit_atomically(self, lambda: self._fit(X, y, groups, sample_weight))

    def _check_targets(self, X, y):  # pragma: no cover - abstract
        """``(X, y)`` validated for the kind of estimator."""
        raise NotImplementedError

    def _check_prefit(self, hier) -> None:
        """Raise if a prefit estimator does not match the targets."""

    def _fit_group(self, flat, X, y, sample_weight) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, X, y, groups, sample_weight=None):
        self._validate_params()
        X, groups = resolve_groups(X, groups, self.group_column)
        X, y = self._check_targets(X, y)
        groups = check_groups(np.zeros(X.shape[0]) if groups is None else groups, X.shape[0])
        weights = check_sample_weight(sample_weight, X)
        encoder = GroupEncoder().fit(groups)
        codes = encoder.transform(groups)
        if weights is not None:
            empty = [g for c, g in enumerate(encoder.classes_) if not weights[codes == c].any()]
            if empty:
                raise ValueError(
                    f"sample_weight is zero for every row of groups {empty[:10]}; their "
                    "flat networks would have nothing to learn from. Drop those groups "
                    "or give some of their rows a positive weight."
                )

        # A bad flat_estimator must fail now, not after the hierarchical sampling.
        unfitted = self.estimator
        if unfitted is None:
            unfitted = self._hierarchical_class()
        if not self.prefit:
            unfitted._validate_params()
        self._flat_template(unfitted, y)._validate_params()
        hier = self._hierarchical(X, y, groups, weights)
        self._check_prefit(hier)
        prior = (hier.population_prior() if self.prior_type == "population"
                 else hier.informed_prior(align=self.align, joint=self.joint_prior))
        template = self._flat_template(hier, y)
        seeds = check_random_state(template.random_state).randint(
            np.iinfo(np.int32).max, size=len(encoder.classes_)
        )
        estimators = {}
        for rows, code in rows_of_codes(codes):
            label = encoder.classes_[code]
            flat = clone(template).set_params(prior=prior, random_state=int(seeds[code]))
            w = None if weights is None else weights[rows]
            self._fit_group(flat, X[rows], y[rows], w)
            estimators[label] = flat

        self.estimator_ = hier
        self.prior_ = prior
        self.estimators_ = estimators
        self.prior_network_ = hier.group_mean_network()
        self.groups_ = encoder.classes_
        self._encoder = encoder
        return self

    # ------------------------------------------------------------ predict
    def _route(self, X, groups):
        """Validated ``X`` and ``[(rows, model)]``: each group's rows and its
        flat model (the prior network for groups not seen in fit)."""
        check_is_fitted(self)
        X, groups = resolve_groups(X, groups, self.group_column)
        X = validate_X(self, X, reset=False)
        fix = "new_groups='prior'" if self.new_groups == "error" else None
        codes = group_codes(self._encoder, groups, X.shape[0], new_groups_fix=fix)
        return X, [
            (rows, self.prior_network_ if code < 0 else self.estimators_[self.groups_[code]])
            for rows, code in rows_of_codes(codes)
        ]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


@register_estimator(
    fitted=(
        "estimator_", "prior_", "estimators_", "prior_network_", "classes_", "groups_",
        "_encoder", "n_features_in_", "feature_names_in_",
    )
)
class InformedPriorTransfer(ClassifierMixin, _BaseTransfer):
    """Flat BNNs per group under informed priors from a hierarchical BNN.

    ``fit`` fits a :class:`HierarchicalBayesianMLPClassifier` (or takes a
    fitted one with ``prefit=True``), turns its group distribution into a
    prior (:attr:`prior_`: the population predictive, a
    :class:`~skhbnn.PopulationPrior`, or the post's one MvNormal per weight
    matrix), then fits one :class:`BayesianMLPClassifier` per group under it.
    Rows are predicted by their group's flat network, groups never seen in
    fit by the *prior network* (the hierarchical group-mean weights).  For
    a new group's cold start, ``BayesianMLPClassifier(prior=transfer.prior_)``
    (or :meth:`HierarchicalBayesianMLPClassifier.fit_new_group`).

    Parameters
    ----------
    estimator : HierarchicalBayesianMLPClassifier, default=None
        The hierarchical model; ``None`` means
        ``HierarchicalBayesianMLPClassifier()``.
    flat_estimator : BayesianMLPClassifier, default=None
        Template for the per-group flat models (its ``prior`` is replaced by
        the informed prior).  ``None`` copies the hierarchical estimator's
        network and sampler settings.
    prefit : bool, default=False
        ``estimator`` is already fitted: use it as it is.
    group_column : str, int or None, default=None
        Column of X holding the group label (see
        :class:`HierarchicalBayesianMLPClassifier`).
    new_groups : {"prior", "error"}, default="prior"
        Predict groups never seen in fit with the prior network, or raise.
    prior_type : {"population", "mvnormal"}, default="population"
        The hierarchical model's ``population_prior()`` (a mixture over its
        posterior draws) or the post's ``informed_prior()`` (one MvNormal per
        weight matrix, shaped by the next two); see ``docs/recipes.md``.
    joint_prior : bool, default=False
        ``"mvnormal"`` only: one MvNormal over all weights, not one per matrix.
    align : {"draws", "chains", "none"}, default="draws"
        ``"mvnormal"`` only: map the hidden units of every draw onto the
        posterior mean (``"draws"``), of every chain onto the first
        (``"chains"``), or not at all, before pooling (:mod:`skhbnn.alignment`).

    Attributes
    ----------
    estimator_ : HierarchicalBayesianMLPClassifier
        The fitted hierarchical model.
    prior_ : PopulationPrior or MvNormalPrior
        The informed prior the per-group models were fitted under.
    estimators_ : dict
        Group label -> fitted :class:`BayesianMLPClassifier`.
    prior_network_ : BayesianMLPClassifier
        Predicts from the hierarchical group-mean weights.
    groups_, classes_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> from skhbnn import HierarchicalBayesianMLPClassifier, InformedPriorTransfer
    >>> from skhbnn.datasets import make_rotated_moons
    >>> X, y, g = make_rotated_moons(n_groups=3, n_samples=30, random_state=0)
    >>> hier = HierarchicalBayesianMLPClassifier(draws=100, tune=100, random_state=0)
    >>> transfer = InformedPriorTransfer(hier).fit(X, y, groups=g)
    >>> type(transfer.prior_).__name__
    'PopulationPrior'
    """


    _hierarchical_class = HierarchicalBayesianMLPClassifier
    _flat_class = BayesianMLPClassifier
    _shared = _SHARED_PARAMS
    _parameter_constraints = {
        **_BaseTransfer._parameter_constraints,
        "flat_estimator": [None, HasMethods(["fit", "predict_proba"])],
    }

    def __init__(
        self,
        estimator=None,
        *,
        flat_estimator=None,
        prefit=False,
        group_column=None,
        new_groups="prior",
        prior_type="population",
        joint_prior=False,
        align="draws",
    ):
        store_params(self, locals())

    def _check_targets(self, X, y):
        X, y_enc, classes = check_training_data(self, X, y)
        self.classes_ = classes
        return X, classes[y_enc]

    def _check_prefit(self, hier):
        if not np.array_equal(np.asarray(hier.classes_), self.classes_):
            raise ValueError(
                f"the prefit estimator knows classes {list(hier.classes_)} but y has "
                f"{list(self.classes_)}; fit it on the same classes."
            )

    def _fit_group(self, flat, X, y, sample_weight):
        fit_with_classes(flat, X, y, self.classes_, sample_weight=sample_weight)

    def _moments(self, X, groups, log=False):
        X, parts = self._route(X, groups)
        shape = (X.shape[0], len(self.classes_))
        out = [np.empty(shape) for _ in range(3 if log else 2)]
        for rows, est in parts:
            out[0][rows], out[1][rows] = est.predict_proba(X[rows], return_std=True)
            if log:
                out[2][rows] = est.predict_log_proba(X[rows])
        return tuple(out)

    def predict_log_proba(self, X, groups=None):
        """Log of :meth:`predict_proba`, computed stably over each group
        model's posterior mixture (see
        :meth:`BayesianMLPClassifier.predict_log_proba`)."""
        return self._moments(X, groups, log=True)[2]

    def predict_proba(self, X, groups=None, return_std=False):
        """Class probabilities from each row's group model, (n_samples, n_classes).

        With ``return_std=True``, also the posterior sd (as :meth:`predict_std`),
        from the same pass: returns ``(proba, std)``.
        """
        mean, std = self._moments(X, groups)
        return (mean, std) if return_std else mean

    def predict_std(self, X, groups=None):
        """Posterior sd of the class probabilities, (n_samples, n_classes)."""
        return self._moments(X, groups)[1]

    def predict(self, X, groups=None):
        """Most probable class of each row under its group's flat model."""
        mean = self._moments(X, groups)[0]  # first: raises NotFittedError if unfitted
        return self.classes_[np.argmax(mean, axis=1)]


@register_estimator(
    fitted=(
        "estimator_", "prior_", "estimators_", "prior_network_", "groups_",
        "_encoder", "n_features_in_", "feature_names_in_",
    )
)
class InformedPriorTransferRegressor(RegressorMixin, _BaseTransfer):
    """The regression twin of :class:`InformedPriorTransfer` (as scikit-learn
    pairs ``VotingClassifier`` with ``VotingRegressor``): a
    :class:`HierarchicalBayesianMLPRegressor`, its informed prior (which
    carries the standardisation of ``y``, ``target_scale``), one
    :class:`BayesianMLPRegressor` per group under that prior.

    Parameters
    ----------
    estimator : HierarchicalBayesianMLPRegressor, default=None
        ``None`` means ``HierarchicalBayesianMLPRegressor()``.
    flat_estimator : BayesianMLPRegressor, default=None
        Template for the per-group flat models; ``None`` copies the
        hierarchical estimator's shared settings.
    prefit, group_column, new_groups, prior_type, joint_prior, align
        As for :class:`InformedPriorTransfer`.

    Attributes
    ----------
    estimator_ : HierarchicalBayesianMLPRegressor
    prior_ : PopulationPrior or MvNormalPrior
    estimators_ : dict
        Group label -> fitted :class:`BayesianMLPRegressor`.
    prior_network_ : BayesianMLPRegressor
        Predicts from the hierarchical group-mean weights.
    groups_, n_features_in_, feature_names_in_
    """
    _hierarchical_class = HierarchicalBayesianMLPRegressor
    _flat_class = BayesianMLPRegressor
    _shared = shared_params(BayesianMLPRegressor, HierarchicalBayesianMLPRegressor)

    def __init__(
        self,
        estimator=None,
        *,
        flat_estimator=None,
        prefit=False,
        group_column=None,
        new_groups="prior",
        prior_type="population",
        joint_prior=False,
        align="draws",
    ):
        store_params(self, locals())

    def _check_targets(self, X, y):
        return check_regression_data(self, X, y)

    def _fit_group(self, flat, X, y, sample_weight):
        fit_atomically(flat, lambda: flat._fit(X, y, sample_weight=sample_weight))

    def predict(self, X, groups=None, return_std=False):
        """Posterior predictive mean (and sd) of ``y`` from each row's group
        model (the prior network for groups not seen in fit)."""
        X, parts = self._route(X, groups)
        mean, std = np.empty(X.shape[0]), np.empty(X.shape[0])
        for rows, est in parts:
            mean[rows], std[rows] = est.predict(X[rows], return_std=True)
        return (mean, std) if return_std else mean
