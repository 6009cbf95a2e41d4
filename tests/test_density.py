"""The kernels nutpie samples through (skhbnn.kernels.density, driven by the
C callbacks of skhbnn.kernels.cfuncs) compute the PyMC models' log density,
gradient and posterior variables: checked against PyMC's own compiled
functions at random points (tests/test_kernel_properties.py does the same
over random architectures)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

from skhbnn.models import FlatModel, HierarchicalModel
from skhbnn.network import NetworkSpec
from skhbnn.priors import MvNormalPrior

from .kernel_agreement import check_flat, check_hierarchical

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


def hierarchical_problem(spec, X, y, codes, n_groups, **priors):
    return HierarchicalModel(spec, n_groups, **priors).build_kernel(X, y, codes)


def flat_problem(spec, X, y, **priors):
    return FlatModel(spec, **priors).build_kernel(X, y)


@pytest.mark.parametrize("bias,act,n_out", CASES)
def test_hierarchical_kernel_matches_pymc(bias, act, n_out):
    spec = NetworkSpec(2, (4, 3), n_out, act, use_bias=bias)
    rng, X, y, codes = _data(n_out)
    definition = HierarchicalModel(spec, N_GROUPS, prior_sd=1.3, group_sd_prior=0.7)
    check_hierarchical(definition, X, y, codes, rng)


@pytest.mark.parametrize("bias,act,n_out", CASES)
def test_flat_kernel_matches_pymc(bias, act, n_out):
    spec = NetworkSpec(2, (4, 3), n_out, act, use_bias=bias)
    rng, X, y, _ = _data(n_out, seed=1)
    check_flat(FlatModel(spec, prior_sd=0.8), X, y, rng)


@pytest.mark.parametrize("joint", [False, True])
def test_flat_kernel_matches_pymc_with_mvnormal_prior(joint):
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=True)
    rng, X, y, _ = _data(1, seed=2)
    sizes = spec.param_sizes()
    if joint:
        sizes = {"joint": spec.n_params}
    means, covs = {}, {}
    for k, n in sizes.items():
        A = rng.normal(size=(n, n))
        means[k] = rng.normal(size=n)
        covs[k] = A @ A.T / n + np.eye(n) * 0.3
    prior = MvNormalPrior(means, covs, layer_sizes=spec.layer_sizes)
    check_flat(FlatModel(spec, prior=prior), X, y, rng)


@pytest.mark.parametrize("n_out", [1, 3])
def test_weighted_likelihood_matches_pymc(n_out):
    """sample_weight: each row's log-likelihood term times its weight, in the
    kernels and in the PyMC model alike (weights of 0, fractions and counts)."""
    spec = NetworkSpec(2, (3,), n_out, "tanh", use_bias=True)
    rng, X, y, codes = _data(n_out, seed=4)
    weights = rng.choice([0.0, 0.5, 1.0, 3.0], size=len(y))
    check_flat(FlatModel(spec), X, y, rng, weights)
    definition = HierarchicalModel(spec, N_GROUPS, prior_sd=0.9, group_sd_prior=1.2)
    check_hierarchical(definition, X, y, codes, rng, weights)


def test_a_weighted_row_counts_as_repeated_rows():
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=True)
    rng, X, y, _ = _data(1, seed=5)
    counts = rng.integers(0, 4, size=len(y))
    weighted = FlatModel(spec).build_kernel(X, y, None, counts.astype(float))
    repeated = FlatModel(spec).build_kernel(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    z = rng.normal(size=weighted.n_dim)
    logp_w, grad_w = weighted.logp_grad(z)
    logp_r, grad_r = repeated.logp_grad(z)
    assert logp_w == pytest.approx(logp_r, rel=1e-12)
    np.testing.assert_allclose(grad_w, grad_r, rtol=1e-10, atol=1e-12)


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


def test_callbacks_refuse_a_header_with_another_abi_stamp():
    """A callback compiled for another header layout (a stale numba cache)
    answers STALE instead of reading the header: an error, never numbers."""
    from skhbnn.kernels import abi
    from skhbnn.kernels.problem import StaleKernelError

    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=True)
    _, X, y, codes = _data(1)
    for problem in (flat_problem(spec, X, y), hierarchical_problem(spec, X, y, codes, N_GROUPS)):
        x = np.zeros(problem.n_dim)
        problem.logp_grad(x)
        problem.header[abi.STAMP] = abi.ABI_STAMP ^ 1
        with pytest.raises(StaleKernelError, match="stale numba cache"):
            problem.logp_grad(x)
        with pytest.raises(StaleKernelError, match="stale numba cache"):
            problem.expand(x)


def test_abi_stamp_covers_the_slot_table_and_the_kernel_sources():
    from skhbnn.kernels import abi

    assert set(abi._SOURCES) == {
        "abi.py", "elementary.py", "rows.py", "density.py", "mixture.py", "svi_step.py", "cfuncs.py"}
    assert 0 < abi.ABI_STAMP < 2**63


def test_dependent_caches_are_deleted_when_the_kernel_sources_changed(tmp_path):
    """numba keys a cached function on its own file only: code of density,
    cfuncs, mixture and svi_step (each inlines functions of another kernel
    source) cached under other kernel sources (another stamp) is deleted
    before it can load; other files stay, and the stamp is recorded."""
    from skhbnn.kernels import abi

    names = ["cfuncs.hierarchical_logp-165.py312.nbi", "cfuncs.hierarchical_logp-165.py312.1.nbc",
             "mixture.mixture_logp_grad-30.py312.nbi", "svi_step.hierarchical_steps-90.py312.nbi",
             "density._activate-51.py312.nbi", "other.txt"]
    for name in names:
        (tmp_path / name).write_text("x")
    stamp = abi._stamp_file(tmp_path)
    stamp.write_text(str(abi.ABI_STAMP ^ 1))
    abi.refresh_dependent_caches(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["other.txt", stamp.name])
    assert stamp.read_text() == str(abi.ABI_STAMP)
    # with the stamp current, a cache written since stays
    (tmp_path / names[0]).write_text("x")
    abi.refresh_dependent_caches(tmp_path)
    assert (tmp_path / names[0]).exists()
    # no stamp at all (a cache from before the stamp file existed): deleted
    stamp.unlink()
    abi.refresh_dependent_caches(tmp_path)
    assert not (tmp_path / names[0]).exists() and stamp.exists()
    # force (a stale callback found loaded): deleted, and the stamp with it
    (tmp_path / names[0]).write_text("x")
    abi.refresh_dependent_caches(tmp_path, force=True)
    assert not (tmp_path / names[0]).exists() and not stamp.exists()


def test_the_kernel_cache_folder_holds_the_callbacks_cache():
    """The stamp sits where numba caches the callbacks themselves."""
    from skhbnn.kernels import abi, cfuncs

    folder = abi._cache_folder()
    assert folder is not None
    assert folder == Path(cfuncs.hierarchical_logp._cache._cache_path)
    assert abi._stamp_file(folder).read_text() == str(abi.ABI_STAMP)


def _ulps(ours, reference):
    return np.abs(ours.view(np.int64) - reference.view(np.int64))


def test_vectorised_exp_is_within_one_ulp_of_libm():
    from skhbnn.kernels.elementary import exp_nonpositive

    z = np.r_[np.linspace(-40.0, 0.0, 200_001), -np.logspace(-300, 1.6, 2001),
              np.linspace(-708.0, -40.0, 20_001), 0.0, -0.0]
    ulps = _ulps(np.array([exp_nonpositive(v) for v in z]), np.exp(z))
    assert ulps.max() <= 1
    assert (ulps == 0).mean() > 0.8  # mostly the same bits


def test_vectorised_logarithms_are_within_one_ulp_of_libm():
    from skhbnn.kernels.elementary import log1p_unit, log_positive

    rng = np.random.default_rng(3)
    u = np.r_[rng.uniform(0.5, 4.0, 50_000), np.exp(rng.uniform(-700, 700, 20_000)),
              1.0, 2.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2.0), 2.2250738585072014e-308]
    ulps = _ulps(np.array([log_positive(v) for v in u]), np.log(u))
    assert ulps.max() <= 1 and (ulps == 0).mean() > 0.8
    e = np.r_[rng.uniform(0.0, 1.0, 50_000), np.exp(rng.uniform(-745, 0, 20_000)), 0.0, 1.0]
    ours, reference = np.array([log1p_unit(v) for v in e]), np.log1p(e)
    assert _ulps(ours, reference).max() <= 1
    assert log1p_unit(1e-300) == 1e-300  # tiny e keep their relative accuracy


def _lanes_reference(terms):
    """The order skhbnn.kernels.rows states: term i into lane i % 8, each
    lane summed in row order, then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))."""
    lanes = [0.0] * 8
    for i, t in enumerate(terms):
        lanes[i % 8] += float(t)
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 50, 63, 64, 1000])
def test_row_sums_add_in_the_stated_order(n):
    """row_dot and row_sum: eight lanes (row i in lane i % 8), added
    pairwise; the same bits as a Python sum in that order, at any offset
    into a C-contiguous array and any number of rows."""
    from numba import njit

    from skhbnn.kernels.rows import row_dot, row_sum

    @njit
    def both(a, ao, b, bo, n):
        return row_dot(a, ao, b, bo, n), row_sum(a, ao, n)

    rng = np.random.default_rng(n)
    a = rng.normal(size=(3, 2, n + 5)) * np.exp(rng.uniform(-20, 20, size=(3, 2, n + 5)))
    b = rng.normal(size=(2, n + 3))
    ao, bo = (1 * 2 + 1) * (n + 5) + 2, (n + 3) + 1
    dot, total = both(a, ao, b, bo, n)
    products = a.ravel()[ao:ao + n] * b.ravel()[bo:bo + n]
    assert dot == _lanes_reference(products)
    assert total == _lanes_reference(a.ravel()[ao:ao + n])
    assert dot == pytest.approx(math.fsum(products), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 50, 64])
@pytest.mark.parametrize("with_start", [True, False])
def test_rows_combination_is_the_loop_over_inputs_to_the_bit(n, with_start):
    """rows_combination holds eight rows in registers; every row's value is
    what ``out = start; out += w_k * x_k`` (or from the first product, with
    no start) computes, in input order, to the bit."""
    from numba import njit

    from skhbnn.kernels.rows import rows_combination

    @njit
    def combine(out, oo, start, x, xo, xs, w, wo, ws, count, n):
        rows_combination(out, oo, start, x, xo, xs, w, wo, ws, count, n)

    @njit
    def combine_from_first(out, oo, x, xo, xs, w, wo, ws, count, n):
        rows_combination(out, oo, None, x, xo, xs, w, wo, ws, count, n)

    rng = np.random.default_rng(n)
    stride, count = n + 3, 5
    x = rng.normal(size=(2, count, stride)) * np.exp(rng.uniform(-30, 30, size=(2, count, stride)))
    w = rng.normal(size=40)
    out = np.full((3, stride), np.nan)
    xo, wo, ws, oo = count * stride + 1, 2, 7, stride + 2
    rows = [x.ravel()[xo + k * stride:xo + k * stride + n] for k in range(count)]
    if with_start:
        combine(out, oo, 0.25, x, xo, stride, w, wo, ws, count, n)
        expected = np.full(n, 0.25)
        first = 0
    else:
        combine_from_first(out, oo, x, xo, stride, w, wo, ws, count, n)
        expected = w[wo] * rows[0]
        first = 1
    for k in range(first, count):
        expected = expected + w[wo + k * ws] * rows[k]
    assert np.array_equal(out.ravel()[oo:oo + n], expected)
    assert np.isnan(out.ravel()[oo + n:]).all() and np.isnan(out.ravel()[:oo]).all()


def test_row_sums_refuse_arrays_they_cannot_read_as_rows():
    from numba import njit
    from numba.core.errors import TypingError

    from skhbnn.kernels.rows import row_sum

    @njit
    def total(a):
        return row_sum(a, 0, 2)

    with pytest.raises(TypingError, match="C-contiguous float64"):
        total(np.ones((4, 4))[:, ::2])
    with pytest.raises(TypingError, match="C-contiguous float64"):
        total(np.ones(4, dtype=np.float32))


@pytest.mark.parametrize("bias,n_out", [(False, 1), (True, 1), (True, 3)])
def test_fast_tanh_gives_the_same_density_and_gradient(bias, n_out):
    """The kernels' tanh (abi.FAST_TANH, every tanh problem's) against
    libm's (code 0), at points whose pre-activations span saturation
    (|a| > 20), 0 and NaN-free values."""
    from dataclasses import replace

    from skhbnn.kernels import abi

    spec = NetworkSpec(2, (4, 3), n_out, "tanh", use_bias=bias)
    rng, X, y, codes = _data(n_out, seed=4)
    fast = hierarchical_problem(spec, X * 10, y, codes, N_GROUPS)
    assert int(fast.header[abi.ACT]) == abi.FAST_TANH
    header = fast.header.copy()
    header[abi.ACT] = abi.ACTIVATION_CODES["tanh"]
    libm = replace(fast, header=header)
    for scale in (0.1, 1.0, 3.0):
        x = rng.normal(size=fast.n_dim) * scale
        logp, grad = libm.logp_grad(x)
        logp_f, grad_f = fast.logp_grad(x)
        assert logp_f == pytest.approx(logp, rel=1e-13)
        np.testing.assert_allclose(grad_f, grad, rtol=1e-11, atol=1e-12)
    # other activations keep their own code
    relu = hierarchical_problem(NetworkSpec(2, (3,), 1, "relu"), X, y, codes, N_GROUPS)
    assert int(relu.header[abi.ACT]) == abi.ACTIVATION_CODES["relu"]
