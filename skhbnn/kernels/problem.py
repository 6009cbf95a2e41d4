"""A model and its data packed for the kernels: the header the callbacks read.

:func:`pack_flat` and :func:`pack_hierarchical` are the kernel back-ends of
:class:`skhbnn.models.FlatModel` and :class:`skhbnn.models.HierarchicalModel`
(called through their ``build_kernel``); the posterior variables the expand
callback writes are the definition's variable table, in its order.  The
callbacks themselves are loaded by :func:`callbacks`, which checks their ABI
stamp (:mod:`skhbnn.kernels.abi`).
"""

from __future__ import annotations

import ctypes
import math
import threading
from dataclasses import dataclass

import numpy as np

from ..network import NetworkSpec, split_flat
from . import abi

_LOG_2PI = math.log(2.0 * math.pi)


def layout_of(spec: NetworkSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(layout, player)``: per layer ``(n_in, n_out, w_offset, b_offset)``
    in the flattened parameter vector (``b_offset = -1`` without biases), and
    the layer of every entry."""
    cuts = spec.param_slices()
    sizes = spec.layer_sizes
    rows, player = [], np.empty(spec.n_params, dtype=np.int64)
    for layer in range(spec.n_layers):
        w, b = cuts[f"w{layer}"], cuts.get(f"b{layer}")
        rows.append((sizes[layer], sizes[layer + 1], w.start, -1 if b is None else b.start))
        player[w] = layer
        if b is not None:
            player[b] = layer
    return np.array(rows, dtype=np.int64), player


@dataclass
class Problem:
    """One model and its data, packed for the kernels.

    ``header`` is what the C callbacks receive; ``arrays`` keeps every array
    it points to alive.  ``shapes`` are the posterior variables in the order
    the expand callback writes them (the model's variable table).
    """

    kind: str  # "flat" or "hierarchical"
    n_dim: int
    header: np.ndarray
    arrays: tuple
    shapes: dict[str, tuple[int, ...]]
    # entries of the unconstrained vector whose initial value is not 0
    # (before the jitter): the log of the HalfNormal scales' support point
    init_offsets: dict[int, float]
    # a population prior's components ``(means, sds, probabilities)``, each
    # (n_mix, P) and (n_mix,): a chain starts at one component drawn by its
    # seed with those probabilities, jittered by its sds
    init_centres: tuple | None = None
    # the free variables of ``shapes`` (a hierarchical model's: the group sds,
    # noise sds, means and offsets, ``n_dim`` values), which the expand
    # callback also writes alone when asked for ``n_dim`` values; empty where
    # it has no such short form (a flat model)
    free: tuple[str, ...] = ()

    @property
    def n_expanded(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.shapes.values()))

    def free_shapes(self) -> dict[str, tuple[int, ...]]:
        """``shapes`` of the free variables only (``shapes`` itself without
        a short form): what NUTS stores per draw."""
        return {n: self.shapes[n] for n in self.free} if self.free else dict(self.shapes)

    def initial_point(self, seed) -> np.ndarray:
        """PyMC's default for nutpie: support point plus U(-1, 1) jitter."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1.0, 1.0, size=self.n_dim)
        for index, value in self.init_offsets.items():
            x[index] += value
        if self.init_centres is not None:
            means, sds, _ = self.init_centres
            pick = rng.choice(means.shape[0], p=self.centre_probabilities())
            P = means.shape[1]
            x[:P] = means[pick] + sds[pick] * x[:P]
        return x

    def centre_probabilities(self) -> np.ndarray:
        """Which component a chain starts at: a population prior's estimate
        of each component's posterior probability given the data
        (:meth:`skhbnn.priors.PopulationPrior.component_posterior`)."""
        return self.init_centres[2]

    # Python access to the C callbacks (tests, diagnostics, the route check)
    def evaluate(self, x: np.ndarray) -> tuple[int, float, np.ndarray]:
        """The log density callback at ``x``: ``(return code, logp, gradient)``."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad = np.empty(self.n_dim)
        logp = np.empty(1)
        code = callbacks()[self.kind][0].ctypes(
            self.n_dim, _ptr(x), _ptr(grad), _ptr(logp), self.header.ctypes.data
        )
        return int(code), float(logp[0]), grad

    def logp_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density and gradient at ``x``, through the C callback."""
        code, logp, grad = self.evaluate(x)
        _check(code, "log density")
        return logp, grad

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The posterior variables at ``x``, through the C callback."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty(self.n_expanded)
        code = callbacks()[self.kind][1].ctypes(
            self.n_dim, out.size, _ptr(x), _ptr(out), self.header.ctypes.data
        )
        _check(code, "expand")
        return split_flat(out, self.shapes)

    def pack(self, values: dict) -> np.ndarray:
        """The unconstrained vector whose free variables are ``values`` (one
        draw's arrays by name): the inverse of :meth:`expand` (a continued
        chain starts there, :mod:`skhbnn.continuation`)."""
        shapes = self.free_shapes()
        flat = np.concatenate([np.asarray(values[n], dtype=float).ravel() for n in shapes])
        h = self.header
        if self.kind == "flat":
            x = flat[: self.n_dim].copy()
            P = int(h[abi.P])
            x[P:] = np.log(x[P:])  # a regression's noise sd
            return x
        # group sds and noise sds (log), then per parameter array its group
        # mean and its groups' offsets, laid out as mu (P) and raw (G x P)
        m0 = int(h[abi.H_NSD]) + int(h[abi.N_NOISE])
        P, G = int(h[abi.P]), int(h[abi.H_GROUPS])
        segments = self.arrays[6]  # (offset, size) of each parameter array
        x = np.empty(self.n_dim)
        x[:m0] = np.log(flat[:m0])
        k = m0
        raw = x[m0 + P:].reshape(G, P)
        for o, size in segments:
            x[m0 + o : m0 + o + size] = flat[k : k + size]
            k += size
            raw[:, o : o + size] = flat[k : k + G * size].reshape(G, size)
            k += G * size
        return x


class StaleKernelError(RuntimeError):
    """The compiled callbacks and the Python side disagree on the header."""


def _check(code: int, what: str) -> None:
    if code == abi.STALE:
        raise StaleKernelError(
            f"the {what} callback was compiled for another header layout (a stale "
            "numba cache); delete skhbnn/kernels/__pycache__/cfuncs*.nb[ci] or set "
            "NUMBA_CACHE_DIR to an empty folder."
        )
    if code != abi.OK:
        raise RuntimeError(f"{what} callback failed with code {code}")


def _ptr(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _weights(weights, n: int) -> np.ndarray:
    """Each row's likelihood weight (1 without ``sample_weight``)."""
    if weights is None:
        return np.ones(n)
    return np.ascontiguousarray(weights, dtype=np.float64)


def _targets(model, y) -> np.ndarray:
    """The targets as the kernels read them, float64: class labels
    ``0 .. n_classes - 1``, or a regression's standardised values."""
    if model.likelihood == "normal":
        return np.ascontiguousarray(y, dtype=np.float64)
    return np.ascontiguousarray(np.asarray(y, dtype=np.int64), dtype=np.float64)


def _noise(model) -> tuple[int, float, float]:
    """``(number of noise sds, their HalfNormal scale, its log normaliser)``;
    no noise sd for a classifier."""
    noise = model.noise_variables()
    if not noise:
        return 0, 1.0, 0.0
    scale = float(model.noise_prior)
    n = noise[0].size
    return n, scale, n * (0.5 * math.log(2.0 / math.pi) - math.log(scale))


def _header(spec, XT: np.ndarray, y: np.ndarray, w: np.ndarray, layout: np.ndarray):
    header = np.zeros(abi.HEADER_SIZE, dtype=np.int64)
    header[[abi.XT, abi.Y, abi.W, abi.N_ROWS, abi.N_FEATURES, abi.LAYOUT, abi.N_LAYERS]] = [
        XT.ctypes.data, y.ctypes.data, w.ctypes.data, y.size, XT.shape[0],
        layout.ctypes.data, len(layout),
    ]
    # tanh in arithmetic LLVM vectorises, equal to libm's within 2.2e-16 and
    # 1.4-1.6x faster per fit (benchmarks/README.md, "Session 22")
    header[abi.ACT] = (abi.FAST_TANH if spec.activation == "tanh"
                       else abi.ACTIVATION_CODES[spec.activation])
    header[abi.P] = spec.n_params
    header[abi.STAMP] = abi.ABI_STAMP
    return header


def pack_flat(model, X: np.ndarray, y: np.ndarray, weights=None) -> Problem:
    """The kernel back-end of :class:`skhbnn.models.FlatModel`.

    The unconstrained vector is ``z ~ N(0, I)``: the model's raw variables in
    table order (per parameter, or an MvNormal prior's blocks);
    ``theta = scale * z`` or ``mean + L @ z``; a regression's ``log sigma``
    last.  Under a population prior it is ``theta`` itself.
    """
    spec, prior = model.spec, model.prior
    layout, _ = layout_of(spec)
    P = spec.n_params
    n_noise, noise_scale, noise_const = _noise(model)
    XT = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)
    y = _targets(model, y)
    w = _weights(weights, y.size)
    mean = np.zeros(P)
    scale = np.full(P, float(model.prior_sd))
    L = np.zeros((0, 0))
    mix = (np.zeros((0, P)), np.zeros((0, P)), np.zeros(0))
    centres = None
    if model.mixture:
        means = np.ascontiguousarray(prior.means, dtype=np.float64)
        sds = np.ascontiguousarray(prior.sds, dtype=np.float64)
        mix = (means, 1.0 / sds, np.ascontiguousarray(prior.log_normalisers()))
        sigma = None if not n_noise else np.full(1, noise_scale)
        centres = (means, sds, prior.component_posterior(spec, X, y, weights, sigma=sigma)[0])
    elif prior is not None:
        L = np.zeros((P, P))
        cuts = spec.param_slices()
        z_start = 0
        for block, members in prior.blocks(spec).items():
            idx = np.concatenate([np.arange(P)[cuts[m]] for m in members])
            mean[idx] = np.asarray(prior.means[block], dtype=float)
            L[idx, z_start : z_start + len(idx)] = prior.cholesky(block)
            z_start += len(idx)
    # log normalisers of z ~ N(0, I) and of the noise sd's HalfNormal
    # (a population prior's normalisers are in its components' ``norm``)
    z_const = 0.0 if model.mixture else -0.5 * P * _LOG_2PI
    floats = np.array([z_const + noise_const, noise_scale])
    header = _header(spec, XT, y, w, layout)
    header[abi.N_NOISE] = n_noise
    header[[abi.F_MEAN, abi.F_SCALE, abi.F_L, abi.F_LN, abi.F_FLOATS]] = [
        mean.ctypes.data, scale.ctypes.data, L.ctypes.data, L.shape[0], floats.ctypes.data
    ]
    header[[abi.F_NMIX, abi.F_MIX_MEAN, abi.F_MIX_INVSD, abi.F_MIX_NORM]] = [
        mix[0].shape[0], mix[0].ctypes.data, mix[1].ctypes.data, mix[2].ctypes.data
    ]
    shapes = model.posterior_shapes()
    offsets = {P: math.log(noise_scale)} if n_noise else {}
    problem = Problem(
        "flat", P + n_noise, header, (XT, y, w, layout, mean, scale, L, floats, *mix),
        shapes, offsets, centres,
    )
    header[abi.F_EXPANDED] = problem.n_expanded
    return problem


def pack_hierarchical(model, X: np.ndarray, y: np.ndarray, codes: np.ndarray,
                      weights=None) -> Problem:
    """The kernel back-end of :class:`skhbnn.models.HierarchicalModel`.

    ``codes`` are the group codes ``0 .. n_groups - 1`` of the rows of ``X``.
    The unconstrained vector is ``(log sd per group sd of the table, log
    sigma per noise sd of a regression, mu (P), raw (G x P))``.
    """
    spec, n_groups = model.spec, model.n_groups
    layout, _ = layout_of(spec)
    P = spec.n_params
    sds = [v for v in model.variables() if v.role == "group_sd"]
    sd_index = {v.name: k for k, v in enumerate(sds)}
    n_sd = len(sds)
    player = np.empty(P, dtype=np.int64)  # the group sd of every entry
    for name, cut in spec.param_slices().items():
        player[cut] = sd_index[model.sd_of(name, spec.layer_of(name))]
    codes = np.asarray(codes, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    XT = np.ascontiguousarray(np.asarray(X, dtype=np.float64)[order].T)
    y = _targets(model, np.asarray(y)[order])
    w = _weights(None if weights is None else np.asarray(weights)[order], y.size)
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))])
    starts = starts.astype(np.int64)
    segments = np.array(
        [(cut.start, cut.stop - cut.start) for cut in spec.param_slices().values()],
        dtype=np.int64,
    ).reshape(-1, 2)
    prior_sd = float(model.prior_sd)
    sd_scales = np.array([model.sd_prior(v.param) for v in sds], dtype=np.float64)
    n_noise, noise_scale, noise_const = _noise(model)
    # Normal(0, prior_sd) on mu, Normal(0, 1) on raw, HalfNormal on each sd
    const = (
        -P * (0.5 * _LOG_2PI + math.log(prior_sd))
        - 0.5 * n_groups * P * _LOG_2PI
        + np.sum(0.5 * math.log(2.0 / math.pi) - np.log(sd_scales))
        + noise_const
    )
    floats = np.concatenate([[prior_sd, const, noise_scale], sd_scales])
    header = _header(spec, XT, y, w, layout)
    header[[abi.H_STARTS, abi.H_GROUPS, abi.H_PLAYER, abi.H_SEGMENTS, abi.H_NSEG]] = [
        starts.ctypes.data, n_groups, player.ctypes.data, segments.ctypes.data, len(segments)
    ]
    header[abi.H_FLOATS] = floats.ctypes.data
    header[abi.H_NSD] = n_sd
    header[abi.N_NOISE] = n_noise
    offsets = {k: math.log(scale) for k, scale in enumerate(sd_scales)}
    offsets.update({n_sd + k: math.log(noise_scale) for k in range(n_noise)})
    problem = Problem(
        "hierarchical",
        n_sd + n_noise + P + n_groups * P,
        header,
        (XT, y, w, layout, starts, player, segments, floats),
        model.posterior_shapes(),
        offsets,
        free=tuple(v.name for v in model.free_variables()),
    )
    header[abi.H_EXPANDED] = problem.n_expanded
    return problem


