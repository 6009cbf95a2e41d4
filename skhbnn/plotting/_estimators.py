"""How the figures reach a fitted estimator: through its public API only.

Predictions come from ``predict_proba`` (with ``return_std=True`` where the
estimator takes it, else ``predict_std`` too); a hierarchical model is
recognised by its ``group_mean_network`` method and fitted ``network_``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd


def _hierarchical_of(estimator, what):
    """The fitted hierarchical model of a hierarchical or transfer estimator."""
    hier = getattr(estimator, "estimator_", estimator)  # InformedPriorTransfer
    fitted = getattr(hier, "network_", None) is not None
    if not (fitted and callable(getattr(hier, "group_mean_network", None))):
        raise TypeError(
            f"{what} needs a fitted HierarchicalBayesianMLPClassifier or "
            f"InformedPriorTransfer; got {type(estimator).__name__}"
            + ("" if fitted else " (is it fitted?)") + "."
        )
    return hier


def group_mean_network(estimator):
    """A fitted flat classifier predicting with the hierarchical group-mean weights.

    For an :class:`~skhbnn.InformedPriorTransfer` this is its
    ``prior_network_``; for a :class:`~skhbnn.HierarchicalBayesianMLPClassifier`
    it is its :meth:`~skhbnn.HierarchicalBayesianMLPClassifier.group_mean_network`,
    predicting from the ``w{l}_mu`` / ``b{l}_mu`` draws (the post's
    "decision surface of the group weights").
    """
    return _group_mean_network(estimator, "group_mean_network")


def _group_mean_network(estimator, what):
    prior_network = getattr(estimator, "prior_network_", None)
    if prior_network is not None:
        return prior_network
    return _hierarchical_of(estimator, what).group_mean_network()


def _with_group(est, grid, group):
    """Prediction input for ``grid`` rows all in ``group``, honouring an
    estimator that reads its groups from a column of X."""
    column = getattr(est, "group_column", None)
    labels = np.full(grid.shape[0], group, dtype=object)
    if column is None:
        return grid, {"groups": labels}
    if isinstance(column, str):
        names = getattr(est, "feature_names_in_", None)
        names = list(names) if names is not None else [f"x{i}" for i in range(grid.shape[1])]
        frame = pd.DataFrame(grid, columns=names)
        frame[column] = labels
        return frame, {}
    n_cols = grid.shape[1] + 1
    out = np.insert(grid.astype(object), column % n_cols, labels, axis=1)
    return out, {}


def _takes_return_std(method):
    try:
        return "return_std" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # no signature to read: ask twice
        return False


def _moments(est, X, kwargs):
    """Posterior mean and sd of the class probabilities.

    skhbnn's estimators give both from one pass
    (``predict_proba(..., return_std=True)``); anything else is asked twice,
    through ``predict_proba`` and ``predict_std``.
    """
    if _takes_return_std(est.predict_proba):
        mean, std = est.predict_proba(X, **kwargs, return_std=True)
    else:
        mean, std = est.predict_proba(X, **kwargs), est.predict_std(X, **kwargs)
    return np.asarray(mean), np.asarray(std)
