"""The seed post's figures, written as PNG files (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path

# (file key, title name) of the three fitted models, in the post's order.
MODEL_NAMES = (
    ("flat", "flat BNN per group"),
    ("hierarchical", "hierarchical BNN"),
    ("informed", "informed-prior BNN per group"),
)


def write_figures(out, progress, resolution, X, y, groups, flats, hier, transfer) -> list[str]:
    """Write the post's figures into ``out``; return their file names.

    ``flats`` is the dict ``{group: fitted flat BNN}``, ``hier`` the fitted
    hierarchical BNN, ``transfer`` the fitted informed-prior transfer;
    ``resolution`` the grid points per feature of the surfaces.  Figures are
    drawn with whatever matplotlib backend is active and closed once saved.
    """
    import matplotlib.pyplot as plt

    from .. import plotting

    out = Path(out)
    kw = dict(resolution=resolution)
    jobs = [
        ("data.png", lambda: plotting.plot_data_grid(X, y, groups, title="Training data per group")),
    ]
    models = dict(flat=flats, hierarchical=hier, informed=transfer)
    for key, name in MODEL_NAMES:
        jobs += _surface_jobs(plotting, key, name, models[key], X, y, groups, kw)
    jobs += [
        ("group_sd.png", lambda: plotting.plot_group_sd(hier)),
        ("group_mean_surface.png", lambda: plotting.plot_group_mean_surface(hier, **kw)),
        ("weight_correlation_layer0.png", lambda: plotting.plot_weight_correlation(hier, layer=0)),
    ]
    written = []
    with progress.stage("figures", f"figures ({len(jobs)} PNG)", len(jobs)) as step:
        for name, make in jobs:
            fig = make()
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
            written.append(name)
            step()
    return written


def _surface_jobs(plotting, key, name, model, X, y, groups, kw):
    """The decision-surface and uncertainty figures of one model.

    Both come from one prediction over the grid, made when the first of them
    is drawn.
    """
    cache = []

    def surfaces():
        if not cache:
            cache.append(plotting.decision_surfaces(model, groups, **kw))
        return cache[0]

    return [
        (
            f"surfaces_{key}.png",
            lambda: plotting.plot_decision_surfaces(
                surfaces(), X, y, groups, title=f"Decision surfaces: {name}"
            ),
        ),
        (
            f"uncertainty_{key}.png",
            lambda: plotting.plot_decision_surfaces(
                surfaces(), X, y, groups, kind="std",
                title=f"Uncertainty (posterior sd of P(class 1)): {name}",
            ),
        ),
    ]
