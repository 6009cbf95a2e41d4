"""Where a 500-group moons SVI fit spends its time, and stacking's PSIS
against ArviZ's on the same values (session 14, issue 12).

``python -m benchmarks.probe_psis [SEED]``: one default fit of
``HierarchicalBayesianMLPClassifier`` (``inference="svi"``) on the rotated
moons, 500 groups x 50 rows (``seed_data``), after a small fit that compiles
the kernels.  Prints the fit's wall time, its stages
(``diagnostics_["svi_stage_seconds"]``), the seconds spent in chain modes,
stacking and the diagnostics (timers around them), and the stacking weights.
Then it times the Pareto smoothing of the values stacking saw, one mode's
pointwise log-likelihood (``(rows, draws)``), twice in the same run:
skhbnn's vectorised :func:`skhbnn.stacking._psislw` and ArviZ's PSIS row by
row (ArviZ 1.x ``array_stats.psislw``; 0.x ``az.psislw``), with the largest
difference in the weights and k-hat.
"""

import sys
import time

import numpy as np

from ._common import arviz_psislw, quiet, seed_data


def main():
    import skhbnn._base as base
    from skhbnn import HierarchicalBayesianMLPClassifier
    from skhbnn.stacking import _psislw

    quiet()
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    spent, seen = {}, {}

    def timed(name):
        inner = getattr(base, name)

        def wrapper(*args, **kwargs):
            if name == "mode_stacking":
                seen["values"] = np.asarray(args[0], dtype=np.float64)
            start = time.perf_counter()
            out = inner(*args, **kwargs)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
            return out

        setattr(base, name, wrapper)

    for name in ("chain_modes", "mode_stacking", "invariant_diagnostics"):
        timed(name)
    X, _, y, _, g, _ = seed_data(n_groups=500)
    HierarchicalBayesianMLPClassifier(inference="svi", chains=2, draws=20, progressbar=False,
                                      random_state=0).fit(X[g < 30], y[g < 30], groups=g[g < 30])
    spent.clear()
    est = HierarchicalBayesianMLPClassifier(inference="svi", progressbar=False, random_state=seed)
    start = time.perf_counter()
    est.fit(X, y, groups=g)
    print(f"fit {time.perf_counter() - start:.1f} s, random_state={seed}")
    print("stages", est.diagnostics_["svi_stage_seconds"])
    print("timed", {k: round(v, 2) for k, v in spent.items()})
    print("chain weights", np.round(est.chain_weights_, 3).tolist())
    if "values" not in seen:
        return
    rows = np.ascontiguousarray(seen["values"][0].T)  # the first restart's (rows, draws)
    start = time.perf_counter()
    lw, k = _psislw(rows)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    ref_lw, ref_k = arviz_psislw(rows)
    theirs = time.perf_counter() - start
    ref_lw, ref_k = np.asarray(ref_lw), np.asarray(ref_k)
    finite = np.isfinite(ref_k) & np.isfinite(k)
    print(f"PSIS of {rows.shape[0]} rows x {rows.shape[1]} draws: skhbnn {ours:.3f} s, "
          f"ArviZ row by row {theirs:.3f} s ({theirs / ours:.0f}x); largest difference: "
          f"weights {np.max(np.abs(lw - ref_lw)[finite]):.1e}, "
          f"k-hat {np.max(np.abs(k - ref_k)[finite]):.1e}")


if __name__ == "__main__":
    main()
