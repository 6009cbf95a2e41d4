"""One log density + gradient of the default hierarchical model, against a
FLOP floor, in ns per row.

``python -m benchmarks.probe_gradient_cost`` builds the model the estimator
fits on the seed's data (18 groups x 50 rows, 2-5-5-1 tanh) with and without
biases, calls the kernel nutpie calls (``Problem.evaluate``, through its C
callback) at a random point, and prints the median time per call over
repeats, per training row, and the arithmetic per row:

* FLOPs of the matrix products per row: forward ``2 * sum(n_in * n_out)``,
  backward the weight gradients ``2 * sum(n_in * n_out)`` and the gradients of
  the hidden activations ``2 * sum over layers > 0 of n_in * n_out``, plus
  bias adds and their gradient sums (``2 * sum(n_out)`` with biases);
* ``tanh`` evaluations per row (one ``exp`` each in the kernel), counted
  apart: their cost is not a FLOP count.

The floor quoted is the FLOPs at 4 double-precision FLOPs per ns (one core,
no FMA, no SIMD width assumed) plus 4 ns per ``exp``; what the kernel
achieves is printed next to it.

``--steps [--seeds 0,1,...] [--sd-start 0.1] [--adaptation low_rank]
[--settings JSON]``: where the leapfrog steps of a default fit go
(:func:`steps`), optionally with the group sds started elsewhere, another
nutpie mass-matrix adaptation or other nutpie settings (keyword arguments of
``nutpie.sample``, e.g. ``'{"maxdepth": 8}'``); a last line sums the seeds.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from skhbnn.datasets import make_rotated_moons
from skhbnn.models import HierarchicalModel
from skhbnn.network import NetworkSpec

FLOPS_PER_NS = 4.0
NS_PER_EXP = 4.0


def arithmetic(spec: NetworkSpec) -> tuple[int, int]:
    sizes = spec.layer_sizes
    pairs = list(zip(sizes[:-1], sizes[1:]))
    mm = sum(a * b for a, b in pairs)
    flops = 2 * mm + 2 * mm + 2 * sum(a * b for a, b in pairs[1:])
    if spec.use_bias:
        flops += 2 * sum(b for _, b in pairs)
    tanh = sum(sizes[1:-1])
    return flops, tanh


def per_call(fn, x, n: int = 2000, repeats: int = 7) -> float:
    """Median seconds of one ``fn(x)`` over ``repeats`` timings of ``n``
    calls, after one call that loads / compiles."""
    fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn(x)
        times.append((time.perf_counter() - start) / n)
    return float(np.median(times))


@functools.cache
def _callback_loop():
    """A numba loop calling a C callback (a ``cfunc``) ``reps`` times with
    raw pointers, as nutpie's Rust calls it: no Python between calls
    (compiled once per process)."""
    from llvmlite import ir
    from numba import njit, types
    from numba.extending import intrinsic

    from skhbnn.kernels.cfuncs import _void

    @intrinsic
    def doubles(typingctx, address):
        sig = types.CPointer(types.float64)(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], ir.DoubleType().as_pointer())

        return sig, codegen

    @njit
    def loop(fn, n_dim, x, grad, logp, header, reps):
        failed = 0
        for _ in range(reps):
            failed += fn(n_dim, doubles(x), doubles(grad), doubles(logp), _void(header)) != 0
        return failed

    return loop


def per_call_in_kernel(problem, x, n: int = 2000, repeats: int = 7) -> float:
    """Median seconds of one call of the C callback nutpie calls
    (:func:`skhbnn.kernels.problem.callbacks`), from a numba loop: what a
    gradient costs inside a fit.  :func:`per_call` on ``problem.evaluate``
    adds the Python ``ctypes`` call and its arrays (several microseconds)."""
    from skhbnn.kernels.problem import callbacks

    loop = _callback_loop()
    fn = callbacks()[problem.kind][0]
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad, logp = np.empty(problem.n_dim), np.empty(1)
    args = (np.uint64(problem.n_dim), x.ctypes.data, grad.ctypes.data, logp.ctypes.data,
            problem.header.ctypes.data)
    if loop(fn, *args, 1):
        raise RuntimeError("the callback failed at the probe's point")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loop(fn, *args, n)
        times.append((time.perf_counter() - start) / n)
    return float(np.median(times))


def with_sd_start(problem, sd: float):
    """``problem`` with every group sd's initial point at ``sd`` (times the
    usual ``exp(U(-1, 1))`` jitter) instead of PyMC's support point."""
    import dataclasses

    offsets = {k: float(np.log(sd)) for k in problem.init_offsets}
    return dataclasses.replace(problem, init_offsets=offsets)


