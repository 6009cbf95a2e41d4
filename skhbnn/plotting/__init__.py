"""Figures of the seed post for any fitted skhbnn estimator on 2-D features.

Data per group, decision and uncertainty surfaces per group, the posterior of
each layer's group sd, the decision surface of the group-mean weights and the
correlation clustermap of a layer's group-mean weights.  Every function
returns the matplotlib ``Figure`` (made with ``pyplot``, so ``plt.show()``
and notebooks display it; close it with ``plt.close(fig)`` when done).

matplotlib is an optional dependency (``pip install skhbnn[plot]``) and is
imported inside the functions that draw.  The figures use only the
estimators' public API (``predict_proba``, ``predict_std``, ``groups_``,
``network_``, ``posterior_draws_``, ``group_mean_network``).
"""

from ._common import SURFACE_KINDS as SURFACE_KINDS
from ._common import grid_shape
from ._estimators import group_mean_network
from .data import plot_data_grid
from .group_plots import plot_group_mean_surface, plot_group_sd, plot_weight_correlation
from .surfaces import DecisionSurfaces, decision_surfaces, plot_decision_surfaces

# In the order of the old single module (the API page lists them so).
__all__ = [
    "grid_shape",
    "plot_data_grid",
    "DecisionSurfaces",
    "decision_surfaces",
    "plot_decision_surfaces",
    "plot_group_sd",
    "group_mean_network",
    "plot_group_mean_surface",
    "plot_weight_correlation",
]
