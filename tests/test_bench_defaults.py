"""The defaults suite's plain PyMC baseline is skhbnn's default model."""

from __future__ import annotations

import numpy as np

from benchmarks._common import plain_default_hierarchical_model
from skhbnn.datasets import make_grouped_classification
from skhbnn.models import HierarchicalModel
from skhbnn.network import NetworkSpec


def test_plain_default_model_has_the_estimators_log_density():
    """Same data, same point: the hand-written script and the model
    skhbnn builds from its table give the same joint log density (the
    unconstrained one, Jacobians included), so the benchmark's speed ratio
    compares one model."""
    X, y, g = make_grouped_classification(n_groups=4, n_features=3, max_rows=12, random_state=0)
    definition = HierarchicalModel(NetworkSpec(3, (5, 5), 1, "tanh", use_bias=True), 4)
    ours = definition.build_pymc(X, y, g)
    plain = plain_default_hierarchical_model(X, y, g, 4)
    rng = np.random.default_rng(0)
    point = {}
    for layer in range(3):
        for p, sd in (("w", f"sd{layer}"), ("b", f"sd_b{layer}")):
            for part in ("mu", "raw"):
                shape = ours[f"{p}{layer}_{part}"].type.shape
                point[(f"{p}{layer}_{part}", f"{p}{layer}_{part}")] = rng.normal(size=shape)
            point[(f"{sd}_log__", f"{p}{layer}_sd_log__")] = rng.normal()
    ours_logp = ours.compile_logp()({a: v for (a, _), v in point.items()})
    plain_logp = plain.compile_logp()({b: v for (_, b), v in point.items()})
    np.testing.assert_allclose(plain_logp, ours_logp, rtol=1e-10)
    # and it is not vacuous: another point gives another density
    moved = {b: v + 0.1 for (_, b), v in point.items()}
    assert abs(plain.compile_logp()(moved) - plain_logp) > 1e-3
