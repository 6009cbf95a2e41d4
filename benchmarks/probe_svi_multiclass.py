"""Where SVI loses to NUTS on 6 classes: the optimisation or the family?

``python -m benchmarks.probe_svi_multiclass [VARIANT ...]``: the grouped data
of ``python -m benchmarks scale`` at 10,000 groups x 6 classes, its first 500
groups only (the groups NUTS is fitted on there: 52.50% / 1.2047 in session
11's run), fitted by ``HierarchicalBayesianMLPClassifier(inference="svi")``,
otherwise the defaults, with one setting of :mod:`skhbnn.svi` or
:mod:`skhbnn.variational` changed per variant:

* ``defaults``: as shipped;
* ``lr=X``, ``decays=N``, ``window=N``, ``init_sd=X``, ``local_init_sd=X``,
  ``local_lr=X`` (the per-group learning rate's factor), ``warm_tune=N``,
  ``warm_rows=N``, ``batch_rows=N``: that constant;
* ``chains=N``: that many restarts;
* ``nuts``: ``inference="nuts"`` instead (the reference on the same groups).

``PROBE_GROUPS=N`` fits the first ``N`` groups instead of 500 (NUTS on 100
groups takes minutes, on 500 about 25); with ``N`` above 500 the first 500
groups are scored too.

Prints accuracy and log loss on those groups' test rows, the fit's wall time,
the posterior mean of each group sd (``sd{l}`` weights, ``sd_b{l}`` biases),
the posterior sd of the group means within a chain (mean over coordinates),
and for SVI the restarts' last ELBO, epochs and stacking weights, the
quartiles of the per-group sds of the approximation, and the fit's stages.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from skhbnn import svi, variational

from ._common import timed
from .bench_scale import SUBSET, _metrics, grouped_data

_CONSTANTS = {
    "lr": (svi, "_LR", float), "decays": (svi, "_N_DECAYS", int),
    "window": (svi, "_WINDOW", int), "init_sd": (svi, "_INIT_SD", float),
    "local_init_sd": (svi, "_LOCAL_INIT_SD", float),
    "local_lr": (svi, "_LOCAL_LR_FACTOR", float),
    "batch_rows": (svi, "_BATCH_ROWS", int), "warm_tune": (variational, "_WARM_TUNE", int),
    "warm_rows": (variational, "_WARM_ROWS", int),
}


def run_variant(variant: str, data) -> dict:
    """Fit and score one variant (the module constants restored after)."""
    from skhbnn import HierarchicalBayesianMLPClassifier

    X, X_te, y, y_te, g, g_te = data
    params = {"inference": "nuts" if variant == "nuts" else "svi", "random_state": 0,
              "progressbar": False}
    saved = []
    for part in variant.split(",") if variant not in ("defaults", "nuts") else []:
        name, value = part.split("=")
        if name == "chains":
            params["chains"] = int(value)
            continue
        module, attr, cast = _CONSTANTS[name]
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, cast(value))
    timing: dict = {}
    fits: list = []
    fit_restarts = svi.fit_restarts

    def keep_fits(*args, **kwargs):  # the restarts' approximations, for their local sds
        fits.extend(fit_restarts(*args, **kwargs))
        return fits

    svi.fit_restarts = keep_fits
    try:
        with timed(timing, "fit"):
            est = HierarchicalBayesianMLPClassifier(**params).fit(X, y, groups=g)
    finally:
        svi.fit_restarts = fit_restarts
        for module, attr, value in saved:
            setattr(module, attr, value)
    proba = est.predict_proba(X_te, groups=g_te)
    first = g_te < SUBSET
    d, post = est.diagnostics_, est.posterior_draws_
    out = {
        **_metrics(y_te, proba), "fit": timing["fit"],
        # scored on the first 500 groups too (the NUTS reference's groups)
        "first": _metrics(y_te[first], proba[first]),
        "sds": {k: round(float(np.mean(v)), 3) for k, v in post.items() if k.startswith("sd")},
        # the spread of the group means within a chain / restart, averaged over coordinates
        "mu_sd": round(float(np.mean([np.mean(np.std(v, axis=1)) for k, v in post.items()
                                      if k.endswith("_mu")])), 3),
    }
    if variant != "nuts":
        out.update(final_elbo=np.round(d["final_elbo"], 0).tolist(),
                   epochs=[int(np.isfinite(e).sum()) for e in est.elbo_],
                   weights=np.round(np.asarray(est.chain_weights_), 2).tolist(),
                   stages={k: round(v) for k, v in d["svi_stage_seconds"].items()},
                   # the per-group sds of the approximation: quartiles over groups and coordinates
                   local_sd=np.round(np.quantile(np.exp(np.concatenate(
                       [f.local_log_sd.ravel() for f in fits])), [0.25, 0.5, 0.75]), 3).tolist())
    return out


def main(variants) -> None:
    X, X_te, y, y_te, g, g_te = grouped_data(10_000, 6)
    n = int(os.environ.get("PROBE_GROUPS", SUBSET))
    keep, keep_te = g < n, g_te < n
    data = (X[keep], X_te[keep_te], y[keep], y_te[keep_te], g[keep], g_te[keep_te])
    for variant in variants or ["defaults"]:
        r = run_variant(variant, data)
        extra = (f"  ELBO {r['final_elbo']}  epochs {r['epochs']}  weights {r['weights']}"
                 f"  local sd quartiles {r['local_sd']}  stages {r['stages']}"
                 if "weights" in r else "")
        if n > SUBSET:
            f = r["first"]
            extra = f"  first {SUBSET}: {100 * f['accuracy']:.2f}% / {f['log_loss']:.4f}" + extra
        print(f"{variant:<28} {100 * r['accuracy']:.2f}% / {r['log_loss']:.4f}  "
              f"fit {r['fit']:.0f} s  sds {r['sds']}  mu sd {r['mu_sd']}{extra}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
