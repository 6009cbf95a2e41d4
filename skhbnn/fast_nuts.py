"""NUTS with nutpie on the hand-written kernels of :mod:`skhbnn.density`.

nutpie samples a model through two C callbacks, a log density with its
gradient and an "expand" function that turns the unconstrained vector into
the posterior variables.  For a PyMC model, ``nutpie.compile_pymc_model``
builds both from the pytensor graph: 5-15 s of numba compilation that no
cache keeps across processes, and a gradient 2.5x slower than the kernel
(``benchmarks/README.md``).

Here both callbacks are module-level numba ``cfunc`` s compiled with
``cache=True``: one per model kind, for every network structure and data set.
Everything about one fit (data, layout, prior) is packed into numpy arrays
whose addresses sit in an int64 *header*; nutpie passes the header's address
to every call as its ``user_data`` pointer.  A fit therefore compiles nothing
once the cache is warm, and the gradient runs without the GIL.

The model handed to nutpie is nutpie's own ``CompiledPyMCModel`` dataclass
with these callbacks in place of the pytensor ones, so nutpie's sampler
builds it exactly as it builds a compiled PyMC model.  That dataclass is not
public API: :func:`compiled_model` returns ``None`` when the installed nutpie
does not have the fields it needs, and the caller falls back to
``nutpie.compile_pymc_model``.

Posterior variables carry the PyMC models' names, shapes and dimension names
(:mod:`skhbnn.models`), so nothing downstream can tell the routes apart.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .network import NetworkSpec
from .priors import MvNormalPrior

_LOG_2PI = math.log(2.0 * math.pi)

# Header slots shared by both kinds of model.
_XT, _Y, _N_ROWS, _N_FEATURES, _LAYOUT, _N_LAYERS, _ACT, _P = range(8)
# flat: prior mean, scale, Cholesky factor (n x n, n = 0 without one), floats
_F_MEAN, _F_SCALE, _F_L, _F_LN, _F_FLOATS, _F_EXPANDED = range(8, 14)
# hierarchical: group row starts, layer of each parameter, (offset, size) of
# each parameter array, floats (prior_sd, group_sd_prior, const)
_H_STARTS, _H_GROUPS, _H_PLAYER, _H_SEGMENTS, _H_NSEG, _H_FLOATS, _H_EXPANDED = range(
    8, 15
)
_HEADER_SIZE = 16


def layout_of(spec: NetworkSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(layout, player)``: per layer ``(n_in, n_out, w_offset, b_offset)``
    in the flattened parameter vector, and the layer of every entry."""
    sizes = spec.layer_sizes
    rows, player, offset = [], [], 0
    for layer in range(spec.n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        w_offset = offset
        offset += n_in * n_out
        b_offset = -1
        if spec.use_bias:
            b_offset = offset
            offset += n_out
        rows.append((n_in, n_out, w_offset, b_offset))
        player += [layer] * (offset - w_offset)
    return np.array(rows, dtype=np.int64), np.array(player, dtype=np.int64)


def _offsets(shapes: dict[str, tuple[int, ...]]):
    """``(name, shape, start, size)`` of each array laid end to end."""
    start = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        yield name, shape, start, size
        start += size


def _split(vector: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Split ``(..., total)`` into ``{name: (..., *shape)}``."""
    lead = vector.shape[:-1]
    return {
        name: vector[..., start : start + size].reshape((*lead, *shape))
        for name, shape, start, size in _offsets(shapes)
    }


def unflatten(theta: np.ndarray, spec: NetworkSpec) -> dict[str, np.ndarray]:
    """Split ``(..., P)`` into ``{name: (..., *shape)}`` in network order."""
    return _split(theta, spec.param_shapes())


@dataclass
class Problem:
    """One model and its data, packed for the kernels.

    ``header`` is what the C callbacks receive; ``arrays`` keeps every array
    it points to alive.  ``shapes`` are the posterior variables in the order
    the expand callback writes them.
    """

    kind: str  # "flat" or "hierarchical"
    n_dim: int
    header: np.ndarray
    arrays: tuple
    shapes: dict[str, tuple[int, ...]]
    # entries of the unconstrained vector whose initial value is not 0
    # (before the jitter): the log of the HalfNormal scales' support point
    init_offsets: dict[int, float]

    @property
    def n_expanded(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.shapes.values()))

    def initial_point(self, seed) -> np.ndarray:
        """PyMC's default for nutpie: support point plus U(-1, 1) jitter."""
        x = np.random.default_rng(seed).uniform(-1.0, 1.0, size=self.n_dim)
        for index, value in self.init_offsets.items():
            x[index] += value
        return x

    # Python access to the C callbacks (tests, diagnostics) -------------
    def logp_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density and gradient at ``x``, through the C callback."""
        callbacks = _callbacks()
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad = np.empty(self.n_dim)
        logp = np.empty(1)
        code = callbacks[self.kind][0].ctypes(
            self.n_dim, _ptr(x), _ptr(grad), _ptr(logp), self.header.ctypes.data
        )
        if code != 0:
            raise RuntimeError(f"log density callback failed with code {code}")
        return float(logp[0]), grad

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The posterior variables at ``x``, through the C callback."""
        callbacks = _callbacks()
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty(self.n_expanded)
        code = callbacks[self.kind][1].ctypes(
            self.n_dim, out.size, _ptr(x), _ptr(out), self.header.ctypes.data
        )
        if code != 0:
            raise RuntimeError(f"expand callback failed with code {code}")
        return _split(out, self.shapes)


def _ptr(array: np.ndarray):
    import ctypes

    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _activation_code(spec: NetworkSpec) -> int:
    from .density import ACTIVATION_CODES

    return ACTIVATION_CODES[spec.activation]


def _header(spec: NetworkSpec, XT: np.ndarray, y: np.ndarray, layout: np.ndarray, P: int):
    header = np.zeros(_HEADER_SIZE, dtype=np.int64)
    header[[_XT, _Y, _N_ROWS, _N_FEATURES, _LAYOUT, _N_LAYERS, _ACT, _P]] = [
        XT.ctypes.data,
        y.ctypes.data,
        y.size,
        XT.shape[0],
        layout.ctypes.data,
        layout.shape[0],
        _activation_code(spec),
        P,
    ]
    return header


def flat_problem(
    spec: NetworkSpec,
    X: np.ndarray,
    y: np.ndarray,
    prior_sd: float = 1.0,
    prior: MvNormalPrior | None = None,
) -> Problem:
    """The model of :func:`skhbnn.models.build_flat_model`.

    The unconstrained vector is ``z ~ N(0, I)``: the ``{name}_raw`` arrays in
    network order, or an MvNormal prior's ``{block}_raw`` vectors in block
    order; ``theta = scale * z`` or ``mean + L @ z``.
    """
    layout, player = layout_of(spec)
    shapes = spec.param_shapes()
    P = player.size
    XT = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)
    y = np.ascontiguousarray(y, dtype=np.int64)
    mean = np.zeros(P)
    scale = np.full(P, float(prior_sd))
    L = np.zeros((0, 0))
    if prior is None:
        raw_shapes = {f"{name}_raw": shape for name, shape in shapes.items()}
    else:
        raw_shapes = {}
        L = np.zeros((P, P))
        entries = unflatten(np.arange(P), spec)
        z_start = 0
        for block, members in prior.blocks(spec).items():
            idx = np.concatenate([entries[m].ravel() for m in members])
            mean[idx] = np.asarray(prior.means[block], dtype=float)
            L[idx, z_start : z_start + len(idx)] = prior.cholesky(block)
            raw_shapes[f"{block}_raw"] = (len(idx),)
            z_start += len(idx)
    floats = np.array([-0.5 * P * _LOG_2PI])  # log normaliser of z ~ N(0, I)
    out_shapes = {**raw_shapes, **shapes}
    header = _header(spec, XT, y, layout, P)
    header[[_F_MEAN, _F_SCALE, _F_L, _F_LN, _F_FLOATS]] = [
        mean.ctypes.data,
        scale.ctypes.data,
        L.ctypes.data,
        L.shape[0],
        floats.ctypes.data,
    ]
    problem = Problem("flat", P, header, (XT, y, layout, mean, scale, L, floats), out_shapes, {})
    header[_F_EXPANDED] = problem.n_expanded
    return problem


def hierarchical_problem(
    spec: NetworkSpec,
    X: np.ndarray,
    y: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    prior_sd: float = 1.0,
    group_sd_prior: float = 1.0,
) -> Problem:
    """The model of :func:`skhbnn.models.build_hierarchical_model`.

    ``codes`` are the group codes ``0 .. n_groups - 1`` of the rows of ``X``.
    The unconstrained vector is ``(log sd_l per layer, mu (P), raw (G x P))``.
    """
    layout, player = layout_of(spec)
    P, n_layers = player.size, spec.n_layers
    codes = np.asarray(codes, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    XT = np.ascontiguousarray(np.asarray(X, dtype=np.float64)[order].T)
    y = np.ascontiguousarray(np.asarray(y)[order], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))])
    starts = starts.astype(np.int64)
    shapes = spec.param_shapes()
    segments = np.array(
        [(start, size) for _, _, start, size in _offsets(shapes)], dtype=np.int64
    ).reshape(-1, 2)
    prior_sd, group_sd_prior = float(prior_sd), float(group_sd_prior)
    # Normal(0, prior_sd) on mu, Normal(0, 1) on raw, HalfNormal on each sd
    const = (
        -P * (0.5 * _LOG_2PI + math.log(prior_sd))
        - 0.5 * n_groups * P * _LOG_2PI
        + n_layers * (0.5 * math.log(2.0 / math.pi) - math.log(group_sd_prior))
    )
    floats = np.array([prior_sd, group_sd_prior, const])
    # the order PyMC's model gives: per parameter mu and raw, the sds, the weights
    out_shapes = {}
    for name, shape in shapes.items():
        out_shapes[f"{name}_mu"] = shape
        out_shapes[f"{name}_raw"] = (n_groups, *shape)
    out_shapes.update({f"sd{layer}": () for layer in range(n_layers)})
    out_shapes.update({name: (n_groups, *shape) for name, shape in shapes.items()})
    header = _header(spec, XT, y, layout, P)
    header[[_H_STARTS, _H_GROUPS, _H_PLAYER, _H_SEGMENTS, _H_NSEG, _H_FLOATS]] = [
        starts.ctypes.data,
        n_groups,
        player.ctypes.data,
        segments.ctypes.data,
        len(segments),
        floats.ctypes.data,
    ]
    offsets = {layer: math.log(group_sd_prior) for layer in range(n_layers)}
    problem = Problem(
        "hierarchical",
        n_layers + P + n_groups * P,
        header,
        (XT, y, layout, starts, player, segments, floats),
        out_shapes,
        offsets,
    )
    header[_H_EXPANDED] = problem.n_expanded
    return problem


