"""Weight priors: the isotropic Normal and informed MvNormal priors.

An :class:`MvNormalPrior` is a set of *blocks*, each one multivariate Normal
over some parameters flattened and concatenated in network order: either one
block per parameter (``w0``, ``b0``, ``w1``, ...; the seed's per-layer priors)
or one ``"joint"`` block over all of them, which also keeps the correlations
*between* layers of the group-mean posterior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .alignment import align as _align
from .network import NetworkSpec


JOINT = "joint"


@dataclass(eq=False)
class MvNormalPrior:
    """Multivariate Normal priors on a network's weights, one per block.

    Parameters
    ----------
    means : dict of str to ndarray
        Flattened (row-major) prior mean of each block: keyed by parameter
        name (``w0``, ``b0``, ...), or a single ``"joint"`` key for one prior
        over all parameters concatenated in network order.
    covs : dict of str to ndarray
        Covariance of each block, symmetric positive definite.
    layer_sizes : tuple of int, optional
        ``(n_features, *hidden, n_outputs)`` of the network the prior was built
        for; used to give a clear error when it is applied to another network.
    target_scale : (float, float), optional
        For a regressor's prior: ``(y_mean, y_scale)``, the standardisation of
        ``y`` its weights are on.  A :class:`~skhbnn.BayesianMLPRegressor`
        fitted under it models ``(y - y_mean) / y_scale`` instead of
        standardising ``y`` by its own rows, so the prior means what it
        meant in the model it came from.  ``None`` for a classifier's prior.

    Notes
    -----
    Built from a hierarchical posterior by :func:`informed_prior`.  A user can
    also write one by hand: any dict of means and covariances whose sizes match
    the network's parameters.
    """

    means: dict[str, np.ndarray]
    covs: dict[str, np.ndarray]
    layer_sizes: tuple[int, ...] | None = None
    target_scale: tuple[float, float] | None = None
    _chol: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def blocks(self, spec: NetworkSpec) -> dict[str, list[str]]:
        """``{block: [parameter names]}`` in network order."""
        names = list(spec.param_shapes())
        if set(self.means) == {JOINT}:
            return {JOINT: names}
        return {name: [name] for name in names}

    def validate(self, spec: NetworkSpec) -> None:
        """Raise ``ValueError`` unless the prior fits ``spec``'s parameters."""
        shapes = spec.param_shapes()
        blocks = self.blocks(spec)
        if set(self.means) != set(blocks) or set(self.covs) != set(blocks):
            raise ValueError(
                f"prior has parameters {sorted(self.means)} but the network "
                f"{spec.layer_sizes} (use_bias={spec.use_bias}) has "
                f"{sorted(shapes)}. Build the prior from a model with the same "
                "hidden_layer_sizes, use_bias and number of features and classes."
            )
        sizes = spec.param_sizes()
        for name, members in blocks.items():
            d = sum(sizes[m] for m in members)
            mean = np.asarray(self.means[name], dtype=float)
            cov = np.asarray(self.covs[name], dtype=float)
            if mean.shape != (d,) or cov.shape != (d, d):
                raise ValueError(
                    f"prior for {name!r} must have a mean of shape ({d},) and a "
                    f"covariance of shape ({d}, {d}); got {mean.shape} and "
                    f"{cov.shape}."
                )
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
                raise ValueError(
                    f"prior for {name!r} contains NaN or inf; pass finite means "
                    "and covariances."
                )
            if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-10):
                raise ValueError(
                    f"prior covariance for {name!r} is not symmetric; pass "
                    "(cov + cov.T) / 2 if it is only off by rounding."
                )
            try:
                np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ValueError(
                    f"prior covariance for {name!r} is not positive definite; "
                    "add a small multiple of the identity to it."
                ) from None

    def cholesky(self, name: str) -> np.ndarray:
        """Lower Cholesky factor of a parameter's covariance (cached)."""
        if name not in self._chol:
            self._chol[name] = np.linalg.cholesky(np.asarray(self.covs[name], float))
        return self._chol[name]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_chol"] = {}
        return state


def informed_prior(
    group_means: dict[str, np.ndarray],
    group_sds: dict[str, np.ndarray],
    spec: NetworkSpec,
    align="draws",
    joint: bool = False,
    target_scale=None,
) -> MvNormalPrior:
    """MvNormal priors from the group distribution of a hierarchical posterior.

    The seed draws, for every posterior draw of the group mean ``mu`` and group
    sd ``sigma``, weights ``w ~ N(mu, sigma^2 I)`` and takes the mean and
    covariance of those draws.  That is a mixture of Normals whose first two
    moments are known exactly, so we compute them instead of sampling:

    ``mean = E[mu]``,  ``cov = Cov(mu) + E[sigma^2] I``.

    The ``E[sigma^2] I`` term is strictly positive, which makes the covariance
    positive definite without jitter, however few draws there are.

    Parameters
    ----------
    group_means : dict of str to ndarray
        ``w{l}`` / ``b{l}`` group means, shape ``(n_chains, n_draws, *shape)``.
    group_sds : dict of str to ndarray
        The group sd applying to each parameter, shape ``(n_chains, n_draws)``.
    spec : NetworkSpec
    align : {"draws", "chains", "none"}, default="draws"
        Map hidden units onto one labelling before pooling (see
        :mod:`skhbnn.alignment`): every draw onto the posterior mean
        (``"draws"``), whole chains onto the first (``"chains"``), or not at
        all.  ``True`` / ``False`` mean ``"draws"`` / ``"none"``.
    joint : bool
        One MvNormal over all parameters (keeps cross-layer correlations of
        the group means) instead of one per parameter as in the seed.
    target_scale : (float, float), optional
        A regression's ``(y_mean, y_scale)`` (see :class:`MvNormalPrior`).
    """
    group_means = _align(group_means, spec, align)
    names = list(spec.param_shapes())
    blocks = {JOINT: names} if joint else {name: [name] for name in names}
    means, covs = {}, {}
    sizes = spec.param_sizes()
    for block, members in blocks.items():
        d = sum(sizes[m] for m in members)
        flat = spec.flatten(group_means, members).reshape(-1, d)  # (C*S, d)
        sigma2 = np.concatenate(
            [np.full(sizes[m], np.mean(np.asarray(group_sds[m]) ** 2)) for m in members]
        )
        # Population (ddof=0) covariance: the exact second moment of the mixture.
        cov = np.atleast_2d(np.cov(flat, rowvar=False, bias=True)) + np.diag(sigma2)
        means[block] = flat.mean(axis=0)
        covs[block] = (cov + cov.T) / 2.0
    if target_scale is not None:
        target_scale = (float(target_scale[0]), float(target_scale[1]))
    return MvNormalPrior(
        means=means, covs=covs, layer_sizes=spec.layer_sizes, target_scale=target_scale
    )
