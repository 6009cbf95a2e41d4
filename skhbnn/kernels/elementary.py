"""``exp`` and ``log`` in arithmetic that LLVM vectorises.

libm's ``exp``, ``log`` and ``log1p`` are a call per row, so a loop over the
rows that calls them runs one row at a time.  These are branch-free
arithmetic and integer bit operations, so the same loops run 8 rows per
instruction on AVX-512 (4 on AVX2).  The only fastmath flag is ``contract``:
a multiply and an add may become one FMA (one rounding); nothing is
reordered, so every process computes the same bits, vectorised or not,
compiled or loaded from numba's cache.  Accuracy against libm's is tested
(``tests/test_density.py``): within 1 ulp for ``exp``, ``log`` and ``log1p``.

Compiled into :mod:`skhbnn.kernels.density`'s kernels (``abi._SOURCES``
stamps this file; ``abi._DEPENDENT`` drops density's cached code when it
changes).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True, "fastmath": {"contract"}, "error_model": "numpy"}

# exp: Cody-Waite reduction z = n ln2 + r, |r| <= ln2 / 2, exp(r) by its
# Taylor series to r**13 (remainder below 4e-18), 2**n written into the
# exponent bits.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_EXP_COEFS = tuple(1.0 / math.factorial(k) for k in range(14))

# log: fdlibm's e_log.c, log(m) for m in [sqrt(2) / 2, sqrt(2)) from s = f / (2 + f)
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)
_SQRT2 = 1.4142135623730951
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000

# where callers clamp the argument of exp_nonpositive (inside its domain; exp
# of anything below is under 1e-304, nothing a likelihood term can tell apart)
EXP_FLOOR = -700.0


@njit(**_JIT)
def exp_nonpositive(z):
    """``exp(z)`` for ``-708 <= z <= 0``, within 1 ulp of libm's."""
    nf = math.floor(z * _LOG2E + 0.5)
    r = (z - nf * _LN2_HI) - nf * _LN2_LO
    p = _EXP_COEFS[13]
    for k in range(12, -1, -1):
        p = p * r + _EXP_COEFS[k]
    scale = np.int64((np.int64(nf) + 1023) << 52).view(np.float64)
    return p * scale


@njit(**_JIT)
def log_positive(u):
    """``log(u)`` for a positive, normal, finite ``u``: fdlibm's
    ``__ieee754_log``, ``u = 2**k m`` with ``m`` in ``[sqrt(2) / 2,
    sqrt(2))``, ``log(m)`` from ``s = (m - 1) / (m + 1)``; the exponent and
    mantissa are read from the bits, the branch is a select."""
    bits = np.float64(u).view(np.int64)
    k = (bits >> 52) - 1023
    m = np.int64((bits & _MANTISSA) | _ONE_BITS).view(np.float64)  # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    dk = float(k + 1 if big else k)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    t2 = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6])))
    hfsq = 0.5 * f * f
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + (t2 + t1)) + dk * _LN2_LO)) - f)


@njit(**_JIT)
def log1p_unit(e):
    """``log(1 + e)`` for ``0 <= e <= 1``: the log of ``u = 1 + e`` plus the
    rounding error of that sum, ``(e - (u - 1)) / u`` (exact to first order,
    so tiny ``e`` keep their relative accuracy)."""
    u = 1.0 + e
    return log_positive(u) + (e - (u - 1.0)) / u
