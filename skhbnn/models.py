"""PyMC models of flat and hierarchical Bayesian MLPs.

Every number that can change between fits of the same structure (data, prior
scales, informed prior means and Cholesky factors) is a ``pm.Data`` container,
so a model compiled once can be re-used with new values (see
:mod:`skhbnn.inference`).  Variable names in ``idata_.posterior``:

flat model
    ``w{l}``, ``b{l}``: the weights and biases of layer ``l``;
    ``w{l}_raw``, ``b{l}_raw``: their standard-normal (non-centred) versions.
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
    """Bernoulli on one logit (binary) or Categorical on softmax logits."""
    if spec.n_outputs == 1:
        return pm.Bernoulli("y_obs", logit_p=logits[..., 0], observed=y)
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
        params = {}
        for name, shape in spec.param_shapes().items():
            raw = pm.Normal(f"{name}_raw", 0.0, 1.0, shape=shape)
            if prior is None:
                value = sd * raw
            else:
                mean = pm.Data(f"{name}_prior_mean", np.asarray(prior.means[name], float))
                chol = pm.Data(f"{name}_prior_chol", prior.cholesky(name))
                value = (mean + pt.dot(chol, raw.reshape((-1,)))).reshape(shape)
            params[name] = pm.Deterministic(name, value)
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
