"""SVI steps of the hierarchical model, compiled by numba (the inner loop of
:mod:`skhbnn.svi`).

Each step evaluates :func:`skhbnn.kernels.density.hierarchical_logp_grad`,
the log density NUTS samples, on one minibatch of whole groups and takes an
Adam step on the reparameterisation gradient of the ELBO.  Everything the
step touches is an argument, the normal draws included (drawn by numpy's
``Generator`` in :mod:`skhbnn.svi`, so a fit is the same in every process and
thread); the loop holds no GIL, so restarts run in parallel threads.

Variational family: ``x_glob = mean + L @ eps`` (``L`` lower triangular, its
diagonal ``exp`` of its parameters) for the global coordinates, ``x_local[g]
= local_mean[g] + exp(local_log_sd[g]) * eps_g`` per group.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .density import _JIT, hierarchical_logp_grad

_EPS = 1e-8
_LOG_SD_RANGE = (-12.0, 5.0)  # the log sds' clip (skhbnn.svi's flat steps use it too)


@njit(**_JIT)
def _adam(param, grad, m, v, t, lr, b1, b2):
    """One Adam ascent step of one coordinate; returns the new ``(param, m, v)``."""
    m = b1 * m + (1.0 - b1) * grad
    v = b2 * v + (1.0 - b2) * grad * grad
    mhat = m / (1.0 - b1**t)
    vhat = v / (1.0 - b2**t)
    return param + lr * mhat / (math.sqrt(vhat) + _EPS), m, v


@njit(**_JIT)
def offdiag_lr_factor(n):
    """The learning rate's factor for the off-diagonal Cholesky parameters
    of ``n`` global coordinates: ``1 / sqrt(n)``.  Adam moves every
    parameter by about the learning rate whatever its gradient's size, and
    an off-diagonal entry's gradient ``g_i eps_j`` is mostly noise: at the
    full rate the rows of ``L`` random-walk and their norms (the
    approximation's sds) grow as ``sqrt(n)``.  Measured on 1,000 groups x 6
    classes, flat (10, 10) network (246 coordinates): final ELBO -18,300 at
    the full rate, -13,500 at 0.03-0.1 of it."""
    return 1.0 / math.sqrt(max(n, 1))


@njit(**_JIT)
def hierarchical_steps(
    XT, y, w, starts, layout, act, player, floats, n_sd, n_noise, group_noise,
    mean, tri, local_mean, local_log_sd, state_g, state_l, t_l,
    batches, eps_g, eps_l, lr, lr_local, b1, b2, totals, elbo,
):
    """Run ``batches.shape[0]`` steps; step ``s`` uses the groups
    ``batches[s]`` (sorted, ``-1`` padding) and the draws ``eps_g[s]``,
    ``eps_l[s]``.  Updates the variational parameters and Adam's state in
    place; ``state_g`` is ``(3, n_params)`` (first moments, second moments,
    step count in ``[2, 0]``), ``state_l`` ``(4, G, n_local)`` (moments of
    the means, then of the log sds) and ``t_l`` each group's step count;
    ``lr`` is the global parameters' learning rate, ``lr_local`` the
    per-group ones'.
    ``totals[0]`` is the sum of ``local_log_sd`` (kept up to date here);
    ``elbo[s]`` the step's ELBO estimate (NaN: a failed point, no step).
    """
    G = starts.size - 1
    P = player.size
    n_g = mean.size
    lr_off = offdiag_lr_factor(n_g)
    n_local = local_mean.shape[1]
    prior_sd, const, noise_scale = floats[0], floats[1], floats[2]
    sd_scale = floats[3:]
    n_feat = XT.shape[0]
    L = np.zeros((n_g, n_g))
    xg = np.empty(n_g)
    g_glob = np.empty(n_g)
    g_tri = np.empty(tri.size)
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    for s in range(batches.shape[0]):
        B = 0
        n_rows = 0
        while B < batches.shape[1] and batches[s, B] >= 0:
            g = batches[s, B]
            n_rows += starts[g + 1] - starts[g]
            B += 1
        scale = G / B
        # the global draw
        k = 0
        for i in range(n_g):
            for j in range(i + 1):
                L[i, j] = math.exp(tri[k]) if i == j else tri[k]
                k += 1
        for i in range(n_g):
            acc = mean[i]
            for j in range(i + 1):
                acc += L[i, j] * eps_g[s, j]
            xg[i] = acc
        # the batch: its point and rows
        nb_noise = B if group_noise else n_noise
        m0 = n_sd + nb_noise
        x = np.empty(m0 + P + B * P)
        gsd = n_sd + (0 if group_noise else n_noise)  # global coordinates before mu
        for i in range(gsd):
            x[i] = xg[i]
        for p in range(P):
            x[m0 + p] = xg[gsd + p]
        XT_b = np.empty((n_feat, n_rows))
        y_b = np.empty(n_rows)
        w_b = np.empty(n_rows)
        starts_b = np.empty(B + 1, dtype=np.int64)
        starts_b[0] = 0
        r = 0
        for j in range(B):
            g = batches[s, j]
            for q in range(n_local):
                value = local_mean[g, q] + math.exp(local_log_sd[g, q]) * eps_l[s, j, q]
                if group_noise and q == 0:
                    x[n_sd + j] = value
                else:
                    x[m0 + P + j * P + q - (n_local - P)] = value
            for i in range(starts[g], starts[g + 1]):
                for f in range(n_feat):
                    XT_b[f, r] = XT[f, i]
                y_b[r] = y[i]
                w_b[r] = w[i] * scale
                r += 1
            starts_b[j + 1] = r
        grad = np.zeros(x.size)
        logp = hierarchical_logp_grad(
            x, XT_b, y_b, w_b, starts_b, layout, act, player, prior_sd, sd_scale,
            nb_noise, noise_scale, const, grad,
        )
        # the kernel weighted the rows by G / B; the groups' own priors too
        for j in range(B):
            for p in range(P):
                rv = x[m0 + P + j * P + p]
                logp -= (scale - 1.0) * 0.5 * rv * rv
                grad[m0 + P + j * P + p] -= (scale - 1.0) * rv
            if group_noise:
                u = x[n_sd + j]
                r2 = math.exp(2.0 * u) / (noise_scale * noise_scale)
                logp += (scale - 1.0) * (u - 0.5 * r2)
                grad[n_sd + j] += (scale - 1.0) * (1.0 - r2)
        finite = math.isfinite(logp)
        for i in range(grad.size):
            finite = finite and math.isfinite(grad[i])
        if not finite:
            elbo[s] = np.nan
            continue
        # globals: the mean, then the Cholesky parameters
        for i in range(gsd):
            g_glob[i] = grad[i]
        for p in range(P):
            g_glob[gsd + p] = grad[m0 + p]
        log_det = 0.0
        k = 0
        for i in range(n_g):
            for j in range(i + 1):
                if i == j:
                    g_tri[k] = g_glob[i] * eps_g[s, i] * L[i, i] + 1.0
                    log_det += tri[k]
                else:
                    g_tri[k] = g_glob[i] * eps_g[s, j]
                k += 1
        elbo[s] = logp + log_det + totals[0] + (n_g + G * n_local) * (0.5 + half_log_2pi)
        state_g[2, 0] += 1.0
        t = state_g[2, 0]
        for i in range(n_g):
            mean[i], state_g[0, i], state_g[1, i] = _adam(
                mean[i], g_glob[i], state_g[0, i], state_g[1, i], t, lr, b1, b2
            )
        k = 0
        for i in range(n_g):
            for j in range(i + 1):
                c = n_g + k
                tri[k], state_g[0, c], state_g[1, c] = _adam(
                    tri[k], g_tri[k], state_g[0, c], state_g[1, c], t,
                    lr if i == j else lr * lr_off, b1, b2,
                )
                if i == j:  # the diagonal's log stays in range
                    tri[k] = min(max(tri[k], _LOG_SD_RANGE[0]), _LOG_SD_RANGE[1])
                k += 1
        # each batch group: its own (unscaled) gradient
        for j in range(B):
            g = batches[s, j]
            t_l[g] += 1.0
            tg = t_l[g]
            for q in range(n_local):
                if group_noise and q == 0:
                    gq = grad[n_sd + j] / scale
                else:
                    gq = grad[m0 + P + j * P + q - (n_local - P)] / scale
                sd = math.exp(local_log_sd[g, q])
                g_log_sd = gq * eps_l[s, j, q] * sd + 1.0
                local_mean[g, q], state_l[0, g, q], state_l[1, g, q] = _adam(
                    local_mean[g, q], gq, state_l[0, g, q], state_l[1, g, q], tg, lr_local, b1,
                    b2,
                )
                new, state_l[2, g, q], state_l[3, g, q] = _adam(
                    local_log_sd[g, q], g_log_sd, state_l[2, g, q], state_l[3, g, q], tg,
                    lr_local, b1, b2,
                )
                new = min(max(new, _LOG_SD_RANGE[0]), _LOG_SD_RANGE[1])
                totals[0] += new - local_log_sd[g, q]
                local_log_sd[g, q] = new
    return 0
