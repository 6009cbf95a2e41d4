"""The C callbacks nutpie calls: log density + gradient, and expand.

Imported lazily by :mod:`skhbnn.fast_nuts`: decorating a ``cfunc`` compiles
it, or loads it from numba's on-disk cache (``cache=True``; nothing here
refers to data known only at run time, which is what makes them cacheable).
Every fit's data and layout arrive through the int64 header whose address is
the ``user_data`` argument (its slots are the constants of
:mod:`skhbnn.fast_nuts`; numba compiles them in as literals).

numba invalidates a cached function by its own source file only: after
editing :mod:`skhbnn.density`, delete ``skhbnn/__pycache__/*.nb[ci]`` (or
touch this file), or these callbacks keep the old kernels.

Return codes, as nutpie's own callbacks for PyMC models return them: 0
success, -1 a dimension that does not match the header, 3 a non-finite
gradient, 4 a non-finite log density.  nutpie treats 3 and 4 as a failed
point (a divergence); returning 0 with an infinite or NaN value instead sends
NaNs into the step-size and mass-matrix adaptation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import carray, cfunc, types
from numba.core import cgutils
from numba.extending import intrinsic

from .density import finite_status as _status
from .density import flat_logp_grad, hierarchical_logp_grad
from .fast_nuts import (
    _ACT,
    _F_EXPANDED,
    _F_FLOATS,
    _F_L,
    _F_LN,
    _F_MEAN,
    _F_SCALE,
    _H_EXPANDED,
    _H_FLOATS,
    _H_GROUPS,
    _H_NSEG,
    _H_PLAYER,
    _H_SEGMENTS,
    _H_STARTS,
    _HEADER_SIZE,
    _LAYOUT,
    _N_FEATURES,
    _N_LAYERS,
    _N_ROWS,
    _XT,
    _Y,
    _P,
)

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
    h = carray(user_data, (_HEADER_SIZE,), np.int64)
    P = h[_P]
    if dim != P:
        return -1
    n, n_features, n_layers, Ln = h[_N_ROWS], h[_N_FEATURES], h[_N_LAYERS], h[_F_LN]
    lp = carray(logp_, (1,))
    lp[0] = flat_logp_grad(
        carray(x_, (P,)),
        carray(_void(h[_XT]), (n_features, n), np.float64),
        carray(_void(h[_Y]), (n,), np.int64),
        carray(_void(h[_LAYOUT]), (n_layers, 4), np.int64),
        h[_ACT],
        carray(_void(h[_F_MEAN]), (P,), np.float64),
        carray(_void(h[_F_SCALE]), (P,), np.float64),
        carray(_void(h[_F_L]), (Ln, Ln), np.float64),
        carray(_void(h[_F_FLOATS]), (1,), np.float64)[0],
        carray(out_, (P,)),
    )
    return _status(lp[0], carray(out_, (P,)))


@cfunc(_EXPAND_SIG, cache=True, nopython=True)
def flat_expand(dim, expanded, x_, out_, user_data):
    """``out = (z, theta)``: the raw arrays, then the weights."""
    h = carray(user_data, (_HEADER_SIZE,), np.int64)
    P, Ln = h[_P], h[_F_LN]
    if dim != P or expanded != h[_F_EXPANDED]:
        return -1
    x = carray(x_, (P,))
    out = carray(out_, (expanded,))
    mean = carray(_void(h[_F_MEAN]), (P,), np.float64)
    scale = carray(_void(h[_F_SCALE]), (P,), np.float64)
    L = carray(_void(h[_F_L]), (Ln, Ln), np.float64)
    for p in range(P):
        out[p] = x[p]
        v = mean[p]
        if Ln > 0:
            for q in range(P):
                v += L[p, q] * x[q]
        else:
            v += scale[p] * x[p]
        out[P + p] = v
    return 0


@cfunc(_LOGP_SIG, cache=True, nopython=True)
def hierarchical_logp(dim, x_, out_, logp_, user_data):
    h = carray(user_data, (_HEADER_SIZE,), np.int64)
    n, n_features, n_layers = h[_N_ROWS], h[_N_FEATURES], h[_N_LAYERS]
    P, G = h[_P], h[_H_GROUPS]
    if dim != n_layers + P + G * P:
        return -1
    floats = carray(_void(h[_H_FLOATS]), (3,), np.float64)
    lp = carray(logp_, (1,))
    lp[0] = hierarchical_logp_grad(
        carray(x_, (dim,)),
        carray(_void(h[_XT]), (n_features, n), np.float64),
        carray(_void(h[_Y]), (n,), np.int64),
        carray(_void(h[_H_STARTS]), (G + 1,), np.int64),
        carray(_void(h[_LAYOUT]), (n_layers, 4), np.int64),
        h[_ACT],
        carray(_void(h[_H_PLAYER]), (P,), np.int64),
        floats[0],
        floats[1],
        floats[2],
        carray(out_, (dim,)),
    )
    return _status(lp[0], carray(out_, (dim,)))


@cfunc(_EXPAND_SIG, cache=True, nopython=True)
def hierarchical_expand(dim, expanded, x_, out_, user_data):
    """Per parameter array its ``mu`` and ``raw``, then the sds, then the
    per-group weights ``mu + sd * raw`` (the PyMC model's order)."""
    h = carray(user_data, (_HEADER_SIZE,), np.int64)
    n_layers, P, G, n_seg = h[_N_LAYERS], h[_P], h[_H_GROUPS], h[_H_NSEG]
    if dim != n_layers + P + G * P or expanded != h[_H_EXPANDED]:
        return -1
    x = carray(x_, (dim,))
    out = carray(out_, (expanded,))
    player = carray(_void(h[_H_PLAYER]), (P,), np.int64)
    segments = carray(_void(h[_H_SEGMENTS]), (n_seg, 2), np.int64)
    raw0 = n_layers + P
    k = 0
    for s in range(n_seg):
        o, size = segments[s, 0], segments[s, 1]
        for j in range(size):
            out[k] = x[n_layers + o + j]
            k += 1
        for g in range(G):
            for j in range(size):
                out[k] = x[raw0 + g * P + o + j]
                k += 1
    for layer in range(n_layers):
        out[k] = math.exp(x[layer])
        k += 1
    for s in range(n_seg):
        o, size = segments[s, 0], segments[s, 1]
        for g in range(G):
            for j in range(size):
                p = o + j
                out[k] = x[n_layers + p] + math.exp(x[player[p]]) * x[raw0 + g * P + p]
                k += 1
    return 0
