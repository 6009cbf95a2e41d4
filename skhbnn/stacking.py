"""Combining chains that sit in different modes: stacking (a leaf module).

NUTS chains of a BNN do not cross between the posterior's modes (beyond the
permutation and sign symmetries of hidden units, which prediction does not
see): on the seed's data one chain explains the groups' differences by their
first-layer weights, another by their output weights (``benchmarks/README.md``,
"Default fits").  Averaging the chains weights every mode by how many chains
happened to land in it.  Stacking (Yao, Vehtari & Gelman 2022, "Stacking for
non-mixing Bayesian computations: the curse and blessing of multimodal
posteriors", JMLR 23) weights the chains instead by how well their mixture
predicts held-out rows:

1. per chain ``k`` and training row ``i``, the PSIS-LOO predictive density
   ``lpd[k, i] = log p(y_i | y_-i, chain k)`` (Pareto-smoothed importance
   sampling on that chain's draws; Vehtari, Gelman & Gabry 2017);
2. weights on the simplex maximising ``sum_i log sum_k w_k exp(lpd[k, i])``
   (a concave objective: one optimum, found deterministically);
3. predictions from the mixture ``sum_k w_k p(y | x, chain k)``.

The pointwise log-likelihood comes from :mod:`skhbnn.prediction` (the one
forward pass that also fills ``idata_.log_likelihood``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

# Chains whose stacking weight is below this are left out of prediction (their
# draws cost time and change no digit that matters).
MIN_WEIGHT = 1e-3


def _arviz_psislw(log_lik: np.ndarray):
    """ArviZ's PSIS of the LOO ratios ``1 / p(y_i | theta_s)``.  ArviZ 0.x's
    ``az.psislw`` takes the log ratios (``-log_lik``); ArviZ 1.x's
    ``array_stats.psislw`` takes the log-likelihood and negates it itself
    (``arviz_stats/base/diagnostics.py``, ``_psislw``)."""
    try:
        from arviz_stats.base import array_stats
    except ImportError:  # ArviZ 0.x
        import arviz as az

        return az.psislw(-log_lik, 1.0)
    return array_stats.psislw(log_lik, r_eff=1.0, axis=-1)


def _psislw(log_lik: np.ndarray):
    """Pareto-smoothed LOO log weights of every row of ``log_lik`` ``(n, S)``
    and their k-hat, from ArviZ (0.x: ``az.psislw``; 1.x: ``arviz_stats``).

    A row whose log-likelihood is the same in every draw (a chain stuck at
    one point) has uniform weights and k-hat 0; a row ArviZ cannot smooth
    keeps its raw weights and k-hat ``inf`` (unreliable, and reported so).
    """
    n, _ = log_lik.shape
    lw = -log_lik - logsumexp(-log_lik, axis=-1, keepdims=True)
    khat = np.zeros(n)
    varying = np.ptp(log_lik, axis=-1) > 1e-12
    rows = np.flatnonzero(varying)
    if rows.size == 0:
        return lw, khat
    try:
        smoothed, k = _arviz_psislw(log_lik[rows])
        lw[rows], khat[rows] = np.asarray(smoothed), np.asarray(k)
    except ValueError:  # one row's tail could not be fitted: row by row
        for i in rows:
            try:
                smoothed, k = _arviz_psislw(log_lik[i : i + 1])
                lw[i], khat[i] = np.asarray(smoothed)[0], np.asarray(k).ravel()[0]
            except ValueError:
                khat[i] = np.inf
    return lw, khat


def chain_loo(log_lik: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-chain PSIS-LOO predictive densities.

    Parameters
    ----------
    log_lik : ndarray of shape (chains, draws, n)
        ``log p(y_i | theta_s)``.

    Returns
    -------
    lpd, khat : ndarrays of shape (chains, n)
        ``log p(y_i | y_-i)`` under each chain's draws, and the Pareto k-hat
        of its importance weights (above 0.7 the estimate is unreliable).
    """
    log_lik = np.asarray(log_lik, dtype=np.float64)
    lpd = np.empty((log_lik.shape[0], log_lik.shape[2]))
    khat = np.empty_like(lpd)
    for k, chain in enumerate(log_lik):
        lw, kh = _psislw(np.ascontiguousarray(chain.T))
        lw = np.asarray(lw)
        lw = lw - logsumexp(lw, axis=-1, keepdims=True)  # normalised, whichever ArviZ
        lpd[k] = logsumexp(lw + chain.T, axis=-1)
        khat[k] = np.asarray(kh)
    return lpd, khat


