"""Grouped data sets: the seed's rotated, scaled half-moons, a generic
grouped classification generator and a grouped nonlinear regression."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_moons
from sklearn.preprocessing import scale
from sklearn.utils import check_random_state


def rotate(X: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate 2-D points as the seed does (``X @ [[c, -s], [s, c]]``)."""
    theta = np.radians(degrees)
    c, s = np.cos(theta), np.sin(theta)
    return X @ np.array([[c, -s], [s, c]])


def make_rotated_moons(
    n_groups: int = 18,
    n_samples: int = 100,
    *,
    noise: float = 0.3,
    rotation_sd: float = 90.0,
    random_state=None,
    split: bool = False,
):
    """Groups of half-moons, each scaled and rotated by its own random angle.

    Per group: ``make_moons(n_samples, noise)``, standardised, then rotated by
    ``rotation_sd * N(0, 1)`` degrees.  With ``random_state=31`` and the
    defaults this draws exactly the seed blog post's data (its ``np.random.seed(31)``
    drives the same generator through the same calls).

    Parameters
    ----------
    n_groups : int, default=18
    n_samples : int, default=100
        Points per group.
    noise : float, default=0.3
    rotation_sd : float, default=90.0
        Standard deviation of the rotation angle, in degrees.
    random_state : int, RandomState instance or None
    split : bool, default=False
        Return the seed's split: the first half of each group's points for
        training, the second half for testing.

    Returns
    -------
    X : ndarray of shape (n_groups * n_samples, 2)
    y : ndarray of shape (n_groups * n_samples,), int
    groups : ndarray of shape (n_groups * n_samples,), int
        Rows are ordered group by group.  With ``split=True`` the return value
        is ``X_train, X_test, y_train, y_test, groups_train, groups_test``.
    """
    rng = check_random_state(random_state)
    Xs, ys = [], []
    for _ in range(n_groups):
        X, y = make_moons(n_samples=n_samples, noise=noise, random_state=rng)
        Xs.append(rotate(scale(X), rng.randn() * rotation_sd))
        ys.append(y)
    X, y = np.stack(Xs), np.stack(ys)
    g = np.repeat(np.arange(n_groups), n_samples).reshape(n_groups, n_samples)
    if not split:
        return X.reshape(-1, 2), y.reshape(-1), g.reshape(-1)
    half = n_samples // 2

    def part(a, sl):
        return a[:, sl].reshape(-1, *a.shape[2:])

    first, second = slice(None, half), slice(half, None)
    return (
        part(X, first), part(X, second),
        part(y, first), part(y, second),
        part(g, first), part(g, second),
    )


