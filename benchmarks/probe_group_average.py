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
from numba import carray, cfunc, njit, types

from skhbnn.kernels import abi
from skhbnn.kernels.cfuncs import _void
from skhbnn.kernels.density import finite_status, hierarchical_logp_grad

_LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double),
                        types.CPointer(types.double), types.CPointer(types.double),
                        types.voidptr)
_EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                          types.CPointer(types.double), types.voidptr)


@njit
def to_model(yv, m0, P, G, player):
    """The package's coordinates ``x`` (``mu``) from the probe's ``y`` (``m``)."""
    x = yv.copy()
    for p in range(P):
        s = 0.0
        for g in range(G):
            s += yv[m0 + P + g * P + p]
        x[m0 + p] = yv[m0 + p] - math.exp(yv[player[p]]) * s / G
    return x


@njit
def to_probe(x, m0, P, G, player):
    y = x.copy()
    for p in range(P):
        s = 0.0
        for g in range(G):
            s += x[m0 + P + g * P + p]
        y[m0 + p] = x[m0 + p] + math.exp(x[player[p]]) * s / G
    return y


@njit
def model_logp(h, x, gx):
    """The package's hierarchical log density at ``x`` (its gradient into
    ``gx``) for the problem whose header is ``h``."""
    n, n_features, n_layers = h[abi.N_ROWS], h[abi.N_FEATURES], h[abi.N_LAYERS]
    P, G, n_sd, n_noise = h[abi.P], h[abi.H_GROUPS], h[abi.H_NSD], h[abi.N_NOISE]
    floats = carray(_void(h[abi.H_FLOATS]), (3 + n_sd,), np.float64)
    return hierarchical_logp_grad(
        x, carray(_void(h[abi.XT]), (n_features, n), np.float64),
        carray(_void(h[abi.Y]), (n,), np.float64), carray(_void(h[abi.W]), (n,), np.float64),
        carray(_void(h[abi.H_STARTS]), (G + 1,), np.int64),
        carray(_void(h[abi.LAYOUT]), (n_layers, 4), np.int64), h[abi.ACT],
        carray(_void(h[abi.H_PLAYER]), (P,), np.int64), floats[0], floats[3:], n_noise,
        floats[2], floats[1], gx,
    )


@cfunc(_LOGP_SIG, nopython=True)
def average_logp(dim, y_, out_, logp_, user_data):
    h = carray(user_data, (abi.HEADER_SIZE,), np.int64)
    P, G, n_sd, n_noise = h[abi.P], h[abi.H_GROUPS], h[abi.H_NSD], h[abi.N_NOISE]
    m0 = n_sd + n_noise
    player = carray(_void(h[abi.H_PLAYER]), (P,), np.int64)
    yv = carray(y_, (dim,))
    x = to_model(yv, m0, P, G, player)
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
    """The free variables in the package's order (``expanded == dim``)."""
    h = carray(user_data, (abi.HEADER_SIZE,), np.int64)
    n_sd, P, G, n_seg, n_noise = h[abi.H_NSD], h[abi.P], h[abi.H_GROUPS], h[abi.H_NSEG], h[abi.N_NOISE]
    m0 = n_sd + n_noise
    player = carray(_void(h[abi.H_PLAYER]), (P,), np.int64)
    segments = carray(_void(h[abi.H_SEGMENTS]), (n_seg, 2), np.int64)
    x = to_model(carray(y_, (dim,)), m0, P, G, player)
    out = carray(out_, (expanded,))
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
                out[k] = x[m0 + P + g * P + o + j]
                k += 1
    return abi.OK


_SAVED: dict = {}


def uninstall():
    """Back to the package's coordinates."""
    from skhbnn.kernels import problem as problem_mod

    if _SAVED:
        problem_mod.callbacks = _SAVED["callbacks"]
        problem_mod.Problem.initial_point = _SAVED["initial_point"]