def main():
    X, _, y, _, g, _ = make_rotated_moons(random_state=31, split=True)
    rng = np.random.default_rng(0)
    for use_bias in (True, False):
        spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=use_bias)
        problem = HierarchicalModel(spec, 18).build_kernel(X, y, g)
        x = rng.normal(scale=0.3, size=problem.n_dim)
        call = per_call(problem.evaluate, x)
        inside = per_call_in_kernel(problem, x)
        flops, tanh = arithmetic(spec)
        floor = flops / FLOPS_PER_NS + tanh * NS_PER_EXP
        per_row, inside_row = call * 1e9 / len(y), inside * 1e9 / len(y)
        print(f"use_bias={use_bias}: {call * 1e6:.1f} us per call through ctypes (median of 7 "
              f"x 2000), {per_row:.1f} ns per row; from a numba loop, as nutpie calls it, "
              f"{inside * 1e6:.1f} us, {inside_row:.1f} ns per row; {flops} FLOPs + {tanh} tanh "
              f"per row, floor {floor:.1f} ns per row ({inside_row / floor:.2f}x the floor, "
              f"{flops / inside_row:.2f} FLOP/ns achieved)", flush=True)


def steps(seeds=(0,), sd_start=None, adaptation="diag", settings=None):
    """Where the leapfrog steps go: the default fit's chains (4 x (500 +
    500)) sampled by nutpie on the kernels with the warm-up kept;
    gradients in warm-up (and in its first 100 iterations) and in sampling,
    and their kernel time against the wall time of the sampling.
    ``sd_start``: start every group sd at this value (times the usual
    ``exp(U(-1, 1))`` jitter) instead of PyMC's support point of
    ``HalfNormal(1)``.  ``adaptation``: nutpie's mass-matrix adaptation
    (``"diag"``, its default and skhbnn's, ``"draw_diag"`` or ``"low_rank"``).
    ``settings``: further keyword arguments of ``nutpie.sample``."""
    import nutpie

    from skhbnn.kernels.nutpie import compiled_model

    X, _, y, _, g, _ = make_rotated_moons(random_state=31, split=True)
    spec = NetworkSpec(2, (5, 5), 1, "tanh", use_bias=True)
    problem = HierarchicalModel(spec, 18).build_kernel(X, y, g)
    if sd_start is not None:
        problem = with_sd_start(problem, sd_start)
    model = compiled_model(problem)
    # one gradient, measured here (one timing of 2000 calls, as before)
    call = per_call(problem.evaluate, np.random.default_rng(0).normal(scale=0.3, size=problem.n_dim),
                    repeats=1)
    extra = dict(settings or {})
    if adaptation != "diag":
        extra["adaptation"] = adaptation
    totals = np.zeros(2)
    for seed in seeds:
        start = time.perf_counter()
        idata = nutpie.sample(model, draws=500, tune=500, chains=4, cores=2, seed=seed,
                              target_accept=0.9, progress_bar=False, save_warmup=True,
                              **extra)
        wall = time.perf_counter() - start
        tune = np.asarray(idata.warmup_sample_stats["n_steps"])
        draw = np.asarray(idata.sample_stats["n_steps"])
        total = tune.sum() + draw.sum()
        totals += tune.sum(), draw.sum()
        print(f"seed {seed}, {adaptation}, group sds start at {sd_start or 'the support point'}: gradients "
              f"warm-up {tune.sum()} ({tune.sum() / total:.0%}; first 100 iterations "
              f"{tune[:, :100].sum()}), sampling {draw.sum()}; mean steps per warm-up "
              f"iteration {tune.mean():.1f}, per draw {draw.mean():.1f}; max per warm-up "
              f"iteration {tune.max()}; sampling wall {wall:.1f} s on 2 cores (the gradients "
              f"alone at {call * 1e6:.0f} us: {total * call / 2:.1f} s on two)",
              flush=True)
    print(f"{len(seeds)} seeds, {extra or 'the defaults'}: mean gradients per fit warm-up "
          f"{totals[0] / len(seeds):.0f}, sampling {totals[1] / len(seeds):.0f}, "
          f"total {totals.sum() / len(seeds):.0f}", flush=True)


if __name__ == "__main__":
    import sys

    def option(name, default):
        return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

    if "--steps" in sys.argv:
        seeds = tuple(int(v) for v in option("--seeds", "0").split(","))
        sd = option("--sd-start", None)
        import json

        steps(seeds, None if sd is None else float(sd), option("--adaptation", "diag"),
              json.loads(option("--settings", "{}")))
    else:
        main()