_CALLBACKS: dict | None = None
_LOCK = threading.Lock()
_NAMES = {
    "flat": ("flat_logp", "flat_expand"),
    "hierarchical": ("hierarchical_logp", "hierarchical_expand"),
}


def _stale(module) -> bool:
    """Whether any callback of ``module`` was compiled with another stamp: each
    is called with a header that holds only the stamp and sizes that cannot
    match, so a current callback answers WRONG_SIZE without touching memory."""
    header = np.zeros(abi.HEADER_SIZE, dtype=np.int64)
    header[abi.STAMP] = abi.ABI_STAMP
    header[abi.P] = 1
    address = header.ctypes.data
    for logp, expand in _NAMES.values():
        if getattr(module, logp).ctypes(0, None, None, None, address) == abi.STALE:
            return True
        if getattr(module, expand).ctypes(0, 0, None, None, address) == abi.STALE:
            return True
    return False


def callbacks() -> dict:
    """``{kind: (logp cfunc, expand cfunc)}``, compiled (or loaded from
    numba's cache) on first use; callbacks with another ABI stamp are never
    used (:func:`skhbnn.kernels.abi.refresh_dependent_caches` deletes such a
    cache before it loads; one found loaded anyway raises)."""
    global _CALLBACKS
    with _LOCK:
        if _CALLBACKS is None:
            from . import cfuncs

            if _stale(cfuncs):
                # abi.refresh_dependent_caches should have deleted this code
                # before it loaded (e.g. a cache copied in from elsewhere).
                # Recompiling here would link the stale symbols this process
                # has loaded, so clear the cache for the next process instead.
                abi.refresh_dependent_caches(force=True)
                raise StaleKernelError(
                    "skhbnn's kernels were loaded from a numba cache compiled from other "
                    "sources; the cache is now cleared: restart the Python process (or "
                    "set NUMBA_CACHE_DIR to an empty folder)."
                )
            _CALLBACKS = {
                kind: (getattr(cfuncs, logp), getattr(cfuncs, expand))
                for kind, (logp, expand) in _NAMES.items()
            }
    return _CALLBACKS
