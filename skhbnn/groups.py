"""Group labels: validation, integer codes, group columns and padded layouts.

This is the one place that turns user group labels into integer codes.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

NEW_GROUP_POLICIES = ("population", "error")


def check_groups(groups, n_samples: int) -> np.ndarray:
    """Validate ``groups`` and return it as a 1-D object array."""
    if hasattr(groups, "toarray") or hasattr(groups, "tocsr"):
        raise TypeError(
            "groups must be a 1-D array-like of labels, not a sparse matrix; pass "
            "groups.toarray().ravel()."
        )
    arr = np.asarray(groups, dtype=object) if not isinstance(groups, pd.Series) else groups.to_numpy(dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"groups must be 1-D with one label per row of X; got shape {arr.shape}."
        )
    if len(arr) != n_samples:
        raise ValueError(
            f"groups has {len(arr)} labels but X has {n_samples} rows; pass one "
            "group label per row."
        )
    missing = pd.isna(pd.Series(arr, dtype=object)).to_numpy()
    if missing.any():
        raise ValueError(
            f"groups contains {int(missing.sum())} missing labels (None/NaN), e.g. at "
            f"row {int(np.flatnonzero(missing)[0])}; give every row a group label."
        )
    return arr


class GroupEncoder:
    """Maps hashable group labels to codes ``0..n_groups-1`` (-1 = unseen)."""

    def fit(self, groups: np.ndarray) -> "GroupEncoder":
        uniques = pd.unique(pd.Series(groups, dtype=object))
        try:
            uniques = np.array(sorted(uniques), dtype=object)
        except TypeError:  # mixed, unorderable labels: keep first-seen order
            uniques = np.asarray(uniques, dtype=object)
        self.classes_ = uniques
        self._index = pd.Index(uniques, dtype=object)
        return self

    def transform(self, groups: np.ndarray) -> np.ndarray:
        return self._index.get_indexer(pd.Index(groups, dtype=object)).astype(np.intp)


def split_group_column(X, group_column):
    """Return ``(features, groups)`` with the group column taken out of ``X``.

    ``group_column`` names a DataFrame column, or is the integer position of a
    column of an array.
    """
    if isinstance(X, pd.DataFrame):
        if group_column not in X.columns:
            raise ValueError(
                f"group_column={group_column!r} is not a column of X; set it to one "
                f"of X's columns {list(X.columns)[:20]}."
            )
        return X.drop(columns=[group_column]), X[group_column].to_numpy(dtype=object)
    if not isinstance(group_column, numbers.Integral) or isinstance(group_column, bool):
        raise ValueError(
            f"group_column={group_column!r} names a column, but X is not a pandas "
            "DataFrame; pass a DataFrame or the integer position of the column."
        )
    if hasattr(X, "toarray"):
        raise TypeError(
            "sparse X is not supported; pass a dense array (X.toarray()) or a DataFrame."
        )
    arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
    if arr.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features) when group_column is set; got "
            f"shape {arr.shape}."
        )
    if not -arr.shape[1] <= group_column < arr.shape[1]:
        raise ValueError(
            f"group_column={group_column} is out of range for X with "
            f"{arr.shape[1]} columns; use a position from {-arr.shape[1]} to "
            f"{arr.shape[1] - 1}."
        )
    col = group_column % arr.shape[1]
    return np.delete(arr, col, axis=1), arr[:, col].astype(object)


def resolve_groups(X, groups, group_column):
    """``(features, groups)``: from X's ``group_column`` when it is set (then
    ``groups`` must be None), else ``X`` and ``groups`` unchanged."""
    if group_column is None:
        return X, groups
    if groups is not None:
        raise ValueError(
            f"groups were passed although group_column={group_column!r} is set; "
            "give groups either as a column of X or as groups=, not both."
        )
    return split_group_column(X, group_column)


def pad_by_group(X: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int):
    """Lay rows out as ``(n_groups, max_rows, n_features)`` for batched matmul.

    Returns ``X_pad, y_pad, flat_index`` where ``flat_index`` lists the
    positions of real (non-padding) rows in the flattened ``(n_groups *
    max_rows)`` layout; the likelihood only looks at those.
    """
    counts = np.bincount(codes, minlength=n_groups)
    max_rows = int(counts.max())
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(codes)) - starts[sorted_codes]
    X_pad = np.zeros((n_groups, max_rows, X.shape[1]), dtype=float)
    y_pad = np.zeros((n_groups, max_rows), dtype=y.dtype)
    X_pad[sorted_codes, slot] = X[order]
    y_pad[sorted_codes, slot] = y[order]
    flat_index = np.sort(sorted_codes * max_rows + slot)
    return X_pad, y_pad, flat_index


def group_codes(encoder: GroupEncoder, groups, n_samples: int, *, new_groups_fix=None):
    """Codes of fitted groups for prediction (-1 for groups never seen in fit):
    the one routing of groups at predict time that every grouped estimator uses.

    ``groups=None`` is allowed when fit saw a single group.  With
    ``new_groups_fix`` (what to set instead, e.g. ``"new_groups='population'"``)
    unseen groups raise ``ValueError``; without it they are coded -1.
    """
    n_fitted = len(encoder.classes_)
    if groups is None:
        if n_fitted == 1:
            return np.zeros(n_samples, dtype=np.intp)
        raise ValueError(
            f"groups is required: the model was fitted on {n_fitted} groups. Pass "
            "groups=..., or set group_column so that groups travel inside X (needed "
            "when scikit-learn scores during cross-validation)."
        )
    codes = encoder.transform(check_groups(groups, n_samples))
    if new_groups_fix is not None and (codes < 0).any():
        unseen = list(pd.unique(pd.Series(np.asarray(groups, dtype=object)[codes < 0])))
        raise ValueError(
            f"groups {unseen[:10]} were not seen in fit and new_groups='error'; set "
            f"{new_groups_fix} to predict them."
        )
    return codes


def rows_of_codes(codes) -> list[tuple[np.ndarray, int]]:
    """``[(row indices, code)]`` for every code present, in code order: one
    sort, not one pass over the rows per group (100k groups)."""
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    present, first = np.unique(codes[order], return_index=True)
    return list(zip(np.split(order, first[1:]), present.tolist()))
