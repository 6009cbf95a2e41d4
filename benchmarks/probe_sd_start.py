"""Default hierarchical fits on the seed's data with the group sds' NUTS
starting points moved (a lead from ``probe_gradient_cost --steps --sd-start``).

``python -m benchmarks.probe_sd_start SD SEEDS``: ``HierarchicalBayesianMLPClassifier``
at its defaults on ``make_rotated_moons(random_state=31, split=True)`` for
each ``random_state`` in SEEDS, with every group sd's initial point at ``SD``
(times the usual ``exp(U(-1, 1))`` jitter) instead of PyMC's support point of
``HalfNormal(1)``; ``SD`` = ``default`` leaves it alone.  The start is moved by
wrapping the model definition's ``build_kernel`` in this process (a probe,
not an option of the package).  One line per fit: wall time, test accuracy
and log loss, whether it warned, the chains' modes.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from sklearn.metrics import log_loss

from skhbnn import HierarchicalBayesianMLPClassifier
from skhbnn.datasets import make_rotated_moons
from skhbnn.models import HierarchicalModel

from .probe_gradient_cost import with_sd_start


def moved_start(sd: float):
    original = HierarchicalModel.build_kernel

    def build_kernel(self, *args, **kwargs):
        return with_sd_start(original(self, *args, **kwargs), sd)

    HierarchicalModel.build_kernel = build_kernel


def main():
    sd, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    if sd != "default":
        moved_start(float(sd))
    X, X_te, y, y_te, g, g_te = make_rotated_moons(random_state=31, split=True)
    for seed in seeds:
        clf = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.fit(X, y, groups=g)
        wall = time.perf_counter() - start
        warned = any("Convergence" in type(w.message).__name__ for w in caught)
        proba = clf.predict_proba(X_te, groups=g_te)
        print(f"sd start {sd}, random_state {seed}: fit {wall:.1f} s, acc "
              f"{100 * np.mean(proba.argmax(1) == y_te):.2f}%, log loss {log_loss(y_te, proba):.4f}, "
              f"warned {int(warned)}, modes {clf.diagnostics_.get('chain_modes')}", flush=True)


if __name__ == "__main__":
    main()
