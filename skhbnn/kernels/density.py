"""Hand-written log density and gradient of the BNN models, compiled by numba.

The fast path of NUTS with nutpie (:mod:`skhbnn.kernels.cfuncs` hands these
kernels to nutpie's sampler as C callbacks).

The model definitions in :mod:`skhbnn.models` define the models; this module
evaluates the *same* log densities (``tests/test_density.py`` and the property
test ``tests/test_kernel_properties.py`` check value and gradient against
PyMC's compiled ``logp``/``dlogp`` over random architectures) with
a fused forward and backward pass:

* rows are the contiguous axis (units-major), so every matmul loop runs over
  long rows and LLVM vectorises it;
* ``tanh`` is computed from one ``exp`` (``(1 - e) / (1 + e)``,
  ``e = exp(-2|a|)``, absolute error below 1e-16): libm's ``tanh`` costs three
  times as much (``benchmarks/README.md``); ``abi.FAST_TANH`` (every
  problem's) and the likelihoods take ``exp`` and ``log`` from
  :mod:`skhbnn.kernels.elementary`, arithmetic LLVM vectorises over the rows;
* no temporary arrays per operation, one scratch buffer per call.

Functions are compiled with ``cache=True``: numba stores the machine code
next to this file (or in ``NUMBA_CACHE_DIR``), so a new process loads it in
~0.2 s instead of the 12-15 s nutpie spends compiling a pytensor graph.

Parameter vector of one network (``theta``): the arrays of
``NetworkSpec.param_shapes()`` flattened in that order (``w0, b0, w1, ...``).
``layout`` rows are ``(n_in, n_out, w_offset, b_offset)`` per layer, with
``b_offset = -1`` without biases.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .abi import refresh_dependent_caches
from .elementary import EXP_FLOOR, exp_nonpositive, log1p_unit, log_positive
from .rows import row_dot, row_sum, rows_combination

# before cfuncs, mixture or svi_step (each imports this module first) load
# cached code compiled from other kernel sources (skhbnn.kernels.abi)
refresh_dependent_caches()

# No fastmath: with reassociation, the machine code numba loads from its
# cache rounded differently from the code it had just compiled (LLVM
# vectorised the reductions differently), so the first process after an
# install sampled another chain for the same random_state than every later
# one.  Strict IEEE arithmetic is the same in both, and measured no slower
# (benchmarks/README.md, "Session 4").
_FASTMATH = False
_JIT = {"cache": True, "nogil": True, "fastmath": _FASTMATH, "error_model": "numpy"}


@njit(**_JIT)
def _activate(H, layer, j, n, act):
    """``H[layer, j, i] = f(H[layer, j, i])`` for one unit over the rows; ``act``:
    abi.ACTIVATION_CODES (0 tanh, 1 relu, 2 logistic, 3 identity), abi.FAST_TANH (4).

    Everything indexes ``H`` directly: numba array views cost reference
    counting, which made a view per unit and layer dominate the kernel.
    """
    if act == 0:
        for i in range(n):
            x = H[layer, j, i]
            e = math.exp(-2.0 * abs(x))
            t = (1.0 - e) / (1.0 + e)
            H[layer, j, i] = t if x >= 0.0 else -t
    elif act == 4:  # tanh through exp_nonpositive: the same values to 2e-16, vectorised
        for i in range(n):
            x = H[layer, j, i]
            a = abs(x)
            # exp(-40) < 2**-54: beyond |x| = 20 tanh rounds to +-1 either way
            e = exp_nonpositive(-2.0 * a if a < 20.0 else -40.0)
            t = (1.0 - e) / (1.0 + e)
            H[layer, j, i] = t if x >= 0.0 else (-t if x < 0.0 else x)  # NaN stays NaN
    elif act == 1:
        for i in range(n):
            H[layer, j, i] = max(H[layer, j, i], 0.0)
    elif act == 2:
        for i in range(n):
            x = H[layer, j, i]
            if x >= 0.0:
                H[layer, j, i] = 1.0 / (1.0 + math.exp(-x))
            else:
                e = math.exp(x)
                H[layer, j, i] = e / (1.0 + e)


@njit(**_JIT)
def _scale_by_derivative(H, layer, k, D, c, n, act):
    """``D[c, k, i] *= f'(a)``, written in terms of the activation ``H = f(a)``."""
    if act == 0 or act == 4:
        for i in range(n):
            h = H[layer, k, i]
            D[c, k, i] *= 1.0 - h * h
    elif act == 1:
        for i in range(n):
            if H[layer, k, i] <= 0.0:
                D[c, k, i] = 0.0
    elif act == 2:
        for i in range(n):
            h = H[layer, k, i]
            D[c, k, i] *= h * (1.0 - h)


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@njit(**_JIT)
def _row(A, plane, unit):
    """Where row ``A[plane, unit, :]`` of a C-contiguous scratch array starts
    in ``A.flat``: the offset :mod:`skhbnn.kernels.rows` takes."""
    return (plane * A.shape[1] + unit) * A.shape[2]


