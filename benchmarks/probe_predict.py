"""CPU time of one ``posterior_moments`` pass (the core of ``predict_proba``
and ``predict_std``) on the seed's 100 x 100 grid with 2,000 random draws of a
2-5-5 tanh network, and its largest deviation from a float64 two-pass
reference.  Three networks: no biases / binary (the seed's), biases / binary,
biases / 3 classes.

Run from the repository root::

    python benchmarks/probe_predict.py
"""

from __future__ import annotations

import time

import numpy as np

from skhbnn.prediction import posterior_moments
from skhbnn.network import NetworkSpec, forward, logits_to_proba


def main() -> None:
    grid = np.mgrid[-3:3:100j, -3:3:100j].reshape(2, -1).T
    rng = np.random.default_rng(0)
    for use_bias, n_outputs in ((False, 1), (True, 1), (True, 3)):
        spec = NetworkSpec(2, (5, 5), n_outputs, "tanh", use_bias=use_bias)
        params = {k: rng.normal(size=(2000, *s)) for k, s in spec.param_shapes().items()}
        start = time.process_time()
        mean, std = posterior_moments(params, grid, spec)
        cpu = time.process_time() - start
        proba = logits_to_proba(forward(params, grid, spec))
        print(
            f"biases={use_bias!s:5} classes={max(2, n_outputs)}: CPU {cpu:.3f} s, "
            f"max |mean - ref| {np.abs(mean - proba.mean(0)).max():.1e}, "
            f"max |sd - ref| {np.abs(std - proba.std(0)).max():.1e}"
        )


if __name__ == "__main__":
    main()
