"""How much the hierarchical fit's sampling efficiency depends on the seed,
for each of nutpie's two routes in skhbnn: the kernels (the default) and the
pytensor-compiled PyMC model (``sampler="nutpie-pytensor"``).

The seed's hierarchical model (18 groups x 50 points, 2-5-5-1 tanh, no
biases), 2 chains x (1000 tune + 1000 draws), target_accept 0.9: exactly what
``HierarchicalBayesianMLPClassifier(use_bias=False, random_state=r).fit``
runs, for ``r = 1 .. N``.  Per run: wall time, leapfrog steps, divergences,
bulk ESS of each layer's group sd, and ESS per 1000 leapfrog steps (the
load-independent measure of sampling efficiency).

Run from the repository root::

    python benchmarks/probe_seeds.py [N [FIRST]] [--kernels]
        # random_state FIRST .. FIRST + N - 1 (default 5 seeds from 1);
        # --kernels: the kernel route only
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(n_seeds: int = 5, first: int = 1, routes=("kernels", "pytensor")) -> None:
    warnings.simplefilter("ignore")
    from benchmarks._common import ess, seed_data
    from skhbnn import HierarchicalBayesianMLPClassifier

    X, X_test, y, y_test, g, g_test = seed_data()
    totals = {}
    for route in routes:
        sampler = "nutpie" if route == "kernels" else "nutpie-pytensor"
        for r in range(first, first + n_seeds):
            clf = HierarchicalBayesianMLPClassifier(
                use_bias=False, random_state=r, progressbar=False, sampler=sampler
            )
            start = time.perf_counter()
            clf.fit(X, y, groups=g)
            wall = time.perf_counter() - start
            steps = int(clf.idata_.sample_stats["n_steps"].values.sum())
            sd_ess = [ess(clf.posterior_draws_[f"sd{layer}"]) for layer in range(3)]
            acc = float(np.mean(clf.predict(X_test, groups=g_test) == y_test))
            print(
                f"{route:8s} random_state={r}: {wall:6.1f} s, {steps:7d} steps, "
                f"{clf.diagnostics_['divergences']:4d} divergences, ESS sd "
                f"{' '.join(f'{e:5.0f}' for e in sd_ess)}, min ESS per 1k steps "
                f"{1000 * min(sd_ess) / steps:5.2f}, test accuracy {100 * acc:.2f}%",
                flush=True,
            )
            t = totals.setdefault(route, [0.0, 0, 0.0])
            t[0] += wall
            t[1] += steps
            t[2] += min(sd_ess)
    for route, (wall, steps, min_ess) in totals.items():
        print(
            f"{route:8s} all seeds: {wall:.1f} s, {steps} steps, summed min ESS "
            f"{min_ess:.0f}, {min_ess / wall:.2f} min-ESS per second"
        )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:] if a != "--kernels"]
    main(*args, routes=("kernels",) if "--kernels" in sys.argv else ("kernels", "pytensor"))