def stacking_weights(lpd: np.ndarray) -> np.ndarray:
    """Weights on the simplex maximising ``sum_i log sum_k w_k exp(lpd[k, i])``.

    ``lpd`` has shape ``(chains, n)``.  Parametrised as ``w = softmax(a)``
    with ``a[-1] = 0`` and solved by L-BFGS from equal weights; the objective
    is concave in ``w``, so the optimum does not depend on the start.
    """
    lpd = np.asarray(lpd, dtype=np.float64)
    n_chains = lpd.shape[0]
    if n_chains == 1:
        return np.ones(1)
    # shift each row: the optimum does not change, exp() cannot underflow
    dens = np.exp(lpd - lpd.max(axis=0, keepdims=True))

    def objective(a_free):
        w = softmax(np.append(a_free, 0.0))
        mix = w @ dens  # (n,)
        value = -np.sum(np.log(mix))
        grad_w = -(dens / mix).sum(axis=1)  # d value / d w
        grad_a = w * (grad_w - w @ grad_w)  # through the softmax
        return value, grad_a[:-1]

    result = minimize(objective, np.zeros(n_chains - 1), jac=True, method="L-BFGS-B")
    w = softmax(np.append(result.x, 0.0))
    w[w < MIN_WEIGHT] = 0.0
    return w / w.sum()


def chain_modes(invariants: dict, threshold: float, min_draws: int) -> np.ndarray:
    """Which chains sit in the same mode: a chain joins the first mode whose
    first chain it agrees with (R-hat of the symmetry-invariant quantities,
    the two chains together, at most ``threshold``), else opens a new one.
    Returns a mode label per chain, ``0, 1, ...`` in order of appearance.

    Chains that agree are draws from one distribution, so they share a weight
    equally; stacking them against each other would pick among them by
    noise.  With fewer than ``min_draws`` draws nothing can be told apart:
    one mode.
    """
    from .diagnostics import informative_columns, rhat_rank

    n_chains, n_draws = np.shape(next(iter(invariants.values())))[:2]
    labels = np.zeros(n_chains, dtype=int)
    columns = informative_columns(invariants)
    if n_draws < min_draws or not columns:
        return labels
    cols = np.concatenate(list(columns.values()), axis=2)
    firsts: list[int] = []
    for k in range(n_chains):
        for mode, first in enumerate(firsts):
            if np.nanmax(rhat_rank(cols[[first, k]])) <= threshold:
                labels[k] = mode
                break
        else:
            labels[k] = len(firsts)
            firsts.append(k)
    return labels


def mode_stacking(log_lik: np.ndarray, modes: np.ndarray):
    """Chain weights from stacking the modes: each mode's PSIS-LOO densities
    from its chains' draws pooled, stacking weights over the modes, each
    mode's weight shared equally by its chains.

    Returns ``(chain_weights, loo)``; ``loo`` holds per mode its ``elpd``
    and ``khat_share`` (share of rows with Pareto k-hat above 0.7).
    """
    log_lik = np.asarray(log_lik, dtype=np.float64)
    n_modes = int(modes.max()) + 1
    pooled = [log_lik[modes == m].reshape(1, -1, log_lik.shape[2]) for m in range(n_modes)]
    lpd, khat = zip(*(chain_loo(p) for p in pooled))
    lpd, khat = np.concatenate(lpd), np.concatenate(khat)
    mode_w = stacking_weights(lpd)
    chain_w = mode_w[modes] / np.bincount(modes)[modes]
    return chain_w, {"elpd": lpd.sum(axis=1), "khat_share": (khat > 0.7).mean(axis=1)}


def draw_weights(chain_weights: np.ndarray, n_draws: int) -> np.ndarray:
    """Each flattened draw's weight ``(chains * draws,)``, summing to 1."""
    w = np.asarray(chain_weights, dtype=np.float64)
    return np.repeat(w / w.sum() / n_draws, n_draws)
