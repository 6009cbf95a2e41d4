"""The hand-written numba kernels (benchmarks/kernel_density.py) compute the
PyMC models' log density and gradient: checked against PyMC's own compiled
``logp`` / ``dlogp`` at random points."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from benchmarks.kernel_models import (
    _unflatten,
    flat_kernel_model,
    hierarchical_kernel_model,
)
from skhbnn.groups import pad_by_group
from skhbnn.models import build_flat_model, build_hierarchical_model
from skhbnn.network import NetworkSpec
from skhbnn.priors import MvNormalPrior

CASES = [
    (bias, act, n_out)
    for bias in (False, True)
    for act in ("tanh", "relu", "logistic", "identity")
    for n_out in (1, 3)
]
N_GROUPS = 4


def _data(n_out, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(23, 2)) * 2
    y = rng.integers(0, max(n_out, 2), 23)
    codes = rng.integers(0, N_GROUPS, 23)
    codes[:N_GROUPS] = np.arange(N_GROUPS)
    return rng, X, y, codes


def _pymc(model, point):
    logp = model.compile_logp()(point)
    grad = model.compile_dlogp()(point)
    return logp, grad


@pytest.mark.parametrize("bias,act,n_out", CASES)
def test_hierarchical_kernel_matches_pymc(bias, act, n_out):
    spec = NetworkSpec(2, (4, 3), n_out, act, use_bias=bias)
    rng, X, y, codes = _data(n_out)
    X_pad, y_pad, index = pad_by_group(X, y, codes, N_GROUPS)
    model = build_hierarchical_model(
        spec, X_pad, y_pad.reshape(-1)[index], index, prior_sd=1.3, group_sd_prior=0.7
    )
    kernel = hierarchical_kernel_model(
        spec, X, y, codes, N_GROUPS, prior_sd=1.3, group_sd_prior=0.7
    )
    x = rng.normal(size=kernel.n_dim)
    logp, grad = kernel.logp(x)

    n_layers = spec.n_layers
    P = (kernel.n_dim - n_layers) // (N_GROUPS + 1)

    def as_point(v, suffix_log=""):
        point = {f"sd{l}{suffix_log}": np.asarray(v[l]) for l in range(n_layers)}
        point.update(
            {
                f"{k}_mu": a
                for k, a in _unflatten(v[n_layers : n_layers + P], spec).items()
            }
        )
        raw = v[n_layers + P :].reshape(N_GROUPS, P)
        point.update({f"{k}_raw": a for k, a in _unflatten(raw, spec).items()})
        return point

    ref_logp, ref_grad = _pymc(model, as_point(x, "_log__"))
    mine = as_point(grad, "_log__")
    grad_in_pymc_order = np.concatenate(
        [np.ravel(mine[v.name]) for v in model.value_vars]
    )
    assert logp == pytest.approx(ref_logp, rel=1e-11, abs=1e-9)
    np.testing.assert_allclose(grad_in_pymc_order, ref_grad, rtol=1e-9, atol=1e-9)

    expanded = kernel.expand(x)
    assert set(expanded) == {v.name for v in model.free_RVs} | {
        v.name for v in model.deterministics
    }
    np.testing.assert_allclose(expanded["sd0"], np.exp(x[0]))


@pytest.mark.parametrize("bias,act,n_out", CASES)
def test_flat_kernel_matches_pymc(bias, act, n_out):
    spec = NetworkSpec(2, (4, 3), n_out, act, use_bias=bias)
    rng, X, y, _ = _data(n_out, seed=1)
    model = build_flat_model(spec, X, y, prior_sd=0.8)
    kernel = flat_kernel_model(spec, X, y, prior_sd=0.8)
    z = rng.normal(size=kernel.n_dim)
    logp, grad = kernel.logp(z)
    ref_logp, ref_grad = _pymc(
        model, {f"{k}_raw": a for k, a in _unflatten(z, spec).items()}
    )
    mine = {f"{k}_raw": a for k, a in _unflatten(grad, spec).items()}
    assert logp == pytest.approx(ref_logp, rel=1e-11, abs=1e-9)
    np.testing.assert_allclose(
        np.concatenate([np.ravel(mine[v.name]) for v in model.value_vars]),
        ref_grad,
        rtol=1e-9,
        atol=1e-9,
    )


@pytest.mark.parametrize("joint", [False, True])
def test_flat_kernel_matches_pymc_with_mvnormal_prior(joint):
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=True)
    rng, X, y, _ = _data(1, seed=2)
    shapes = spec.param_shapes()
    if joint:
        sizes = {"joint": sum(int(np.prod(s)) for s in shapes.values())}
    else:
        sizes = {k: int(np.prod(s)) for k, s in shapes.items()}
    means, covs = {}, {}
    for k, n in sizes.items():
        A = rng.normal(size=(n, n))
        means[k] = rng.normal(size=n)
        covs[k] = A @ A.T / n + np.eye(n) * 0.3
    prior = MvNormalPrior(means, covs, layer_sizes=spec.layer_sizes)
    model = build_flat_model(spec, X, y, prior=prior)
    kernel = flat_kernel_model(spec, X, y, prior=prior)
    z = rng.normal(size=kernel.n_dim)
    logp, grad = kernel.logp(z)
    point, start = {}, 0
    for block, n in sizes.items():
        point[f"{block}_raw"] = z[start : start + n]
        start += n
    ref_logp, ref_grad = _pymc(model, point)
    assert [v.name for v in model.value_vars] == list(point)
    assert logp == pytest.approx(ref_logp, rel=1e-11, abs=1e-9)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9)
    # the stored weights are mean + chol @ raw per block, as in the PyMC model
    flat = np.concatenate(
        [means[b] + np.linalg.cholesky(covs[b]) @ point[f"{b}_raw"] for b in sizes]
    )
    expanded = kernel.expand(z)
    for k, value in _unflatten(flat, spec).items():
        np.testing.assert_allclose(expanded[k], value, rtol=1e-12, atol=1e-12)
