"""The kernels as a nutpie model: nutpie's ``CompiledPyMCModel`` with skhbnn's
C callbacks in place of the pytensor ones.

nutpie samples a model through two C callbacks, a log density with its
gradient and an "expand" function that turns the unconstrained vector into
the posterior variables.  For a PyMC model, ``nutpie.compile_pymc_model``
builds both from the pytensor graph: 5-15 s of numba compilation that no
cache keeps across processes, and a gradient 2.5x slower than the kernel
(``benchmarks/README.md``).  Filling nutpie's own dataclass with the cached
callbacks of :mod:`skhbnn.kernels.cfuncs` makes nutpie build its sampler
exactly as for a compiled PyMC model, with nothing to compile.

That dataclass is not public API, so this route is guarded: skhbnn supports
the nutpie versions that ``pyproject.toml`` allows (``tests/test_fast_nuts.py``
checks the bound and that the installed nutpie has every field used here),
and any failure on this route falls back to the public
``nutpie.compile_pymc_model`` with one ``RuntimeWarning``
(:func:`skhbnn.inference.sample_nuts`).  A public nutpie constructor for a
model from C callbacks and a ``user_data`` pointer would remove the private
use (``docs/inference.md``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import abi
from . import problem as _problem
from .problem import Problem

NEEDED_FIELDS = frozenset(
    {
        "dims",
        "compiled_logp_func",
        "compiled_expand_func",
        "initial_point_func",
        "user_data",
        "n_expanded",
        "shape_info",
        "_n_dim",
        "_shapes",
        "_coords",
    }
)


class KernelRouteUnavailable(RuntimeError):
    """The installed nutpie or numba cannot run the kernel route."""


def _probe(problem: Problem) -> None:
    """The first evaluation, at an initial point, before nutpie sees the model:
    hard errors (a size or stamp mismatch) raise; a non-finite value is the
    data's business and left to the sampler, as on nutpie's own route."""
    code = problem.evaluate(problem.initial_point(0))[0]
    if code not in (abi.OK, abi.NONFINITE_GRADIENT, abi.NONFINITE_LOGP):
        raise KernelRouteUnavailable(f"the log density callback returned code {code}")


def compiled_model(problem: Problem, free_only: bool = False):
    """A nutpie model that samples ``problem`` through the kernels.

    ``free_only``: nutpie stores only the free variables
    (:meth:`~skhbnn.kernels.problem.Problem.free_shapes`) per draw, warm-up
    draws included, instead of the whole table: for a hierarchical model
    half the memory, the per-group weights being the other half
    (:func:`skhbnn.inference.add_weights` adds them for the kept draws).

    Raises
    ------
    KernelRouteUnavailable
        nutpie is missing, its ``CompiledPyMCModel`` lacks a field this needs,
        or the callbacks fail their first evaluation.
    """
    try:
        from nutpie.compile_pymc import CompiledPyMCModel
    except ImportError as exc:
        raise KernelRouteUnavailable(f"nutpie's CompiledPyMCModel is missing ({exc})") from exc
    fields = {f.name: f for f in dataclasses.fields(CompiledPyMCModel)}
    missing = NEEDED_FIELDS - set(fields)
    if missing:
        raise KernelRouteUnavailable(
            f"the installed nutpie's CompiledPyMCModel lacks {sorted(missing)}; skhbnn "
            "supports nutpie>=0.16,<0.17 on this route"
        )
    # looked up at call time, so a test (or a user) patching
    # skhbnn.kernels.problem.callbacks reaches this route too
    logp, expand = _problem.callbacks()[problem.kind]
    _probe(problem)
    shapes = problem.free_shapes() if free_only else problem.shapes
    n_expanded = int(sum(int(np.prod(s)) for s in shapes.values()))
    names = list(shapes)
    dims = {
        name: tuple(f"{name}_dim_{i}" for i in range(len(shape)))
        for name, shape in shapes.items()
    }
    coords = {
        dim: np.arange(size)
        for name, shape in shapes.items()
        for dim, size in zip(dims[name], shape)
    }
    values = {
        "dims": {name: dim for name, dim in dims.items() if dim},
        "compiled_logp_func": logp,
        "compiled_expand_func": expand,
        "initial_point_func": problem.initial_point,
        # nutpie hands user_data.ctypes.data to the callbacks: the header
        "user_data": problem.header,
        # keeps the arrays the header points to alive as long as the model
        "shared_data": {"skhbnn_problem": problem},
        "n_expanded": n_expanded,
        "shape_info": (
            names,
            [slice(None)] * len(names),
            [tuple(shapes[n]) for n in names],
        ),
        "_n_dim": problem.n_dim,
        "_shapes": {n: tuple(s) for n, s in shapes.items()},
        "_coords": coords,
    }
    kwargs = {}
    for name, field in fields.items():
        if name in values:
            kwargs[name] = values[name]
        elif (
            field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
        ):
            kwargs[name] = None  # unused on this route (pytensor functions, keys)
    return CompiledPyMCModel(**kwargs)