_CALLBACKS: dict | None = None


def _callbacks() -> dict:
    """``{kind: (logp cfunc, expand cfunc)}``, compiled (or loaded from
    numba's cache) on first use."""
    global _CALLBACKS
    if _CALLBACKS is None:
        from . import _cfuncs

        _CALLBACKS = {
            "flat": (_cfuncs.flat_logp, _cfuncs.flat_expand),
            "hierarchical": (_cfuncs.hierarchical_logp, _cfuncs.hierarchical_expand),
        }
    return _CALLBACKS


_NEEDED_FIELDS = {
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


def compiled_model(problem: Problem):
    """A nutpie model that samples ``problem`` through the kernels, or
    ``None`` if the installed nutpie's ``CompiledPyMCModel`` lacks a field
    this needs (the caller then compiles the PyMC model)."""
    try:
        from nutpie.compile_pymc import CompiledPyMCModel
    except ImportError:
        return None
    fields = {f.name: f for f in dataclasses.fields(CompiledPyMCModel)}
    if not _NEEDED_FIELDS <= set(fields):
        return None
    try:
        logp, expand = _callbacks()[problem.kind]
    except Exception as exc:  # numba cannot build or cache the callbacks here
        warnings.warn(
            f"skhbnn's sampling kernels are unavailable ({type(exc).__name__}: {exc}); "
            "nutpie compiles the PyMC model instead, which is slower. Set "
            "SKHBNN_KERNELS=0 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    names = list(problem.shapes)
    dims = {
        name: tuple(f"{name}_dim_{i}" for i in range(len(shape)))
        for name, shape in problem.shapes.items()
    }
    coords = {
        dim: np.arange(size)
        for name, shape in problem.shapes.items()
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
        "n_expanded": problem.n_expanded,
        "shape_info": (
            names,
            [slice(None)] * len(names),
            [tuple(problem.shapes[n]) for n in names],
        ),
        "_n_dim": problem.n_dim,
        "_shapes": {n: tuple(s) for n, s in problem.shapes.items()},
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
