"""Figures of the seed post for any fitted skhbnn estimator on 2-D features.

Data per group, decision and uncertainty surfaces per group, the posterior of
each layer's group sd, the decision surface of the group-mean weights and the
correlation clustermap of a layer's group-mean weights.  Every function
returns the matplotlib ``Figure`` (made with ``pyplot``, so ``plt.show()``
and notebooks display it; close it with ``plt.close(fig)`` when done).

matplotlib is an optional dependency (``pip install skhbnn[plot]``) and is
imported inside the functions that draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

# The post's colours: seaborn's diverging_palette(250, 12, s=85, l=25) for
# probabilities (dark blue -> light grey -> dark red, so that the red/blue
# points stay visible on the surface) and cubehelix_palette(light=1) for the
# uncertainty (white where the model is sure, dark purple where it is not).
# Written out here so that seaborn is not needed.
_DIVERGING = ("#173c65", "#f2f2f2", "#771213")
_POINT_COLORS = ("C0", "r")
_GRID_BOUNDS = (-3.0, 3.0)
_GRID_RESOLUTION = 100
SURFACE_KINDS = ("proba", "std")


# --------------------------------------------------------------- helpers
def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skhbnn.plotting needs matplotlib: pip install 'skhbnn[plot]' "
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _diverging_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("skhbnn_diverging", _DIVERGING)


def _uncertainty_cmap():
    """seaborn's ``cubehelix_palette(light=1, as_cmap=True)``, recomputed."""
    from matplotlib.colors import ListedColormap

    # Green's cubehelix with seaborn's defaults: start=0, rot=0.4, gamma=1,
    # hue=0.8, running from light=1 (low values) to dark=0 (high values).
    x = np.linspace(1.0, 0.0, 256)
    amp = 0.8 * x * (1 - x) / 2
    phi = 2 * np.pi * 0.4 * x
    rgb = np.stack(
        [
            x + amp * (-0.14861 * np.cos(phi) + 1.78277 * np.sin(phi)),
            x + amp * (-0.29227 * np.cos(phi) - 0.90649 * np.sin(phi)),
            x + amp * (1.97294 * np.cos(phi)),
        ],
        axis=1,
    )
    return ListedColormap(np.clip(rgb, 0, 1), name="skhbnn_uncertainty")


def grid_shape(n_panels: int, ncols: int | None = None) -> tuple[int, int]:
    """Rows and columns of a panel grid that holds all ``n_panels``.

    Prefers an exactly filled grid that is at most twice as wide as tall
    (18 -> 3 x 6, 16 -> 4 x 4, 12 -> 3 x 4); otherwise the smallest nearly
    square grid (7 -> 3 x 3).  Every panel always has a cell.
    """
    if n_panels < 1:
        raise ValueError(f"need at least one panel; got {n_panels}.")
    if ncols is not None:
        if ncols < 1:
            raise ValueError(f"ncols must be a positive integer; got {ncols}.")
        ncols = min(int(ncols), n_panels)
        return math.ceil(n_panels / ncols), ncols
    for nrows in range(math.isqrt(n_panels), 0, -1):
        if n_panels % nrows == 0 and n_panels // nrows <= 2 * nrows:
            return nrows, n_panels // nrows
    ncols = math.ceil(math.sqrt(n_panels))
    return math.ceil(n_panels / ncols), ncols


def _panels(n_panels, ncols=None, figsize=None, panel_size=2.6):
    """A constrained-layout figure with exactly ``n_panels`` shared axes."""
    plt = _pyplot()
    nrows, ncols = grid_shape(n_panels, ncols)
    if figsize is None:
        figsize = (panel_size * ncols + 1.2, panel_size * nrows + 0.6)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize, sharex=True, sharey=True,
        squeeze=False, layout="constrained",
    )
    axes = list(axes.ravel())
    for ax in axes[n_panels:]:  # cells beyond the last panel: no empty frames
        fig.delaxes(ax)
    return fig, axes[:n_panels]


