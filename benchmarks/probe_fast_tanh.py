"""The kernels' vectorised tanh against libm's, paired (sessions 19, 20, 22).

``python -m benchmarks.probe_fast_tanh DATA SEEDS [PAIRS]``: for each
``random_state`` in ``SEEDS`` (comma-separated), ``PAIRS`` pairs (default 1) of
default fits of ``HierarchicalBayesianMLPClassifier`` (``inference="auto"``),
one with the vectorised tanh (``skhbnn.kernels.abi.FAST_TANH``, the package's
since session 22) and one with libm's (every tanh problem's header set back
to code 0, the package before), each in its own process, in alternating
order.  DATA is

* ``moons`` (500 groups x 50 rows, ``seed_data``; scored on the first 100
  groups, as in ``python -m benchmarks scale``) or ``GxK``
  (``bench_scale.grouped_data``, G groups, K classes; scored on the first 500
  groups): SVI fits;
* ``seed`` (the post's data, seed 31; scored on all 900 test rows): NUTS fits.

Prints each fit's wall and CPU seconds (the fit alone, after the imports),
its stage seconds, draws per chain (after any continuation, session 21), scores
and ``ConvergenceWarning`` text, then per pair
libm / fast in wall and CPU time, and their median.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np


def child(mode: str, seed: int, data: str) -> None:
    import time
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ._common import cpu_seconds, quiet, seed_data
    from .bench_defaults import _metrics

    quiet()
    from skhbnn import HierarchicalBayesianMLPClassifier

    if mode == "libm":  # every tanh problem as before: code 0, libm's exp
        import skhbnn.kernels.problem as problem
        from skhbnn.kernels import abi

        header = problem._header

        def libm_header(spec, *args):
            out = header(spec, *args)
            if spec.activation == "tanh":
                out[abi.ACT] = abi.ACTIVATION_CODES["tanh"]
            return out

        problem._header = libm_header
    if data == "seed":  # the post's data: NUTS at the defaults, all 900 test rows
        X, X_te, y, y_te, g, g_te = seed_data()
        subset = 18
    elif data == "moons":
        X, X_te, y, y_te, g, g_te = seed_data(n_groups=500)
        subset = 100
    else:
        from .bench_scale import grouped_data

        n_groups, n_classes = (int(v) for v in data.split("x"))
        X, X_te, y, y_te, g, g_te = grouped_data(n_groups, n_classes)
        subset = 500
    est = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False)
    wall, cpu = time.perf_counter(), cpu_seconds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y, groups=g)
    warned = [str(w.message)[60:200] for w in caught
              if issubclass(w.category, ConvergenceWarning)]
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    keep = g_te < subset
    scores = _metrics(y_te[keep], est.predict_proba(X_te[keep], groups=g_te[keep]), est.classes_)
    acc, ll = scores["accuracy"], scores["log_loss"]
    d = est.diagnostics_
    print(json.dumps({
        "mode": mode, "seed": seed, "wall": round(wall, 2), "cpu": round(cpu, 2),
        "inference": est.inference_, "acc": round(acc, 4), "log_loss": round(ll, 4),
        "stages": d.get("svi_stage_seconds"), "steps": d.get("svi_steps"),
        "n_draws": d.get("n_draws"), "warned": warned,
    }))


def main() -> None:
    if sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    data, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    ratios = []
    for seed in seeds:
        for p in range(pairs):
            order = ("libm", "fast") if (seed + p) % 2 == 0 else ("fast", "libm")
            res = {}
            for mode in order:
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.probe_fast_tanh", "--child", mode,
                     str(seed), data], capture_output=True, text=True, check=True,
                ).stdout.strip().splitlines()[-1]
                res[mode] = json.loads(out)
                print(out, flush=True)
            ratios.append((res["libm"]["wall"] / res["fast"]["wall"],
                           res["libm"]["cpu"] / res["fast"]["cpu"]))
            print(f"  seed {seed} pair {p}: libm / fast  wall {ratios[-1][0]:.3f}x  "
                  f"CPU {ratios[-1][1]:.3f}x", flush=True)
    r = np.array(ratios)
    print(f"median over {len(r)} pairs: wall {np.median(r[:, 0]):.3f}x "
          f"[{r[:, 0].min():.3f}-{r[:, 0].max():.3f}], CPU {np.median(r[:, 1]):.3f}x "
          f"[{r[:, 1].min():.3f}-{r[:, 1].max():.3f}]")


if __name__ == "__main__":
    main()
