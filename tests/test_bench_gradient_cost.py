"""The gradient-cost probe times the callback nutpie calls, as nutpie calls it."""

from __future__ import annotations

import numpy as np

from benchmarks.probe_gradient_cost import _callback_loop, per_call_in_kernel
from skhbnn.datasets import make_grouped_classification
from skhbnn.kernels.problem import callbacks
from skhbnn.models import HierarchicalModel
from skhbnn.network import NetworkSpec


def test_the_numba_loop_calls_the_callback_nutpie_calls():
    """The loop's call writes the log density and gradient that
    ``Problem.evaluate`` (the ctypes route) returns, to the bit, and the
    timing is a positive number of seconds."""
    X, y, g = make_grouped_classification(n_groups=3, n_features=2, max_rows=10, random_state=0)
    problem = HierarchicalModel(NetworkSpec(2, (3,), 1, "tanh"), 3).build_kernel(X, y, g)
    x = np.random.default_rng(0).normal(scale=0.3, size=problem.n_dim)
    grad, logp = np.full(problem.n_dim, np.nan), np.full(1, np.nan)
    failed = _callback_loop()(callbacks()[problem.kind][0], np.uint64(problem.n_dim),
                              x.ctypes.data, grad.ctypes.data, logp.ctypes.data,
                              problem.header.ctypes.data, 3)
    code, reference, reference_grad = problem.evaluate(x)
    assert failed == 0 and code == 0
    assert logp[0] == reference and np.array_equal(grad, reference_grad)
    assert 0 < per_call_in_kernel(problem, x, n=10, repeats=1) < 1
