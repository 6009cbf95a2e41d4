"""Checks that a model definition's two back-ends agree: the kernels
(``build_kernel``) against PyMC's compiled functions of ``build_pymc``, at
given points.  Shared by tests/test_density.py (fixed cases) and
tests/test_kernel_properties.py (hypothesis over architectures)."""

from __future__ import annotations

import numpy as np
import pytest


def table_names(definition):
    return [v.name for v in definition.variables()]


def check_against_pymc(model, problem, point, x):
    """logp and gradient at the value-variable ``point`` (= ``x`` in PyMC's
    order), and every posterior variable the expand callback writes, in the
    order of the PyMC model's variables."""
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
    assert list(expanded) == names
    for name in names:
        np.testing.assert_allclose(
            expanded[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name
        )


def check_flat(definition, X, y, rng, weights=None):
    model = definition.build_pymc(X, y, None, weights)
    problem = definition.build_kernel(X, y, None, weights)
    assert [v.name for v in model.free_RVs + model.deterministics] == table_names(definition)
    z = rng.normal(size=problem.n_dim)
    point, start = {}, 0
    # z holds the raw variables in table order, then a regression's log sigma
    for var in definition.free_variables():
        name = f"{var.name}_log__" if var.role == "noise" else var.name
        point[name] = z[start : start + var.size].reshape(var.shape)
        start += var.size
    assert start == problem.n_dim
    assert [v.name for v in model.value_vars] == list(point)
    check_against_pymc(model, problem, point, z)


def check_hierarchical(definition, X, y, codes, rng, weights=None):
    spec, G = definition.spec, definition.n_groups
    model = definition.build_pymc(X, y, codes, weights)
    problem = definition.build_kernel(X, y, codes, weights)
    assert [v.name for v in model.free_RVs + model.deterministics] == table_names(definition)
    P = spec.n_params
    sds = [v.name for v in definition.variables() if v.role == "group_sd"]
    n_sd = len(sds)
    assert n_sd == spec.n_layers * (2 if spec.use_bias else 1)
    n_noise = sum(v.size for v in definition.noise_variables())
    m0 = n_sd + n_noise
    assert problem.n_dim == m0 + P + G * P
    x = rng.normal(size=problem.n_dim)
    # the kernel's vector: (log sd per group sd, log sigma per noise sd, mu (P),
    # raw (G x P))
    index = np.arange(problem.n_dim)
    positions = {f"{name}_log__": index[k : k + 1] for k, name in enumerate(sds)}
    for v in definition.noise_variables():
        positions[f"{v.name}_log__"] = index[n_sd:m0]
    positions.update({f"{k}_mu": a for k, a in spec.unflatten(index[m0 : m0 + P]).items()})
    raw = index[m0 + P :].reshape(G, P)
    positions.update({f"{k}_raw": a for k, a in spec.unflatten(raw).items()})
    point = {
        v.name: x[positions[v.name]].reshape(np.shape(model.initial_point()[v.name]))
        for v in model.value_vars
    }
    order = np.concatenate([np.ravel(positions[v.name]) for v in model.value_vars])
    check_against_pymc(model, _Reordered(problem, order), point, x[order])


class _Reordered:
    """A problem seen in PyMC's order of the unconstrained vector: ``order[i]``
    is the kernel position of PyMC's entry ``i``."""

    def __init__(self, problem, order):
        self.problem, self.order = problem, order
        self.inverse = np.empty_like(order)
        self.inverse[order] = np.arange(order.size)

    def logp_grad(self, x_pymc):
        logp, grad = self.problem.logp_grad(x_pymc[self.inverse])
        return logp, grad[self.order]

    def expand(self, x_pymc):
        return self.problem.expand(x_pymc[self.inverse])
