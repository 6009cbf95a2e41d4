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


def test_plain_default_predict_is_the_networks_posterior_mean():
    """The baselines' own numpy prediction (no skhbnn code inside) averages
    the network's probability over the draws, row by row with its group's
    weights: checked against skhbnn's forward pass on random draws."""
    import xarray as xr
    from scipy.special import expit

    from benchmarks._common import plain_default_predict
    from skhbnn.network import forward

    rng = np.random.default_rng(1)
    spec = NetworkSpec(3, (5, 4), 1, "tanh", use_bias=True)
    n_chain, n_draw, G = 2, 3, 4
    post = {}
    for name, shape in spec.param_shapes().items():
        post[f"{name}_mu"] = rng.normal(size=(n_chain, n_draw, *shape))
        post[f"{name}_sd"] = rng.uniform(0.1, 1.0, size=(n_chain, n_draw))
        post[f"{name}_raw"] = rng.normal(size=(n_chain, n_draw, G, *shape))
    posterior = xr.Dataset({k: (tuple(f"{k}_{i}" for i in range(v.ndim)), v) for k, v in post.items()})
    X = rng.normal(size=(7, 3))
    groups = rng.integers(0, G, size=7)
    expected = np.zeros(7)
    for c in range(n_chain):
        for d in range(n_draw):
            for r in range(7):
                params = {
                    n: post[f"{n}_mu"][c, d] + post[f"{n}_sd"][c, d] * post[f"{n}_raw"][c, d, groups[r]]
                    for n in spec.param_shapes()
                }
                expected[r] += expit(forward(params, X[r : r + 1], spec)[0, 0])
    expected /= n_chain * n_draw
    np.testing.assert_allclose(plain_default_predict(posterior, X, groups), expected, rtol=1e-10)
    assert np.ptp(expected) > 0.05  # rows differ: the check has something to compare
