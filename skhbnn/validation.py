"""Input validation with messages for users: what was wrong and what to do,
raised before any sampling starts."""

from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, validate_data

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
        "y contains NaN or infinite values; drop those rows, or give them a class label "
        "(a classifier) or a finite target (a regressor).",
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


def validate_X(est, X, *, reset: bool, y=None, y_numeric: bool = False):
    """``validate_data`` with messages that name the argument and say what to do."""
    kwargs = dict(dtype=np.float64, accept_sparse=False, reset=reset)
    if y_numeric:
        kwargs["y_numeric"] = True
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


def check_regression_data(est, X, y):
    """Validate a regressor's training data; return ``X`` and ``y`` as
    float64, ``y`` 1-D and finite."""
    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None."
        )
    try:
        X, y = validate_X(est, X, reset=True, y=y, y_numeric=True)
    except ValueError as exc:
        if "1d array" in str(exc):  # scikit-learn's words for a 2-D y
            raise ValueError(
                f"{type(est).__name__} fits one target, but y is 2-D; fit one regressor "
                "per column, e.g. with sklearn.multioutput.MultiOutputRegressor.\n"
                f"{exc}"
            ) from exc
        raise
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(
            "y contains NaN or infinite values; drop those rows or give them finite targets."
        )
    return X, y


ZERO_WEIGHTS = "sample_weight is zero for every row; give at least one row a positive weight."


def check_sample_weight(sample_weight, X) -> np.ndarray | None:
    """``sample_weight`` as float64 of shape ``(n_samples,)``, or ``None`` (every
    row weighs 1).  Checked as scikit-learn does: finite, non-negative, one per
    row; and not all zero (nothing to learn from)."""
    if sample_weight is None:
        return None
    n = X.shape[0]
    try:
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    except ValueError as exc:
        text = str(exc)
        lower = text.lower()
        if "negative" in lower:
            hint = "sample_weight must be non-negative; drop or reweight those rows."
        elif "non-zero" in lower:
            hint = ZERO_WEIGHTS
        elif "nan" in lower or "infinity" in lower:
            hint = "sample_weight contains NaN or infinite values; pass finite weights."
        else:
            hint = (
                f"sample_weight must be a 1-D array with one weight per row of X "
                f"({n} rows)."
            )
        raise ValueError(f"{hint}\n{text}") from exc
    if not np.any(weights > 0):
        raise ValueError(ZERO_WEIGHTS)
    return weights
