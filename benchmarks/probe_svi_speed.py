"""An SVI fit's speed settings on the 500-group moons (session 15, issue 12).

``python -m benchmarks.probe_svi_speed SEEDS [module.NAME=VALUE ...]``: one
default fit of ``HierarchicalBayesianMLPClassifier(inference="svi")`` per
``random_state`` in ``SEEDS`` (comma-separated) on the rotated moons, 500
groups x 50 rows (``seed_data``), in one process after a small fit that loads
the kernels, with module constants set first, e.g.
``skhbnn.variational._WARM_MAXDEPTH=10 skhbnn.svi._MIN_STEPS_PER_EPOCH=20``
(the defaults).  Prints per fit its wall and CPU seconds,
test accuracy and log loss on the first 100 groups (the groups NUTS is
scored on in ``python -m benchmarks scale``), the fit's stages
(``diagnostics_["svi_stage_seconds"]``) and the stacking weights.  Fits in
one warm process are faster than the benchmark's, which start a process each.
"""

import ast
import importlib
import sys

import numpy as np

from ._common import quiet, seed_data, timed
from .bench_defaults import _metrics


def main():
    quiet()
    for setting in sys.argv[2:]:
        target, value = setting.split("=", 1)
        module, name = target.rsplit(".", 1)
        mod = importlib.import_module(module)
        if not hasattr(mod, name):
            raise SystemExit(f"{module} has no {name}")
        setattr(mod, name, ast.literal_eval(value))
    from skhbnn import HierarchicalBayesianMLPClassifier

    X, X_te, y, y_te, g, g_te = seed_data(n_groups=500)
    small = g < 30
    HierarchicalBayesianMLPClassifier(inference="svi", chains=2, draws=20, progressbar=False,
                                      random_state=0).fit(X[small], y[small], groups=g[small])
    scored = g_te < 100
    for seed in (int(s) for s in sys.argv[1].split(",")):
        est = HierarchicalBayesianMLPClassifier(inference="svi", progressbar=False,
                                                random_state=seed)
        t: dict = {}
        with timed(t, "fit"):
            est.fit(X, y, groups=g)
        m = _metrics(y_te[scored], est.predict_proba(X_te[scored], groups=g_te[scored]),
                     est.classes_)
        print(f"random_state={seed} fit {t['fit']:.1f} s (CPU {t['fit_cpu']:.1f} s) first 100 "
              f"groups {100 * m['accuracy']:.2f}% / {m['log_loss']:.4f}",
              est.diagnostics_["svi_stage_seconds"],
              "weights", np.round(est.chain_weights_, 2).tolist(), flush=True)


if __name__ == "__main__":
    main()
