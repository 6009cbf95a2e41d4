"""A prototype family for the 6-class gap: per-group blocks that depend on the sds.

``PROBE_GROUPS=100 python -m benchmarks.probe_svi_vip [LAMBDA ...]`` fits the
first groups of the 10,000 x 6 data of ``python -m benchmarks scale`` with
``HierarchicalBayesianMLPClassifier(inference="svi")`` at the defaults, its
restarts run by the loop below instead of :func:`skhbnn.svi.fit_one`: full
batch, in numpy, on the same kernel (``problem.evaluate``), the same Adam,
off-diagonal rate and plateau rule.  The family is that of Gorinova, Moore &
Hoffman (2020, "Automatic reparameterisation of probabilistic programs"):
each per-group coordinate is ``t = raw * sd ** lam``, Gaussian and diagonal
per group (``lam = 0``: today's non-centred family; ``lam = 1``: centred, the
group's offset ``sd * raw`` itself), the globals full-rank as today.
``LAMBDA`` is a number (fixed for every coordinate) or ``learn`` (one
``lam`` per coordinate, shared by the groups, optimised with the rest, from
0.5).  Prints accuracy and log loss on the fitted groups' test rows, the
posterior mean of each group sd, the restarts' last ELBO, the Pareto k-hat
and each restart's mean ``lam``.

A probe of a family, not the package's path: the minibatch kernel
(:mod:`skhbnn.kernels.svi_step`) has no such family.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from skhbnn import svi
from skhbnn.kernels.svi_step import offdiag_lr_factor

from ._common import timed
from .bench_scale import SUBSET, _metrics, grouped_data

_fit_one, _draw, _log_q = svi.fit_one, svi.draw, svi.log_q
LAMS: list = []  # each restart's mean lam, as fitted
SETTING = ["learn"]  # the lam being fitted: a number or "learn" (set by main)


@dataclass
class VipFit(svi.Fit):
    a: np.ndarray = None  # lam = sigmoid(a), one per per-group coordinate
    player: np.ndarray = None
    n_sd: int = 0

    @property
    def lam(self):
        return 1.0 / (1.0 + np.exp(-self.a))


def vip_fit_one(problem, seed, *, max_epochs, tol, n_rows, x0=None, layout=None):
    start = time.perf_counter()
    layout = layout or svi._Layout(problem)
    if not layout.n_groups or layout.group_noise:
        return _fit_one(problem, seed, max_epochs=max_epochs, tol=tol, n_rows=n_rows,
                        x0=x0, layout=layout)
    rng = np.random.default_rng(seed)
    x0 = problem.initial_point(seed) if x0 is None else np.asarray(x0, dtype=float)
    glob, local, G, n_sd = layout.glob, layout.local, layout.n_groups, layout.n_sd
    player = np.asarray(problem.arrays[5], dtype=np.int64)
    n_g, P = glob.size, local.shape[1]
    tril = np.tril_indices(n_g)
    on_diag = tril[0] == tril[1]
    setting = SETTING[0]
    learn = setting == "learn"
    a0 = 0.0 if learn else math.log(max(float(setting), 1e-9) / max(1 - float(setting), 1e-9))
    tri = np.zeros(tril[0].size)
    tri[on_diag] = math.log(svi._INIT_SD)
    fit = VipFit(mean=x0[glob].copy(), tri=tri, local_mean=np.zeros((G, P)),
                 local_log_sd=np.full((G, P), math.log(svi._LOCAL_INIT_SD)),
                 a=np.full(P, a0), player=player, n_sd=n_sd)
    u0 = fit.mean[:n_sd][player]
    fit.local_mean[:] = np.nan_to_num(x0[local], nan=0.0) * np.exp(fit.lam * u0)
    params = [fit.mean, fit.tri, fit.local_mean, fit.local_log_sd, fit.a]
    opts = [svi._Adam(p.shape) for p in params]
    rates = [1.0, np.where(on_diag, 1.0, offdiag_lr_factor(n_g)), 1.0, 1.0, 1.0 if learn else 0.0]
    x = np.empty(problem.n_dim)
    schedule = svi.Schedule(tol, n_rows)
    const = (n_g + G * P) * (0.5 + svi._HALF_LOG_2PI)
    for _ in range(max_epochs):
        elbos = []
        for _ in range(svi._MIN_STEPS_PER_EPOCH):
            L = fit.chol
            eps_g = rng.standard_normal(n_g)
            eps_l = rng.standard_normal((G, P))
            xg = fit.mean + L @ eps_g
            u = xg[:n_sd][player]  # each coordinate's log sd
            lam = fit.lam
            s_l = np.exp(fit.local_log_sd)
            tv = fit.local_mean + s_l * eps_l
            factor = np.exp(-lam * u)
            raw = tv * factor
            x[glob], x[local] = xg, raw
            code, logp, grad = problem.evaluate(x)
            if code != 0:
                elbos.append(np.nan)
                continue
            g_raw = grad[local]
            log_j = -G * float(np.sum(lam * u))
            g_glob = grad[glob].copy()
            per_p = -np.sum(g_raw * raw, axis=0)  # d/d u of raw's dependence, per unit lam
            g_glob[:n_sd] += np.bincount(player, weights=lam * per_p - G * lam, minlength=n_sd)
            g_lam = u * per_p - G * u
            g_t = g_raw * factor
            elbos.append(logp + log_j + float(np.sum(fit.tri[on_diag]))
                         + float(np.sum(fit.local_log_sd)) + const)
            g_tri = np.outer(g_glob, eps_g)[tril]
            g_tri[on_diag] = g_tri[on_diag] * np.diag(L) + 1.0
            grads = [g_glob, g_tri, g_t, g_t * eps_l * s_l + 1.0, g_lam * lam * (1 - lam)]
            for p, g, opt, r in zip(params, grads, opts, rates):
                opt.step(p, g, schedule.lr * r)
            fit.tri[on_diag] = np.clip(fit.tri[on_diag], *svi._LOG_SD_RANGE)
            np.clip(fit.local_log_sd, *svi._LOG_SD_RANGE, out=fit.local_log_sd)
        fit.n_steps += int(np.sum(np.isfinite(elbos)))
        fit.elbo.append(float(np.nanmean(elbos)) if np.isfinite(elbos).any() else np.nan)
        if schedule.stops(fit.elbo):
            fit.converged = True
            break
    fit.seconds = time.perf_counter() - start
    LAMS.append(float(np.mean(fit.lam)))
    return fit


def vip_draw(problem, fit, n_draws, rng, layout=None):
    if not isinstance(fit, VipFit):
        return _draw(problem, fit, n_draws, rng, layout)
    layout = layout or svi._Layout(problem)
    x = np.empty((n_draws, problem.n_dim))
    eps = rng.standard_normal((n_draws, layout.glob.size))
    xg = fit.mean + eps @ fit.chol.T
    x[:, layout.glob] = xg
    eps_l = rng.standard_normal((n_draws, *layout.local.shape))
    u = xg[:, : fit.n_sd][:, fit.player]  # (n, P)
    tv = fit.local_mean + np.exp(fit.local_log_sd) * eps_l
    x[:, layout.local] = tv * np.exp(-fit.lam * u)[:, None, :]
    return x


def vip_log_q(problem, fit, x, layout=None):
    """The density of the raw coordinates: that of ``t`` at ``raw * sd**lam``
    times the Jacobian ``sd ** lam`` per coordinate."""
    if not isinstance(fit, VipFit):
        return _log_q(problem, fit, x, layout)
    from scipy.linalg import solve_triangular

    layout = layout or svi._Layout(problem)
    z = solve_triangular(fit.chol, (x[:, layout.glob] - fit.mean).T, lower=True).T
    out = -0.5 * np.sum(z * z, axis=1) - np.sum(np.log(np.diag(fit.chol)))
    u = x[:, layout.glob][:, : fit.n_sd][:, fit.player]
    lu = (fit.lam * u)[:, None, :]
    tv = x[:, layout.local] * np.exp(lu)
    zl = (tv - fit.local_mean) / np.exp(fit.local_log_sd)
    out += (-0.5 * np.sum(zl * zl, axis=(1, 2)) - np.sum(fit.local_log_sd)
            + layout.n_groups * np.sum(fit.lam * u, axis=1))
    n = layout.glob.size + layout.local.size
    return out - 0.5 * n * math.log(2.0 * math.pi)


def main(settings) -> None:
    from skhbnn import HierarchicalBayesianMLPClassifier

    X, X_te, y, y_te, g, g_te = grouped_data(10_000, 6)
    n = int(os.environ.get("PROBE_GROUPS", SUBSET))
    keep, keep_te = g < n, g_te < n
    svi.fit_one, svi.draw, svi.log_q = vip_fit_one, vip_draw, vip_log_q
    for setting in settings or ["learn"]:
        SETTING[0] = setting
        LAMS.clear()
        timing: dict = {}
        with timed(timing, "fit"):
            est = HierarchicalBayesianMLPClassifier(inference="svi", random_state=0,
                                                    progressbar=False)
            est.fit(X[keep], y[keep], groups=g[keep])
        r = _metrics(y_te[keep_te], est.predict_proba(X_te[keep_te], groups=g_te[keep_te]))
        sds = {k: round(float(np.mean(v)), 3) for k, v in est.posterior_draws_.items()
               if k.startswith("sd")}
        print(f"lam={setting:<8} {100 * r['accuracy']:.2f}% / {r['log_loss']:.4f}  "
              f"fit {timing['fit']:.0f} s  sds {sds}  "
              f"ELBO {np.round(est.diagnostics_['final_elbo'], 0).tolist()}  "
              f"k-hat {est.diagnostics_['max_pareto_k']:.1f}  "
              f"mean lam {np.round(LAMS, 2).tolist()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
