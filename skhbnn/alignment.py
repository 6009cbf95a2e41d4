"""Aligning hidden units across MCMC chains.

A BNN posterior is symmetric: permuting the hidden units of a layer (and, for
odd activations such as tanh, flipping the sign of a unit's incoming and
outgoing weights) leaves the network function unchanged.  Independent chains
therefore land in different, equivalent modes.  Pooling their weights into one
distribution averages unrelated modes into mush, so before pooling we map every
chain onto the labelling of a reference chain.

Method: layer by layer, from the input side, each hidden unit is described by
its posterior-mean incoming weights (and bias).  The input side of layer 0 has
a fixed order, so the units of layer 0 can be matched to the reference chain's
with the Hungarian algorithm (cost: squared distance, or for odd activations
the smaller of the distances to the unit and to its negation).  Applying that
permutation/sign to the rows of the next layer fixes its input order, and the
matching proceeds to the next layer.

Chains are not the only place modes mix: a long single chain can also switch
labels between draws, and draws near a symmetric saddle differ from the mean
mode by a permutation.  :func:`align_draws` therefore goes on from the aligned
chains and matches every single draw to the current posterior mean, repeating
(mean, match) until no draw changes labelling (a k-means-like fixed point over
the symmetry group).  This is the default for informed priors.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .network import ODD_ACTIVATIONS, NetworkSpec


def match_units(
    units: np.ndarray, reference: np.ndarray, allow_sign_flip: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation and signs mapping ``units`` onto ``reference``.

    Returns ``perm, sign`` such that ``sign[j] * units[perm[j]]`` is the unit
    matched to ``reference[j]``.
    """
    diff_pos = ((units[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
    if allow_sign_flip:
        diff_neg = ((units[:, None, :] + reference[None, :, :]) ** 2).sum(-1)
        cost = np.minimum(diff_pos, diff_neg)
    else:
        diff_neg = None
        cost = diff_pos
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(cols), dtype=int)
    perm[cols] = rows
    sign = np.ones(len(cols))
    if diff_neg is not None:
        sign[cols] = np.where(diff_neg[rows, cols] < diff_pos[rows, cols], -1.0, 1.0)
    return perm, sign


def align_chains(params: dict[str, np.ndarray], spec: NetworkSpec, reference: int = 0):
    """Relabel hidden units of every chain to match the reference chain.

    Parameters
    ----------
    params : dict of str to ndarray
        Network parameters ``w{l}``, ``b{l}`` with shape
        ``(n_chains, n_draws, *extra, *param_shape)``: ``extra`` may hold a
        group dimension (hierarchical raw weights).  Parameters sharing the
        network's layout but with other names are not touched.
    spec : NetworkSpec
    reference : int
        Chain whose labelling is kept.

    Returns
    -------
    dict of str to ndarray
        New arrays; the input is not modified.
    """
    out = {k: np.array(v, copy=True) for k, v in params.items()}
    flip = spec.activation in ODD_ACTIVATIONS
    shapes = spec.param_shapes()
    for layer in range(spec.n_layers - 1):  # hidden layers only
        # Each chain's units described by their mean over draws (and groups).
        means = {
            k: out[k].reshape(out[k].shape[0], -1, *shapes[k]).mean(axis=1)
            for k in _incoming(layer, spec.use_bias)
        }
        units = _draw_unit_features(means, layer, spec.use_bias)  # (C, n, F)
        perm, sign = _match_all(units, units[reference], flip)
        perm[reference], sign[reference] = np.arange(perm.shape[1]), 1.0
        _relabel(out, layer, perm, sign, spec.use_bias)
    return out


def _incoming(layer: int, use_bias: bool) -> list[str]:
    return [f"w{layer}", f"b{layer}"] if use_bias else [f"w{layer}"]


def _match_all(units: np.ndarray, reference: np.ndarray, allow_sign_flip: bool):
    """:func:`match_units` of every ``units[i]``; ``perm, sign`` of shape (N, n)."""
    matches = [match_units(u, reference, allow_sign_flip) for u in units]
    return np.stack([m[0] for m in matches]), np.stack([m[1] for m in matches])


def _relabel(params: dict, layer: int, perm: np.ndarray, sign: np.ndarray, use_bias: bool):
    """Permute / sign-flip hidden layer ``layer`` of every leading-axis entry
    (``perm``, ``sign`` of shape (N, n)): the columns of ``w{layer}`` and
    ``b{layer}`` and the rows of ``w{layer + 1}``, in place in ``params``."""
    for k in _incoming(layer, use_bias):
        params[k] = _permute_units(params[k], perm, sign, -1)
    params[f"w{layer + 1}"] = _permute_units(params[f"w{layer + 1}"], perm, sign, -2)


def _draw_unit_features(params, layer: int, use_bias: bool) -> np.ndarray:
    """(N, n_units, F): every draw's incoming weights (and bias) per unit."""
    w = params[f"w{layer}"]  # (N, *extra, in, out)
    n = w.shape[0]
    feats = [np.swapaxes(w.reshape(n, -1, w.shape[-1]), 1, 2)]
    if use_bias:
        b = params[f"b{layer}"]
        feats.append(np.swapaxes(b.reshape(n, -1, b.shape[-1]), 1, 2))
    return np.concatenate(feats, axis=2)


def _permute_units(arr: np.ndarray, perm: np.ndarray, sign: np.ndarray, axis: int) -> np.ndarray:
    """Apply a permutation/sign per leading-axis entry (each ``(N, n)``) along
    ``axis``; other axes broadcast."""
    shape = [1] * arr.ndim
    shape[0], shape[axis] = perm.shape
    idx = perm.reshape(shape)
    return np.take_along_axis(arr, idx, axis=axis) * sign.reshape(shape)


def align_draws(params: dict[str, np.ndarray], spec: NetworkSpec, max_iter: int = 20):
    """Relabel the hidden units of every posterior draw onto a common mode.

    Starts from :func:`align_chains`, then alternates between the mean of
    all draws and a per-draw Hungarian match to that mean, until no draw
    changes (or ``max_iter`` rounds).  Same input / output conventions as
    :func:`align_chains`; parameters may carry extra (group) dimensions.
    """
    names = list(spec.param_shapes())
    out = align_chains(params, spec)
    lead = out[names[0]].shape[:2]
    flat = {k: out[k].reshape(-1, *out[k].shape[2:]) for k in names}
    flip = spec.activation in ODD_ACTIVATIONS
    hidden = range(spec.n_layers - 1)
    for _ in range(max_iter):
        ref = {k: v.mean(axis=0, keepdims=True) for k, v in flat.items()}
        changed = False
        for layer in hidden:
            units = _draw_unit_features(flat, layer, spec.use_bias)
            refu = _draw_unit_features(ref, layer, spec.use_bias)[0]
            perm, sign = _match_all(units, refu, flip)
            if (perm == np.arange(perm.shape[1])).all() and (sign == 1).all():
                continue
            changed = True
            _relabel(flat, layer, perm, sign, spec.use_bias)
        if not changed:
            break
    for k in names:
        out[k] = flat[k].reshape(*lead, *flat[k].shape[1:])
    return out


ALIGN_OPTIONS = ("draws", "chains", "none")


def align(params: dict[str, np.ndarray], spec: NetworkSpec, how="draws"):
    """Dispatch on ``how``: ``"draws"``, ``"chains"`` or ``"none"``.

    ``True`` means ``"draws"`` and ``False`` / ``None`` mean ``"none"``.
    """
    how = check_align(how)
    if how == "draws":
        return align_draws(params, spec)
    if how == "chains":
        return align_chains(params, spec)
    return params


def check_align(how) -> str:
    """Normalise the ``align`` option, raising a helpful error."""
    if how is True:
        return "draws"
    if how is False or how is None:
        return "none"
    if isinstance(how, str) and how in ALIGN_OPTIONS:
        return how
    raise ValueError(
        f"align must be one of {ALIGN_OPTIONS} (or True / False), got {how!r}. "
        "'draws' matches every posterior draw's hidden units to the posterior "
        "mean (the default), 'chains' only matches whole chains."
    )
