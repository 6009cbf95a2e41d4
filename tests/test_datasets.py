"""The data set generators: shapes, determinism and the traits they promise."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from skhbnn.datasets import make_grouped_classification, make_rotated_moons

FIXED_REGRESSION_X = [0.4110535042865755, 0.17953273198758746]
FIXED_REGRESSION_Y = [0.4617402919612392, 0.35505570446686363, -0.48947756543967597]


def test_grouped_shapes_and_labels():
    X, y, groups = make_grouped_classification(
        n_groups=12, n_features=9, min_rows=3, max_rows=60, random_state=0
    )
    assert X.shape == (len(y), 9) and groups.shape == y.shape
    assert X.dtype == float and y.dtype.kind == "i" and groups.dtype.kind == "i"
    assert np.unique(groups).tolist() == list(range(12))
    assert np.all(np.diff(groups) >= 0)  # ordered group by group
    assert set(np.unique(y)) == {0, 1}
    sizes = np.bincount(groups)
    assert sizes.min() >= 3 and sizes.max() <= 60


def test_grouped_default_has_many_features():
    X, _, _ = make_grouped_classification(n_groups=3, random_state=0)
    assert X.shape[1] >= 8


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_grouped_multiclass(n_classes):
    _, y, _ = make_grouped_classification(
        n_groups=10, n_classes=n_classes, min_rows=50, max_rows=80, random_state=1
    )
    assert np.unique(y).tolist() == list(range(n_classes))


def test_grouped_deterministic():
    a = make_grouped_classification(n_groups=8, random_state=5, split=True)
    b = make_grouped_classification(
        n_groups=8, random_state=np.random.RandomState(5), split=True
    )
    c = make_grouped_classification(n_groups=8, random_state=6, split=True)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])


def test_grouped_fixed_draws():
    # The generator is fixed: other benchmarks rely on these exact draws.
    X, y, groups = make_grouped_classification(n_groups=3, random_state=0)
    assert np.bincount(groups).tolist() == [29, 53, 36]
    np.testing.assert_allclose(X[0, :3], [0.63913393, 0.68884008, 0.29497604], atol=1e-4)
    assert y[:8].tolist() == [0, 0, 0, 0, 0, 1, 1, 0]


def test_grouped_unequal_sizes():
    _, _, groups = make_grouped_classification(
        n_groups=40, min_rows=4, max_rows=150, random_state=0
    )
    sizes = np.bincount(groups)
    assert np.sum(sizes <= 8) >= 3  # a few rows in some groups
    assert sizes.max() >= 10 * sizes.min()


def test_grouped_class_balance_varies():
    _, y, groups = make_grouped_classification(
        n_groups=20, min_rows=80, max_rows=100, random_state=0
    )
    balance = np.array([y[groups == g].mean() for g in range(20)])
    assert balance.max() - balance.min() > 0.4
    assert np.std(balance) > 0.1


def test_grouped_split():
    X, y, groups = make_grouped_classification(n_groups=6, random_state=2)
    X_tr, _, _, y_te, g_tr, g_te = make_grouped_classification(
        n_groups=6, random_state=2, split=True
    )
    sizes = np.bincount(groups)
    assert np.bincount(g_tr).tolist() == ((sizes + 1) // 2).tolist()
    assert np.bincount(g_te).tolist() == (sizes // 2).tolist()
    # The split partitions the unsplit rows: first part of each group trains.
    for g in range(6):
        k = (sizes[g] + 1) // 2
        np.testing.assert_array_equal(X[groups == g][:k], X_tr[g_tr == g])
        np.testing.assert_array_equal(y[groups == g][k:], y_te[g_te == g])


def test_grouped_bad_arguments():
    with pytest.raises(ValueError, match="n_classes"):
        make_grouped_classification(n_classes=1)
    with pytest.raises(ValueError, match="min_rows"):
        make_grouped_classification(min_rows=10, max_rows=5)
    with pytest.raises(ValueError, match="split"):
        make_grouped_classification(min_rows=1, split=True)


def _one_hot(g, n):
    return np.eye(n)[g]


def test_grouped_group_carries_information():
    # Held-out rows: a logistic regression that sees the group (one-hot) beats
    # one that does not, both in log loss and accuracy.
    n = 20
    X_tr, X_te, y_tr, y_te, g_tr, g_te = make_grouped_classification(
        n_groups=n, min_rows=60, max_rows=120, random_state=0, split=True
    )
    plain = LogisticRegression().fit(X_tr, y_tr)
    with_group = LogisticRegression().fit(
        np.hstack([X_tr, _one_hot(g_tr, n)]), y_tr
    )
    F_te = np.hstack([X_te, _one_hot(g_te, n)])
    assert log_loss(y_te, with_group.predict_proba(F_te)) < log_loss(
        y_te, plain.predict_proba(X_te)
    ) - 0.02
    assert with_group.score(F_te, y_te) > plain.score(X_te, y_te)


def test_grouped_without_group_effects():
    # group_scale=0: groups differ only in size, so the group is no help.
    _, y, groups = make_grouped_classification(
        n_groups=10, min_rows=150, max_rows=150, group_scale=0.0, random_state=0
    )
    balance = np.array([y[groups == g].mean() for g in range(10)])
    assert np.std(balance) < 0.06


def test_rotated_moons_seed_split():
    X_tr, X_te, _, _, g_tr, _ = make_rotated_moons(random_state=31, split=True)
    assert X_tr.shape == X_te.shape == (900, 2)
    assert np.bincount(g_tr).tolist() == [50] * 18


def test_grouped_regression_shapes_and_fixed_draws():
    from skhbnn.datasets import make_grouped_regression

    X, y, groups = make_grouped_regression(n_groups=5, n_samples=12, n_features=3, random_state=0)
    assert X.shape == (60, 3) and y.shape == groups.shape == (60,)
    assert np.all(np.diff(groups) >= 0) and np.bincount(groups).tolist() == [12] * 5
    assert np.all(np.abs(X) <= 2.0)
    a = make_grouped_regression(n_groups=3, n_samples=4, random_state=0)
    b = make_grouped_regression(n_groups=3, n_samples=4, random_state=np.random.RandomState(0))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    # The generator is fixed: benchmarks/bench_regression.py relies on these draws.
    X1, y1, _ = a
    assert X1.shape == (12, 1)
    np.testing.assert_allclose(X1[:2, 0], FIXED_REGRESSION_X, atol=1e-6)
    np.testing.assert_allclose(y1[:3], FIXED_REGRESSION_Y, atol=1e-6)


def test_grouped_regression_groups_differ():
    """Group offsets and shapes: per-group means of y spread beyond noise."""
    from skhbnn.datasets import make_grouped_regression

    _, y, groups = make_grouped_regression(n_groups=20, n_samples=200, random_state=1)
    means = np.array([y[groups == g].mean() for g in range(20)])
    assert means.std() > 0.3  # the noise alone would give 0.3 / sqrt(200) = 0.02
