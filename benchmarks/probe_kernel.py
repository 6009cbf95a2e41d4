"""The hand-written numba kernel (benchmarks/kernel_density.py) against the
gradient nutpie compiles from the PyMC model, on the seed's hierarchical
model (18 groups x 50 points, 2-5-5-1 tanh, no biases).

Run from the repository root::

    python benchmarks/probe_kernel.py            # cost of one logp + gradient
    python benchmarks/probe_kernel.py --sample [--seed N]
        # and a 2 x (1000 + 1000) NUTS run through each route
    python benchmarks/probe_kernel.py --flat
        # the 18 flat per-group fits through the kernel (Python callbacks)
    python benchmarks/probe_kernel.py --cfunc
        # the 18 flat fits through nutpie's compiled route, kernel vs pytensor

The sampling part runs the kernel through nutpie's public Python-callback
interface (``nutpie.compiled_pyfunc.from_pyfunc``) and the PyMC model
through ``nutpie.compile_pymc_model``; it prints wall and CPU time, leapfrog
steps, time per step and divergences of each.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _sample(model, seed: int):
    """2 chains x (1000 tune + 1000 draws), the benchmarks' settings."""
    import nutpie

    return nutpie.sample(
        model,
        draws=1000,
        tune=1000,
        chains=2,
        cores=2,
        seed=seed,
        target_accept=0.9,
        progress_bar=False,
    )


def _per_eval(fn, x, repeats=3, n=2000):
    fn(x)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn(x)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def flat(seed: int = 1) -> None:
    """The 18 flat per-group fits through the kernel and nutpie's Python
    callbacks, 2 chains x (1000 + 1000) each."""
    warnings.simplefilter("ignore")
    from benchmarks.kernel_models import flat_kernel_model
    from skhbnn.datasets import make_rotated_moons
    from skhbnn.network import NetworkSpec

    X, _, y, _, g, _ = make_rotated_moons(random_state=31, split=True)
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=False)
    start, cpu = time.perf_counter(), time.process_time()
    steps = 0
    for group in range(18):
        kernel = flat_kernel_model(spec, X[g == group], y[g == group])
        idata = _sample(kernel.to_nutpie(), seed + group)
        steps += int(idata.sample_stats.n_steps.sum())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"18 flat fits, kernel via from_pyfunc: wall {wall:.1f} s, CPU {cpu:.1f} s, "
        f"{steps} leapfrog steps in the draws"
    )


def flat_cfunc(route: str) -> None:
    """The 18 flat fits through nutpie's compiled-model route (a numba
    ``cfunc`` called from Rust, no Python per gradient), with the kernel or
    with nutpie's own pytensor gradient (``route="pytensor"``).  Private
    nutpie API (``nutpie._lib.LogpFunc``), probe only.  ``"kernel-shared"``
    compiles one ``cfunc`` that reads each group's data through the
    ``user_data`` pointer; ``"kernel"`` freezes each group's data into its
    own ``cfunc``.  ``cfunc`` compile time is reported apart; nutpie's own
    compile of the PyMC model (needed for its expand function) happens
    before the clock starts."""
    import dataclasses

    import numba
    import nutpie
    from nutpie import _lib
    from nutpie.compile_pymc import CompiledPyMCModel, address_as_void_pointer

    from benchmarks.kernel_density import flat_logp_grad
    from benchmarks.kernel_models import layout_of
    from skhbnn.datasets import make_rotated_moons
    from skhbnn.models import build_flat_model
    from skhbnn.network import NetworkSpec

    warnings.simplefilter("ignore")
    X, _, y, _, g, _ = make_rotated_moons(random_state=31, split=True)
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=False)
    layout, player = layout_of(spec)
    P = player.size
    sig = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )

    mean, scale, L = np.zeros(P), np.ones(P), np.empty((0, 0))
    const = -0.5 * P * np.log(2 * np.pi)

    @numba.njit
    def evaluate(x_, out_, logp_, XT, yy):
        x = numba.carray(x_, (P,))
        out = numba.carray(out_, (P,))
        lp = numba.carray(logp_, (1,))
        lp[0] = flat_logp_grad(x, XT, yy, layout, 0, mean, scale, L, const, out)

    def make_cfunc(XT, yy):
        def f(dim, x_, out_, logp_, ud):
            evaluate(x_, out_, logp_, XT, yy)
            return 0

        return numba.cfunc(sig)(f)

    def make_shared_cfunc():
        """One ``cfunc`` for every group: ``user_data`` points at an int64
        header ``(address of XT, address of y, n_rows)``."""
        n_features = int(layout[0, 0])

        def f(dim, x_, out_, logp_, ud):
            header = numba.carray(ud, (3,), np.int64)
            n = header[2]
            XT = numba.carray(
                address_as_void_pointer(header[0]), (n_features, n), np.float64
            )
            yy = numba.carray(address_as_void_pointer(header[1]), (n,), np.int64)
            evaluate(x_, out_, logp_, XT, yy)
            return 0

        return numba.cfunc(sig)(f)

    @dataclasses.dataclass(frozen=True)
    class KernelCompiled(CompiledPyMCModel):
        kernel: object = None
        kernel_data: tuple = ()  # (header, XT, y): the header's pointers stay valid

        def _make_model(self, init_mean):
            orig = _lib.LogpFunc
            data = self.kernel_data[0].ctypes.data if self.kernel_data else None
            try:
                _lib.LogpFunc = lambda addr, ud, keep: orig(
                    self.kernel.address, ud if data is None else data, keep
                )
                return super()._make_model(init_mean)
            finally:
                _lib.LogpFunc = orig

    base = nutpie.compile_pymc_model(build_flat_model(spec, X[g == 0], y[g == 0]))
    t_compile, steps = 0.0, 0
    start, cpu = time.perf_counter(), time.process_time()
    shared = make_shared_cfunc() if route == "kernel-shared" else None
    t_compile = time.perf_counter() - start
    for group in range(18):
        Xg, yg = X[g == group], y[g == group]
        model = base.with_data(X=Xg, y=yg)
        if route == "kernel":
            t = time.perf_counter()
            cf = make_cfunc(
                np.ascontiguousarray(Xg.T), np.ascontiguousarray(yg, dtype=np.int64)
            )
            t_compile += time.perf_counter() - t
            fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
            model = KernelCompiled(**fields, kernel=cf)
        elif route == "kernel-shared":
            XT = np.ascontiguousarray(Xg.T, dtype=float)
            yy = np.ascontiguousarray(yg, dtype=np.int64)
            header = np.array([XT.ctypes.data, yy.ctypes.data, len(yy)], dtype=np.int64)
            fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
            model = KernelCompiled(
                **fields, kernel=shared, kernel_data=(header, XT, yy)
            )
        idata = _sample(model, group)
        steps += int(idata.sample_stats.n_steps.sum())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"18 flat fits, compiled route, {route} gradient: wall {wall:.1f} s "
        f"(of which cfunc compiles {t_compile:.1f} s), CPU {cpu:.1f} s, "
        f"{steps} leapfrog steps in the draws"
    )


