"""PyMC models of flat and hierarchical Bayesian MLPs.

Every number that can change between fits of the same structure (data, prior
scales, informed prior means and Cholesky factors) is a ``pm.Data`` container,
so a model compiled once can be re-used with new values (see
:mod:`skhbnn.inference`).  Variable names in ``idata_.posterior``:

flat model
    ``w{l}``, ``b{l}``: the weights and biases of layer ``l``;
    ``w{l}_raw``, ``b{l}_raw``: their standard-normal (non-centred) versions
    (``joint_raw`` under a joint informed prior).
hierarchical model
    ``w{l}_mu``, ``b{l}_mu``: group-mean weights and biases of layer ``l``;
    ``sd{l}``: the group sd of layer ``l`` (one per layer);
    ``w{l}_raw``, ``b{l}_raw``: per-group standard-normal offsets, shape
    ``(n_groups, ...)``; ``w{l}``, ``b{l}``: per-group weights
    ``mu + sd * raw``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .network import NetworkSpec, forward
from .priors import MvNormalPrior


def _likelihood(logits, y, spec: NetworkSpec):
    """Bernoulli on one logit (binary) or Categorical on softmax logits.

    The binary case is written as a two-class Categorical on logits ``[0, z]``:
    the same likelihood as ``Bernoulli(logit_p=z)``, but its gradient comes
    from ``log_softmax``, which is stable by construction.  ``pm.Bernoulli``
    goes through ``p = sigmoid(z)`` and ``log(1 - p)`` and relies on graph
    rewrites to stabilise the gradient; in ADVI's graph they do not fire, the
    gradient becomes ``p / (1 - p) * (1 - p)`` and turns NaN once some
    ``z > 37`` (seen with 500 groups; benchmarks/README.md).
    """
    if spec.n_outputs == 1:
        logits = pt.concatenate([pt.zeros_like(logits), logits], axis=-1)
    return pm.Categorical("y_obs", logit_p=logits, observed=y)


def build_flat_model(
    spec: NetworkSpec,
    X: np.ndarray,
    y: np.ndarray,
    prior_sd: float = 1.0,
    prior: MvNormalPrior | None = None,
) -> pm.Model:
    """A flat Bayesian MLP.

    With ``prior=None`` every weight is ``Normal(0, prior_sd)``; with an
    :class:`~skhbnn.priors.MvNormalPrior` each parameter is
    ``MvNormal(mean, cov)``.  Both are written non-centred
    (``w = mean + L @ z``, ``z ~ N(0, I)``), which NUTS samples well.
    """
    with pm.Model() as model:
        X_data = pm.Data("X", np.asarray(X, dtype=float))
        y_data = pm.Data("y", np.asarray(y, dtype=np.int64))
        if prior is None:
            sd = pm.Data("prior_sd", np.asarray(float(prior_sd)))
        shapes = spec.param_shapes()
        params = {}
        if prior is None:
            for name, shape in shapes.items():
                raw = pm.Normal(f"{name}_raw", 0.0, 1.0, shape=shape)
                params[name] = pm.Deterministic(name, sd * raw)
        else:
            for block, members in prior.blocks(spec).items():
                mean = pm.Data(f"{block}_prior_mean", np.asarray(prior.means[block], float))
                chol = pm.Data(f"{block}_prior_chol", prior.cholesky(block))
                raw = pm.Normal(f"{block}_raw", 0.0, 1.0, shape=len(prior.means[block]))
                value = mean + pt.dot(chol, raw)
                start = 0
                for name in members:  # the block is the members, flattened, in order
                    size = int(np.prod(shapes[name]))
                    part = value[start : start + size].reshape(shapes[name])
                    params[name] = pm.Deterministic(name, part)
                    start += size
        _likelihood(forward(params, X_data, spec, xp=pt), y_data, spec)
    return model


def build_hierarchical_model(
    spec: NetworkSpec,
    X_pad: np.ndarray,
    y_obs: np.ndarray,
    obs_index: np.ndarray,
    prior_sd: float = 1.0,
    group_sd_prior: float = 1.0,
) -> pm.Model:
    """A hierarchical Bayesian MLP over groups (non-centred).

    Per group ``g`` and layer ``l``: ``w_g = mu_l + sd_l * raw_g``, with
    ``mu_l ~ Normal(0, prior_sd)``, ``sd_l ~ HalfNormal(group_sd_prior)`` and
    ``raw_g ~ Normal(0, 1)``.

    Parameters
    ----------
    X_pad : ndarray of shape (n_groups, max_rows, n_features)
        Rows laid out per group (see :func:`skhbnn.groups.pad_by_group`), so
        each layer is one batched matmul.
    y_obs : ndarray of shape (n_obs,)
        Labels of the real rows, in the order of ``obs_index``.
    obs_index : ndarray of shape (n_obs,)
        Positions of the real rows in the flattened ``(n_groups * max_rows)``
        layout; padding rows never enter the likelihood.
    """
    n_groups = X_pad.shape[0]
    with pm.Model() as model:
        X_data = pm.Data("X", np.asarray(X_pad, dtype=float))
        y_data = pm.Data("y", np.asarray(y_obs, dtype=np.int64))
        index = pm.Data("obs_index", np.asarray(obs_index, dtype=np.int64))
        mu_sd = pm.Data("prior_sd", np.asarray(float(prior_sd)))
        sd_scale = pm.Data("group_sd_prior", np.asarray(float(group_sd_prior)))
        layer_sd = [
            pm.HalfNormal(f"sd{layer}", sigma=sd_scale) for layer in range(spec.n_layers)
        ]
        params = {}
        for name, shape in spec.param_shapes().items():
            mu = pm.Normal(f"{name}_mu", 0.0, mu_sd, shape=shape)
            raw = pm.Normal(f"{name}_raw", 0.0, 1.0, shape=(n_groups, *shape))
            params[name] = pm.Deterministic(name, mu + layer_sd[spec.layer_of(name)] * raw)
        logits = forward(params, X_data, spec, xp=pt)  # (G, M, n_outputs)
        logits = logits.reshape((-1, spec.n_outputs))[index]
        _likelihood(logits, y_data, spec)
    return model
