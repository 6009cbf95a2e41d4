"""Prediction from stored posterior draws: the one numpy forward pass of
:mod:`skhbnn.network` over chunks of rows and draws.

* :func:`posterior_moments`: posterior mean and sd of the class probabilities
  (``predict_proba``, ``predict_std``) and, on request, their log computed
  stably over the mixture (``predict_log_proba``);
* :func:`pointwise_log_likelihood`: ``log p(y_i | x_i, theta_s)`` for every
  draw and row (the ``log_likelihood`` group of ``idata_``, for ``az.loo``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
from joblib import effective_n_jobs
from scipy.special import log_softmax, logsumexp

from .groups import rows_of_codes
from .network import NetworkSpec, forward, logits_to_proba

# Prediction is chunked over rows and draws.  One chunk holds at most
# _PREDICT_CHUNK_ELEMENTS floats per layer (2**20 float32 values are 4 MiB:
# any number of rows and draws stays within tens of MiB, and the layers stay
# close to the CPU caches).  Rows go in fixed blocks, so how a row's draws are
# chunked does not depend on which other rows are predicted with it.
_PREDICT_CHUNK_ELEMENTS = 2**20
_PREDICT_ROWS = 4096
# Hidden layers run in float32: tanh costs 0.8 ns per value in float32 against
# 2.9 ns in float64 (benchmarks/README.md), and probabilities change by ~1e-8.
# The first layer's X @ w0 + b0 stays float64, so inputs with large offsets
# (timestamps, 1e6-scaled features) lose nothing before the first activation.
_PREDICT_DTYPE = np.float32


def flatten_chains(draws: dict) -> dict:
    """``(chain, draw, ...)`` -> ``(chain * draw, ...)`` for every array."""
    return {k: v.reshape(-1, *v.shape[2:]) for k, v in draws.items()}


def _probabilities(logits: np.ndarray, spec: NetworkSpec) -> np.ndarray:
    """(S, k, n) probabilities from float32 logits (S, n_outputs, n), in
    place where it can: k = 1 (P(class 1)) for binary."""
    if spec.n_outputs == 1:
        # sigmoid(z) = (1 + tanh(z / 2)) / 2 in place: one SIMD ufunc, bounded
        # for any z, ~6x cheaper than logits_to_proba's logaddexp.
        logits *= 0.5
        np.tanh(logits, out=logits)
        logits += 1.0
        logits *= 0.5
        return logits
    return np.moveaxis(logits_to_proba(np.moveaxis(logits, -2, -1)), -1, -2)


def _log_probabilities(logits: np.ndarray) -> np.ndarray:
    """(S, n_classes, n) log class probabilities from logits (S, n_outputs, n),
    in float64."""
    z = logits.astype(np.float64)
    if z.shape[-2] == 1:  # binary: log sigmoid(-z), log sigmoid(z)
        return -np.logaddexp(0.0, np.concatenate([z, -z], axis=-2))
    return log_softmax(z, axis=-2)


def posterior_moments(params: dict, X: np.ndarray, spec: NetworkSpec, n_jobs=None,
                      log: bool = False, weights=None, output: str = "proba"):
    """Posterior mean and sd of class probabilities, in one chunked pass.

    ``output="value"``: of the network's outputs themselves (a regression's
    mean function), shape ``(n, n_outputs)``; ``log`` does not apply.

    ``params`` hold draws with a leading draw axis: ``w{l}`` of shape
    ``(S, in, out)``.  Returns two float64 arrays of shape
    ``(n, n_classes)``.  Chunk means and sums of squared deviations are
    merged in float64 (Chan et al.'s pairwise update), so the sd is as
    accurate as a two-pass ``std`` over all draws.  With ``n_jobs`` other
    than 1, chunks run on that many threads (numpy releases the GIL); they
    are merged in a fixed order, so the result does not depend on ``n_jobs``.

    With ``log=True`` a third array is returned, the log of the mean: equal
    to ``log(mean)`` wherever the mean is positive, and where it underflows
    to 0 the log-sum-exp of the draws' float64 log probabilities minus
    ``log S``, finite however small the probability.

    ``weights`` (one per draw, e.g. :func:`skhbnn.stacking.draw_weights`)
    make the moments those of the weighted mixture of the draws; draws of
    weight 0 are not evaluated.  ``None`` weighs every draw equally.
    """
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (next(iter(params.values())).shape[0],):
            raise ValueError(f"one weight per draw expected, got shape {weights.shape}")
        keep = weights > 0
        if not keep.all():
            params = {k: np.asarray(v)[keep] for k, v in params.items()}
            weights = weights[keep]
        if np.all(weights == weights[0]):
            weights = None  # equal weights: the plain mean, to the last digit
    n_draws = next(iter(params.values())).shape[0]
    # cumulative weight before each draw (counts without weights)
    cum = np.arange(n_draws + 1.0) if weights is None else np.concatenate([[0.0], np.cumsum(weights)])
    width = max(spec.layer_sizes[1:])
    per_chunk = max(1, _PREDICT_CHUNK_ELEMENTS // (_PREDICT_ROWS * width))
    # A regression's outputs are its predictions, on the target's scale: float64
    # throughout (in float32 numpy 2.5's vectorised tail moves a row's value by
    # ~5e-7 relative with its position, against scikit-learn's 1e-7 invariance).
    dtype = np.float64 if output == "value" else _PREDICT_DTYPE
    params = {
        k: np.asarray(v, np.float64 if spec.layer_of(k) == 0 else dtype)
        for k, v in params.items()
        if k in spec.param_shapes()
    }
    X_t = np.asarray(X, dtype=np.float64).T  # units-major: rows on the last axis
    tasks = [
        (slice(r0, r0 + _PREDICT_ROWS), slice(d0, d0 + per_chunk))
        for r0 in range(0, X_t.shape[1], _PREDICT_ROWS)
        for d0 in range(0, n_draws, per_chunk)
    ]

    def chunk_stats(task):
        rows, draws = task
        chunk = {k: v[draws] for k, v in params.items()}
        logits = forward(chunk, X_t[:, rows], spec, hidden_dtype=dtype, units_major=True)
        logits = logits.astype(dtype, copy=False)
        w = None if weights is None else weights[draws]
        c_lse = None
        if log:  # before _probabilities, which works in place on the logits
            log_p = _log_probabilities(logits)
            if w is not None:
                log_p += np.log(w)[:, None, None]
            c_lse = logsumexp(log_p, axis=0).T
        p = logits if output == "value" else _probabilities(logits, spec)
        if w is None:
            c_mean = p.mean(axis=0, dtype=np.float64)  # (k, r)
            dev = p - c_mean.astype(p.dtype)
            c_m2 = np.einsum("skr,skr->rk", dev, dev, dtype=np.float64)
        else:
            c_mean = np.einsum("s,skr->kr", w, p, dtype=np.float64) / w.sum()
            dev = p - c_mean.astype(p.dtype)
            c_m2 = np.einsum("s,skr,skr->rk", w, dev, dev, dtype=np.float64)
        return c_mean.T, c_m2, c_lse

    n_threads = min(effective_n_jobs(n_jobs), len(tasks))
    k_out = 1 if spec.n_outputs == 1 else spec.n_outputs
    n_rows = X_t.shape[1]
    mean = np.zeros((n_rows, k_out))
    m2 = np.zeros((n_rows, k_out))
    lse = np.full((n_rows, max(k_out, 2)), -np.inf) if log else None
    with ThreadPoolExecutor(n_threads) if n_threads > 1 else nullcontext() as pool:
        results = pool.map(chunk_stats, tasks) if pool else map(chunk_stats, tasks)
        for (rows, draws), (c_mean, c_m2, c_lse) in zip(tasks, results):
            # a row block's chunks arrive in draw order
            before = cum[draws.start]
            s = cum[min(draws.stop, n_draws)] - before
            total = before + s
            delta = c_mean - mean[rows]
            mean[rows] += delta * (s / total)
            m2[rows] += c_m2 + delta**2 * (before * s / total)
            if log:
                lse[rows] = np.logaddexp(lse[rows], c_lse)
    std = np.sqrt(np.maximum(m2 / cum[-1], 0.0))
    if output == "value":
        return mean, std
    if spec.n_outputs == 1:
        # P(class 0) = 1 - P(class 1) has the same sd.
        mean, std = np.column_stack([1.0 - mean[:, 0], mean[:, 0]]), np.repeat(std, 2, axis=1)
    if not log:
        return mean, std
    with np.errstate(divide="ignore"):
        log_mean = np.where(mean > 0.0, np.log(mean), lse - np.log(cum[-1]))
    return mean, std, log_mean


def pointwise_log_likelihood(params: dict, X: np.ndarray, y: np.ndarray, spec: NetworkSpec,
                             sigma=None):
    """``log p(y_i | x_i, theta_s)``, shape ``(S, n)``, float64 throughout.

    ``params`` hold ``w{l}`` / ``b{l}`` draws with a leading draw axis; ``y``
    the encoded labels ``0 .. n_classes - 1`` of the rows of ``X``, or with
    ``sigma`` (the noise sd of each draw, shape ``(S,)``) a regression's
    targets, on the scale the network was fitted on.
    """
    n_draws = next(iter(params.values())).shape[0]
    X_t = np.asarray(X, dtype=np.float64).T
    regression = sigma is not None
    y = np.asarray(y, dtype=np.float64 if regression else np.intp)
    n = X_t.shape[1]
    out = np.empty((n_draws, n))
    width = max(spec.layer_sizes[1:])
    per_chunk = max(1, _PREDICT_CHUNK_ELEMENTS // (max(n, 1) * width))
    names = spec.param_shapes()
    for d0 in range(0, n_draws, per_chunk):
        chunk = {k: np.asarray(params[k][d0 : d0 + per_chunk], np.float64) for k in names}
        outputs = forward(chunk, X_t, spec, units_major=True)  # (S, k, n)
        if regression:
            s = np.asarray(sigma, dtype=np.float64)[d0 : d0 + per_chunk, None]
            z = (y[None, :] - outputs[:, 0]) / s
            out[d0 : d0 + per_chunk] = -0.5 * z**2 - np.log(s) - _HALF_LOG_2PI
            continue
        logp = _log_probabilities(outputs)
        out[d0 : d0 + per_chunk] = np.take_along_axis(logp, y[None, None, :], axis=1)[:, 0]
    return out


_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def grouped_pointwise_log_likelihood(params: dict, X, y, codes, spec: NetworkSpec, sigma=None):
    """:func:`pointwise_log_likelihood` of rows under their own group's
    network: ``params`` hold per-group draws ``(S, n_groups, ...)``; a
    regression's ``sigma`` is ``(S,)`` or, one per group, ``(S, n_groups)``."""
    out = np.empty((next(iter(params.values())).shape[0], len(y)))
    for rows, code in rows_of_codes(codes):
        group = {k: params[k][:, code] for k in spec.param_shapes()}
        s = None if sigma is None else (sigma if sigma.ndim == 1 else sigma[:, code])
        out[:, rows] = pointwise_log_likelihood(group, X[rows], y[rows], spec, s)
    return out
