"""What every skhbnn estimator shares: parameters, validation, inference and
prediction from stored posterior draws."""

from __future__ import annotations

import dataclasses
import sys
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import structures
from .combining import PosteriorCombination
from .continuation import ContinueChains, continue_chains
from .inference import (
    INFERENCE_METHODS,
    MASS_MATRICES,
    SAMPLERS,
    divergences,
    fit_advi,
    parallel_cores,
    posterior_arrays,
    resolve_inference,
    sample_nuts,
)
from .network import ACTIVATIONS, NetworkSpec
from .validation import check_training_data, validate_X
from .variational import fit_svi, posterior_idata

# Training rows whose predictions serve as convergence diagnostics.
_N_DIAGNOSTIC_ROWS = 50

# chains="auto": four NUTS chains find more of a BNN's modes than two long ones
# at the same cost (docs/inference.md, "Defaults").  SVI restarts are cheaper
# than chains and each covers less of the posterior, so "auto" runs eight: on
# 10,000 groups x 6 classes 8 stacked restarts cut the gap to NUTS (fitted on
# 500 of the groups, scored there) from 1.86 to 0.86 accuracy points
# (benchmarks/README.md, "Thousands of groups, session 13").
_NUTS_CHAINS = 4
_SVI_RESTARTS = 8

def diagnostic_rows(n_rows: int) -> np.ndarray:
    """``_N_DIAGNOSTIC_ROWS`` training rows spread evenly over all of them
    (rows often come group by group: the first 50 would be one group's)."""
    count = min(n_rows, _N_DIAGNOSTIC_ROWS)
    return np.unique(np.linspace(0, n_rows - 1, count).round().astype(int))


def store_params(est, arguments: dict) -> None:
    """``__init__``'s whole body: store every constructor argument under its
    own name and do nothing else (scikit-learn's contract for ``get_params``,
    ``set_params`` and ``clone``).  Call as ``store_params(self, locals())``."""
    for name in type(est)._get_param_names():
        setattr(est, name, arguments[name])


def fit_atomically(est, fit_fn):
    """Run ``fit_fn``; on any exception (Ctrl-C included) restore ``est`` to
    exactly its state before the call, so it is never left half-fitted.
    A NUTS fit whose chains have not mixed asks for more draws
    (:class:`~skhbnn.continuation.ContinueChains`): ``fit_fn`` runs again
    and continues the chains of ``idata_`` instead of sampling new ones.
    Returns ``est``."""
    state = est.__dict__.copy()
    try:
        est._continue_from = None
        while True:
            try:
                fit_fn()
                break
            except ContinueChains:
                est._continue_from = est.idata_
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(state)
        raise
    finally:
        est.__dict__.pop("_continue_from", None)
    return est


def fit_with_classes(est, X, y, classes, sample_weight=None):
    """Fit a flat skhbnn estimator on rows of a larger problem whose classes
    are ``classes`` (a group may lack some): its outputs and ``classes_`` are
    the whole problem's.  What a transfer fits per group."""
    return fit_atomically(
        est, lambda: est._fit(X, y, classes=classes, sample_weight=sample_weight)
    )


# scikit-learn checks that compare a weighted fit with a fit on repeated or
# dropped rows by assert_allclose: two MCMC fits on different data differ by
# sampling noise, however right the weighting.  tests/test_sample_weight.py
# replaces them with statistical tests over several seeds.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "MCMC: a weighted fit and a fit on repeated rows differ by sampling noise; "
        "tests/test_sample_weight.py compares them statistically"
    ),
    "check_sample_weights_invariance": (
        "MCMC: a fit with zero weights and a fit without those rows differ by "
        "sampling noise; tests/test_sample_weight.py compares them statistically"
    ),
}


def auto_hidden_layer_sizes(n_outputs: int) -> tuple[int, int]:
    """``hidden_layer_sizes="auto"``: two tanh layers of ``max(5, 2 (K - 1))``
    units for ``K`` classes (``n_outputs`` is 1 for a binary classifier or a
    regressor): ``(5, 5)`` up to 3 classes, ``(10, 10)`` for 6.  Each of the
    ``K - 1`` free logits gets two units of its own.  Measured on
    ``make_grouped_classification`` with 6 classes, 10 training rows per
    group (``python -m benchmarks scale``, ``benchmarks/README.md``): at
    10,000 groups ``(5, 5)`` scored 47.99% / log loss 1.392 and ``(10, 10)``
    51.61% / 1.246, against 51.18% / 1.261 for boosting with the group
    target-encoded; at 1,000 groups 48.47% / 1.353 against 53.71% / 1.204."""
    k = n_outputs if n_outputs > 1 else 2  # classes
    width = max(5, 2 * (k - 1))
    return (width, width)