@njit(**_JIT)
def _output_loglik(H, top, n_out, y, rw, r0, n, D, c, sigma):
    """Log likelihood of targets ``y[r0:r0 + n]`` given the outputs
    ``H[top, :n_out, :n]``, each row's term weighted by ``rw[r0 + i]`` (the
    one weighted-likelihood path: ``sample_weight``, minibatch scaling);
    writes d loglik / d outputs into ``D[c]``.  Returns the log likelihood
    and its derivative with respect to ``log sigma``.

    ``sigma > 0``: a regression, Normal(output, sigma) on the float targets.
    Otherwise ``y`` holds class labels: one output is Bernoulli on the logit
    (the two-class Categorical on ``[0, z]`` of the PyMC model); more are a
    softmax."""
    # each row's term into D[2] (no running sum: the loops vectorise), summed
    # after in eight lanes (skhbnn.kernels.rows)
    if sigma > 0.0:
        inv = 1.0 / sigma
        norm = math.log(sigma) + _HALF_LOG_2PI
        for i in range(n):
            r = (y[r0 + i] - H[top, 0, i]) * inv
            weight = rw[r0 + i]
            D[2, 0, i] = weight * (-0.5 * r * r - norm)
            D[c, 0, i] = weight * r * inv
            D[2, 1, i] = weight * (r * r - 1.0)
        return row_sum(D, _row(D, 2, 0), n), row_sum(D, _row(D, 2, 1), n)
    if n_out == 1:
        for i in range(n):
            x = H[top, 0, i]
            a = abs(x)
            e = exp_nonpositive(-a if a < -EXP_FLOOR else EXP_FLOOR)
            p1 = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
            weight = rw[r0 + i]
            label = y[r0 + i]
            D[2, 0, i] = weight * (label * x - (max(x, 0.0) + log1p_unit(e)))
            D[c, 0, i] = weight * (label - p1)
        return row_sum(D, _row(D, 2, 0), n), 0.0
    # softmax, one class at a time over the rows: D[2, 0] the rows' largest
    # output, D[2, 1] the sum of exp(output - largest), then log-sum-exp
    for i in range(n):
        D[2, 0, i] = H[top, 0, i]
    for k in range(1, n_out):
        for i in range(n):
            D[2, 0, i] = max(D[2, 0, i], H[top, k, i])
    for i in range(n):
        D[2, 1, i] = 0.0
    for k in range(n_out):
        for i in range(n):
            D[2, 1, i] += exp_nonpositive(max(H[top, k, i] - D[2, 0, i], EXP_FLOOR))
    for i in range(n):
        D[2, 0, i] += log_positive(D[2, 1, i])
    for k in range(n_out):
        for i in range(n):
            D[c, k, i] = -rw[r0 + i] * exp_nonpositive(max(H[top, k, i] - D[2, 0, i], EXP_FLOOR))
    for i in range(n):
        label = int(y[r0 + i])
        weight = rw[r0 + i]
        D[2, 1, i] = weight * (H[top, label, i] - D[2, 0, i])
        D[c, label, i] += weight
    return row_sum(D, _row(D, 2, 1), n), 0.0


