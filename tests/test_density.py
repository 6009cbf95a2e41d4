"""The kernels nutpie samples through (skhbnn.density, driven by the C
callbacks of skhbnn.fast_nuts) compute the PyMC models' log density, gradient
and posterior variables: checked against PyMC's own compiled functions at
random points."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from skhbnn.fast_nuts import flat_problem, hierarchical_problem, unflatten
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


def _check_against_pymc(model, problem, point, x):
    """logp and gradient at the value-variable ``point`` (= ``x``), and every
    posterior variable the expand callback writes."""
    logp, grad = problem.logp_grad(x)
    ref_logp = model.compile_logp()(point)
    ref_grad = model.compile_dlogp()(point)
    assert logp == pytest.approx(ref_logp, rel=1e-11, abs=1e-9)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9)
    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    values = model.compile_fn(
        model.unobserved_value_vars, inputs=model.value_vars, on_unused_input="ignore"
    )(point)
    expected = dict(zip([v.name for v in model.unobserved_value_vars], values))
    expanded = problem.expand(x)
    assert set(expanded) == set(names)
    assert list(problem.shapes) == list(expanded)
    for name in names:
        np.testing.assert_allclose(
            expanded[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name
        )


@pytest.mark.parametrize("bias,act,n_out", CASES)
def test_hierarchical_kernel_matches_pymc(bias, act, n_out):
    spec = NetworkSpec(2, (4, 3), n_out, act, use_bias=bias)
    rng, X, y, codes = _data(n_out)
    X_pad, y_pad, index = pad_by_group(X, y, codes, N_GROUPS)
    model = build_hierarchical_model(
        spec, X_pad, y_pad.reshape(-1)[index], index, prior_sd=1.3, group_sd_prior=0.7
    )
    problem = hierarchical_problem(
        spec, X, y, codes, N_GROUPS, prior_sd=1.3, group_sd_prior=0.7
    )
    x = rng.normal(size=problem.n_dim)
    n_layers = spec.n_layers
    P = (problem.n_dim - n_layers) // (N_GROUPS + 1)
    point = {f"sd{l}_log__": np.asarray(x[l]) for l in range(n_layers)}
    point.update({f"{k}_mu": a for k, a in unflatten(x[n_layers : n_layers + P], spec).items()})
    raw = x[n_layers + P :].reshape(N_GROUPS, P)
    point.update({f"{k}_raw": a for k, a in unflatten(raw, spec).items()})
    # PyMC orders the gradient by value variable: bring x into that order
    x_pymc = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars])
    order = np.argsort(
        np.concatenate([np.ravel(_positions(v.name, spec, n_layers, P)) for v in model.value_vars])
    )
    _check_against_pymc(model, _Reordered(problem, order), point, x_pymc)


def _positions(name, spec, n_layers, P):
    """Positions in the kernel's vector of the value variable ``name``."""
    if name.endswith("_log__"):
        return np.array([int(name[2:-6])])
    index = np.arange(n_layers + N_GROUPS * P + P)
    if name.endswith("_mu"):
        return unflatten(index[n_layers : n_layers + P], spec)[name[:-3]]
    raw = index[n_layers + P :].reshape(N_GROUPS, P)
    return unflatten(raw, spec)[name[:-4]]


class _Reordered:
    """A problem seen in PyMC's order of the unconstrained vector."""

    def __init__(self, problem, order):
        self.problem, self.order = problem, order
        self.shapes = problem.shapes

    def logp_grad(self, x_pymc):
        x = x_pymc[self.order]
        logp, grad = self.problem.logp_grad(x)
        inverse = np.empty_like(self.order)
        inverse[self.order] = np.arange(self.order.size)
        return logp, grad[inverse]

    def expand(self, x_pymc):
        return self.problem.expand(x_pymc[self.order])


@pytest.mark.parametrize("bias,act,n_out", CASES)
def test_flat_kernel_matches_pymc(bias, act, n_out):
    spec = NetworkSpec(2, (4, 3), n_out, act, use_bias=bias)
    rng, X, y, _ = _data(n_out, seed=1)
    model = build_flat_model(spec, X, y, prior_sd=0.8)
    problem = flat_problem(spec, X, y, prior_sd=0.8)
    z = rng.normal(size=problem.n_dim)
    point = {f"{k}_raw": a for k, a in unflatten(z, spec).items()}
    assert [v.name for v in model.value_vars] == list(point)
    _check_against_pymc(model, problem, point, z)


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
    problem = flat_problem(spec, X, y, prior=prior)
    z = rng.normal(size=problem.n_dim)
    point, start = {}, 0
    for block, n in sizes.items():
        point[f"{block}_raw"] = z[start : start + n]
        start += n
    assert [v.name for v in model.value_vars] == list(point)
    _check_against_pymc(model, problem, point, z)


def test_a_group_without_rows_only_contributes_its_prior():
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=False)
    rng, X, y, codes = _data(1, seed=3)
    codes = np.where(codes == 2, 1, codes)  # group 2 has no rows
    problem = hierarchical_problem(spec, X, y, codes, N_GROUPS)
    x = rng.normal(size=problem.n_dim)
    logp, grad = problem.logp_grad(x)
    P = (problem.n_dim - spec.n_layers) // (N_GROUPS + 1)
    raw2 = slice(spec.n_layers + P + 2 * P, spec.n_layers + P + 3 * P)
    np.testing.assert_allclose(grad[raw2], -x[raw2])  # N(0, 1) prior only
    assert np.isfinite(logp)


def test_callbacks_reject_a_vector_of_the_wrong_size():
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=False)
    _, X, y, _ = _data(1)
    problem = flat_problem(spec, X, y)
    problem.n_dim += 1
    with pytest.raises(RuntimeError, match="code -1"):
        problem.logp_grad(np.zeros(problem.n_dim))


def test_callbacks_report_non_finite_values_as_nutpie_expects():
    """Codes 3 (gradient) and 4 (log density), as nutpie's own callbacks for
    PyMC models: nutpie then counts the point as a divergence instead of
    feeding NaN or inf into its adaptation."""
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=False)
    _, X, y, codes = _data(1)
    problem = hierarchical_problem(spec, X, y, codes, N_GROUPS)
    x = np.zeros(problem.n_dim)
    assert np.isfinite(problem.logp_grad(x)[0])
    x[0] = 800.0  # sd0 = exp(800) overflows
    with pytest.raises(RuntimeError, match="code 3"):
        problem.logp_grad(x)
    flat = flat_problem(spec, X, y)
    z = np.zeros(flat.n_dim)
    z[0] = 1e200  # -0.5 z**2 overflows; its gradient -z does not
    with pytest.raises(RuntimeError, match="code (3|4)"):
        flat.logp_grad(z)
