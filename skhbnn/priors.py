"""Weight priors: the isotropic Normal, informed MvNormal priors and the
population prior.

An :class:`MvNormalPrior` is a set of *blocks*, each one multivariate Normal
over some parameters flattened and concatenated in network order: either one
block per parameter (``w0``, ``b0``, ``w1``, ...; the seed's per-layer priors)
or one ``"joint"`` block over all of them, which also keeps the correlations
*between* layers of the group-mean posterior.

A :class:`PopulationPrior` is the population predictive of a hierarchical
posterior itself: a mixture, over posterior draws ``s``, of the Normal that
draw gives a new group's weights, ``N(mu_s, diag(sd_s^2))``.  It needs no
alignment of hidden units (each component is one draw, in its own
labelling), and a flat BNN under it samples exactly a new group's posterior
given the fitted population (:meth:`~skhbnn.HierarchicalBayesianMLPClassifier.fit_new_group`).
"""

from __future__ import annotations

import math
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


@dataclass(eq=False)
class PopulationPrior:
    """The population predictive of a hierarchical posterior as a prior.

    The density of the flattened weights ``theta`` (network order, as
    :meth:`NetworkSpec.flatten` gives them) is the mixture

    ``p(theta) = sum_s w_s N(theta; means[s], diag(sds[s]^2))``

    with one component per posterior draw ``s`` of the group means and
    group sds: a new group's weights as the hierarchical model draws them.

    Parameters
    ----------
    means : ndarray of shape (n_components, n_params)
        Each draw's group-mean weights, flattened in network order.
    sds : ndarray of shape (n_components, n_params)
        Each draw's group sd of every weight (one value per layer's weights
        and per layer's biases, repeated over the layer's entries).
    weights : ndarray of shape (n_components,)
        Each component's weight (the draws' weights in prediction: chain
        stacking's, or equal); normalised to sum to 1.
    layer_sizes, target_scale
        As for :class:`MvNormalPrior`.

    Notes
    -----
    Built by :meth:`~skhbnn.HierarchicalBayesianMLPClassifier.population_prior`
    (and the regressor's).  Unlike :class:`MvNormalPrior` it keeps the
    population's shape: a population of differently rotated decision
    surfaces is many Normals, not one.
    """

    means: np.ndarray
    sds: np.ndarray
    weights: np.ndarray
    layer_sizes: tuple[int, ...] | None = None
    target_scale: tuple[float, float] | None = None

    @property
    def n_components(self) -> int:
        return int(np.shape(self.means)[0])

    def validate(self, spec: NetworkSpec) -> None:
        """Raise ``ValueError`` unless the prior fits ``spec``'s parameters."""
        P = spec.n_params
        means, sds = np.asarray(self.means, float), np.asarray(self.sds, float)
        weights = np.asarray(self.weights, float)
        if means.ndim != 2 or means.shape[1] != P or sds.shape != means.shape:
            raise ValueError(
                f"population prior has means of shape {means.shape} and sds of shape "
                f"{sds.shape}, but the network {spec.layer_sizes} (use_bias="
                f"{spec.use_bias}) has {P} parameters: both must be (n_components, {P}). "
                "Build the prior from a model with the same hidden_layer_sizes, "
                "use_bias and number of features and classes."
            )
        if weights.shape != (means.shape[0],) or means.shape[0] == 0:
            raise ValueError(
                f"population prior needs one weight per component ({means.shape[0]}), "
                f"got weights of shape {weights.shape}."
            )
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(sds))
                and np.all(np.isfinite(weights))):
            raise ValueError("population prior contains NaN or inf; pass finite values.")
        if np.any(sds <= 0) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(
                "population prior needs positive sds and non-negative weights that "
                "do not all vanish."
            )

    def log_weights(self) -> np.ndarray:
        """``log w_s`` (normalised) of each component."""
        w = np.asarray(self.weights, dtype=float)
        with np.errstate(divide="ignore"):
            return np.log(w / w.sum())

    def log_normalisers(self) -> np.ndarray:
        """Each component's ``log w_s - sum_p log sd_sp - P/2 log 2 pi``: its
        log density at its mean, what the kernels and the PyMC model add to
        ``-|z|^2 / 2``."""
        sds = np.asarray(self.sds, dtype=float)
        return (self.log_weights() - np.log(sds).sum(axis=1)
                - 0.5 * sds.shape[1] * math.log(2.0 * math.pi))

    def log_density(self, theta: np.ndarray) -> np.ndarray:
        """Log density at flattened weights ``theta`` (``(..., n_params)``)."""
        theta = np.asarray(theta, dtype=float)[..., None, :]
        means, sds = np.asarray(self.means, float), np.asarray(self.sds, float)
        z = (theta - means) / sds
        terms = self.log_normalisers() - 0.5 * np.sum(z * z, axis=-1)
        top = np.max(terms, axis=-1, keepdims=True)
        return top[..., 0] + np.log(np.sum(np.exp(terms - top), axis=-1))

    def component_posterior(self, spec: NetworkSpec, X, y, weights=None, sigma=None,
                            n_draws: int = 8, random_state=0):
        """Each component's posterior probability given data ``(X, y)``, and
        the effective number of components it leaves.

        ``p(s | D)`` is proportional to ``w_s`` times the component's
        marginal likelihood ``E[p(D | theta)]``, ``theta ~ N(means[s],
        diag(sds[s]^2))``, estimated from ``n_draws`` draws per component
        (fixed random numbers).  Where NUTS starts a chain under this prior
        (:mod:`skhbnn.kernels.problem`): in a component the data support,
        not in one they rule out, from which a chain in a multimodal
        mixture may not leave.

        Parameters
        ----------
        spec : NetworkSpec
        X, y : arrays
            The rows, and their encoded labels (or a regression's targets on
            the standardised scale).
        weights : ndarray, optional
            Each row's likelihood weight.
        sigma : ndarray of shape (1,), optional
            A regression's noise sd.

        Returns
        -------
        probabilities : ndarray of shape (n_components,)
        ess : float
            ``1 / sum p_s^2``: how many components carry the posterior.
        """
        from .prediction import pointwise_log_likelihood

        rng = np.random.default_rng(random_state)
        S, P = np.shape(self.means)
        theta = (np.asarray(self.means, float)[:, None, :] + np.asarray(self.sds, float)[:, None, :]
                 * rng.standard_normal((S, n_draws, P))).reshape(S * n_draws, P)
        noise = None if sigma is None else np.full(S * n_draws, float(np.ravel(sigma)[0]))
        loglik = pointwise_log_likelihood(spec.unflatten(theta), X, y, spec, sigma=noise)
        if weights is not None:
            loglik = loglik * np.asarray(weights, dtype=float)[None, :]
        total = loglik.sum(axis=1).reshape(S, n_draws)
        top = total.max(axis=1, keepdims=True)
        marginal = top[:, 0] + np.log(np.mean(np.exp(total - top), axis=1))
        score = self.log_weights() + marginal
        p = np.exp(score - np.max(score))
        p /= p.sum()
        return p, float(1.0 / np.sum(p**2))

    def sample(self, n: int, random_state=None) -> np.ndarray:
        """``n`` draws of flattened weights, shape ``(n, n_params)``."""
        rng = np.random.default_rng(random_state)
        w = np.asarray(self.weights, dtype=float)
        pick = rng.choice(len(w), size=n, p=w / w.sum())
        means, sds = np.asarray(self.means, float), np.asarray(self.sds, float)
        return means[pick] + sds[pick] * rng.standard_normal((n, means.shape[1]))


