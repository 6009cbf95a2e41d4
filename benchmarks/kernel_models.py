"""The BNN models as numba log densities for nutpie (the fast NUTS path).

:mod:`skhbnn.models` writes each model in PyMC; here the same model is
packed for the hand-written kernels of :mod:`benchmarks.kernel_density` and
handed to nutpie through its public ``nutpie.compiled_pyfunc.from_pyfunc``
interface.  Posterior variables carry the PyMC models' names, shapes and
dimension names.

A prototype, measured by ``benchmarks/probe_kernel.py`` and not used by the
estimators: the kernel evaluates the seed's hierarchical log density and
gradient 2.5x faster than nutpie's pytensor-compiled function, but nutpie's
public Python-callback route costs far more per call than the kernel saves
(``benchmarks/README.md``, "Session 3: a hand-written gradient kernel").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from skhbnn.network import NetworkSpec
from skhbnn.priors import MvNormalPrior

_LOG_2PI = math.log(2.0 * math.pi)


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


def _unflatten(theta: np.ndarray, spec: NetworkSpec) -> dict[str, np.ndarray]:
    """Split ``(..., P)`` into ``{name: (..., *shape)}`` in network order."""
    out, start = {}, 0
    for name, shape in spec.param_shapes().items():
        size = int(np.prod(shape))
        out[name] = theta[..., start : start + size].reshape(*theta.shape[:-1], *shape)
        start += size
    return out


@dataclass
class KernelModel:
    """A log density on an unconstrained vector, with what nutpie needs."""

    n_dim: int
    logp_grad: Callable[[np.ndarray, np.ndarray], float]
    expand: Callable[[np.ndarray], dict[str, np.ndarray]]
    shapes: dict[str, tuple[int, ...]]
    # entries of the unconstrained vector whose initial value is not 0
    # (before nutpie's jitter): log of the HalfNormal scales' support point
    init_offsets: dict[int, float] = field(default_factory=dict)

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        grad = np.empty(self.n_dim)
        return float(self.logp_grad(np.ascontiguousarray(x, dtype=float), grad)), grad

    def initial_point(self, seed: int) -> np.ndarray:
        """PyMC's default for nutpie: support point plus U(-1, 1) jitter."""
        x = np.random.default_rng(seed).uniform(-1.0, 1.0, size=self.n_dim)
        for index, value in self.init_offsets.items():
            x[index] += value
        return x

    def _expand_contiguous(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {
            k: np.array(v, dtype=float, order="C") for k, v in self.expand(x).items()
        }

    def to_nutpie(self):
        from nutpie.compiled_pyfunc import from_pyfunc

        names = list(self.shapes)
        dims = {
            name: tuple(f"{name}_dim_{i}" for i in range(len(shape)))
            for name, shape in self.shapes.items()
        }
        coords = {
            dim: np.arange(size)
            for name, shape in self.shapes.items()
            for dim, size in zip(dims[name], shape)
        }
        return from_pyfunc(
            ndim=self.n_dim,
            make_logp_fn=lambda: self.logp,
            make_expand_fn=lambda seed1, seed2, chain: self._expand_contiguous,
            make_initial_point_fn=self.initial_point,
            expanded_dtypes=[np.dtype("float64")] * len(names),
            expanded_shapes=[self.shapes[name] for name in names],
            expanded_names=names,
            dims={name: dim for name, dim in dims.items() if dim},
            coords=coords,
        )


def _activation_code(spec: NetworkSpec) -> int:
    from .kernel_density import ACTIVATION_CODES

    return ACTIVATION_CODES[spec.activation]


def flat_kernel_model(
    spec: NetworkSpec,
    X: np.ndarray,
    y: np.ndarray,
    prior_sd: float = 1.0,
    prior: MvNormalPrior | None = None,
) -> KernelModel:
    """The model of :func:`skhbnn.models.build_flat_model` as a kernel."""
    from .kernel_density import flat_logp_grad

    layout, player = layout_of(spec)
    shapes = spec.param_shapes()
    P = player.size
    XT = np.ascontiguousarray(np.asarray(X, dtype=float).T)
    y = np.ascontiguousarray(y, dtype=np.int64)
    act = _activation_code(spec)
    mean = np.zeros(P)
    scale = np.full(P, float(prior_sd))
    L = np.empty((0, 0))
    if prior is None:
        raw_shapes = {f"{name}_raw": shape for name, shape in shapes.items()}
    else:
        # z is the blocks' raw vectors concatenated; each block is its
        # members' entries of theta, in network order
        raw_shapes = {}
        L = np.zeros((P, P))
        entries = _unflatten(np.arange(P), spec)
        z_start = 0
        for block, members in prior.blocks(spec).items():
            idx = np.concatenate([entries[m].ravel() for m in members])
            mean[idx] = np.asarray(prior.means[block], dtype=float)
            L[idx, z_start : z_start + len(idx)] = prior.cholesky(block)
            raw_shapes[f"{block}_raw"] = (len(idx),)
            z_start += len(idx)
    const = -0.5 * P * _LOG_2PI  # z ~ N(0, I)

    def logp_grad(z, grad):
        return flat_logp_grad(z, XT, y, layout, act, mean, scale, L, const, grad)

    def expand(z):
        theta = mean + (L @ z if L.size else scale * z)
        out, start = {}, 0
        for raw, rshape in raw_shapes.items():
            size = int(np.prod(rshape))
            out[raw] = z[start : start + size].reshape(rshape)
            start += size
        out.update(_unflatten(theta, spec))
        return out

    return KernelModel(P, logp_grad, expand, {**raw_shapes, **shapes})


def hierarchical_kernel_model(
    spec: NetworkSpec,
    X: np.ndarray,
    y: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    prior_sd: float = 1.0,
    group_sd_prior: float = 1.0,
) -> KernelModel:
    """The model of :func:`skhbnn.models.build_hierarchical_model` as a kernel.

    ``codes`` are group codes ``0 .. n_groups - 1`` of the rows of ``X``.
    """
    from .kernel_density import hierarchical_logp_grad

    layout, player = layout_of(spec)
    P, L_ = player.size, spec.n_layers
    order = np.argsort(codes, kind="stable")
    XT = np.ascontiguousarray(np.asarray(X, dtype=float)[order].T)
    y = np.ascontiguousarray(np.asarray(y)[order], dtype=np.int64)
    starts = np.concatenate(
        [[0], np.cumsum(np.bincount(codes, minlength=n_groups))]
    ).astype(np.int64)
    act = _activation_code(spec)
    prior_sd, group_sd_prior = float(prior_sd), float(group_sd_prior)
    # Normal(0, prior_sd) on mu, Normal(0, 1) on raw, HalfNormal(s) on sd
    const = (
        -P * (0.5 * _LOG_2PI + math.log(prior_sd))
        - 0.5 * n_groups * P * _LOG_2PI
        + L_ * (0.5 * math.log(2.0 / math.pi) - math.log(group_sd_prior))
    )

    def logp_grad(x, grad):
        return hierarchical_logp_grad(
            x, XT, y, starts, layout, act, player, prior_sd, group_sd_prior, const, grad
        )

    shapes = spec.param_shapes()

    def expand(x):
        sd = np.exp(x[:L_])
        mu = x[L_ : L_ + P]
        raw = x[L_ + P :].reshape(n_groups, P)
        theta = mu + sd[player] * raw
        out = {f"{name}_mu": v for name, v in _unflatten(mu, spec).items()}
        out.update({f"{name}_raw": v for name, v in _unflatten(raw, spec).items()})
        out.update({f"sd{layer}": sd[layer] for layer in range(L_)})
        out.update(_unflatten(theta, spec))
        return out

    out_shapes = {f"{name}_mu": shape for name, shape in shapes.items()}
    out_shapes.update(
        {f"{name}_raw": (n_groups, *shape) for name, shape in shapes.items()}
    )
    out_shapes.update({f"sd{layer}": () for layer in range(L_)})
    out_shapes.update({name: (n_groups, *shape) for name, shape in shapes.items()})
    offsets = {layer: math.log(group_sd_prior) for layer in range(L_)}
    return KernelModel(L_ + P + n_groups * P, logp_grad, expand, out_shapes, offsets)
