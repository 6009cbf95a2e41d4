"""The flat Bayesian MLP: one network, ``Normal(0, prior_sd)`` or informed
MvNormal priors on its weights, written non-centred.

Posterior variables (the table, in order): ``{p}_raw`` per parameter ``p``
(``w0, b0, w1, ...``), or ``{block}_raw`` per block of an MvNormal prior
(``joint_raw`` for a joint one), all ``Normal(0, 1)``; then the weights
``{p} = prior_sd * {p}_raw`` or ``mean + L @ {block}_raw``.  Under a
:class:`~skhbnn.priors.PopulationPrior` (a mixture of Normals) the one free
variable is ``theta``, all weights flattened in network order, centred (a
mixture has no non-centred form).  A regression
(``likelihood="normal"``) has its noise sd ``sigma ~ HalfNormal(noise_prior)``
between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..network import NetworkSpec, forward
from ..priors import MvNormalPrior, PopulationPrior
from .definition import ModelDefinition, Variable, likelihood, noise_sd


@dataclass(frozen=True, eq=False)
class FlatModel(ModelDefinition):
    """A flat Bayesian MLP (see the module docstring for its variables)."""

    kind: ClassVar[str] = "flat"
    spec: NetworkSpec
    prior_sd: float = 1.0
    prior: MvNormalPrior | PopulationPrior | None = None
    likelihood: str = "categorical"  # or "normal" (a regression)
    noise_prior: float = 1.0

    @property
    def mixture(self) -> bool:
        """Whether the prior is a population prior (a mixture)."""
        return isinstance(self.prior, PopulationPrior)

    def blocks(self) -> dict[str, list[str]]:
        """``{block: [parameters]}``: one block per parameter without an
        informed prior, else the prior's blocks (one, ``theta``, for a
        population prior)."""
        if self.mixture:
            return {"theta": list(self.spec.param_shapes())}
        if self.prior is None:
            return {name: [name] for name in self.spec.param_shapes()}
        return self.prior.blocks(self.spec)

    def variables(self) -> tuple[Variable, ...]:
        spec, shapes, sizes = self.spec, self.spec.param_shapes(), self.spec.param_sizes()
        raws = []
        if self.mixture:
            raws.append(Variable("theta", (spec.n_params,), "mixture", None, "theta"))
        for block, members in ({} if self.mixture else self.blocks()).items():
            layer = spec.layer_of(members[0]) if len(members) == 1 else None
            shape = shapes[block] if self.prior is None else (sum(sizes[m] for m in members),)
            raws.append(Variable(f"{block}_raw", shape, "raw", layer, block))
        if self.likelihood == "normal":
            raws.append(Variable("sigma", (), "noise"))
        weights = [
            Variable(name, shape, "weight", spec.layer_of(name), name)
            for name, shape in shapes.items()
        ]
        return (*raws, *weights)

    def cache_key(self) -> tuple:
        if self.mixture:  # the number of components is a shape in the graph
            blocks = ("theta", self.prior.n_components)
        else:
            blocks = None if self.prior is None else tuple(self.prior.blocks(self.spec))
        return (self.kind, self.spec, blocks, self.likelihood)

    def build_kernel(self, X, y, codes=None, weights=None):
        """The model packed for skhbnn's kernels (:mod:`skhbnn.kernels`)."""
        from ..kernels.problem import pack_flat

        return pack_flat(self, X, y, weights)

    def build_pymc(self, X, y, codes=None, weights=None):
        """The PyMC model.  Every number that can change between fits of the
        same structure (data, prior scale, informed means and Cholesky
        factors) is a ``pm.Data`` container, so a model compiled once can be
        re-used with new values (:mod:`skhbnn.inference`)."""
        import pymc as pm
        import pytensor.tensor as pt

        spec, shapes = self.spec, self.spec.param_shapes()
        table = self.variables()
        with pm.Model() as model:
            X_data = pm.Data("X", np.asarray(X, dtype=float))
            regression = self.likelihood == "normal"
            y_data = pm.Data("y", np.asarray(y, dtype=float if regression else np.int64))
            if self.prior is None:
                sd = pm.Data("prior_sd", np.asarray(float(self.prior_sd)))
            raw, sigma = {}, None
            for v in table:
                if v.role == "mixture":
                    raw[v.param] = _mixture(v, self.prior)
                elif v.role == "raw":
                    raw[v.param] = pm.Normal(v.name, 0.0, 1.0, shape=v.shape)
                elif v.role == "noise":
                    scale = pm.Data("noise_prior", np.asarray(float(self.noise_prior)))
                    sigma = noise_sd(v.name, v.shape, scale)
            values = {}
            for block, members in self.blocks().items():
                if self.prior is None:
                    values[block] = sd * raw[block]
                    continue
                if self.mixture:  # the free variable is the weights themselves
                    value = raw[block]
                else:
                    mean = pm.Data(f"{block}_prior_mean", np.asarray(self.prior.means[block], float))
                    chol = pm.Data(f"{block}_prior_chol", self.prior.cholesky(block))
                    value = mean + pt.dot(chol, raw[block])
                # the block is its members, flattened, in order
                for name, cut in spec.param_slices(members).items():
                    values[name] = value[cut].reshape(shapes[name])
            params = {v.name: pm.Deterministic(v.name, values[v.param]) for v in table if not v.free}
            likelihood(forward(params, X_data, spec, xp=pt), y_data, spec, weights, sigma)
        return model


def _mixture(variable, prior: PopulationPrior):
    """The flattened weights under a population prior: a ``pm.Flat`` with the
    mixture's log density added as a ``pm.Potential`` (``pm.Mixture`` mixes
    each entry separately, not whole vectors), started at the first
    component's mean.  Means, inverse sds and log weights are ``pm.Data``."""
    import pymc as pm
    import pytensor.tensor as pt

    means = np.asarray(prior.means, dtype=float)
    sds = np.asarray(prior.sds, dtype=float)
    theta = pm.Flat(variable.name, shape=variable.shape, initval=means[0])
    mean = pm.Data("theta_prior_means", means)
    inv_sd = pm.Data("theta_prior_inv_sds", 1.0 / sds)
    norm = pm.Data("theta_prior_log_norm", prior.log_normalisers())
    z = (theta[None, :] - mean) * inv_sd
    pm.Potential("theta_prior", pt.logsumexp(norm - 0.5 * pt.sum(z * z, axis=1)))
    return theta
