"""The C callbacks nutpie calls: log density + gradient, and expand.

Loaded by :func:`skhbnn.kernels.problem.callbacks`: decorating a ``cfunc``
compiles it, or loads it from numba's on-disk cache (``cache=True``; nothing
here refers to data known only at run time, which is what makes them
cacheable).  Every fit's data and layout arrive through the int64 header whose
address is the ``user_data`` argument; its slots, the return codes and the
ABI stamp are the constants of :mod:`skhbnn.kernels.abi`, which numba compiles
in as literals.  Every callback first compares the header's stamp with the one
it was compiled with and returns ``STALE`` if they differ (a cache written
before the kernels or the slot table changed), so a stale cache can never
read a header with the wrong layout.

Return codes, as nutpie's own callbacks for PyMC models return them: 0
success, 3 a non-finite gradient, 4 a non-finite log density (nutpie treats
3 and 4 as a failed point, a divergence; returning 0 with an infinite or NaN
value instead sends NaNs into the step-size and mass-matrix adaptation);
and skhbnn's hard errors: -1 a dimension that does not match the header, -2
a stale stamp.
"""

from __future__ import annotations

import math

import numpy as np
from numba import carray, cfunc, types
from numba.core import cgutils
from numba.extending import intrinsic

from .abi import (
    ABI_STAMP,
    ACT,
    F_EXPANDED,
    F_FLOATS,
    F_L,
    F_LN,
    F_MEAN,
    F_MIX_INVSD,
    F_MIX_MEAN,
    F_MIX_NORM,
    F_NMIX,
    F_SCALE,
    H_EXPANDED,
    H_FLOATS,
    H_GROUPS,
    H_NSD,
    H_NSEG,
    H_PLAYER,
    H_SEGMENTS,
    H_STARTS,
    HEADER_SIZE,
    LAYOUT,
    N_FEATURES,
    N_LAYERS,
    N_NOISE,
    N_ROWS,
    OK,
    STALE,
    STAMP,
    WRONG_SIZE,
    W,
    XT,
    Y,
    P as SLOT_P,
)
from .density import finite_status as _status
from .density import flat_logp_grad, hierarchical_logp_grad
from .mixture import mixture_logp_grad

_LOGP_SIG = types.int64(
    types.uint64,
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.voidptr,
)
_EXPAND_SIG = types.int64(
    types.uint64,
    types.uint64,
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.voidptr,
)


