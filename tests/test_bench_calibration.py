"""The calibration benchmark's metrics, against hand-computed cases."""

import numpy as np
import pytest

from benchmarks.bench_calibration import (
    expected_calibration_error,
    markdown_table,
    scores,
    selective_accuracy,
)


def test_ece_hand_computed_binary():
    proba = np.array([[0.05, 0.95], [0.1, 0.9], [0.8, 0.2], [0.35, 0.65], [0.45, 0.55]])
    y = np.array([1, 0, 0, 0, 1])
    # Bins of the max probability: 0.95 and 0.9 in [0.9, 1] (accuracy 1/2,
    # confidence 0.925), 0.8 in [0.8, 0.9) (1 vs 0.8), 0.65 in [0.6, 0.7)
    # (0 vs 0.65), 0.55 in [0.5, 0.6) (1 vs 0.55).
    expected = 2 / 5 * 0.425 + 1 / 5 * 0.2 + 1 / 5 * 0.65 + 1 / 5 * 0.45
    assert expected == pytest.approx(0.43)
    assert expected_calibration_error(y, proba) == pytest.approx(expected)


def test_ece_hand_computed_multiclass_and_edges():
    proba = np.array([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.0, 0.0, 1.0]])
    y = np.array([0, 2, 2])
    # 0.5 in [0.5, 0.6): right, |1 - 0.5|; 0.7 in [0.7, 0.8): wrong, |0 - 0.7|;
    # 1.0 in the last bin: right, 0.
    assert expected_calibration_error(y, proba) == pytest.approx((0.5 + 0.7) / 3)
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(
        abs(2 / 3 - (0.5 + 0.7 + 1.0) / 3)
    )


def test_ece_calibrated_and_overconfident():
    rng = np.random.default_rng(0)
    p1 = rng.uniform(size=200_000)
    y = (rng.uniform(size=p1.size) < p1).astype(int)
    calibrated = np.column_stack([1 - p1, p1])
    assert expected_calibration_error(y, calibrated) < 0.01
    sharp = np.column_stack([p1 < 0.5, p1 >= 0.5]).astype(float)  # always 100% sure
    assert expected_calibration_error(y, sharp) == pytest.approx(0.25, abs=0.01)


def test_selective_accuracy_and_scores():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.0, 1.0]])
    y = np.array([0, 1, 1, 0, 1])  # rows 1 and 3 wrong, and least sure
    assert selective_accuracy(y, proba, -proba.max(axis=1), coverage=0.6) == 1.0
    assert selective_accuracy(y, proba, -proba.max(axis=1), coverage=1.0) == 0.6
    std = np.array([[0.3] * 2, [0.0] * 2, [0.1] * 2, [0.2] * 2, [0.4] * 2])
    s = scores(y, proba, std)
    assert s["accuracy"] == 0.6 and s["sel_acc_std"] == selective_accuracy(
        y, proba, std[:, 0]
    )
    assert s["brier"] == pytest.approx(np.mean((proba[:, 1] - y) ** 2))


def test_markdown_table():
    runs = [{"accuracy": a, "fit_s": 1.0} for a in (0.8, 0.9, 0.7)]
    table = markdown_table({"m": runs, "one": runs[:1]})
    assert "| m | 0.800 [0.700, 0.900] |" in table
    assert "| one | 0.800 |" in table


def test_std_split_one_bin():
    from benchmarks.bench_calibration import std_split

    proba = np.array([[0.2, 0.8], [0.3, 0.7], [0.1, 0.9], [0.4, 0.6]])
    std = np.array([0.1, 0.4, 0.2, 0.3])[:, None].repeat(2, axis=1)
    y = np.array([1, 0, 1, 1])
    edges, low, high = std_split(y, proba, std, n_bins=1)
    assert edges.tolist() == [0.6, 0.9]
    # Lower half of std: rows 0 and 2 (both right); upper half: rows 3 and 1.
    assert low[0] == pytest.approx((1.0, 0.85)) and high[0] == pytest.approx((0.5, 0.65))