class BaseBayesianMLP(PosteriorCombination, BaseEstimator):
    """Shared machinery of the classifiers and regressors; not for direct use
    (each estimator adds scikit-learn's ``ClassifierMixin`` or
    ``RegressorMixin``)."""

    # The invariant (a key of the ``invariants`` passed to ``_finish_fit``)
    # whose R-hat across chains decides which chains sit in one mode: the
    # predicted probabilities of a classifier, the predicted mean of a
    # regressor.
    _MODE_INVARIANT = "proba"

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like", Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "use_bias": ["boolean", StrOptions({"auto"})],
        "prior_sd": [Interval(Real, 0, None, closed="neither")],
        "inference": [StrOptions(set(INFERENCE_METHODS))],
        "sampler": [StrOptions(set(SAMPLERS))],
        "draws": [Interval(Integral, 1, None, closed="left")],
        "tune": [Interval(Integral, 1, None, closed="left")],
        "chains": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "target_accept": [Interval(Real, 0, 1, closed="neither")],
        "mass_matrix": [StrOptions(set(MASS_MATRICES))],
        "max_draws": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "advi_iterations": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "log_likelihood": ["boolean", StrOptions({"auto"})],
        "combine_chains": [StrOptions({"auto", "stacking", "equal"})],
        "progressbar": ["boolean", StrOptions({"auto"})],
        "n_jobs": [
            None,
            Interval(Integral, 1, None, closed="left"),
            Interval(Integral, None, -1, closed="right"),
        ],
    }

    # ------------------------------------------------------------------ fit
    def _check_hidden_layer_sizes(self, n_outputs: int) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, str) and sizes == "auto":
            return auto_hidden_layer_sizes(n_outputs)
        if isinstance(sizes, Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if len(sizes) == 0 or not all(
            isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes must be a non-empty tuple of positive integers, "
                f"e.g. (5, 5); got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _validate_X(self, X, *, reset: bool, y=None):
        return validate_X(self, X, reset=reset, y=y)

    def _check_training_data(self, X, y):
        return check_training_data(self, X, y)

    def _network_spec(self, n_features: int, n_outputs: int) -> NetworkSpec:
        """The network: one output for a binary classifier or a regressor,
        one per class otherwise."""
        spec = NetworkSpec(
            n_features=n_features,
            hidden_layer_sizes=self._check_hidden_layer_sizes(n_outputs),
            n_outputs=n_outputs,
            activation=self.activation,
            use_bias=bool(self.use_bias),  # "auto": the table with biases
        )
        prior = getattr(self, "prior", None)
        if self.use_bias == "auto" and prior is not None:
            # the structure of the network the prior was built for
            try:
                prior.validate(spec)
            except ValueError:
                bias_free = dataclasses.replace(spec, use_bias=False)
                try:
                    prior.validate(bias_free)
                except ValueError:
                    pass  # neither: fit() reports it against the biased network
                else:
                    return bias_free
        return spec

    def _samples_both_structures(self, definition, chains: int) -> bool:
        """Whether this fit samples the network with and without biases
        (``use_bias="auto"``, :mod:`skhbnn.structures`): NUTS with at least
        two chains to share out and no informed prior (which fixes the
        structure).  SVI fits keep the biases: their restarts were chosen on
        the biased network at 10,000 groups (``benchmarks/README.md``,
        "Thousands of groups, session 13"), and sharing them out between two
        structures is not measured yet."""
        return (
            self.use_bias == "auto" and definition.spec.use_bias and chains >= 2
            and getattr(self, "prior", None) is None and self.inference_ == "nuts"
        )

    def __sklearn_clone__(self):
        # Model selection (cross_validate, GridSearchCV, ...) and
        # InformedPriorTransfer fit clones: mark them, so that
        # progressbar="auto" shows no bar per fold, candidate or group.
        clone = super().__sklearn_clone__()
        clone._skhbnn_clone = True
        return clone

    def _show_progress(self) -> bool:
        if self.progressbar == "auto":
            # A terminal gets a bar, but not the many fits of a cross-validation,
            # a grid search or a transfer, which fit clones.
            interactive = bool(getattr(sys.stderr, "isatty", lambda: False)())
            return interactive and not getattr(self, "_skhbnn_clone", False)
        return bool(self.progressbar)

    def _infer(self, definition, seed: int, X, y, codes=None, weights=None):
        """Run the configured inference on ``definition`` (:mod:`skhbnn.models`)
        given the data (``weights``: each row's likelihood weight), seeded by
        ``seed``; return ``(idata, draws, n_divergent, definition)``,
        ``draws`` being the posterior arrays prediction reads and
        ``definition`` the model they are draws of (with
        ``use_bias="auto"``, the structure kept).  Sets ``inference_``, the
        route taken (``inference="auto"`` resolved)."""
        data = (X, y, codes, weights)
        self.inference_ = resolve_inference(
            self.inference, definition, X.shape[0], self.draws + self.tune,
            self._n_chains("nuts"),
        )
        chains = self._n_chains(self.inference_)
        self.__dict__.pop("elbo_", None)  # of an earlier variational fit
        self._structure_weights = None
        if self._samples_both_structures(definition, chains):
            if self.__dict__.get("_continue_from") is not None:  # the structure kept
                kept = definition if self.network_.use_bias else structures.bias_free(definition)
                self._structure_weights = [self.diagnostics_["structure_weights"][name]
                                           for name in structures.STRUCTURES]
                return (*self._infer_part(kept, seed, data, chains)[:3], kept)
            return self._infer_structures(definition, seed, data, chains)
        idata, draws, n_div, info = self._infer_part(definition, seed, data, chains)
        if info is not None:
            self._variational = info
            self.elbo_ = info["elbo"]
        return idata, draws, n_div, definition

    def _infer_structures(self, definition, seed: int, data: tuple, chains: int):
        """``use_bias="auto"`` (:mod:`skhbnn.structures`): the chains shared
        out between the network with biases and the one without, both
        structures' chains stacked, and the heavier structure kept, topped up
        with new chains of it to ``chains``.  Returns what :meth:`_infer`
        returns; the structures' weights go to ``diagnostics_``."""
        candidates = (definition, structures.bias_free(definition))
        counts = structures.split_chains(chains)
        parts = [
            self._infer_part(part, structures.part_seed(seed, i), data, n)[:3]
            for i, (part, n) in enumerate(zip(candidates, counts))
        ]
        both = structures.concat_draws([draws for _, draws, _ in parts])
        weights = self._chain_stacking_weights(both, definition.spec, data)
        chosen, self._structure_weights = structures.choose(
            np.repeat(np.arange(len(counts)), counts), weights
        )
        kept = [parts[chosen]]
        if chains > counts[chosen]:
            kept.append(self._infer_part(
                candidates[chosen], structures.part_seed(seed, len(counts)), data,
                chains - counts[chosen],
            )[:3])
        idatas, draws, n_div = (list(x) for x in zip(*kept))
        return (structures.concat_idata(idatas), structures.concat_draws(draws),
                structures.concat_divergences(n_div), candidates[chosen])

    def _pointwise(self, draws: dict, spec, X, y, codes, rows) -> np.ndarray:
        """``log p(y_i | theta)`` of the training rows ``rows`` over the
        flattened ``draws``, shape ``(chain * draw, len(rows))`` (each
        estimator's likelihood)."""
        raise NotImplementedError  # pragma: no cover

    def _infer_part(self, definition, seed: int, data: tuple, chains: int):
        """One route's run on ``definition`` with ``chains`` chains (restarts):
        ``(idata, draws, n_divergent, variational info or None)``."""
        if self.inference_ == "svi":
            draws, info = fit_svi(
                definition, data, chains=chains, tune=self.tune, draws=self.draws,
                seed=seed, progressbar=self._show_progress(),
            )
            return posterior_idata(draws), draws, None, info
        if self.inference_ == "advi":
            idata = fit_advi(
                definition,
                data,
                iterations=self.advi_iterations,
                draws=self.draws,
                seed=seed,
                progressbar=self._show_progress(),
            )
            n_div = None
        elif self.__dict__.get("_continue_from") is not None:  # chains not mixed yet
            previous = self._continue_from
            idata = continue_chains(
                definition, data, previous, draws=previous.posterior.sizes["draw"], seed=seed,
                target_accept=self.target_accept, cores=parallel_cores(chains),
            )
            n_div = divergences(idata)
        else:
            idata = sample_nuts(
                definition,
                data,
                sampler=self.sampler,
                draws=self.draws,
                tune=self.tune,
                chains=chains,
                target_accept=self.target_accept,
                mass_matrix=self.mass_matrix,
                seed=seed,
                progressbar=self._show_progress(),
            )
            n_div = divergences(idata)
        return idata, posterior_arrays(idata, definition.prediction_names()), n_div, None

    def _n_chains(self, inference: str) -> int:
        """The chains (for ``"svi"``: restarts) a fit by ``inference`` runs:
        ``chains``, or for ``"auto"`` ``_NUTS_CHAINS`` NUTS chains and
        ``_SVI_RESTARTS`` SVI restarts."""
        if self.chains != "auto":
            return int(self.chains)
        return _SVI_RESTARTS if inference == "svi" else _NUTS_CHAINS

    def _fit_atomically(self, fit_fn):
        return fit_atomically(self, fit_fn)

    @staticmethod
    def _new_seed(random_state) -> int:
        return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

    # -------------------------------------------------------------- predict
    def _predict_from_moments(self, mean: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(mean, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def _check_fitted_X(self, X):
        check_is_fitted(self)
        return self._validate_X(X, reset=False)

    # ---------------------------------------------------------- persistence
    def save(self, path, *, include_idata: bool = True):
        """Write the fitted estimator to a portable netCDF file.

        Load it back with :func:`skhbnn.load`; see :func:`skhbnn.persistence.save`.

        Parameters
        ----------
        path : str or os.PathLike
        include_idata : bool, default=True
            Also store ``idata_``; ``False`` stores only what predict needs.

        Returns
        -------
        pathlib.Path
        """
        from .persistence import save

        return save(self, path, include_idata=include_idata)
