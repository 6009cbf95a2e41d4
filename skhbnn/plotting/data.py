"""The training data, one scatter panel per group."""

from __future__ import annotations

import numpy as np

from ._common import _check_xy, _group_order, _panels, _scatter


def plot_data_grid(X, y, groups, *, ncols=None, figsize=None, title="Data per group"):
    """Scatter plot of each group's points, all groups in one grid.

    Parameters
    ----------
    X : array-like of shape (n_samples, 2)
    y : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,)
    ncols : int, default=None
        Panels per row; ``None`` picks a grid that holds every group
        (18 groups -> 3 x 6).
    figsize : tuple, default=None
    title : str or None, default="Data per group"

    Returns
    -------
    matplotlib.figure.Figure
        One axes per group.
    """
    X, y, groups = _check_xy(X, y, groups)
    if groups is None:
        raise ValueError("groups is required: one panel is drawn per group.")
    order = _group_order(groups)
    classes = np.unique(y)
    fig, axes = _panels(len(order), ncols, figsize)
    for i, (ax, group) in enumerate(zip(axes, order)):
        rows = groups == group
        _scatter(ax, X[rows], y[rows], classes, legend=i == 0)
        ax.set_title(f"group {group}", fontsize="small")
    for ax in axes:
        if ax.get_subplotspec().is_last_row():
            ax.set_xlabel("X1")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("X2")
    if title:
        fig.suptitle(title)
    return fig
