"""Network structure and the one forward pass.

The forward pass is written once and runs on numpy arrays (prediction from
stored posterior draws) and on pytensor tensors (inside the PyMC model): both
libraries broadcast ``matmul`` over leading batch dimensions, so the same code
serves

* a flat network on data:          X (n, in)     @ W (in, out)
* one network per posterior draw:  X (n, in)     @ W (S, in, out)   -> (S, n, out)
* one network per group (padded):  X (G, M, in)  @ W (G, in, out)   -> (G, M, out)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

ACTIVATIONS = ("tanh", "relu", "logistic", "identity")
# Activations for which flipping the sign of a hidden unit's incoming and
# outgoing weights leaves the network function unchanged (f(-a) = -f(a)).
ODD_ACTIVATIONS = ("tanh", "identity")


@dataclass(frozen=True)
class NetworkSpec:
    """Shapes of an MLP: ``n_features -> hidden_layer_sizes -> n_outputs``.

    ``n_outputs`` is 1 for binary classification (one logit, Bernoulli
    likelihood) and the number of classes otherwise (softmax).
    """

    n_features: int
    hidden_layer_sizes: tuple[int, ...]
    n_outputs: int
    activation: str = "tanh"
    use_bias: bool = True

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.n_features, *self.hidden_layer_sizes, self.n_outputs)

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered ``{name: shape}``: ``w0, b0, w1, b1, ...`` (biases if used)."""
        shapes: dict[str, tuple[int, ...]] = {}
        sizes = self.layer_sizes
        for layer in range(self.n_layers):
            shapes[f"w{layer}"] = (sizes[layer], sizes[layer + 1])
            if self.use_bias:
                shapes[f"b{layer}"] = (sizes[layer + 1],)
        return shapes

    def layer_of(self, name: str) -> int:
        """Layer index of a parameter name (``"w1"`` -> 1)."""
        return int(name[1:])

    def param_slices(self, members=None) -> dict[str, slice]:
        """Where each parameter sits in the flattened vector (``param_shapes``
        order, each array row-major), or in the concatenation of ``members``
        only (an MvNormal prior's block): the one offset computation that the
        models, the kernels and the priors use."""
        shapes = self.param_shapes()
        if members is not None:
            shapes = {name: shapes[name] for name in members}
        return dict(_slices(shapes))

    def param_sizes(self) -> dict[str, int]:
        """Number of entries of each parameter."""
        return {name: cut.stop - cut.start for name, cut in self.param_slices().items()}

    @property
    def n_params(self) -> int:
        return sum(self.param_sizes().values())

    def unflatten(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Split ``(..., n_params)`` into ``{name: (..., *shape)}``."""
        return split_flat(theta, self.param_shapes())

    def flatten(self, params: dict, members=None) -> np.ndarray:
        """``{name: (..., *shape)}`` -> ``(..., size)``, over ``members`` (all
        parameters by default) in network order; ``...`` is the batch shape."""
        shapes = self.param_shapes()
        members = list(shapes) if members is None else list(members)
        parts = []
        for name in members:
            arr = np.asarray(params[name])
            lead = arr.shape[: arr.ndim - len(shapes[name])]
            parts.append(arr.reshape(*lead, -1))
        return np.concatenate(parts, axis=-1)


def _slices(shapes: dict[str, tuple[int, ...]]):
    """``(name, slice)`` of each array laid end to end, flattened."""
    start = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        yield name, slice(start, start + size)
        start += size


def split_flat(vector: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Split ``(..., total)`` into ``{name: (..., *shape)}``, arrays laid end
    to end in ``shapes`` order."""
    lead = vector.shape[:-1]
    return {
        name: vector[..., cut].reshape((*lead, *shapes[name]))
        for name, cut in _slices(shapes)
    }


def _activate(name: str, a, xp):
    if name == "tanh":
        return xp.tanh(a)
    if name == "relu":
        return xp.maximum(a, 0)
    if name == "logistic":
        # 1 / (1 + exp(-a)) overflows exp for a << 0 (features at 1e6): use the
        # libraries' stable sigmoids instead.
        if xp is np:
            return expit(a)
        return xp.sigmoid(a)
    return a


def forward(params, X, spec: NetworkSpec, xp=np, hidden_dtype=None, units_major=False):
    """Logits of the network.

    Parameters
    ----------
    params : mapping of str to array
        ``w{l}`` of shape ``(*batch, in, out)`` and ``b{l}`` of shape
        ``(*batch, out)``; ``batch`` broadcasts against the leading
        dimensions of ``X``.
    X : array of shape (*batch, n, n_features)
        Or ``(*batch, n_features, n)`` with ``units_major=True``.
    spec : NetworkSpec
    xp : module
        ``numpy`` or ``pytensor.tensor``.
    hidden_dtype : numpy dtype, optional
        numpy only: cast every hidden pre-activation to this dtype before the
        activation (prediction runs the hidden layers in float32; pass the
        weights of layers >= 1 in that dtype too).  The first layer's
        ``X @ w0 + b0`` is computed in the inputs' own precision.
    units_major : bool
        Work on transposed activations, ``h.T = w.T @ h.T``: rows are then
        the last, contiguous axis, so bias adds and activations run over long
        rows (1.9x faster prediction for networks with biases, see
        ``benchmarks/README.md``).

    Returns
    -------
    logits : array of shape (*batch, n, n_outputs)
        Or ``(*batch, n_outputs, n)`` with ``units_major=True``.
    """
    h = X
    for layer in range(spec.n_layers):
        w = params[f"w{layer}"]
        if units_major:
            h = xp.matmul(xp.swapaxes(w, -1, -2), h)  # (*batch, out, n)
        else:
            h = xp.matmul(h, w)  # (*batch, n, out)
        if spec.use_bias:
            b = params[f"b{layer}"]
            b = b[..., :, None] if units_major else b[..., None, :]
            if xp is np and np.broadcast_shapes(h.shape, b.shape) == h.shape:
                np.add(h, b, out=h)  # h is matmul's fresh array: 2.4x cheaper in place
            else:
                h = h + b
        if layer < spec.n_layers - 1:
            if hidden_dtype is not None:
                h = h.astype(hidden_dtype, copy=False)
            h = _activate(spec.activation, h, xp)
    return h


def class_outputs(n_classes: int) -> int:
    """Outputs of a classifier's network: one logit for two classes (the
    seed's ``softmax([0, z])``), one per class otherwise."""
    return 1 if n_classes <= 2 else n_classes


def logits_to_proba(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (..., n_classes) from logits (..., n_outputs), numpy."""
    if logits.shape[-1] == 1:
        # Binary: one logit; numerically stable sigmoid.
        p1 = np.exp(-np.logaddexp(0.0, -logits[..., 0]))
        return np.stack([1.0 - p1, p1], axis=-1)
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z
