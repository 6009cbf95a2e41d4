"""What a model definition is: a table of variables, and two back-ends.

A model kind (:class:`~skhbnn.models.FlatModel`,
:class:`~skhbnn.models.HierarchicalModel`) is one class holding its structure
(the network, the number of groups, the prior) and its **variable table**:
every posterior variable's name, shape, role and layer, in the order the
PyMC model creates them and the kernels' expand callback writes them.  Both
back-ends are methods with the same signature, ``build_pymc(X, y, codes,
weights)`` and ``build_kernel(X, y, codes, weights)`` (``codes``: group codes
of the rows; ``weights``: each row's likelihood weight, ``None`` for 1), and everything else (posterior names,
what prediction reads, ADVI's starting variables, the compile cache key) is
derived from the table.  ``tests/test_models.py`` checks that both back-ends
follow the table for random structures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..network import NetworkSpec

# What each role is.  Free roles are sampled; "weight" is deterministic.
ROLES = {
    "raw": "standard-normal offsets (non-centred), Normal(0, 1)",
    "mean": "group-mean weights, Normal(0, prior_sd)",
    "group_sd": "the group sd of one layer's weights (param 'w') or biases (param 'b'), "
    "HalfNormal(group_sd_prior)",
    "noise": "the observation noise sd of a regression, one or one per group, "
    "HalfNormal(noise_prior), in units of the standardised target",
    "mixture": "all weights flattened in network order, under a population prior "
    "(a mixture of Normals, one per draw of a hierarchical posterior)",
    "weight": "network weights and biases (deterministic)",
}

# The likelihoods a model can have: "categorical" for classifiers (Bernoulli
# on one logit, Categorical on softmax logits), "normal" for regressors
# (Normal around the network's one output, with a learned noise sd).
LIKELIHOODS = ("categorical", "normal")


@dataclass(frozen=True)
class Variable:
    """One posterior variable of a model.

    ``param`` is the network parameter (``w0``, ``b0``, ...) the variable
    belongs to, or an MvNormal prior's block; ``layer`` its layer (``None``
    for a joint block).
    """

    name: str
    shape: tuple[int, ...]
    role: str
    layer: int | None = None
    param: str | None = None

    @property
    def free(self) -> bool:
        return self.role != "weight"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


class ModelDefinition:
    """Shared derivations from the variable table (subclasses define the table
    and the two back-ends)."""

    kind: ClassVar[str]
    spec: NetworkSpec

    def variables(self) -> tuple[Variable, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def posterior_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` of every posterior variable, in table order."""
        return {v.name: v.shape for v in self.variables()}

    def free_variables(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables() if v.free)

    def prediction_names(self) -> list[str]:
        """The posterior variables prediction reads (``posterior_draws_``):
        the weights, and a regression's noise sd."""
        return [v.name for v in self.variables() if v.role in ("weight", "noise")]

    def noise_variables(self) -> list[Variable]:
        """The noise sd of a regression (none for a classifier)."""
        return [v for v in self.variables() if v.role == "noise"]

    def advi_start_names(self) -> list[str]:
        """Free variables that ADVI starts at random points, in table order:
        at ``w = 0`` all hidden units are identical and tanh's symmetric
        saddle stalls the optimiser."""
        return [v.name for v in self.free_variables() if v.role in ("raw", "mean")]

    def cache_key(self) -> tuple:  # pragma: no cover - abstract
        """Identifies the compiled PyMC model's structure: models with the same
        key differ only in the values of their ``pm.Data`` containers."""
        raise NotImplementedError

    def build_pymc(self, X, y, codes=None, weights=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def build_kernel(self, X, y, codes=None, weights=None):  # pragma: no cover - abstract
        raise NotImplementedError


def noise_sd(name: str, shape: tuple[int, ...], noise_prior):
    """The noise sd of a regression, ``HalfNormal(noise_prior)``; ``noise_prior``
    a ``pm.Data`` container."""
    import pymc as pm

    return pm.HalfNormal(name, sigma=noise_prior, shape=shape)


def likelihood(logits, y, spec: NetworkSpec, weights=None, sigma=None):
    """Bernoulli on one logit (binary) or Categorical on softmax logits; with
    a noise sd ``sigma`` (a regression), Normal around the network's one
    output, ``y`` the standardised target.

    The binary case is written as a two-class Categorical on logits ``[0, z]``:
    the same likelihood as ``Bernoulli(logit_p=z)``, but its gradient comes
    from ``log_softmax``, which is stable by construction.  ``pm.Bernoulli``
    goes through ``p = sigmoid(z)`` and ``log(1 - p)`` and relies on graph
    rewrites to stabilise the gradient; in ADVI's graph they do not fire, the
    gradient becomes ``p / (1 - p) * (1 - p)`` and turns NaN once some
    ``z > 37`` (seen with 500 groups; benchmarks/README.md).

    With per-row ``weights`` (``sample_weight``; the kernels take the same
    input) the likelihood is ``sum_i w_i log p(y_i)``, a ``pm.Potential``
    named ``y_obs``; without them the observed ``Categorical``, which equals
    it for ``w = 1``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if sigma is not None:
        mu = logits[..., 0]
        if weights is None:
            return pm.Normal("y_obs", mu=mu, sigma=sigma, observed=y)
        w = pm.Data("sample_weight", np.asarray(weights, dtype=float))
        terms = pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), y)
        return pm.Potential("y_obs", pt.sum(w * terms))
    if spec.n_outputs == 1:
        logits = pt.concatenate([pt.zeros_like(logits), logits], axis=-1)
    if weights is None:
        return pm.Categorical("y_obs", logit_p=logits, observed=y)
    w = pm.Data("sample_weight", np.asarray(weights, dtype=float))
    terms = pm.logp(pm.Categorical.dist(logit_p=logits), y)
    return pm.Potential("y_obs", pt.sum(w * terms))
