"""The hierarchical model sampled in the group *average* weights (session 21).

Session 20 found the drift of the default seed-data chains in the group
means of the weights (``w0_mu``, ``w1_mu``: ESS 1-6 in 500 draws), and a
dense preconditioner on the globals alone not helping: the slow direction
couples the group means with the per-group offsets.  The non-centred model
``theta_g = mu + sd * raw_g`` has such a direction by construction: moving
``mu`` by ``d`` and every group's ``raw_g`` by ``-d / sd`` leaves every
group's weights, so the likelihood, unchanged; only the priors hold it.

This probe samples the *same* model in other coordinates: ``m = mu + sd *
mean_g(raw_g)``, the average of the groups' weights, in place of ``mu``.
Then ``theta_g = m + sd * (raw_g - mean(raw))``: the likelihood pins ``m``
and the mean of the offsets is left to its prior.  The change of variables
``(mu, raw) -> (m, raw)`` is a shift of ``mu`` given ``raw`` and ``sd``, so
its Jacobian is 1 and the posterior is exactly the package's; only NUTS's
geometry differs.  The callbacks wrap the package's kernel (chain rule on
its gradient) and write the package's variables, so stacking, diagnostics
and the warning are the package's.

``python -m benchmarks.probe_group_average DATA SEEDS ['{"param": value}']``:
DATA ``seed`` (the post's data) or a set of
:func:`benchmarks.bench_defaults.datasets`; one JSON line per fit, the reparameterised
model (``"m"``) and the package's (``"mu"``) alternately (wall seconds, test accuracy and log loss, stacking weights,
within-mode R-hat, min ESS, divergences, the warning).
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
from numba import carray, cfunc, njit

from skhbnn.kernels import abi
from skhbnn.kernels.cfuncs import _void
from skhbnn.kernels.density import finite_status

from ._wrapped import _EXPAND_SIG, _LOGP_SIG, draws_idata, model_logp, wrapped_model


@njit
def shift(v, m0, P, G, player, sign):
    """``mu`` from ``m`` (``sign = -1``: the package's coordinates from the
    probe's) or ``m`` from ``mu`` (``sign = 1``): ``v[mu] + sign * sd *
    mean_g(raw_g)``, the rest of ``v`` as it is."""
    out = v.copy()
    for p in range(P):
        s = 0.0
        for g in range(G):
            s += v[m0 + P + g * P + p]
        out[m0 + p] = v[m0 + p] + sign * math.exp(v[player[p]]) * s / G
    return out


@njit
def _sizes(h):
    P, G, n_sd, n_noise = h[abi.P], h[abi.H_GROUPS], h[abi.H_NSD], h[abi.N_NOISE]
    return P, G, n_sd + n_noise, carray(_void(h[abi.H_PLAYER]), (P,), np.int64)


@cfunc(_LOGP_SIG, nopython=True)
def average_logp(dim, y_, out_, logp_, user_data):
    h = carray(user_data, (abi.HEADER_SIZE,), np.int64)
    P, G, m0, player = _sizes(h)
    yv = carray(y_, (dim,))
    x = shift(yv, m0, P, G, player, -1.0)
    gx = np.empty(dim)
    lp = carray(logp_, (1,))
    lp[0] = model_logp(h, x, gx)
    grad = carray(out_, (dim,))
    for i in range(dim):
        grad[i] = gx[i]
    # mu = m - sd * mean(raw): d/draw_g -= gmu * sd / G, d/dlog sd -= gmu * sd * mean(raw)
    for p in range(P):
        sd = math.exp(yv[player[p]])
        gmu = gx[m0 + p]
        s = 0.0
        for g in range(G):
            s += yv[m0 + P + g * P + p]
            grad[m0 + P + g * P + p] -= gmu * sd / G
        grad[player[p]] -= gmu * sd * s / G
    return finite_status(lp[0], grad)


@cfunc(_EXPAND_SIG, nopython=True)
def average_expand(dim, expanded, y_, out_, user_data):
    """``out = x``: the package's coordinates."""
    h = carray(user_data, (abi.HEADER_SIZE,), np.int64)
    P, G, m0, player = _sizes(h)
    x = shift(carray(y_, (dim,)), m0, P, G, player, -1.0)
    out = carray(out_, (expanded,))
    for i in range(dim):
        out[i] = x[i]
    return abi.OK


def to_probe(problem, x):
    """The probe's coordinates of the package's point ``x``."""
    h = problem.header
    P, G, m0 = int(h[abi.P]), int(h[abi.H_GROUPS]), int(h[abi.H_NSD]) + int(h[abi.N_NOISE])
    return shift(x, m0, P, G, problem.arrays[5], 1.0)


def probe_model(problem):
    """nutpie's model of ``problem`` in ``m``, chains started where the
    package's would start."""
    return wrapped_model(problem, average_logp, average_expand, problem.header, None,
                         lambda seed: to_probe(problem, problem.initial_point(seed)))


def sample_in_m(definition, data, settings):
    """A replacement for ``skhbnn.inference._sample_kernels``."""
    import nutpie

    problem = definition.build_kernel(*data)
    trace = nutpie.sample(probe_model(problem), save_warmup=False, **settings)
    return draws_idata(problem, definition, [trace])


_PACKAGE: dict = {}


def install():
    """Sample every hierarchical kernel fit of this process in ``m``."""
    from skhbnn import inference

    _PACKAGE.setdefault("sample", inference._sample_kernels)
    inference._sample_kernels = sample_in_m


def uninstall():
    """Back to the package's coordinates."""
    from skhbnn import inference

    if _PACKAGE:
        inference._sample_kernels = _PACKAGE["sample"]


def check():
    """On a small problem: the wrapped log density against the package's at
    the same point, the coordinates round-tripping, the wrapped gradient
    against finite differences (all three should print ~1e-8 or less)."""
    from skhbnn.datasets import make_rotated_moons
    from skhbnn.kernels.problem import _ptr
    from skhbnn.models import HierarchicalModel
    from skhbnn.network import NetworkSpec

    X, y, g = make_rotated_moons(n_groups=4, n_samples=20, random_state=0)
    spec = NetworkSpec(n_features=2, hidden_layer_sizes=(3, 2), n_outputs=1, use_bias=True)
    prob = HierarchicalModel(spec, n_groups=4).build_kernel(X, y.astype(float), g)

    def evaluate(v):
        v = np.ascontiguousarray(v)
        grad, logp = np.empty(v.size), np.empty(1)
        code = average_logp.ctypes(v.size, _ptr(v), _ptr(grad), _ptr(logp),
                                   prob.header.ctypes.data)
        return code, float(logp[0]), grad

    rng = np.random.default_rng(0)
    yv = rng.normal(size=prob.n_dim) * 0.5
    code, lp, grad = evaluate(yv)
    # the package's density at the same point of the model (Jacobian 1),
    # and the coordinates round-tripping
    h = prob.header
    m0 = int(h[abi.H_NSD]) + int(h[abi.N_NOISE])
    x = shift(yv, m0, int(h[abi.P]), int(h[abi.H_GROUPS]), prob.arrays[5], -1.0)
    print("|logp - package's|", abs(lp - prob.logp_grad(x)[0]),
          "round trip", float(np.max(np.abs(to_probe(prob, x) - yv))), flush=True)
    eps = 1e-6
    fd = np.empty_like(yv)
    for i in range(yv.size):
        e = np.zeros_like(yv)
        e[i] = eps
        fd[i] = (evaluate(yv + e)[1] - evaluate(yv - e)[1]) / (2 * eps)
    print("code", code, "max |grad - fd|", float(np.max(np.abs(grad - fd))), flush=True)


def main():
    from ._wrapped import fit_record, probe_data
    from .probe_chains import fit_timed

    which = sys.argv[1]
    seeds = [int(s) for s in sys.argv[2].split(",")]
    # fixed-length fits (session 21's max_draws off): the geometry is compared
    params = {"max_draws": None, **(json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})}
    X, X_te, y, y_te, g, g_te = probe_data(which)
    small = g < 3
    for coords in ("m", "mu"):  # compile and load everything before the timed fits
        (install if coords == "m" else uninstall)()
        fit_timed(X[small], y[small], g[small], 0, dict(draws=20, tune=20))
    runs = [(seed, coords) for seed in seeds for coords in ("m", "mu")]
    for seed, coords in runs:
        (install if coords == "m" else uninstall)()
        clf, t, warned = fit_timed(X, y, g, seed, params)
        record = fit_record(clf, t, warned, X_te, y_te, g_te)
        print(json.dumps(dict(data=which, coords=coords, seed=seed, **record)), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check()
    else:
        main()