def main(sample: bool, seed: int = 1) -> None:
    warnings.simplefilter("ignore")
    import nutpie

    from benchmarks.kernel_models import hierarchical_kernel_model
    from skhbnn.datasets import make_rotated_moons
    from skhbnn.groups import pad_by_group
    from skhbnn.models import build_hierarchical_model
    from skhbnn.network import NetworkSpec

    X, _, y, _, g, _ = make_rotated_moons(random_state=31, split=True)
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=False)
    X_pad, y_pad, idx = pad_by_group(X, y, g, 18)
    model = build_hierarchical_model(spec, X_pad, y_pad.reshape(-1)[idx], idx)

    start = time.perf_counter()
    kernel = hierarchical_kernel_model(spec, X, y, g, 18)
    x0 = np.random.default_rng(0).normal(size=kernel.n_dim) * 0.1
    kernel.logp(x0)
    print(f"kernel: load/compile {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    fn = model.logp_dlogp_function(mode="NUMBA", ravel_inputs=True)
    fn.set_extra_values({})
    fn(x0)
    print(f"pytensor (numba): compile {time.perf_counter() - start:.1f} s")
    grad = np.empty(kernel.n_dim)
    t_kernel = _per_eval(lambda x: kernel.logp_grad(x, grad), x0)
    t_pytensor = _per_eval(fn, x0)
    print(f"kernel:           {t_kernel:.1f} us per logp + gradient")
    print(f"pytensor (numba): {t_pytensor:.1f} us per logp + gradient")
    print(f"RATIO pytensor / kernel: {t_pytensor / t_kernel:.2f}x")
    if not sample:
        return
    for name, make in [
        ("kernel via from_pyfunc", kernel.to_nutpie),
        ("PyMC model via compile_pymc_model", lambda: nutpie.compile_pymc_model(model)),
    ]:
        start, cpu = time.perf_counter(), time.process_time()
        compiled = make()
        idata = _sample(compiled, seed)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        stats = idata.sample_stats
        steps = int(stats.n_steps.sum())
        print(
            f"{name}: wall {wall:.1f} s, CPU {cpu:.1f} s (compile + tune + draws), "
            f"{steps} leapfrog steps in the draws, "
            f"{int(stats.diverging.sum())} divergences, "
            f"mean sd0 {float(idata.posterior.sd0.mean()):.3f}"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--cfunc" in args:
        for route in ("kernel-shared", "kernel", "pytensor"):
            flat_cfunc(route)
        sys.exit()
    if "--flat" in args:
        flat()
        sys.exit()
    main(
        "--sample" in args,
        int(args[args.index("--seed") + 1]) if "--seed" in args else 1,
    )
