"""The flat model's log density and gradient under a population prior.

A :class:`~skhbnn.priors.PopulationPrior` is a mixture of diagonal Normals,
one per posterior draw of a hierarchical model; the unconstrained vector is
the weights themselves (a mixture has no non-centred form).  The network's
forward and backward pass are :mod:`skhbnn.kernels.density`'s; this module
adds the mixture's log-sum-exp and its gradient, the responsibilities' mix
of the components' gradients.  ``tests/test_kernel_properties.py`` checks
value and gradient against PyMC's ``logp``/``dlogp`` of the same model
(:func:`skhbnn.models.flat` writes the mixture as a ``pm.Potential``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .density import _JIT, _flat_loglik, _flat_noise


@njit(**_JIT)
def mixture_logp_grad(x, XT, y, rw, layout, act, means, inv_sd, norm, const, noise_scale,
                      grad):
    """Flat model under a population prior: ``x = theta`` (all weights,
    centred), a regression's ``log sigma`` last.  The prior is the mixture
    ``sum_s exp(norm[s]) prod_p N(theta_p; means[s, p], 1 / inv_sd[s, p])``
    (``norm[s]``: log weight and normaliser of component ``s``); its
    gradient is the responsibilities' mix of the components' gradients.
    Returns the log density; writes its gradient with respect to ``x``."""
    P = means.shape[1]
    S = means.shape[0]
    total = const
    value, sigma = _flat_noise(x, P, noise_scale, grad)
    total += value
    # log components, then log-sum-exp and responsibilities
    terms = np.empty(S)
    top = -np.inf
    for s in range(S):
        q = 0.0
        for p in range(P):
            z = (x[p] - means[s, p]) * inv_sd[s, p]
            q += z * z
        terms[s] = norm[s] - 0.5 * q
        top = max(top, terms[s])
    acc = 0.0
    for s in range(S):
        terms[s] = math.exp(terms[s] - top)
        acc += terms[s]
    total += top + math.log(acc)
    for p in range(P):
        grad[p] = 0.0
    for s in range(S):
        r = terms[s] / acc
        if r < 1e-300:
            continue
        for p in range(P):
            v = inv_sd[s, p]
            grad[p] -= r * (x[p] - means[s, p]) * v * v
    loglik, gtheta = _flat_loglik(x[:P], XT, y, rw, layout, act, sigma, grad)
    total += loglik
    for p in range(P):
        grad[p] += gtheta[p]
    return total
