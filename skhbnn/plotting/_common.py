"""What every figure shares: pyplot, colormaps, panel grids, meshes, input checks.

matplotlib is imported inside the functions, never at module import.
"""

from __future__ import annotations

import math

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


# ------------------------------------------------------------ panel grids
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


# ----------------------------------------------------------- input checks
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


def _check_kind(kind):
    if kind not in SURFACE_KINDS:
        raise ValueError(
            f"kind must be 'proba' (decision surface) or 'std' (uncertainty "
            f"surface); got {kind!r}."
        )


def _group_order(groups):
    """Unique labels, sorted when they can be (as the estimators order them)."""
    uniques = pd.unique(pd.Series(groups, dtype=object))
    try:
        return sorted(uniques)
    except TypeError:
        return list(uniques)


def _mesh(bounds, resolution):
    lo, hi = bounds
    if not hi > lo:
        raise ValueError(f"bounds must be (low, high) with high > low; got {bounds}.")
    if int(resolution) < 2:
        raise ValueError(f"resolution must be at least 2; got {resolution}.")
    axis = np.linspace(lo, hi, int(resolution))
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


# ---------------------------------------------------------------- drawing
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


def _surface_label(kind, class_index):
    if kind == "proba":
        return f"P(class {class_index})"
    return f"posterior sd of P(class {class_index})"


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
