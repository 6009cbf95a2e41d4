"""Decision and uncertainty surfaces: one panel per group on a 2-D grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import (
    _GRID_BOUNDS,
    _GRID_RESOLUTION,
    _check_kind,
    _check_xy,
    _draw_surfaces,
    _group_order,
    _mesh,
    _panels,
    _scatter,
    _surface_label,
)
from ._estimators import _moments, _with_group


@dataclass
class DecisionSurfaces:
    """Posterior mean and sd of one class probability on a 2-D grid, per group.

    Made by :func:`decision_surfaces`; :func:`plot_decision_surfaces` draws
    it with ``kind="proba"`` or ``kind="std"`` without predicting again.

    Attributes
    ----------
    xx, yy : ndarray of shape (resolution, resolution)
        The grid (``numpy.meshgrid`` of both features).
    groups : list
        One entry per panel: a group label, or ``None`` for an estimator
        without groups.
    proba, std : ndarray of shape (n_panels, resolution, resolution)
        Posterior-mean probability of class ``class_index`` and its posterior sd.
    class_index : int
    bounds : tuple of float
    """

    xx: np.ndarray
    yy: np.ndarray
    groups: list
    proba: np.ndarray
    std: np.ndarray
    class_index: int = 1
    bounds: tuple = _GRID_BOUNDS


def _fitted_groups(estimator):
    """The groups of a dict of estimators or of a grouped estimator; ``None``
    for a flat one."""
    if isinstance(estimator, dict):
        return list(estimator)
    if hasattr(estimator, "groups_"):
        return list(estimator.groups_)
    return None


def decision_surfaces(
    estimator, groups=None, *, class_index=1, bounds=_GRID_BOUNDS,
    resolution=_GRID_RESOLUTION,
):
    """Evaluate a fitted estimator's decision and uncertainty surfaces on a grid.

    Parameters
    ----------
    estimator : fitted estimator or dict
        A :class:`~skhbnn.BayesianMLPClassifier` (one surface), a
        :class:`~skhbnn.HierarchicalBayesianMLPClassifier` or
        :class:`~skhbnn.InformedPriorTransfer` (one surface per group, predicted
        with ``groups=``; groups never seen in fit get the estimator's
        new-group prediction), or a dict ``{group: fitted flat estimator}``.
        Any other estimator with ``predict_proba`` and ``predict_std`` works
        too; one whose ``predict_proba`` takes ``return_std`` is asked once.
    groups : array-like, default=None
        Group labels to draw (repeats are dropped, e.g. pass the training
        rows' groups).  ``None``: one surface, or for a grouped estimator the
        groups it was fitted on.
    class_index : int, default=1
        Column of the class probabilities.
    bounds : (float, float), default=(-3, 3)
        Range of both features.
    resolution : int, default=100
        Grid points per feature (the post's 100 x 100).

    Returns
    -------
    DecisionSurfaces
    """
    if isinstance(estimator, dict):
        if not estimator:
            raise ValueError("the dict of per-group estimators is empty.")
    elif not (hasattr(estimator, "predict_std") and hasattr(estimator, "predict_proba")):
        raise TypeError(
            "estimator must be a fitted skhbnn estimator (with predict_proba and "
            f"predict_std) or a dict of them; got {type(estimator).__name__}."
        )
    fitted = _fitted_groups(estimator)
    if fitted is None:
        order = [None]  # a flat estimator draws the same surface for every group
    else:
        order = fitted if groups is None else _group_order(groups)
    if isinstance(estimator, dict):
        missing = [g for g in order if g not in estimator]
        if missing:
            raise ValueError(
                f"groups {missing[:10]} have no estimator in the dict; pass one "
                "fitted estimator per group."
            )
    xx, yy, grid = _mesh(bounds, resolution)
    proba, std = [], []
    for group in order:
        if isinstance(estimator, dict):
            est, X, kwargs = estimator[group], grid, {}
        elif fitted is not None:
            est = estimator
            X, kwargs = _with_group(estimator, grid, group)
        else:
            est, X, kwargs = estimator, grid, {}
        mean, sd = _moments(est, X, kwargs)
        if not 0 <= class_index < mean.shape[1]:
            raise ValueError(
                f"class_index={class_index} is out of range for {mean.shape[1]} classes."
            )
        proba.append(mean[:, class_index].reshape(xx.shape))
        std.append(sd[:, class_index].reshape(xx.shape))
    return DecisionSurfaces(
        xx=xx, yy=yy, groups=order, proba=np.stack(proba), std=np.stack(std),
        class_index=class_index, bounds=tuple(bounds),
    )


def plot_decision_surfaces(
    estimator,
    X,
    y,
    groups=None,
    *,
    kind="proba",
    class_index=1,
    bounds=_GRID_BOUNDS,
    resolution=_GRID_RESOLUTION,
    ncols=None,
    figsize=None,
    title=None,
):
    """Decision (or uncertainty) surface of each group's network, with its points.

    Parameters
    ----------
    estimator : fitted estimator, dict or DecisionSurfaces
        A :class:`~skhbnn.BayesianMLPClassifier` (one panel), a
        :class:`~skhbnn.HierarchicalBayesianMLPClassifier` or
        :class:`~skhbnn.InformedPriorTransfer` (one panel per group, predicted
        with ``groups=``), a dict ``{group: fitted flat estimator}`` (the
        per-group flat baseline), or the result of :func:`decision_surfaces`
        (to draw both kinds while predicting once).
    X : array-like of shape (n_samples, 2)
        Points drawn on the surfaces (usually the training data).
    y : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,), default=None
        Group of each row: one panel per group, with that group's points.
        ``None`` draws one panel with all points (for a grouped estimator:
        only when it was fitted on a single group).
    kind : {"proba", "std"}, default="proba"
        ``"proba"``: posterior-mean ``predict_proba[:, class_index]`` on a
        diverging colormap; ``"std"``: its posterior sd (``predict_std``), the
        model's uncertainty, on a light sequential colormap.
    class_index : int, default=1
        Column of the class probabilities to draw.
    bounds : (float, float), default=(-3, 3)
        Range of both features on the evaluation grid.
    resolution : int, default=100
        Grid points per feature (the post's 100 x 100).
    ncols, figsize, title
        Layout; ``ncols=None`` fits every group into one grid.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per group (or one), plus one colorbar axes.
    """
    _check_kind(kind)
    X, y, groups = _check_xy(X, y, groups)
    if isinstance(estimator, DecisionSurfaces):
        surfaces = estimator
    else:
        fitted = _fitted_groups(estimator)
        if fitted is not None and groups is None and len(fitted) != 1:
            raise ValueError(
                f"groups is required: the estimator has {len(fitted)} groups and "
                "one surface is drawn per group with that group's points."
            )
        surfaces = decision_surfaces(
            estimator, groups, class_index=class_index, bounds=bounds,
            resolution=resolution,
        )
    order = surfaces.groups
    if groups is None and order != [None]:
        if len(order) != 1:
            raise ValueError("groups is required to place the points on the panels.")
        groups = np.full(X.shape[0], order[0], dtype=object)
    values = surfaces.proba if kind == "proba" else surfaces.std
    fig, axes = _panels(len(order), ncols, figsize)
    _draw_surfaces(
        fig, axes, surfaces.xx, surfaces.yy, list(values), kind,
        _surface_label(kind, surfaces.class_index),
    )
    classes = np.unique(y) if y is not None else None
    for i, (ax, group) in enumerate(zip(axes, order)):
        rows = slice(None) if group is None else groups == group
        _scatter(ax, X[rows], None if y is None else y[rows], classes, legend=i == 0)
        ax.set(xlim=surfaces.bounds, ylim=surfaces.bounds)
        if group is not None:
            ax.set_title(f"group {group}", fontsize="small")
    if title is None:
        title = "Decision surfaces" if kind == "proba" else "Uncertainty (posterior sd) surfaces"
    if title:
        fig.suptitle(title)
    return fig
