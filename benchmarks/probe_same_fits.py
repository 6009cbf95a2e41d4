"""Fingerprints of fits for fixed ``random_state``s, to show a refactor
changed no numbers: run it on two commits and compare the output.

    git worktree add /tmp/skhbnn-before <commit>
    for route in kernels pytensor advi; do
      PYTHONPATH=/tmp/skhbnn-before python benchmarks/probe_same_fits.py $route
    done > before.txt
    for route in kernels pytensor advi; do
      python benchmarks/probe_same_fits.py $route
    done > after.txt
    diff before.txt after.txt

Each line is a SHA-256 prefix of ``predict_proba`` on fixed rows (and on an
unseen group) of a flat, a 3-class hierarchical, and two transfer fits.
``pytensor`` is nutpie on the PyMC graph (before skhbnn 0.2: the module flag
``skhbnn.inference.KERNELS = False``), ``advi`` mean-field ADVI.
"""

from __future__ import annotations

import hashlib
import sys
import warnings

import numpy as np


def _route_params(route: str) -> dict:
    import skhbnn.inference as inference

    if route == "pytensor":
        if not hasattr(inference, "_sample_kernels"):  # before the sampler routes
            inference.KERNELS = False
            return {"sampler": "nutpie"}
        return {"sampler": "nutpie-pytensor"}
    if route == "advi":
        return {"inference": "advi", "advi_iterations": 300}
    return {}


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:12]


def main(route: str) -> None:
    warnings.simplefilter("ignore")
    from skhbnn import (
        BayesianMLPClassifier,
        HierarchicalBayesianMLPClassifier,
        InformedPriorTransfer,
    )
    from skhbnn.datasets import make_rotated_moons

    X, y, g = make_rotated_moons(n_groups=3, n_samples=30, random_state=0)
    y3 = (y + (X[:, 0] > 0.5)).astype(int)
    unseen = np.full(len(X), 99)
    settings = dict(draws=50, tune=50, chains=1, progressbar=False, random_state=0)
    settings.update(_route_params(route))
    print(f"== {route}")
    flat = BayesianMLPClassifier(hidden_layer_sizes=(3,), **settings).fit(X[g == 0], y[g == 0])
    print("flat", _digest(flat.predict_proba(X)))
    hier = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **settings)
    hier.fit(X, y3, groups=g)
    print("hier3", _digest(hier.predict_proba(X, groups=g)),
          _digest(hier.predict_proba(X, groups=unseen)))
    base = HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), use_bias=False, **settings)
    base.fit(X, y, groups=g)
    for joint in (False, True):
        transfer = InformedPriorTransfer(base, prefit=True, joint_prior=joint).fit(X, y, groups=g)
        print(f"transfer joint={joint}", _digest(transfer.predict_proba(X, groups=g)),
              _digest(transfer.predict_proba(X, groups=unseen)))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("kernels", "pytensor", "advi"):
        sys.exit("usage: python benchmarks/probe_same_fits.py {kernels,pytensor,advi}")
    main(sys.argv[1])