@njit(**_JIT)
def _network_loglik(theta, XT, y, rw, r0, r1, layout, act, H, D, gtheta, sigma):
    """Log likelihood of rows ``r0:r1`` under one network (noise sd
    ``sigma`` for a regression, 0 for a classifier); adds its gradient with
    respect to ``theta`` into ``gtheta``.  Returns the log likelihood and its
    derivative with respect to ``log sigma``.

    ``XT`` is (n_features, n_rows); ``H`` (n_layers + 1, max_width, max_rows)
    and ``D`` (3, max(max_width, 2), max_rows) are scratch space.
    """
    n = r1 - r0
    n_layers = layout.shape[0]
    for k in range(layout[0, 0]):
        for i in range(n):
            H[0, k, i] = XT[k, r0 + i]
    for layer in range(n_layers):  # forward
        n_in, n_out, wo, bo = layout[layer, 0], layout[layer, 1], layout[layer, 2], layout[layer, 3]
        for j in range(n_out):  # b + w_0j h_0 + w_1j h_1 + ..., in registers (rows.py)
            b = theta[bo + j] if bo >= 0 else 0.0
            rows_combination(H, _row(H, layer + 1, j), b,
                             H, _row(H, layer, 0), H.shape[2], theta, wo + j, n_out, n_in, n)
            if layer < n_layers - 1:
                _activate(H, layer + 1, j, n, act)
    cur = 0  # D[cur]: d loglik / d pre-activations of the layer's output
    total, gsigma = _output_loglik(
        H, n_layers, layout[n_layers - 1, 1], y, rw, r0, n, D, cur, sigma
    )
    for layer in range(n_layers - 1, -1, -1):  # backward
        n_in, n_out, wo, bo = layout[layer, 0], layout[layer, 1], layout[layer, 2], layout[layer, 3]
        # the sums over the rows in eight lanes (skhbnn.kernels.rows)
        if bo >= 0:
            for j in range(n_out):
                gtheta[bo + j] += row_sum(D, _row(D, cur, j), n)
        for k in range(n_in):
            for j in range(n_out):
                gtheta[wo + k * n_out + j] += row_dot(H, _row(H, layer, k), D, _row(D, cur, j), n)
        if layer > 0:
            nxt = 1 - cur
            for k in range(n_in):  # w_k0 d_0 + w_k1 d_1 + ..., in registers
                rows_combination(D, _row(D, nxt, k), None,
                                 D, _row(D, cur, 0), D.shape[2], theta, wo + k * n_out, 1, n_out, n)
                _scale_by_derivative(H, layer, k, D, nxt, n, act)
            cur = nxt
    return total, gsigma


@njit(**_JIT)
def _scratch(layout, max_rows):
    width = layout[0, 0]
    for layer in range(layout.shape[0]):
        width = max(width, layout[layer, 1])
    H = np.empty((layout.shape[0] + 1, width, max_rows))
    D = np.empty((3, max(width, 2), max_rows))
    return H, D


@njit(**_JIT)
def _noise_prior(u, scale):
    """``sigma = exp(u) ~ HalfNormal(scale)`` on ``u``'s scale, Jacobian
    included, without its constant: ``(log density, d / du)``."""
    r = math.exp(u) / scale
    return u - 0.5 * r * r, 1.0 - r * r


@njit(**_JIT)
def _flat_noise(x, P, noise_scale, grad):
    """A flat model's noise sd, ``x[P] = log sigma`` after the ``P``
    weight coordinates: ``(its prior's log density, sigma)``, the prior's
    slope written to ``grad[P]``; ``(0, 0)`` for a classifier (no noise)."""
    if x.size <= P:
        return 0.0, 0.0
    value, slope = _noise_prior(x[P], noise_scale)
    grad[P] = slope
    return value, math.exp(x[P])


@njit(**_JIT)
def _flat_loglik(theta, XT, y, rw, layout, act, sigma, grad):
    """Log likelihood of every row under one network ``theta`` (noise sd
    ``sigma``, 0 for a classifier) and its gradient ``gtheta`` (a new
    array); a regression's slope in ``log sigma`` is added to
    ``grad[theta.size]``."""
    P = theta.size
    n = y.size
    gtheta = np.zeros(P)
    H, D = _scratch(layout, max(n, 1))
    loglik, gsigma = _network_loglik(theta, XT, y, rw, 0, n, layout, act, H, D, gtheta, sigma)
    if grad.size > P:
        grad[P] += gsigma
    return loglik, gtheta


