"""Cost of one log density + gradient of the seed's hierarchical model
(18 groups x 50 points, 2-5-5-1 tanh, no biases): skhbnn's kernel, called
through the C callback nutpie calls (``skhbnn.kernels``), against the
gradient pytensor compiles with numba from the PyMC model (what
``nutpie.compile_pymc_model`` samples).

Run from the repository root::

    python benchmarks/probe_kernel.py

Session 3 also ran the kernel through nutpie's public Python-callback route
(``from_pyfunc``: it lost on the flat fits, the GIL-held callback per
gradient costs more than the kernel saves) and through nutpie's compiled
route with per-group and shared ``cfunc`` s; the shared one is what
``skhbnn.kernels`` became.  Those numbers are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _per_eval(fn, x, repeats=3, n=2000):
    fn(x)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn(x)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main() -> None:
    warnings.simplefilter("ignore")
    from skhbnn.datasets import make_rotated_moons
    from skhbnn.models import HierarchicalModel
    from skhbnn.network import NetworkSpec

    X, _, y, _, g, _ = make_rotated_moons(random_state=31, split=True)
    definition = HierarchicalModel(NetworkSpec(2, (5, 5), 1, "tanh", use_bias=False), 18)
    model = definition.build_pymc(X, y, g)

    start = time.perf_counter()
    problem = definition.build_kernel(X, y, g)
    x0 = np.random.default_rng(0).normal(size=problem.n_dim) * 0.1
    problem.logp_grad(x0)
    print(f"kernel: load/compile {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    fn = model.logp_dlogp_function(mode="NUMBA", ravel_inputs=True)
    fn.set_extra_values({})
    fn(x0)
    print(f"pytensor (numba): compile {time.perf_counter() - start:.1f} s")
    # The vectors are laid out differently; the cost per call does not
    # depend on the values.
    t_kernel = _per_eval(problem.logp_grad, x0)
    t_pytensor = _per_eval(fn, x0)
    print(f"kernel (C callback via ctypes): {t_kernel:.1f} us per logp + gradient")
    print(f"pytensor (numba):               {t_pytensor:.1f} us per logp + gradient")
    print(f"RATIO pytensor / kernel: {t_pytensor / t_kernel:.2f}x")


if __name__ == "__main__":
    main()
