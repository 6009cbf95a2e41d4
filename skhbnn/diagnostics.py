"""Convergence diagnostics on quantities that survive the BNN's symmetries.

R-hat of raw weights means nothing for a BNN: chains sit in modes that differ
only by a permutation or sign flip of hidden units.  The group sds and the
predicted probabilities do not change under those symmetries, so R-hat and
ESS are computed on them.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
from sklearn.exceptions import ConvergenceWarning

RHAT_THRESHOLD = 1.05
MIN_DRAWS_FOR_RHAT = 50


def invariant_diagnostics(invariants: dict[str, np.ndarray], n_divergent: int) -> dict:
    """R-hat and bulk ESS of each invariant quantity.

    Parameters
    ----------
    invariants : dict of str to ndarray
        Arrays of shape ``(chain, draw, k)``: each of the ``k`` columns is one
        scalar quantity.
    n_divergent : int
        Number of divergent transitions.

    Returns
    -------
    dict with ``divergences``, ``max_rhat`` and ``min_ess`` (overall) and
    ``rhat`` / ``ess`` per quantity (the worst column).
    """
    rhat, ess = {}, {}
    for name, arr in invariants.items():
        arr = np.asarray(arr, dtype=float)
        if arr.shape[1] < MIN_DRAWS_FOR_RHAT:
            continue
        cols = arr.reshape(arr.shape[0], arr.shape[1], -1)
        # Constant columns (e.g. saturated probabilities) carry no information.
        keep = [j for j in range(cols.shape[2]) if np.ptp(cols[:, :, j]) > 1e-12]
        r = np.array([float(az.rhat(cols[:, :, j])) for j in keep])
        e = np.array([float(az.ess(cols[:, :, j])) for j in keep])
        if np.isfinite(r).any():
            rhat[name] = float(np.nanmax(r))
        if np.isfinite(e).any():
            ess[name] = float(np.nanmin(e))
    return {
        "divergences": int(n_divergent),
        "max_rhat": max(rhat.values(), default=float("nan")),
        "min_ess": min(ess.values(), default=float("nan")),
        "rhat": rhat,
        "ess": ess,
    }


def warn_if_unreliable(diag: dict, estimator_name: str) -> None:
    """Warn (``ConvergenceWarning``) with what to try when diagnostics look bad."""
    problems = []
    if diag["divergences"] > 0:
        problems.append(
            f"{diag['divergences']} divergent transitions (try target_accept=0.95 "
            "or more tune)"
        )
    bad = {k: v for k, v in diag["rhat"].items() if v > RHAT_THRESHOLD}
    if bad:
        worst = ", ".join(f"{k}: {v:.2f}" for k, v in bad.items())
        problems.append(
            f"R-hat above {RHAT_THRESHOLD} on symmetry-invariant quantities ({worst}); "
            "chains disagree (try more tune and draws, or more chains)"
        )
    if problems:
        warnings.warn(
            f"{estimator_name}: the posterior may be unreliable: " + "; ".join(problems) + ".",
            ConvergenceWarning,
            stacklevel=3,
        )
