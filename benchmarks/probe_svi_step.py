"""What one SVI step costs next to one log density + gradient (session 16, issue 12).

``python -m benchmarks.probe_svi_step [REPEATS]``: on the rotated moons, 500
groups x 50 rows (``seed_data``), the default network with biases, in one
process and one thread:

* one restart of :func:`skhbnn.svi.fit_one` for 40 epochs (the plateau rule
  switched off), ``REPEATS`` times (default 3), its best time per step;
* one log density + gradient through the kernels' C callback on a problem of
  as many groups as one SVI batch holds (72 groups, 3,600 rows), per call and
  per row.

The difference is what a step adds to its gradient: building the point and
the batch, Adam's updates of the global and the batch groups' parameters, and
the per-epoch work in Python.
"""

import sys
import time

import numpy as np

from ._common import quiet, seed_data


def main():
    from skhbnn import svi
    from skhbnn.models import HierarchicalModel
    from skhbnn.network import NetworkSpec

    quiet()
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=True)
    X, _, y, _, g, _ = seed_data(n_groups=500)
    problem = HierarchicalModel(spec, n_groups=500).build_kernel(X, y.astype(float), g)
    svi.fit_one(problem, 0, max_epochs=2, tol=0.0, n_rows=len(y))  # loads the kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit = svi.fit_one(problem, 0, max_epochs=40, tol=-1e9, n_rows=len(y))
        times.append(time.perf_counter() - start)
    step = min(times) / fit.n_steps
    n_batch = 72  # groups per step here: ceil(500 / 7)
    keep = g < n_batch
    batch = HierarchicalModel(spec, n_groups=n_batch).build_kernel(
        X[keep], y[keep].astype(float), g[keep])
    x = batch.initial_point(0)
    batch.evaluate(x)
    n_calls = 2000
    start = time.perf_counter()
    for _ in range(n_calls):
        batch.evaluate(x)
    grad = (time.perf_counter() - start) / n_calls
    print(f"SVI step: {1e6 * step:.1f} us ({fit.n_steps} steps, best of {repeats}: "
          f"{np.round(times, 3).tolist()} s; final ELBO {fit.elbo[-1]:.2f})")
    print(f"log density + gradient, {n_batch} groups ({int(keep.sum())} rows): "
          f"{1e6 * grad:.1f} us, {1e9 * grad / keep.sum():.1f} ns per row; the step adds "
          f"{1e6 * (step - grad):.1f} us ({step / grad:.2f}x)")


if __name__ == "__main__":
    main()