def install():
    """Sample every hierarchical kernel fit of this process in ``m``."""
    from skhbnn.kernels import problem as problem_mod

    uninstall()
    original = _SAVED.setdefault("callbacks", problem_mod.callbacks)
    original_initial = _SAVED.setdefault("initial_point", problem_mod.Problem.initial_point)

    def callbacks():
        table = dict(original())
        table["hierarchical"] = (average_logp, average_expand)
        return table

    def initial_point(self, seed):
        x = original_initial(self, seed)
        if self.kind != "hierarchical":
            return x
        h = self.header
        P, G, n_sd, n_noise = (int(h[abi.P]), int(h[abi.H_GROUPS]), int(h[abi.H_NSD]),
                               int(h[abi.N_NOISE]))
        player = carray_player(self)
        return to_probe(x, n_sd + n_noise, P, G, player)

    def carray_player(self):
        import ctypes

        P = int(self.header[abi.P])
        buf = (ctypes.c_int64 * P).from_address(int(self.header[abi.H_PLAYER]))
        return np.frombuffer(buf, dtype=np.int64).copy()

    problem_mod.callbacks = callbacks
    problem_mod.Problem.initial_point = initial_point


def check():
    """The wrapped gradient against finite differences, and the model's
    coordinates round-tripping (a small random problem)."""
    from skhbnn.datasets import make_rotated_moons
    from skhbnn.models import HierarchicalModel
    from skhbnn.network import NetworkSpec

    X, y, g = make_rotated_moons(n_groups=4, n_samples=20, random_state=0)
    install()
    spec = NetworkSpec(n_features=2, hidden_layer_sizes=(3, 2), n_outputs=1, use_bias=True)
    prob = HierarchicalModel(spec, n_groups=4).build_kernel(X, y.astype(float), g)
    rng = np.random.default_rng(0)
    yv = rng.normal(size=prob.n_dim) * 0.5
    code, lp, grad = prob.evaluate(yv)
    eps = 1e-6
    fd = np.empty_like(yv)
    for i in range(yv.size):
        e = np.zeros_like(yv)
        e[i] = eps
        fd[i] = (prob.evaluate(yv + e)[1] - prob.evaluate(yv - e)[1]) / (2 * eps)
    print("code", code, "max |grad - fd|", float(np.max(np.abs(grad - fd))), flush=True)


def main():
    from sklearn.metrics import log_loss

    from .probe_chains import fit_timed
    from .bench_defaults import datasets

    which = sys.argv[1]
    seeds = [int(s) for s in sys.argv[2].split(",")]
    params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    if which == "seed":
        from ._common import seed_data

        X, X_te, y, y_te, g, g_te = seed_data()
    else:
        X, X_te, y, y_te, g, g_te = datasets()[which]
    small = g < 3
    for coords in ("m", "mu"):  # compile and load everything before the timed fits
        (install if coords == "m" else uninstall)()
        fit_timed(X[small], y[small], g[small], 0, dict(draws=20, tune=20))
    runs = [(seed, coords) for seed in seeds for coords in ("m", "mu")]
    for seed, coords in runs:
        (install if coords == "m" else uninstall)()
        clf, t, warned = fit_timed(X, y, g, seed, params)
        proba = clf.predict_proba(X_te, groups=g_te)
        d = clf.diagnostics_
        w = clf.chain_weights_
        print(json.dumps(dict(
            data=which, coords=coords, seed=seed, t=round(t, 1),
            acc=round(float(np.mean(clf.classes_[proba.argmax(1)] == y_te)), 4),
            ll=round(log_loss(y_te, proba, labels=clf.classes_), 4),
            w=None if w is None else [round(float(v), 2) for v in w],
            rhat=round(d.get("within_mode_rhat", float("nan")), 3),
            ess=round(d.get("min_ess", float("nan"))), div=int(d.get("divergences") or 0),
            warned=warned,
        )), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check()
    else:
        main()
