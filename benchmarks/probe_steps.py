"""Leapfrog steps, step sizes and time of hierarchical fits on the seed's data.

``python -m benchmarks.probe_steps "[dict(draws=300, tune=300), dict(draws=300, tune=300, use_bias=False)]"``
fits ``HierarchicalBayesianMLPClassifier(random_state=0, **params)`` for each
dict on ``make_rotated_moons(random_state=31, split=True)`` and prints its
wall time, the mean leapfrog steps per draw and mean step size per chain,
and the chains' modes.
"""

import sys
import time
import warnings

import numpy as np

from skhbnn import HierarchicalBayesianMLPClassifier
from skhbnn.datasets import make_rotated_moons

warnings.filterwarnings("ignore")
X_tr, X_te, y_tr, y_te, g_tr, g_te = make_rotated_moons(random_state=31, split=True)
for kw in eval(sys.argv[1], {"dict": dict}):  # a list of dicts from the command line
    clf = HierarchicalBayesianMLPClassifier(random_state=0, progressbar=False, **kw)
    t = time.time()
    clf.fit(X_tr, y_tr, groups=g_tr)
    t = time.time() - t
    st = clf.idata_.sample_stats
    steps = np.asarray(st["n_steps"]).mean(axis=1)
    print(kw, round(t, 1), "steps/draw per chain", steps.round(1), "step size",
          np.asarray(st["step_size"]).mean(axis=1).round(3), "modes",
          clf.diagnostics_.get("chain_modes"), flush=True)