def _check_xy(X, y, groups=None):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(
            f"X must have shape (n_samples, 2): the plots draw the 2-D feature "
            f"plane; got shape {X.shape}."
        )
    y = None if y is None else np.asarray(y)
    if y is not None and y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},); got {y.shape}.")
    if groups is not None:
        groups = np.asarray(groups, dtype=object)
        if groups.shape != (X.shape[0],):
            raise ValueError(
                f"groups must have one label per row of X, shape ({X.shape[0]},); "
                f"got {groups.shape}."
            )
    return X, y, groups


def _group_order(groups):
    """Unique labels, sorted when they can be (as the estimators order them)."""
    uniques = pd.unique(pd.Series(groups, dtype=object))
    try:
        return list(sorted(uniques))
    except TypeError:
        return list(uniques)


def _scatter(ax, X, y, classes=None, legend=False):
    """Points of the first class blue and of the second red, as the post."""
    if y is None:
        ax.scatter(
            X[:, 0], X[:, 1], s=12, c="k", edgecolors="white", linewidths=0.4, zorder=3
        )
        return
    classes = np.unique(y) if classes is None else classes
    for k, label in enumerate(classes):
        rows = y == label
        ax.scatter(
            X[rows, 0], X[rows, 1], s=14, color=_POINT_COLORS[k % 2] if k < 2 else f"C{k}",
            edgecolors="white", linewidths=0.4, label=f"class {label}", zorder=3,
        )
    if legend:
        ax.legend(loc="upper right", fontsize="x-small", framealpha=0.7)


def _mesh(bounds, resolution):
    lo, hi = bounds
    if not hi > lo:
        raise ValueError(f"bounds must be (low, high) with high > low; got {bounds}.")
    if int(resolution) < 2:
        raise ValueError(f"resolution must be at least 2; got {resolution}.")
    axis = np.linspace(lo, hi, int(resolution))
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def _hierarchical_of(estimator, what):
    """The fitted hierarchical model of a hierarchical or transfer estimator."""
    hier = getattr(estimator, "estimator_", estimator)  # InformedPriorTransfer
    draws = getattr(hier, "posterior_draws_", None)
    if draws is None or "sd0" not in draws:
        raise TypeError(
            f"{what} needs a fitted HierarchicalBayesianMLPClassifier or "
            f"InformedPriorTransfer; got {type(estimator).__name__}"
            + ("" if draws is not None else " (is it fitted?)") + "."
        )
    return hier


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


def _moments(est, X, kwargs):
    """Posterior mean and sd of the class probabilities in one pass.

    skhbnn's estimators compute both from the same forward pass (``_moments``);
    anything else is asked twice through the public API.
    """
    if hasattr(est, "_moments"):
        if hasattr(est, "groups_"):  # grouped: _moments(X, groups)
            return est._moments(X, kwargs.get("groups"))
        return est._moments(X)
    return np.asarray(est.predict_proba(X, **kwargs)), np.asarray(est.predict_std(X, **kwargs))


def _draw_surfaces(fig, axes, xx, yy, surfaces, kind, label):
    """Contours with shared levels and one colorbar for all panels."""
    from matplotlib.ticker import MaxNLocator

    if kind == "proba":
        levels, cmap = np.linspace(0.0, 1.0, 21), _diverging_cmap()
    else:
        top = max(float(np.max(s)) for s in surfaces)
        levels = MaxNLocator(nbins=20).tick_values(0.0, max(top, 1e-6))
        cmap = _uncertainty_cmap()
    contour = None
    for ax, values in zip(axes, surfaces):
        contour = ax.contourf(xx, yy, values, levels=levels, cmap=cmap, extend="neither")
    cbar = fig.colorbar(contour, ax=axes, shrink=0.8, aspect=30)
    cbar.set_label(label)
    return cbar


def _surface_label(kind, class_index):
    if kind == "proba":
        return f"P(class {class_index})"
    return f"posterior sd of P(class {class_index})"