@njit(**_JIT)
def flat_logp_grad(z, XT, y, rw, layout, act, mean, scale, L, const, noise_scale, grad):
    """Flat model: ``theta = mean + scale * z`` (independent prior, ``L``
    empty) or ``theta = mean + L @ z`` (MvNormal prior); ``z ~ N(0, I)``.
    A regression's ``z`` ends with ``log sigma``, ``sigma ~
    HalfNormal(noise_scale)``.  Returns the log density; writes its gradient
    with respect to ``z``."""
    P = mean.size
    theta = np.empty(P)
    dense = L.shape[0] > 0
    for p in range(P):
        theta[p] = mean[p]
        if dense:
            for q in range(P):
                theta[p] += L[p, q] * z[q]
        else:
            theta[p] += scale[p] * z[p]
    total = const
    value, sigma = _flat_noise(z, P, noise_scale, grad)
    total += value
    loglik, gtheta = _flat_loglik(theta, XT, y, rw, layout, act, sigma, grad)
    total += loglik
    for p in range(P):
        total -= 0.5 * z[p] * z[p]
        if dense:
            s = 0.0
            for q in range(P):
                s += L[q, p] * gtheta[q]
            grad[p] = s - z[p]
        else:
            grad[p] = scale[p] * gtheta[p] - z[p]
    return total


@njit(**_JIT)
def hierarchical_logp_grad(
    x, XT, y, rw, starts, layout, act, player, prior_sd, sd_scale, n_noise, noise_scale,
    const, grad,
):
    """Hierarchical model, non-centred.  ``x`` is ``(log sd_k for each of
    the n_sd group sds, log sigma for each of the n_noise noise sds, mu (P),
    raw (G * P))``; ``theta_g = mu + sd[player] * raw_g`` (``player[p]``: the
    group sd of parameter ``p``), ``mu ~ N(0, prior_sd)``, ``sd_k ~
    HalfNormal(sd_scale[k])``, ``raw ~ N(0, 1)``; a regression's noise sds
    ``~ HalfNormal(noise_scale)``, one for all groups (``n_noise = 1``) or one
    per group (``n_noise = G``).  Rows of group ``g`` are
    ``starts[g]:starts[g+1]``."""
    P = player.size
    G = starts.size - 1
    n_sd = sd_scale.size
    m0 = n_sd + n_noise  # where mu starts
    total = const
    sd = np.empty(n_sd)
    for k in range(n_sd):
        u = x[k]
        sd[k] = math.exp(u)
        r = sd[k] / sd_scale[k]
        total += u - 0.5 * r * r
        grad[k] = 1.0 - r * r
    for k in range(n_sd, m0):
        value, slope = _noise_prior(x[k], noise_scale)
        total += value
        grad[k] = slope
    for p in range(P):
        m = x[m0 + p]
        total -= 0.5 * (m / prior_sd) ** 2
        grad[m0 + p] = -m / prior_sd**2
    max_rows = 1
    for g in range(G):
        max_rows = max(max_rows, starts[g + 1] - starts[g])
    H, D = _scratch(layout, max_rows)
    theta = np.empty(P)
    gtheta = np.empty(P)
    # per parameter its group sd, and its sums over groups of raw**2 and raw *
    # dlogp/dtheta, reduced once after the groups: the loops over parameters
    # then carry nothing from one p to the next (gsd[player[p]] += ... did)
    sdp = np.empty(P)
    sum_rr = np.zeros(P)
    sum_gr = np.zeros(P)
    for p in range(P):
        sdp[p] = sd[player[p]]
    for g in range(G):
        base = m0 + P + g * P
        for p in range(P):
            r = x[base + p]
            sum_rr[p] += r * r
            theta[p] = x[m0 + p] + sdp[p] * r
            gtheta[p] = 0.0
        if starts[g + 1] > starts[g]:
            sigma = 0.0
            k = n_sd + (g if n_noise == G else 0)
            if n_noise > 0:
                sigma = math.exp(x[k])
            loglik, gsigma = _network_loglik(
                theta, XT, y, rw, starts[g], starts[g + 1], layout, act, H, D, gtheta, sigma
            )
            total += loglik
            if n_noise > 0:
                grad[k] += gsigma
        for p in range(P):
            r = x[base + p]
            grad[base + p] = sdp[p] * gtheta[p] - r
            grad[m0 + p] += gtheta[p]
            sum_gr[p] += gtheta[p] * r
    gsd = np.zeros(n_sd)
    for p in range(P):
        total -= 0.5 * sum_rr[p]
        gsd[player[p]] += sum_gr[p]
    for k in range(n_sd):
        grad[k] += gsd[k] * sd[k]
    return total


@njit(**_JIT)
def finite_status(logp, grad):
    """nutpie's return code for a log density and its gradient: 0 if all
    finite, 3 if the gradient is not, 4 if only the log density is not."""
    for p in range(grad.size):
        if not math.isfinite(grad[p]):
            return 3
    if not math.isfinite(logp):
        return 4
    return 0