def population_prior(
    group_means: dict[str, np.ndarray],
    group_sds: dict[str, np.ndarray],
    spec: NetworkSpec,
    draw_weights=None,
    n_components=None,
    target_scale=None,
) -> PopulationPrior:
    """The population predictive of a hierarchical posterior, as a prior.

    Parameters
    ----------
    group_means : dict of str to ndarray
        ``w{l}`` / ``b{l}`` group means, shape ``(n_draws, *shape)``
        (chains flattened).
    group_sds : dict of str to ndarray
        The group sd of each parameter, shape ``(n_draws,)``.
    spec : NetworkSpec
    draw_weights : ndarray of shape (n_draws,), optional
        Each draw's weight (``None``: equal).  Draws of weight 0 are left out.
    n_components : int, optional
        Keep this many draws, evenly spaced over the draws of positive
        weight (in their order: chain by chain); ``None`` keeps all.
    target_scale : (float, float), optional
        A regression's ``(y_mean, y_scale)``.
    """
    names = list(spec.param_shapes())
    sizes = spec.param_sizes()
    means = spec.flatten(group_means, names)
    means = means.reshape(-1, spec.n_params)
    n = means.shape[0]
    sds = np.concatenate(
        [np.repeat(np.asarray(group_sds[m], float).reshape(n, 1), sizes[m], axis=1)
         for m in names], axis=1,
    )
    weights = np.full(n, 1.0 / n) if draw_weights is None else np.asarray(draw_weights, float)
    keep = np.flatnonzero(weights > 0)
    if n_components is not None and n_components < keep.size:
        keep = keep[np.linspace(0, keep.size - 1, int(n_components)).round().astype(int)]
    weights = weights[keep]
    if target_scale is not None:
        target_scale = (float(target_scale[0]), float(target_scale[1]))
    return PopulationPrior(
        means=np.ascontiguousarray(means[keep]), sds=np.ascontiguousarray(sds[keep]),
        weights=weights / weights.sum(), layer_sizes=spec.layer_sizes,
        target_scale=target_scale,
    )
