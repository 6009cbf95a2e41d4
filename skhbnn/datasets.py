"""The seed's grouped data: rotated, scaled half-moons."""

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