def make_grouped_classification(
    n_groups: int = 40,
    n_features: int = 10,
    n_classes: int = 2,
    *,
    min_rows: int = 4,
    max_rows: int = 150,
    group_scale: float = 1.0,
    random_state=None,
    split: bool = False,
):
    """Grouped classification data with the traits of real grouped data.

    A fixed generator (the calibration benchmark and others rely on it: its
    draws do not change for a given ``random_state``).  There is one logit
    ``z`` for binary problems (class probabilities ``softmax([0, z])``, as in
    the seed's network) and one per class otherwise.  Logit ``k`` of a row
    ``x`` of group ``g`` is ``f_k(x) + b_gk + x @ B_gk``:

    * a shared nonlinear signal
      ``f_k(x) = x @ beta_k + 3 * tanh(x @ p_k) * tanh(x @ q_k)``, drawn once
      per call: ``beta_k ~ N(0, I / n_features)``, and ``p_k``, ``q_k`` two
      orthogonal random directions of length 1.5.  The product term is an
      XOR-like interaction that no linear model can represent (on its own,
      logistic regression stays near chance on it);
    * a group intercept ``b_gk ~ N(0, group_scale**2)``, so the class
      balance varies from group to group;
    * group slopes ``B_gk ~ N(0, (0.3 * group_scale)**2)`` per feature.

    Group ``g`` has ``n_g = round(exp(U(log min_rows, log max_rows)))`` rows
    (log-uniform sizes: many small groups, a few large ones), with features
    ``x = m_g + N(0, I)`` around its own means
    ``m_g ~ N(0, (0.5 * group_scale)**2)``.  Labels are drawn from the softmax
    of the logits, so even the generating model misclassifies some rows.

    Parameters
    ----------
    n_groups : int, default=40
    n_features : int, default=10
        All features enter the shared signal and the group slopes.
    n_classes : int, default=2
    min_rows, max_rows : int, default=4, 150
        Range of the group sizes (inclusive).
    group_scale : float, default=1.0
        Scales the group-level variation (feature means, intercepts, slopes);
        ``0`` gives groups that differ only in size.
    random_state : int, RandomState instance or None
    split : bool, default=False
        Also split every group: its first ``ceil(n_g / 2)`` rows train, the
        rest test (rows are drawn independently, so this is a random split).
        Needs ``min_rows >= 2`` so that every group has test rows.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,), int in ``0..n_classes - 1``
    groups : ndarray of shape (n_rows,), int in ``0..n_groups - 1``
        Rows are ordered group by group.  With ``split=True`` the return value
        is ``X_train, X_test, y_train, y_test, groups_train, groups_test``.

    Examples
    --------
    >>> import numpy as np
    >>> from skhbnn.datasets import make_grouped_classification
    >>> X, y, groups = make_grouped_classification(random_state=0)
    >>> X.shape[1], len(np.unique(groups)), np.unique(y).tolist()
    (10, 40, [0, 1])
    >>> sizes = np.bincount(groups)
    >>> bool(sizes.min() >= 4 and sizes.max() <= 150)
    True
    >>> X_tr, X_te, y_tr, y_te, g_tr, g_te = make_grouped_classification(
    ...     n_groups=5, n_classes=3, random_state=0, split=True)
    >>> np.unique(g_tr).tolist() == np.unique(g_te).tolist() == [0, 1, 2, 3, 4]
    True
    """
    if n_groups < 1 or n_features < 2:
        raise ValueError("Need n_groups >= 1 and n_features >= 2.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}.")
    if not 1 <= min_rows <= max_rows:
        raise ValueError(f"Need 1 <= min_rows <= max_rows, got {min_rows}, {max_rows}.")
    if split and min_rows < 2:
        raise ValueError("split=True needs min_rows >= 2 (test rows in every group).")
    if group_scale < 0:
        raise ValueError(f"group_scale must be >= 0, got {group_scale}.")
    rng = check_random_state(random_state)
    n_out = 1 if n_classes == 2 else n_classes
    # The order of the draws below is part of the generator's definition.
    sizes = np.rint(
        np.exp(rng.uniform(np.log(min_rows), np.log(max_rows), size=n_groups))
    ).astype(int)
    sizes = np.clip(sizes, min_rows, max_rows)
    beta = rng.normal(0.0, 1.0 / np.sqrt(n_features), size=(n_features, n_out))
    p, q = rng.normal(size=(2, n_features, n_out))
    p /= np.linalg.norm(p, axis=0)
    q -= p * np.sum(p * q, axis=0)  # Gram-Schmidt: q orthogonal to p
    q /= np.linalg.norm(q, axis=0)
    p, q = 1.5 * p, 1.5 * q
    means = rng.normal(0.0, 0.5 * group_scale, size=(n_groups, n_features))
    intercepts = rng.normal(0.0, group_scale, size=(n_groups, n_out))
    slopes = rng.normal(0.0, 0.3 * group_scale, size=(n_groups, n_features, n_out))
    Xs, ys = [], []
    for g in range(n_groups):
        X = means[g] + rng.normal(size=(sizes[g], n_features))
        z = X @ beta + 3.0 * np.tanh(X @ p) * np.tanh(X @ q)
        z += intercepts[g] + X @ slopes[g]
        if n_out == 1:
            z = np.hstack([np.zeros_like(z), z])
        proba = np.exp(z - z.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        u = rng.uniform(size=(sizes[g], 1))  # inverse-CDF draw, one uniform per row
        ys.append(np.minimum((np.cumsum(proba, axis=1) < u).sum(axis=1), n_classes - 1))
        Xs.append(X)
    X, y = np.concatenate(Xs), np.concatenate(ys).astype(int)
    groups = np.repeat(np.arange(n_groups), sizes)
    if not split:
        return X, y, groups
    n_train = (sizes + 1) // 2
    first = np.concatenate([np.arange(n) < k for n, k in zip(sizes, n_train)])
    return X[first], X[~first], y[first], y[~first], groups[first], groups[~first]


def make_grouped_regression(
    n_groups: int = 30,
    n_samples: int = 40,
    *,
    n_features: int = 1,
    noise: float = 0.3,
    group_sd: float = 0.4,
    random_state=None,
):
    """Groups of nonlinear regressions that share a shape but not its details.

    Per group ``g``: ``y = a_g sin(x @ w_g + phi_g) + b_g + noise * N(0, 1)``
    with ``x ~ U(-2, 2)^n_features``; the amplitude ``a_g ~ 1 + group_sd
    N(0, 1)``, the direction and frequency ``w_g ~ w + group_sd N(0, I)``
    around one population ``w`` (norm about 1.5), the phase ``phi_g`` and the
    offset ``b_g ~ 2 group_sd N(0, 1)``.  One function per group is learnable
    from many points; from a handful, only by borrowing the shape from the
    other groups.

    Parameters
    ----------
    n_groups : int, default=30
    n_samples : int, default=40
        Points per group.
    n_features : int, default=1
    noise : float, default=0.3
        Sd of the observation noise.
    group_sd : float, default=0.4
        How much the groups' functions differ.
    random_state : int, RandomState instance or None

    Returns
    -------
    X : ndarray of shape (n_groups * n_samples, n_features)
    y : ndarray of shape (n_groups * n_samples,)
    groups : ndarray of shape (n_groups * n_samples,), int
        Rows are ordered group by group.
    """
    rng = check_random_state(random_state)
    w = rng.normal(size=n_features)
    w *= 1.5 / np.linalg.norm(w)
    groups = np.repeat(np.arange(n_groups), n_samples)
    X = rng.uniform(-2.0, 2.0, size=(groups.size, n_features))
    amplitude = 1.0 + group_sd * rng.normal(size=n_groups)
    W = w + group_sd * rng.normal(size=(n_groups, n_features))
    phase = 2.0 * group_sd * rng.normal(size=n_groups)
    offset = 2.0 * group_sd * rng.normal(size=n_groups)
    f = amplitude[groups] * np.sin(np.sum(X * W[groups], axis=1) + phase[groups])
    y = f + offset[groups] + noise * rng.normal(size=groups.size)
    return X, y, groups
