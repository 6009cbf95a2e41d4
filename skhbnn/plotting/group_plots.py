"""Figures of a hierarchical posterior: group sds, group-mean surface, weight
correlations."""

from __future__ import annotations

import numpy as np

from ._common import (
    _GRID_BOUNDS,
    _GRID_RESOLUTION,
    _check_kind,
    _check_xy,
    _draw_surfaces,
    _pyplot,
    _scatter,
    _surface_label,
)
from ._estimators import _group_mean_network, _hierarchical_of, group_mean_network
from .surfaces import decision_surfaces


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
        Fitted; the weights are the draws of :func:`group_mean_network`.
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
    from ..alignment import align_chains

    plt = _pyplot()
    network = _group_mean_network(estimator, "plot_weight_correlation")
    spec = network.network_
    if not (isinstance(layer, (int, np.integer)) and 0 <= layer < spec.n_layers):
        raise ValueError(
            f"layer must be an integer in [0, {spec.n_layers - 1}] for a network "
            f"with {spec.n_layers} weight matrices; got {layer!r}."
        )
    params = {name: network.posterior_draws_[name] for name in spec.param_shapes()}
    if align:
        params = align_chains(params, spec)
    w = params[f"w{layer}"]  # (chain, draw, in, out)
    n_in, n_out = w.shape[-2:]
    labels = [f"{i},{j}" for i in range(n_in) for j in range(n_out)]
    corr, link = _clustered_correlation(w.reshape(-1, n_in * n_out))

    fig = plt.figure(figsize=figsize, layout="constrained")
    gs = fig.add_gridspec(2, 3, width_ratios=[1, 5, 0.25], height_ratios=[1, 5])
    top_ax = fig.add_subplot(gs[0, 1])
    left_ax = fig.add_subplot(gs[1, 0])
    heat_ax = fig.add_subplot(gs[1, 1])
    cbar_ax = fig.add_subplot(gs[1, 2])
    order = _dendrograms(link, top_ax, left_ax)
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


def _clustered_correlation(flat):
    """Correlation matrix of the columns of ``flat`` and its average-linkage
    clustering on ``1 - correlation`` (``None`` for a single column)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(flat, rowvar=False)
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
    np.fill_diagonal(corr, 1.0)
    if corr.shape[0] < 2:
        return corr, None
    dist = np.clip(1.0 - corr, 0.0, 2.0)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    return corr, linkage(squareform(dist, checks=False), method="average")


def _dendrograms(link, top_ax, left_ax):
    """Draw the dendrograms on top and left; returns the leaf order."""
    from scipy.cluster.hierarchy import dendrogram

    order = [0]
    if link is not None:
        style = {"no_labels": True, "color_threshold": 0, "above_threshold_color": "0.3"}
        order = dendrogram(link, ax=top_ax, **style)["leaves"]
        dendrogram(link, ax=left_ax, orientation="left", **style)
        # scipy draws the left dendrogram's first leaf at the bottom; the
        # heatmap's first row is at the top.
        left_ax.invert_yaxis()
    for ax in (top_ax, left_ax):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    return order
