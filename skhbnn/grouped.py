"""What the hierarchical estimators (classifier and regressor) share: groups,
the model definition, per-group draws, the population predictive and the
informed prior."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import diagnostic_rows
from .groups import (
    NEW_GROUP_POLICIES, GroupEncoder, check_groups, group_codes, resolve_groups, rows_of_codes,
)
from .models import HierarchicalModel
from .models.hierarchical import group_sd_name
from .network import forward
from .prediction import flatten_chains
from .priors import MvNormalPrior, PopulationPrior, informed_prior, population_prior


def shared_params(flat, hierarchical) -> tuple[str, ...]:
    """Parameters a flat estimator inherits from a hierarchical one (the
    transfers' default flat models, :meth:`HierarchicalMixin.fit_new_group`):
    every constructor parameter the two classes share (network, sampler,
    prediction), derived so that a new one is passed on without listing it."""
    return tuple(sorted(set(flat._get_param_names()) & set(hierarchical._get_param_names())))


def _group_sd(draws: dict, param: str, spec) -> np.ndarray:
    """Draws of the group sd that scales ``param``.  Fits saved by skhbnn
    0.1.0 have one sd per layer (``sd{l}``), biases included."""
    layer = spec.layer_of(param)
    name = group_sd_name(param, layer)
    return draws[name] if name in draws else draws[f"sd{layer}"]


class HierarchicalMixin:
    """What the hierarchical classifier and regressor share: groups, the
    model definition, the per-group draws and the population predictive.
    ``_flat_class`` is the flat twin (``group_mean_network``)."""

    _flat_class: type

    # the constructor parameters every hierarchical estimator adds
    _group_constraints = {
        "group_sd_prior": [Interval(Real, 0, None, closed="neither")],
        "bias_group_sd_prior": [None, Interval(Real, 0, None, closed="neither")],
        "group_column": [None, str, Integral],
        "new_groups": [StrOptions(set(NEW_GROUP_POLICIES))],
    }

    def _encode_groups(self, groups, n_rows: int):
        """``(encoder, codes)`` of the training rows' groups (``None``: one)."""
        if groups is None:  # one group: the plain-estimator case
            groups = np.zeros(n_rows, dtype=object)
        groups = check_groups(groups, n_rows)
        encoder = GroupEncoder().fit(groups)
        return encoder, encoder.transform(groups)

    def _definition(self, spec, n_groups: int, **likelihood) -> HierarchicalModel:
        return HierarchicalModel(
            spec, n_groups, prior_sd=self.prior_sd, group_sd_prior=self.group_sd_prior,
            bias_group_sd_prior=self.bias_group_sd_prior, **likelihood,
        )

    def _sample(self, definition, X, y, codes, weights, encoder):
        """Sample and store the posterior; return the draws, the diagnostic
        rows' network outputs under their own group's weights and under the
        population predictive's (a new group's) weights, each ``(C, S,
        rows, n_outputs)``, the group sds ``(C, S, n_sd)`` and the
        divergences."""
        self.__dict__.pop("new_group_estimators_", None)  # groups of an earlier fit
        seed = self._new_seed(self.random_state)
        idata, draws, n_div, definition = self._infer(definition, seed, X, y, codes, weights)
        spec = definition.spec  # use_bias="auto": the structure kept (network_)
        self.groups_ = encoder.classes_
        self._encoder = encoder
        self.network_ = spec
        self.idata_ = idata
        self.posterior_draws_ = draws
        self._prediction_seed = seed
        rows = diagnostic_rows(X.shape[0])
        params = {k: draws[k][:, :, codes[rows]] for k in spec.param_shapes()}
        outputs = forward(params, X[rows][:, None, :], spec)[..., 0, :]
        chains = next(iter(draws.values())).shape[:2]
        new = {k: v.reshape(*chains, *v.shape[1:]) for k, v in self.group_params(None).items()}
        population = forward(new, X[rows], spec)
        group_sds = [v.name for v in definition.variables() if v.role == "group_sd"]
        sds = np.stack([draws[name] for name in group_sds], axis=-1)
        return draws, (outputs, population), sds, n_div

    def _group_codes(self, groups, n_samples: int) -> np.ndarray:
        """Integer codes of fitted groups; -1 for groups never seen in fit."""
        fix = "new_groups='population'" if self.new_groups == "error" else None
        return group_codes(self._encoder, groups, n_samples, new_groups_fix=fix)

    def _rows_by_group(self, X, groups):
        """Validated ``X`` and ``[(rows, key)]`` per group present: its code
        (-1: groups not seen in fit), or the flat estimator
        :meth:`fit_new_group` fitted for it."""
        X, groups = resolve_groups(X, groups, self.group_column)
        X = self._check_fitted_X(X)
        added = getattr(self, "new_group_estimators_", {})
        parts = []
        if added and groups is not None:
            labels = check_groups(groups, X.shape[0])
            encoder = GroupEncoder().fit(np.array(list(added), dtype=object))
            new_codes = encoder.transform(labels)
            parts = [(new_codes == c, added[encoder.classes_[c]])
                     for c in np.unique(new_codes[new_codes >= 0])]
            if parts:
                rest = ~np.logical_or.reduce([rows for rows, _ in parts])
                codes = np.full(X.shape[0], -2)
                if rest.any():
                    codes[rest] = self._group_codes(labels[rest], int(rest.sum()))
                rest_rows = np.flatnonzero(rest)
                return X, parts + [(rest_rows[r], c) for r, c in rows_of_codes(codes[rest])]
        codes = self._group_codes(groups, X.shape[0])
        return X, rows_of_codes(codes)

    def fit_new_group(self, X, y, group=None, sample_weight=None, n_components=500):
        """Learn a group not seen in fit from its own rows, without refitting
        the others.

        Samples the new group's posterior given the fitted population: a flat
        BNN (the same network and sampler settings) under
        :meth:`population_prior`, the hierarchical model's own distribution
        of a new group's weights.  Afterwards ``predict(X, groups=...)`` (and
        every other prediction method) serves the group from that posterior,
        as it serves a fitted one; calling it again for the same group
        replaces its posterior, and :meth:`fit` forgets every added group.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The new group's rows (with the group column when
            ``group_column`` is set).
        y : array-like of shape (n_samples,)
        group : hashable, default=None
            The new group's label; read from X when ``group_column`` is set
            (one label in all rows).
        sample_weight : array-like of shape (n_samples,), default=None
        n_components : int or None, default=500
            Components of the population prior (see :meth:`population_prior`).

        Returns
        -------
        self
        """
        check_is_fitted(self)
        X, groups = resolve_groups(X, None, self.group_column)
        if self.group_column is not None:
            labels = list(dict.fromkeys(check_groups(groups, len(groups)).tolist()))
            if len(labels) != 1 or (group is not None and labels != [group]):
                raise ValueError(
                    f"fit_new_group learns one group, but X's group column holds "
                    f"{labels[:10]}{' and group=' + repr(group) if group is not None else ''}; "
                    "pass the rows of one group."
                )
            group = labels[0]
        if group is None:
            raise ValueError("fit_new_group needs the new group's label: pass group=...")
        label = check_groups(np.array([group], dtype=object), 1)[0]
        if self._encoder.transform(np.array([label], dtype=object))[0] >= 0:
            raise ValueError(
                f"group {group!r} was seen in fit: its posterior is the hierarchical "
                "model's. Refit with its new rows, or give the new group another label."
            )
        X = self._check_fitted_X(X)
        prior = self.population_prior(n_components)
        params = self.get_params()
        flat = self._flat_class(**{k: params[k] for k in shared_params(self._flat_class, self)})
        flat.set_params(prior=prior)
        if flat.progressbar == "auto":
            flat.set_params(progressbar=False)
        self._fit_new_group(flat, X, y, sample_weight)
        self.new_group_estimators_ = {**getattr(self, "new_group_estimators_", {}), label: flat}
        return self

    def _fit_new_group(self, flat, X, y, sample_weight) -> None:  # pragma: no cover
        raise NotImplementedError

    def informed_prior(self, align="draws", joint: bool = False) -> MvNormalPrior:
        """MvNormal priors from the fitted group distribution (see
        :func:`skhbnn.priors.informed_prior`), for the flat estimator's
        ``prior``.

        Parameters
        ----------
        align : {"draws", "chains", "none"}, default="draws"
            Map the hidden units of every posterior draw (or only of every
            chain) onto one labelling before pooling them; see
            :mod:`skhbnn.alignment`.
        joint : bool, default=False
            One MvNormal over all weights, keeping cross-layer correlations,
            instead of one per weight matrix / bias vector.
        """
        check_is_fitted(self)
        spec = self.network_
        names = spec.param_shapes()
        draws = self.posterior_draws_
        weights = getattr(self, "chain_weights_", None)
        if weights is not None:  # chains stacking left out carry no population
            draws = {k: v[np.asarray(weights) > 0] for k, v in draws.items()}
        means = {n: draws[f"{n}_mu"] for n in names}
        sds = {n: _group_sd(draws, n, spec) for n in names}
        # a regressor's weights are on its standardised y: the prior says so
        target = (self.y_mean_, self.y_scale_) if hasattr(self, "y_scale_") else None
        return informed_prior(means, sds, spec, align=align, joint=joint, target_scale=target)

    def population_prior(self, n_components: int | None = 500) -> PopulationPrior:
        """The population predictive as a prior (a mixture of Normals, one
        per posterior draw; see :class:`skhbnn.priors.PopulationPrior`), for
        the flat estimator's ``prior``: a flat BNN under it samples a new
        group's posterior given the fitted population, with no alignment of
        hidden units and nothing lost to a single Normal's approximation.

        Parameters
        ----------
        n_components : int or None, default=500
            Posterior draws kept as components, evenly spaced over the
            draws prediction uses (chains of stacking weight 0 left out);
            ``None`` keeps all.  The prior's cost per gradient grows with
            it (``docs/recipes.md``, "Cold start").
        """
        check_is_fitted(self)
        if n_components is not None and (
            not isinstance(n_components, Integral) or isinstance(n_components, bool)
            or n_components < 1
        ):
            raise ValueError(
                f"n_components must be a positive integer or None; got {n_components!r}."
            )
        spec = self.network_
        names = spec.param_shapes()
        draws = flatten_chains(self.posterior_draws_)
        weights = self._draw_weights()
        means = {n: draws[f"{n}_mu"] for n in names}
        sds = {n: _group_sd(draws, n, spec) for n in names}
        target = (self.y_mean_, self.y_scale_) if hasattr(self, "y_scale_") else None
        return population_prior(
            means, sds, spec, draw_weights=weights, n_components=n_components,
            target_scale=target,
        )

    def _group_mean_draws(self) -> dict:
        check_is_fitted(self)
        return {name: self.posterior_draws_[f"{name}_mu"] for name in self.network_.param_shapes()}

    def group_params(self, group=None) -> dict:
        """Posterior draws of one group's weights, shape ``(n_draws, ...)``.

        ``group=None`` gives draws of the population predictive: for each
        posterior draw, weights of a new group drawn from that draw's group
        distribution (fixed random numbers, so predictions are deterministic).
        """
        draws = flatten_chains(self.posterior_draws_)
        spec = self.network_
        if group is not None:
            code = self._encoder.transform(np.array([group], dtype=object))[0]
            if code < 0:
                raise ValueError(f"group {group!r} was not seen in fit.")
            return {k: draws[k][:, code] for k in spec.param_shapes()}
        rng = np.random.default_rng(self._prediction_seed)
        out = {}
        for name in spec.param_shapes():
            mu = draws[f"{name}_mu"]
            sd = _group_sd(draws, name, spec).reshape((-1,) + (1,) * (mu.ndim - 1))
            out[name] = mu + sd * rng.standard_normal(mu.shape)
        return out

    def _params_of(self, code: int, draws: dict) -> dict:
        """One group's flattened weight draws; the population predictive's for
        code -1."""
        if code < 0:
            return self.group_params(None)
        return {k: draws[k][:, code] for k in self.network_.param_shapes()}
