"""What every skhbnn estimator shares: parameters, validation, inference and
prediction from stored posterior draws."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .diagnostics import invariant_diagnostics, warn_if_unreliable
from .inference import (
    INFERENCE_METHODS,
    SAMPLERS,
    divergences,
    fit_advi,
    posterior_arrays,
    sample_nuts,
)
from .network import ACTIVATIONS, NetworkSpec, forward, logits_to_proba

# Prediction is chunked over rows and draws.  One chunk holds at most
# _PREDICT_CHUNK_ELEMENTS floats per layer (2**20 float32 values are 4 MiB:
# any number of rows and draws stays within tens of MiB, and the layers stay
# close to the CPU caches).  Rows go in fixed blocks, so how a row's draws are
# chunked does not depend on which other rows are predicted with it.
_PREDICT_CHUNK_ELEMENTS = 2**20
_PREDICT_ROWS = 4096
# Hidden layers run in float32: tanh costs 0.8 ns per value in float32 against
# 2.9 ns in float64 (benchmarks/README.md), and probabilities change by ~1e-8.
# The first layer's X @ w0 + b0 stays float64, so inputs with large offsets
# (timestamps, 1e6-scaled features) lose nothing before the first activation.
_PREDICT_DTYPE = np.float32
# Training rows whose predicted probabilities serve as convergence diagnostics.
_N_DIAGNOSTIC_ROWS = 50


def _chunk_probabilities(params: dict, X_t: np.ndarray, spec: NetworkSpec) -> np.ndarray:
    """(S, k, n) probabilities of one chunk, from X transposed to (features, n):
    k = 1 (P(class 1)) for binary."""
    logits = forward(params, X_t, spec, hidden_dtype=_PREDICT_DTYPE, units_major=True)
    logits = logits.astype(_PREDICT_DTYPE, copy=False)
    if spec.n_outputs == 1:
        # sigmoid(z) = (1 + tanh(z / 2)) / 2 in place: one SIMD ufunc, bounded
        # for any z, ~6x cheaper than logits_to_proba's logaddexp.
        logits *= 0.5
        np.tanh(logits, out=logits)
        logits += 1.0
        logits *= 0.5
        return logits
    return np.moveaxis(logits_to_proba(np.moveaxis(logits, -2, -1)), -1, -2)


def posterior_moments(params: dict, X: np.ndarray, spec: NetworkSpec, n_jobs=None):
    """Posterior mean and sd of class probabilities, in one chunked pass.

    ``params`` hold draws with a leading draw axis: ``w{l}`` of shape
    ``(S, in, out)``.  Returns two float64 arrays of shape
    ``(n, n_classes)``.  Chunk means and sums of squared deviations are
    merged in float64 (Chan et al.'s pairwise update), so the sd is as
    accurate as a two-pass ``std`` over all draws.  With ``n_jobs`` other
    than 1, chunks run on that many threads (numpy releases the GIL); they
    are merged in a fixed order, so the result does not depend on ``n_jobs``.
    """
    n_draws = next(iter(params.values())).shape[0]
    width = max(spec.layer_sizes[1:])
    per_chunk = max(1, _PREDICT_CHUNK_ELEMENTS // (_PREDICT_ROWS * width))
    params = {
        k: np.asarray(v, np.float64 if spec.layer_of(k) == 0 else _PREDICT_DTYPE)
        for k, v in params.items()
        if k in spec.param_shapes()
    }
    X_t = np.asarray(X, dtype=np.float64).T  # units-major: rows on the last axis
    tasks = [
        (slice(r0, r0 + _PREDICT_ROWS), slice(d0, d0 + per_chunk))
        for r0 in range(0, X_t.shape[1], _PREDICT_ROWS)
        for d0 in range(0, n_draws, per_chunk)
    ]

    def chunk_stats(task):
        rows, draws = task
        p = _chunk_probabilities({k: v[draws] for k, v in params.items()}, X_t[:, rows], spec)
        c_mean = p.mean(axis=0, dtype=np.float64)  # (k, r)
        dev = p - c_mean.astype(p.dtype)
        c_m2 = np.einsum("skr,skr->rk", dev, dev, dtype=np.float64)
        return p.shape[0], c_mean.T, c_m2

    n_threads = min(effective_n_jobs(n_jobs), len(tasks))
    k_out = 1 if spec.n_outputs == 1 else spec.n_outputs
    mean = np.zeros((X_t.shape[1], k_out))
    m2 = np.zeros((X_t.shape[1], k_out))
    with ThreadPoolExecutor(n_threads) if n_threads > 1 else nullcontext() as pool:
        results = pool.map(chunk_stats, tasks) if pool else map(chunk_stats, tasks)
        for (rows, draws), (s, c_mean, c_m2) in zip(tasks, results):
            before = draws.start  # a row block's chunks arrive in draw order
            total = before + s
            delta = c_mean - mean[rows]
            mean[rows] += delta * (s / total)
            m2[rows] += c_m2 + delta**2 * (before * s / total)
    std = np.sqrt(np.maximum(m2 / n_draws, 0.0))
    if spec.n_outputs == 1:
        # P(class 0) = 1 - P(class 1) has the same sd.
        return np.column_stack([1.0 - mean[:, 0], mean[:, 0]]), np.repeat(std, 2, axis=1)
    return mean, std


def flatten_chains(draws: dict) -> dict:
    """``(chain, draw, ...)`` -> ``(chain * draw, ...)`` for every array."""
    return {k: v.reshape(-1, *v.shape[2:]) for k, v in draws.items()}


# scikit-learn input errors (matched by a lower-case piece of their text) and
# what to tell the user instead: the argument at fault and what to do about it.
_NUMBERS_ONLY = (
    "X must contain numbers only; encode string or categorical features first, "
    "e.g. with OneHotEncoder in a Pipeline."
)
_INPUT_HINTS = (
    ("could not convert", _NUMBERS_ONLY),
    ("argument must be a string or a", _NUMBERS_ONLY),  # object dtype
    ("sparse", "{name} does not accept sparse X; pass a dense array (X.toarray())."),
    (
        "complex data",
        "X and y must be real numbers; split complex features into real and "
        "imaginary columns, e.g. np.column_stack([X.real, X.imag]).",
    ),
    (
        "expected 2d array",
        "X must be 2-D, of shape (n_samples, n_features); use X.reshape(-1, 1) "
        "for a single feature or X.reshape(1, -1) for a single sample.",
    ),
    (
        "while dim <= 2",
        "X must be 2-D, of shape (n_samples, n_features); flatten the extra "
        "dimensions first, e.g. X.reshape(len(X), -1).",
    ),
    ("0 sample(s)", "X is empty; pass at least one row."),
    ("0 feature(s)", "X has no feature columns; pass at least one feature."),
    (
        "input x contains nan",
        "X contains NaN; impute missing values first (e.g. SimpleImputer in a "
        "Pipeline) or drop those rows.",
    ),
    (
        "input x contains infinity",
        "X contains infinite values; replace them with finite numbers (e.g. clip "
        "the feature) or drop those rows.",
    ),
    (
        "input y contains",
        "y contains NaN or infinite labels; drop those rows or give them a class label.",
    ),
    (
        "inconsistent numbers of samples",
        "X and y must have the same number of rows; pass one label in y per row of X.",
    ),
    (
        "is expecting",
        "X must have the same feature columns as in fit; pass the columns the "
        "estimator was fitted on.",
    ),
    (
        "feature names should match",
        "X must have the feature names seen in fit, in the same order; select them "
        "with X[estimator.feature_names_in_].",
    ),
)


def validate_X(est, X, *, reset: bool, y=None):
    """``validate_data`` with messages that name the argument and say what to do."""
    kwargs = dict(dtype=np.float64, accept_sparse=False, reset=reset)
    try:
        if y is None:
            return validate_data(est, X, **kwargs)
        return validate_data(est, X, y, **kwargs)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        hint = next((h for key, h in _INPUT_HINTS if key in text.lower()), None)
        if hint is None:
            raise
        # scikit-learn's own text follows the hint: its estimator checks match on it.
        cls = TypeError if isinstance(exc, TypeError) else ValueError
        raise cls(f"{hint.format(name=type(est).__name__)}\n{text}") from exc


def check_training_data(est, X, y):
    """Validate training data; return ``X, y_encoded, classes``."""
    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None."
        )
    X, y = validate_X(est, X, reset=True, y=y)
    check_classification_targets(y)
    classes, y_enc = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"y contains only one class ({classes[0]!r}); a classifier needs "
            "samples of at least 2 classes."
        )
    return X, y_enc.astype(np.int64), classes


def store_params(est, arguments: dict) -> None:
    """``__init__``'s whole body: store every constructor argument under its
    own name and do nothing else (scikit-learn's contract for ``get_params``,
    ``set_params`` and ``clone``).  Call as ``store_params(self, locals())``."""
    for name in type(est)._get_param_names():
        setattr(est, name, arguments[name])


def fit_atomically(est, fit_fn):
    """Run ``fit_fn``; on any exception (Ctrl-C included) restore ``est`` to
    exactly its state before the call, so it is never left half-fitted.
    Returns ``est``."""
    state = est.__dict__.copy()
    try:
        fit_fn()
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(state)
        raise
    return est


def fit_with_classes(est, X, y, classes):
    """Fit a flat skhbnn estimator on rows of a larger problem whose classes
    are ``classes`` (a group may lack some): its outputs and ``classes_`` are
    the whole problem's.  What a transfer fits per group."""
    return fit_atomically(est, lambda: est._fit(X, y, classes=classes))


class BaseBayesianMLP(ClassifierMixin, BaseEstimator):
    """Shared machinery; not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "use_bias": ["boolean"],
        "prior_sd": [Interval(Real, 0, None, closed="neither")],
        "inference": [StrOptions(set(INFERENCE_METHODS))],
        "sampler": [StrOptions(set(SAMPLERS))],
        "draws": [Interval(Integral, 1, None, closed="left")],
        "tune": [Interval(Integral, 1, None, closed="left")],
        "chains": [Interval(Integral, 1, None, closed="left")],
        "target_accept": [Interval(Real, 0, 1, closed="neither")],
        "advi_iterations": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "progressbar": ["boolean", StrOptions({"auto"})],
        "n_jobs": [
            None,
            Interval(Integral, 1, None, closed="left"),
            Interval(Integral, None, -1, closed="right"),
        ],
    }

    # ------------------------------------------------------------------ fit
    def _check_hidden_layer_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
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

    def _network_spec(self, n_features: int, n_classes: int) -> NetworkSpec:
        return NetworkSpec(
            n_features=n_features,
            hidden_layer_sizes=self._check_hidden_layer_sizes(),
            n_outputs=1 if n_classes == 2 else n_classes,
            activation=self.activation,
            use_bias=bool(self.use_bias),
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

    def _infer(self, definition, seed: int, X, y, codes=None):
        """Run the configured inference on ``definition`` (:mod:`skhbnn.models`)
        given the data, seeded by ``seed``; return ``(idata, draws,
        n_divergent)``, ``draws`` being the posterior arrays prediction reads."""
        data = (X, y, codes)
        if self.inference == "advi":
            idata = fit_advi(
                definition,
                data,
                iterations=self.advi_iterations,
                draws=self.draws,
                seed=seed,
                progressbar=self._show_progress(),
            )
            n_div = None
        else:
            idata = sample_nuts(
                definition,
                data,
                sampler=self.sampler,
                draws=self.draws,
                tune=self.tune,
                chains=self.chains,
                target_accept=self.target_accept,
                seed=seed,
                progressbar=self._show_progress(),
            )
            n_div = divergences(idata)
        return idata, posterior_arrays(idata, definition.prediction_names()), n_div

    def _fit_atomically(self, fit_fn):
        return fit_atomically(self, fit_fn)

    def _set_diagnostics(self, invariants: dict, n_divergent: int) -> None:
        if self.inference != "nuts":
            self.diagnostics_ = None
            return
        self.diagnostics_ = invariant_diagnostics(invariants, n_divergent)
        warn_if_unreliable(self.diagnostics_, type(self).__name__)

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