@intrinsic
def _void(typingctx, address):
    """An int64 address as a ``void*`` (for ``carray``)."""
    sig = types.voidptr(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


@cfunc(_LOGP_SIG, cache=True, nopython=True)
def flat_logp(dim, x_, out_, logp_, user_data):
    h = carray(user_data, (HEADER_SIZE,), np.int64)
    if h[STAMP] != ABI_STAMP:
        return STALE
    P = h[SLOT_P]
    if dim != P + h[N_NOISE]:
        return WRONG_SIZE
    n, n_features, n_layers, Ln, S = h[N_ROWS], h[N_FEATURES], h[N_LAYERS], h[F_LN], h[F_NMIX]
    floats = carray(_void(h[F_FLOATS]), (2,), np.float64)
    lp = carray(logp_, (1,))
    x = carray(x_, (dim,))
    X_t = carray(_void(h[XT]), (n_features, n), np.float64)
    y = carray(_void(h[Y]), (n,), np.float64)
    rw = carray(_void(h[W]), (n,), np.float64)
    layout = carray(_void(h[LAYOUT]), (n_layers, 4), np.int64)
    grad = carray(out_, (dim,))
    if S > 0:  # a population prior
        lp[0] = mixture_logp_grad(
            x, X_t, y, rw, layout, h[ACT],
            carray(_void(h[F_MIX_MEAN]), (S, P), np.float64),
            carray(_void(h[F_MIX_INVSD]), (S, P), np.float64),
            carray(_void(h[F_MIX_NORM]), (S,), np.float64),
            floats[0], floats[1], grad,
        )
    else:
        lp[0] = flat_logp_grad(
            x, X_t, y, rw, layout, h[ACT],
            carray(_void(h[F_MEAN]), (P,), np.float64),
            carray(_void(h[F_SCALE]), (P,), np.float64),
            carray(_void(h[F_L]), (Ln, Ln), np.float64),
            floats[0], floats[1], grad,
        )
    return _status(lp[0], grad)


@cfunc(_EXPAND_SIG, cache=True, nopython=True)
def flat_expand(dim, expanded, x_, out_, user_data):
    """``out = (z, sigma, theta)``: the raw arrays, a regression's noise sd,
    then the weights (under a population prior ``z`` is ``theta``)."""
    h = carray(user_data, (HEADER_SIZE,), np.int64)
    if h[STAMP] != ABI_STAMP:
        return STALE
    P, Ln, n_noise = h[SLOT_P], h[F_LN], h[N_NOISE]
    if dim != P + n_noise or expanded != h[F_EXPANDED]:
        return WRONG_SIZE
    x = carray(x_, (dim,))
    out = carray(out_, (expanded,))
    mean = carray(_void(h[F_MEAN]), (P,), np.float64)
    scale = carray(_void(h[F_SCALE]), (P,), np.float64)
    L = carray(_void(h[F_L]), (Ln, Ln), np.float64)
    for k in range(n_noise):
        out[P + k] = math.exp(x[P + k])
    for p in range(P):
        out[p] = x[p]
        v = mean[p]
        if h[F_NMIX] > 0:
            v = x[p]
        elif Ln > 0:
            for q in range(P):
                v += L[p, q] * x[q]
        else:
            v += scale[p] * x[p]
        out[P + n_noise + p] = v
    return OK


@cfunc(_LOGP_SIG, cache=True, nopython=True)
def hierarchical_logp(dim, x_, out_, logp_, user_data):
    h = carray(user_data, (HEADER_SIZE,), np.int64)
    if h[STAMP] != ABI_STAMP:
        return STALE
    n, n_features, n_layers = h[N_ROWS], h[N_FEATURES], h[N_LAYERS]
    P, G, n_sd, n_noise = h[SLOT_P], h[H_GROUPS], h[H_NSD], h[N_NOISE]
    if dim != n_sd + n_noise + P + G * P:
        return WRONG_SIZE
    floats = carray(_void(h[H_FLOATS]), (3 + n_sd,), np.float64)
    lp = carray(logp_, (1,))
    lp[0] = hierarchical_logp_grad(
        carray(x_, (dim,)),
        carray(_void(h[XT]), (n_features, n), np.float64),
        carray(_void(h[Y]), (n,), np.float64),
        carray(_void(h[W]), (n,), np.float64),
        carray(_void(h[H_STARTS]), (G + 1,), np.int64),
        carray(_void(h[LAYOUT]), (n_layers, 4), np.int64),
        h[ACT],
        carray(_void(h[H_PLAYER]), (P,), np.int64),
        floats[0],
        floats[3:],
        n_noise,
        floats[2],
        floats[1],
        carray(out_, (dim,)),
    )
    return _status(lp[0], carray(out_, (dim,)))


@cfunc(_EXPAND_SIG, cache=True, nopython=True)
def hierarchical_expand(dim, expanded, x_, out_, user_data):
    """The group sds, a regression's noise sds, then per parameter array its
    ``mu`` and ``raw``, then the per-group weights ``mu + sd * raw``: the
    order of the model's variable table
    (:class:`skhbnn.models.HierarchicalModel`).  With ``expanded == dim``
    only the free variables (everything before the weights): what NUTS
    stores for every warm-up and kept draw, the weights being computed
    afterwards for the kept draws only."""
    h = carray(user_data, (HEADER_SIZE,), np.int64)
    if h[STAMP] != ABI_STAMP:
        return STALE
    n_sd, P, G, n_seg, n_noise = h[H_NSD], h[SLOT_P], h[H_GROUPS], h[H_NSEG], h[N_NOISE]
    m0 = n_sd + n_noise  # where mu starts
    if dim != m0 + P + G * P or (expanded != h[H_EXPANDED] and expanded != dim):
        return WRONG_SIZE
    x = carray(x_, (dim,))
    out = carray(out_, (expanded,))
    player = carray(_void(h[H_PLAYER]), (P,), np.int64)
    segments = carray(_void(h[H_SEGMENTS]), (n_seg, 2), np.int64)
    raw0 = m0 + P
    k = 0
    for j in range(m0):
        out[k] = math.exp(x[j])
        k += 1
    for s in range(n_seg):
        o, size = segments[s, 0], segments[s, 1]
        for j in range(size):
            out[k] = x[m0 + o + j]
            k += 1
        for g in range(G):
            for j in range(size):
                out[k] = x[raw0 + g * P + o + j]
                k += 1
    if expanded == dim:
        return OK
    for s in range(n_seg):
        o, size = segments[s, 0], segments[s, 1]
        for g in range(G):
            for j in range(size):
                p = o + j
                out[k] = x[m0 + p] + math.exp(x[player[p]]) * x[raw0 + g * P + p]
                k += 1
    return OK
