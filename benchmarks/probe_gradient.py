"""Cost of one log-density + gradient evaluation of the seed's hierarchical
model, for alternative ways of writing the graph (numba backend, as nutpie
compiles it).

Run from the repository root, one variant per process::

    python benchmarks/probe_gradient.py matmul      # skhbnn's model as it is
    python benchmarks/probe_gradient.py broadcast   # layers as multiply + sum
    python benchmarks/probe_gradient.py bernoulli   # pm.Bernoulli(logit_p=z)
    python benchmarks/probe_gradient.py potential   # pm.Potential(y*z - softplus(z))
    python benchmarks/probe_gradient.py sigmoid     # tanh(a) as 2 * sigmoid(2a) - 1

Prints the compile time and microseconds per evaluation (3 repeats of 2,000).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

VARIANTS = ("matmul", "broadcast", "bernoulli", "potential", "sigmoid")


def main(variant: str) -> None:
    warnings.simplefilter("ignore")
    import pymc as pm
    import pytensor.tensor as pt

    import skhbnn.models.hierarchical as M
    import skhbnn.network as N
    from skhbnn.datasets import make_rotated_moons

    X, _, y, _, g, _ = make_rotated_moons(random_state=31, split=True)
    spec = N.NetworkSpec(2, (5, 5), 1, "tanh", use_bias=False)

    if variant == "broadcast":
        class _Namespace:  # pytensor.tensor with matmul as multiply + sum
            def __getattr__(self, name):
                return getattr(pt, name)

            @staticmethod
            def matmul(h, w):
                return (h[..., :, :, None] * w[..., None, :, :]).sum(axis=-2)

        forward = N.forward
        M.forward = lambda p, X_, s, xp=None: forward(p, X_, s, xp=_Namespace())
    elif variant == "sigmoid":
        activate = N._activate
        N._activate = lambda name, a, xp: (
            2.0 * pt.sigmoid(2.0 * a) - 1.0 if xp is pt and name == "tanh" else activate(name, a, xp)
        )
    elif variant == "bernoulli":
        M.likelihood = lambda z, y_, s: pm.Bernoulli("y_obs", logit_p=z[..., 0], observed=y_)
    elif variant == "potential":
        M.likelihood = lambda z, y_, s: pm.Potential(
            "y_obs", pt.sum(y_ * z[..., 0] - pt.softplus(z[..., 0]))
        )

    model = M.HierarchicalModel(spec, 18).build_pymc(X, y, g)
    start = time.perf_counter()
    fn = model.logp_dlogp_function(mode="NUMBA", ravel_inputs=True)
    fn.set_extra_values({})
    size = sum(np.size(v) for v in model.initial_point().values())
    x0 = np.random.default_rng(0).normal(size=size) * 0.1
    fn(x0)
    print(f"{variant}: compile {time.perf_counter() - start:.1f} s")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(2000):
            fn(x0)
        print(f"{variant}: {(time.perf_counter() - start) / 2000 * 1e6:.1f} us per evaluation")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python benchmarks/probe_gradient.py {{{','.join(VARIANTS)}}}")
    main(sys.argv[1])
