"""The hierarchical Bayesian MLP over groups, non-centred.

Per group ``g`` and network parameter ``p``: ``p_g = p_mu + sd * p_raw_g`` with
``p_mu ~ Normal(0, prior_sd)``, ``sd ~ HalfNormal(group_sd_prior)`` and
``p_raw_g ~ Normal(0, 1)``.  Each layer has one group sd for its weights
(``sd{l}``) and, with biases, one for its biases (``sd_b{l}``): groups that
differ in their weights need not differ in their offsets, and a bias sharing
its layer's sd would be as free to vary between groups as the weights are
(``benchmarks/README.md``, "Default fits").

A regression (``likelihood="normal"``) adds its noise sd ``sigma ~
HalfNormal(noise_prior)``: one, or one per group (``group_noise=True``,
shape ``(n_groups,)``, independent HalfNormals).

Posterior variables (the table, in order): ``sd{l}`` per layer, then
``sd_b{l}`` per layer with biases, then a regression's ``sigma``; per
network parameter ``p``
(``w0, b0, w1, ...``) its group mean ``{p}_mu`` and the per-group offsets
``{p}_raw`` of shape ``(n_groups, ...)``; then the per-group weights ``{p}``
of shape ``(n_groups, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..network import NetworkSpec, forward
from .definition import ModelDefinition, Variable, likelihood, noise_sd


def group_sd_name(param: str, layer: int) -> str:
    """``sd{l}`` for the weights ``w{l}``, ``sd_b{l}`` for the biases ``b{l}``."""
    return f"sd{layer}" if param.startswith("w") else f"sd_b{layer}"


@dataclass(frozen=True, eq=False)
class HierarchicalModel(ModelDefinition):
    """A hierarchical Bayesian MLP (see the module docstring for its variables)."""

    kind: ClassVar[str] = "hierarchical"
    spec: NetworkSpec
    n_groups: int
    prior_sd: float = 1.0
    group_sd_prior: float = 1.0
    bias_group_sd_prior: float | None = None  # None: group_sd_prior
    likelihood: str = "categorical"  # or "normal" (a regression)
    noise_prior: float = 1.0
    group_noise: bool = False  # a regression: one noise sd per group

    def sd_prior(self, kind: str) -> float:
        """The HalfNormal scale of the group sds of weights (``kind="w"``)
        or biases (``"b"``)."""
        if kind == "b" and self.bias_group_sd_prior is not None:
            return float(self.bias_group_sd_prior)
        return float(self.group_sd_prior)

    def variables(self) -> tuple[Variable, ...]:
        spec, G = self.spec, self.n_groups
        table = [Variable(f"sd{layer}", (), "group_sd", layer, "w") for layer in range(spec.n_layers)]
        if spec.use_bias:
            table += [
                Variable(f"sd_b{layer}", (), "group_sd", layer, "b")
                for layer in range(spec.n_layers)
            ]
        if self.likelihood == "normal":
            table.append(Variable("sigma", (G,) if self.group_noise else (), "noise"))
        weights = []
        for name, shape in spec.param_shapes().items():
            layer = spec.layer_of(name)
            table.append(Variable(f"{name}_mu", shape, "mean", layer, name))
            table.append(Variable(f"{name}_raw", (G, *shape), "raw", layer, name))
            weights.append(Variable(name, (G, *shape), "weight", layer, name))
        return (*table, *weights)

    @staticmethod
    def sd_of(param: str, layer: int) -> str:
        """The group sd that scales network parameter ``param`` of ``layer``."""
        return group_sd_name(param, layer)

    def prediction_names(self) -> list[str]:
        """Per network parameter its per-group weights and group mean, then
        the group sds."""
        table = self.variables()
        mean_of = {v.param: v.name for v in table if v.role == "mean"}
        names = []
        for v in table:
            if v.role == "weight":
                names += [v.name, mean_of[v.param]]
        return names + [v.name for v in table if v.role in ("group_sd", "noise")]

    def weight_values(self, free: dict, batch_ndim: int = 0) -> dict:
        """The per-group weights ``mu + sd * raw`` of the table from values
        of its free variables (``free``: PyMC variables, or arrays with
        ``batch_ndim`` leading axes such as chain and draw)."""
        out = {}
        for v in self.variables():
            if v.free:
                continue
            mu, sd = free[f"{v.param}_mu"], free[self.sd_of(v.param, v.layer)]
            raw = free[f"{v.param}_raw"]
            if batch_ndim:  # the group axis on mu, the weight's axes on sd
                mu = mu[(slice(None),) * batch_ndim + (None,)]
                sd = sd[(...,) + (None,) * (raw.ndim - sd.ndim)]
            out[v.name] = mu + sd * raw
        return out

    def cache_key(self) -> tuple:
        noise = self.likelihood, self.likelihood == "normal" and self.group_noise
        return (self.kind, self.spec, self.n_groups, *noise)

    def build_kernel(self, X, y, codes=None, weights=None):
        """The model packed for skhbnn's kernels (:mod:`skhbnn.kernels`)."""
        from ..kernels.problem import pack_hierarchical

        return pack_hierarchical(self, X, y, codes, weights)

    def build_pymc(self, X, y, codes=None, weights=None):
        """The PyMC model.  Rows are laid out per group
        (:func:`skhbnn.groups.pad_by_group`), so each layer is one batched
        matmul; padding rows never enter the likelihood.  Data and prior
        scales are ``pm.Data`` containers (see :class:`FlatModel`)."""
        import pymc as pm
        import pytensor.tensor as pt

        from ..groups import pad_by_group

        spec = self.spec
        regression = self.likelihood == "normal"
        X_pad, y_pad, obs_index = pad_by_group(X, y, codes, self.n_groups)
        y_obs = y_pad.reshape(-1)[obs_index]
        if weights is not None:  # in the same order as y_obs
            weights = pad_by_group(X, np.asarray(weights, float), codes, self.n_groups)[1]
            weights = weights.reshape(-1)[obs_index]
        with pm.Model() as model:
            X_data = pm.Data("X", np.asarray(X_pad, dtype=float))
            y_data = pm.Data("y", np.asarray(y_obs, dtype=float if regression else np.int64))
            index = pm.Data("obs_index", np.asarray(obs_index, dtype=np.int64))
            mu_sd = pm.Data("prior_sd", np.asarray(float(self.prior_sd)))
            sd_scale = {
                "w": pm.Data("group_sd_prior", np.asarray(float(self.group_sd_prior))),
                "b": pm.Data("bias_group_sd_prior", np.asarray(self.sd_prior("b"))),
            }
            rv, sigma = {}, None
            for v in self.free_variables():
                if v.role == "group_sd":
                    rv[v.name] = pm.HalfNormal(v.name, sigma=sd_scale[v.param])
                elif v.role == "noise":
                    scale = pm.Data("noise_prior", np.asarray(float(self.noise_prior)))
                    sigma = noise_sd(v.name, v.shape, scale)
                    if v.shape:  # each observed row's group: its padded row // M
                        group = pm.Data("obs_group", obs_index // X_pad.shape[1])
                        sigma = sigma[group]
                else:
                    rv[v.name] = pm.Normal(v.name, 0.0, mu_sd if v.role == "mean" else 1.0, shape=v.shape)
            params = {
                name: pm.Deterministic(name, value)
                for name, value in self.weight_values(rv).items()
            }
            logits = forward(params, X_data, spec, xp=pt)  # (G, M, n_outputs)
            logits = logits.reshape((-1, spec.n_outputs))[index]
            likelihood(logits, y_data, spec, weights, sigma)
        return model