def _check_kind(kind):
    if kind not in SURFACE_KINDS:
        raise ValueError(
            f"kind must be 'proba' (decision surface) or 'std' (uncertainty "
            f"surface); got {kind!r}."
        )


# ----------------------------------------------------------------- plots
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
    grouped = isinstance(estimator, dict) or hasattr(estimator, "groups_")
    if isinstance(estimator, dict):
        if not estimator:
            raise ValueError("the dict of per-group estimators is empty.")
        order = list(estimator) if groups is None else _group_order(groups)
        missing = [g for g in order if g not in estimator]
        if missing:
            raise ValueError(
                f"groups {missing[:10]} have no estimator in the dict; pass one "
                "fitted estimator per group."
            )
    elif not (hasattr(estimator, "predict_std") and hasattr(estimator, "predict_proba")):
        raise TypeError(
            "estimator must be a fitted skhbnn estimator (with predict_proba and "
            f"predict_std) or a dict of them; got {type(estimator).__name__}."
        )
    elif grouped:
        order = list(estimator.groups_) if groups is None else _group_order(groups)
    else:
        # A flat estimator draws the same surface for every group.
        order = [None]
    xx, yy, grid = _mesh(bounds, resolution)
    proba, std = [], []
    for group in order:
        if isinstance(estimator, dict):
            est, X, kwargs = estimator[group], grid, {}
        elif grouped:
            est = estimator
            X, kwargs = _with_group(estimator, grid, group)
        else:
            est, X, kwargs = estimator, grid, {}
        mean, sd = _moments(est, X, kwargs)
        if not 0 <= class_index < mean.shape[1]:
            raise ValueError(
                f"class_index={class_index} is out of range for {mean.shape[1]} classes."
            )
        proba.append(np.asarray(mean)[:, class_index].reshape(xx.shape))
        std.append(np.asarray(sd)[:, class_index].reshape(xx.shape))
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
        grouped = isinstance(estimator, dict) or hasattr(estimator, "groups_")
        if grouped and groups is None:
            n_fitted = len(estimator) if isinstance(estimator, dict) else len(estimator.groups_)
            if n_fitted != 1:
                raise ValueError(
                    f"groups is required: the estimator has {n_fitted} groups and "
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


def plot_group_sd(estimator, *, figsize=None, title="Posterior of the group sd per layer"):
    """Posterior of each layer's group sd, like the post's traceplot.

    One row per layer: the density of each chain's draws (left) and the
    draws in sampling order (right).  A large group sd means the groups'
    weights of that layer differ strongly from the group mean.

    Parameters
    ----------
    estimator : HierarchicalBayesianMLPClassifier or InformedPriorTransfer
        Fitted; draws ``posterior_draws_["sd{l}"]`` (of ``estimator_`` for a
        transfer).
    figsize : tuple, default=None
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
        Two axes per layer.
    """
    from scipy.stats import gaussian_kde

    plt = _pyplot()
    hier = _hierarchical_of(estimator, "plot_group_sd")
    n_layers = hier.network_.n_layers
    sizes = hier.network_.layer_sizes
    sds = [np.asarray(hier.posterior_draws_[f"sd{layer}"]) for layer in range(n_layers)]
    if figsize is None:
        figsize = (10, 2.2 * n_layers + 0.6)
    fig, axes = plt.subplots(
        n_layers, 2, figsize=figsize, squeeze=False, layout="constrained",
        gridspec_kw={"width_ratios": [1, 2]},
    )
    for layer, sd in enumerate(sds):
        dens_ax, trace_ax = axes[layer]
        # Each layer on its own scale (as a traceplot): the sds of different
        # layers can differ by orders of magnitude; the titles compare them.
        top = float(sd.max()) * 1.05 or 1.0
        grid = np.linspace(0.0, top, 300)
        for chain, values in enumerate(sd):
            color = f"C{chain}"
            if np.ptp(values) > 0 and len(values) > 1:
                dens_ax.plot(grid, gaussian_kde(values)(grid), color=color, label=f"chain {chain}")
            trace_ax.plot(values, color=color, lw=0.6, alpha=0.8)
        dens_ax.axvline(float(sd.mean()), color="k", lw=0.8, ls="--")
        dens_ax.set_xlim(0, top)
        dens_ax.set_ylabel("density")
        dens_ax.set_title(
            f"sd{layer}: {_layer_name(layer, n_layers)} "
            f"({sizes[layer]}x{sizes[layer + 1]}), mean {sd.mean():.3g}",
            fontsize="small",
        )
        trace_ax.set_ylim(0, top)
        trace_ax.set_ylabel(f"sd{layer}")
        trace_ax.set_title(f"sd{layer} draws", fontsize="small")
    axes[0, 0].legend(fontsize="x-small")
    axes[-1, 0].set_xlabel("group sd")
    axes[-1, 1].set_xlabel("draw")
    if title:
        fig.suptitle(title)
    return fig


def _layer_name(layer, n_layers):
    src = "input" if layer == 0 else f"hidden {layer}"
    dst = "output" if layer == n_layers - 1 else f"hidden {layer + 1}"
    return f"{src} -> {dst}"


def group_mean_network(estimator):
    """A fitted flat classifier predicting with the hierarchical group-mean weights.

    For an :class:`~skhbnn.InformedPriorTransfer` this is its
    ``prior_network_``; for a :class:`~skhbnn.HierarchicalBayesianMLPClassifier`
    it is built from the ``w{l}_mu`` / ``b{l}_mu`` draws (the post's
    "decision surface of the group weights").
    """
    prior_network = getattr(estimator, "prior_network_", None)
    if prior_network is not None:
        return prior_network
    from .classifiers import BayesianMLPClassifier

    hier = _hierarchical_of(estimator, "group_mean_network")
    spec = hier.network_
    mu = {name: hier.posterior_draws_[f"{name}_mu"] for name in spec.param_shapes()}
    return BayesianMLPClassifier._from_draws(mu, spec, hier.classes_)


def plot_group_mean_surface(
    estimator,
    X=None,
    y=None,
    *,
    kind="proba",
    class_index=1,
    bounds=_GRID_BOUNDS,
    resolution=_GRID_RESOLUTION,
    figsize=(5.5, 4.5),
    title="Decision surface of the group weights",
):
    """Decision surface of the group-mean weights of a hierarchical posterior.

    Parameters
    ----------
    estimator : HierarchicalBayesianMLPClassifier or InformedPriorTransfer
        Fitted; see :func:`group_mean_network`.
    X, y : array-like, default=None
        Points to draw on the surface (none by default, as the post).
    kind : {"proba", "std"}, default="proba"
    class_index, bounds, resolution, figsize, title
        As :func:`plot_decision_surfaces`.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, plus one colorbar axes.
    """
    _check_kind(kind)
    network = group_mean_network(estimator)
    if X is not None:
        X, y, _ = _check_xy(X, y)
    plt = _pyplot()
    surf = decision_surfaces(
        network, class_index=class_index, bounds=bounds, resolution=resolution
    )
    values = surf.proba if kind == "proba" else surf.std
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    _draw_surfaces(
        fig, [ax], surf.xx, surf.yy, list(values), kind, _surface_label(kind, class_index)
    )
    if X is not None:
        _scatter(ax, X, y, legend=True)
    ax.set(xlim=bounds, ylim=bounds, xlabel="X1", ylabel="X2")
    if title:
        ax.set_title(title)
    return fig


def plot_weight_correlation(
    estimator, layer=0, *, align=True, figsize=(7, 6.5),
    title="Correlations of the group-mean weights",
):
    """Clustermap of correlations between one layer's group-mean weights.

    The post's ``seaborn.clustermap(np.corrcoef(w_in_1_grp))``, drawn with
    matplotlib: rows and columns ordered by average-linkage clustering on
    ``1 - correlation``, with the dendrograms on top and left.  Chains are
    first aligned (hidden units permuted / sign-flipped onto chain 0, see
    :mod:`skhbnn.alignment`) so that correlations are not averaged over
    equivalent but differently labelled modes.

    Parameters
    ----------
    estimator : HierarchicalBayesianMLPClassifier or InformedPriorTransfer
        Fitted.
    layer : int, default=0
        Weight matrix ``w{layer}``; 0 is input -> first hidden layer.
    align : bool, default=True
        Align hidden units across chains first.
    figsize : tuple, default=(7, 6.5)
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
        Heatmap, top dendrogram, left dendrogram and colorbar axes.
    """
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    from .alignment import align_chains

    plt = _pyplot()
    hier = _hierarchical_of(estimator, "plot_weight_correlation")
    spec = hier.network_
    if not (isinstance(layer, (int, np.integer)) and 0 <= layer < spec.n_layers):
        raise ValueError(
            f"layer must be an integer in [0, {spec.n_layers - 1}] for a network "
            f"with {spec.n_layers} weight matrices; got {layer!r}."
        )
    params = {name: hier.posterior_draws_[f"{name}_mu"] for name in spec.param_shapes()}
    if align:
        params = align_chains(params, spec)
    w = params[f"w{layer}"]  # (chain, draw, in, out)
    n_in, n_out = w.shape[-2:]
    flat = w.reshape(-1, n_in * n_out)
    labels = [f"{i},{j}" for i in range(n_in) for j in range(n_out)]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(flat, rowvar=False)
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
    np.fill_diagonal(corr, 1.0)

    if len(labels) > 1:
        dist = np.clip(1.0 - corr, 0.0, 2.0)
        dist = (dist + dist.T) / 2
        np.fill_diagonal(dist, 0.0)
        link = linkage(squareform(dist, checks=False), method="average")
    else:
        link = None

    fig = plt.figure(figsize=figsize, layout="constrained")
    gs = fig.add_gridspec(2, 3, width_ratios=[1, 5, 0.25], height_ratios=[1, 5])
    top_ax = fig.add_subplot(gs[0, 1])
    left_ax = fig.add_subplot(gs[1, 0])
    heat_ax = fig.add_subplot(gs[1, 1])
    cbar_ax = fig.add_subplot(gs[1, 2])
    if link is not None:
        order = dendrogram(
            link, ax=top_ax, no_labels=True, color_threshold=0,
            above_threshold_color="0.3",
        )["leaves"]
        dendrogram(
            link, ax=left_ax, orientation="left", no_labels=True, color_threshold=0,
            above_threshold_color="0.3",
        )
        # scipy draws the left dendrogram's first leaf at the bottom; the
        # heatmap's first row is at the top.
        left_ax.invert_yaxis()
    else:
        order = [0]
    for ax in (top_ax, left_ax):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    image = heat_ax.imshow(
        corr[np.ix_(order, order)], cmap="RdBu_r", vmin=-1, vmax=1,
        interpolation="nearest", aspect="auto",
    )
    ticks = np.arange(len(order))
    heat_ax.set_xticks(ticks, [labels[k] for k in order], rotation=90, fontsize="x-small")
    heat_ax.set_yticks(ticks, [labels[k] for k in order], fontsize="x-small")
    heat_ax.yaxis.tick_right()
    heat_ax.set_xlabel(f"w{layer}_mu[input, unit]")
    fig.colorbar(image, cax=cbar_ax, label="correlation")
    if title:
        fig.suptitle(f"{title} (layer {layer})")
    return fig


__all__ = [
    "DecisionSurfaces",
    "decision_surfaces",
    "grid_shape",
    "group_mean_network",
    "plot_data_grid",
    "plot_decision_surfaces",
    "plot_group_mean_surface",
    "plot_group_sd",
    "plot_weight_correlation",
]
