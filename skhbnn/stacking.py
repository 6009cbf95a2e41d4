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


_PRIOR_K, _PRIOR_BS = 10, 3  # the prior on the Pareto shape, as in ArviZ 1.x
_PSIS_BLOCK = 1024  # rows smoothed at once (memory: rows x grid x tail doubles)


def _gpdfit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Pareto fits of every row of ``x`` ``(n, M)`` (each row
    sorted ascending, exceedances over the cutoff): the empirical-Bayes
    estimate of Zhang & Stephens (2009) with the weakly informative prior on
    the shape of Vehtari et al. (2024), as ``arviz_stats``' ``_gpdfit`` for
    one row.  Returns ``(k, sigma)``; ``k`` NaN where the first quartile is
    not above the minimum (no Pareto tail), ``inf`` where the fit fails."""
    n_rows, n = x.shape
    m_est = 30 + int(n**0.5)
    xstar = x[:, int((n / 4 + 0.5) - 1)]
    no_tail = ~(xstar > x[:, 0])
    xstar = np.where(no_tail, 1.0, xstar)
    grid = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    b = grid[None, :] / (_PRIOR_BS * xstar[:, None]) + 1 / x[:, -1:]  # (rows, m_est)
    k = np.mean(np.log1p(-b[:, :, None] * x[:, None, :]), axis=2)
    len_scale = n * (np.log(-b / k) - k - 1)
    w = np.exp(len_scale - logsumexp(len_scale, axis=1, keepdims=True))
    w = np.where(w >= 10 * np.finfo(float).eps, w, 0.0)  # negligible weights out
    b_post = np.sum(b * w, axis=1) / np.sum(w, axis=1)
    kappa = np.mean(np.log1p(-b_post[:, None] * x), axis=1)
    sigma = -kappa / b_post
    kappa = (n * kappa + _PRIOR_K * 0.5) / (n + _PRIOR_K)
    kappa = np.where(np.isnan(kappa), np.inf, kappa)
    return np.where(no_tail, np.nan, kappa), np.where(no_tail, np.nan, sigma)


def _psis_rows(log_ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSIS of every row of the log importance ratios ``(n, S)`` (``r_eff``
    1): the largest ``M`` ratios (``3 sqrt(S)``, or ``S / 5`` for ``S <=
    225``) replaced by the quantiles of a generalised Pareto fitted to them,
    capped at the largest raw ratio (fewer than 5 in the tail: none, k-hat
    ``inf``).  ArviZ 1.x's PSIS, vectorised over rows
    (``arviz_stats`` smooths one row per Python call: 10 s of a 50 s SVI fit
    of 500 groups).  Returns the normalised log weights and k-hat, ``inf``
    (the raw weights kept) where the tail cannot be fitted: every tail ratio
    equal, or no Pareto tail (ArviZ 1.x: NaN there)."""
    n, S = log_ratios.shape
    M = int(np.floor(3 * S**0.5)) if S > 225 else int(np.floor(S / 5))
    a = log_ratios - log_ratios.max(axis=1, keepdims=True)
    if M < 5:  # too few draws for a tail fit
        return a - logsumexp(a, axis=1, keepdims=True), np.full(n, np.inf)
    order = np.argsort(a, axis=1)
    tail_ids, below = order[:, S - M:], order[:, S - M - 1 : S - M]
    tail = np.take_along_axis(a, tail_ids, axis=1)
    cutoff = np.take_along_axis(a, below, axis=1)
    max_tail = tail.max(axis=1, keepdims=True)
    k, sigma = _gpdfit(np.exp(tail) - np.exp(cutoff))
    p = np.arange(0.5, M) / M
    kk, ss = k[:, None], sigma[:, None]
    safe_k = np.where(kk == 0, 1.0, kk)
    q = np.where(kk == 0, -ss * np.log1p(-p),
                 ss * np.expm1(-safe_k * np.log1p(-p)) / safe_k)
    smoothed = np.log(np.where(ss > 0, np.exp(cutoff) + q, np.nan))
    smoothed = np.where(smoothed > max_tail, max_tail, smoothed)
    rows = np.flatnonzero(np.isfinite(k))  # a tied tail has no Pareto tail: NaN
    a[rows[:, None], tail_ids[rows]] = smoothed[rows]
    k = np.where(np.isnan(k), np.inf, k)
    return a - logsumexp(a, axis=1, keepdims=True), k


def _psislw(log_lik: np.ndarray):
    """Pareto-smoothed LOO log weights of every row of ``log_lik`` ``(n, S)``
    and their k-hat (:func:`_psis_rows` on the ratios ``1 / p(y_i |
    theta_s)``, in blocks of rows).

    A row whose log-likelihood is the same in every draw (a chain stuck at
    one point) has uniform weights and k-hat 0; a row whose tail cannot be
    smoothed keeps its raw weights and k-hat ``inf`` (unreliable, and
    reported so).
    """
    n, _ = log_lik.shape
    lw = -log_lik - logsumexp(-log_lik, axis=-1, keepdims=True)
    khat = np.zeros(n)
    rows = np.flatnonzero(np.ptp(log_lik, axis=-1) > 1e-12)
    with np.errstate(all="ignore"):  # failed fits are NaN / inf, as reported
        for start in range(0, rows.size, _PSIS_BLOCK):
            block = rows[start : start + _PSIS_BLOCK]
            lw[block], khat[block] = _psis_rows(-log_lik[block])
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
