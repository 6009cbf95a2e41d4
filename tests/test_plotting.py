"""skhbnn.plotting: every figure from small fitted estimators (Agg backend)."""

import copy
import functools
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skhbnn import (  # noqa: E402
    BayesianMLPClassifier,
    HierarchicalBayesianMLPClassifier,
    InformedPriorTransfer,
)
from skhbnn import plotting as P  # noqa: E402
from skhbnn.datasets import make_rotated_moons  # noqa: E402

from .conftest import TINY  # noqa: E402

# PyMC's sampler: its compiled C code is cached on disk, so these fits
# compile in seconds on a rerun (nutpie recompiles in every new process).
FIT = dict(TINY, sampler="pymc", use_bias=False)
N_GROUPS = 4
RES = 12  # grid points per feature: enough to draw a contour, cheap to predict


@pytest.fixture(scope="module")
def data():
    return make_rotated_moons(n_groups=N_GROUPS, n_samples=30, random_state=3)


@pytest.fixture(scope="module")
def hier(data):
    X, y, g = data
    return HierarchicalBayesianMLPClassifier(**FIT).fit(X, y, groups=g)


@pytest.fixture(scope="module")
def transfer(data, hier):
    X, y, g = data
    return InformedPriorTransfer(hier, prefit=True).fit(X, y, groups=g)


@pytest.fixture(scope="module")
def flats(data):
    X, y, g = data
    return {
        label: BayesianMLPClassifier(**FIT).fit(X[g == label], y[g == label])
        for label in np.unique(g)
    }


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def panels(fig):
    """Axes that are not colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


@pytest.mark.parametrize(
    "n, ncols, expected",
    [
        (18, None, (3, 6)),  # not the post's 4 x 4, which lost two groups
        (16, None, (4, 4)),
        (12, None, (3, 4)),
        (7, None, (3, 3)),
        (5, None, (2, 3)),
        (2, None, (1, 2)),
        (1, None, (1, 1)),
        (18, 4, (5, 4)),
        (3, 10, (1, 3)),
    ],
)
def test_grid_shape_holds_every_panel(n, ncols, expected):
    rows, cols = P.grid_shape(n, ncols)
    assert (rows, cols) == expected
    assert rows * cols >= n


@pytest.mark.parametrize("n_groups", [18, 5])
def test_plot_data_grid_one_axes_per_group(n_groups):
    X, y, g = make_rotated_moons(n_groups=n_groups, n_samples=10, random_state=0)
    fig = P.plot_data_grid(X, y, g)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == n_groups  # unused grid cells are removed
    assert [ax.get_title() for ax in fig.axes] == [f"group {k}" for k in range(n_groups)]
    # Every point of every group is drawn, both classes per panel.
    n_points = sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections)
    assert n_points == len(X)


@pytest.mark.parametrize("kind", ["proba", "std"])
@pytest.mark.parametrize("model", ["flat", "hierarchical", "transfer", "dict"])
def test_plot_decision_surfaces_panels(model, kind, data, hier, transfer, flats):
    X, y, g = data
    if model == "flat":
        est, groups, n_panels = flats[0], None, 1
        X, y = X[g == 0], y[g == 0]
    else:
        est = {"hierarchical": hier, "transfer": transfer, "dict": flats}[model]
        groups, n_panels = g, N_GROUPS
    fig = P.plot_decision_surfaces(est, X, y, groups, kind=kind, resolution=RES)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(panels(fig)) == n_panels
    assert len(colorbars(fig)) == 1
    for ax in panels(fig):
        kinds = {type(c).__name__ for c in ax.collections}
        assert any("Contour" in k or "PathCollection" in k for k in kinds)
        assert ax.get_xlim() == (-3.0, 3.0)


def test_decision_surfaces_match_predictions(data, hier, transfer, flats):
    X, y, g = data
    for est in (hier, transfer):
        surf = P.decision_surfaces(est, g, resolution=RES)
        assert surf.groups == list(range(N_GROUPS))
        assert surf.proba.shape == surf.std.shape == (N_GROUPS, RES, RES)
        point = np.array([[surf.xx[3, 5], surf.yy[3, 5]]])
        for k, label in enumerate(surf.groups):
            assert surf.proba[k, 3, 5] == pytest.approx(
                est.predict_proba(point, groups=[label])[0, 1]
            )
            assert surf.std[k, 3, 5] == pytest.approx(
                est.predict_std(point, groups=[label])[0, 1]
            )
    surf = P.decision_surfaces(flats)
    assert surf.groups == list(flats)
    assert np.all((surf.proba >= 0) & (surf.proba <= 1)) and np.all(surf.std >= 0)


def test_precomputed_surfaces_draw_both_kinds(data, hier):
    X, y, g = data
    surf = P.decision_surfaces(hier, g, resolution=RES)
    for kind in ("proba", "std"):
        fig = P.plot_decision_surfaces(surf, X, y, g, kind=kind)
        assert len(panels(fig)) == N_GROUPS


def test_decision_surfaces_read_group_column(data, hier):
    """An estimator that reads groups from a column of X is fed that column."""
    _, _, g = data
    with_column = copy.deepcopy(hier)
    with_column.group_column = 0
    expected = P.decision_surfaces(hier, g, resolution=RES)
    got = P.decision_surfaces(with_column, g, resolution=RES)
    np.testing.assert_allclose(got.proba, expected.proba)


def test_unseen_group_gets_a_panel(data, hier):
    X, y, g = data
    g = g.astype(object)
    g[:5] = "new"
    fig = P.plot_decision_surfaces(hier, X, y, g, resolution=RES)
    assert len(panels(fig)) == N_GROUPS + 1


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda h, f, X, y, g: P.plot_decision_surfaces(h, X[:, :1], y, g), ValueError, "shape"),
        (lambda h, f, X, y, g: P.plot_decision_surfaces(h, X, y, g, kind="mean"), ValueError,
         "kind"),
        (lambda h, f, X, y, g: P.plot_decision_surfaces(h, X, y), ValueError, "groups is required"),
        (lambda h, f, X, y, g: P.plot_decision_surfaces({0: f[0]}, X, y, g), ValueError,
         "no estimator"),
        (lambda h, f, X, y, g: P.plot_decision_surfaces(object(), X, y), TypeError, "estimator"),
        (lambda h, f, X, y, g: P.plot_decision_surfaces(h, X, y, g[:3]), ValueError, "groups"),
        (lambda h, f, X, y, g: P.plot_decision_surfaces(h, X, y, g, bounds=(1, -1)), ValueError,
         "bounds"),
        (lambda h, f, X, y, g: P.plot_decision_surfaces(h, X, y, g, class_index=2,
                                                        resolution=RES), ValueError, "class_index"),
        (lambda h, f, X, y, g: P.plot_data_grid(X, y, None), ValueError, "groups"),
        (lambda h, f, X, y, g: P.plot_group_sd(f[0]), TypeError, "Hierarchical"),
        (lambda h, f, X, y, g: P.plot_group_mean_surface(f[0]), TypeError, "Hierarchical"),
        (lambda h, f, X, y, g: P.plot_weight_correlation(h, layer=3), ValueError, "layer"),
        (lambda h, f, X, y, g: P.grid_shape(0), ValueError, "panel"),
    ],
)
def test_errors_name_the_argument(call, error, match, data, hier, flats):
    X, y, g = data
    with pytest.raises(error, match=match):
        call(hier, flats, X, y, g)


@pytest.mark.parametrize("which", ["hierarchical", "transfer"])
def test_plot_group_sd_two_axes_per_layer(which, hier, transfer):
    fig = P.plot_group_sd(hier if which == "hierarchical" else transfer)
    assert len(fig.axes) == 2 * hier.network_.n_layers
    # Every layer's trace shows all draws of the (single) chain.
    n_draws = hier.posterior_draws_["sd0"].shape[1]
    traces = fig.axes[1::2]
    assert all(len(ax.lines[0].get_ydata()) == n_draws for ax in traces)


def test_group_mean_surface_same_for_hierarchical_and_transfer(data, hier, transfer):
    X, y, _ = data
    from_hier = P.decision_surfaces(P.group_mean_network(hier), resolution=RES)
    from_transfer = P.decision_surfaces(P.group_mean_network(transfer), resolution=RES)
    np.testing.assert_allclose(from_hier.proba, from_transfer.proba)
    for est, pts in ((hier, {}), (transfer, {"X": X, "y": y})):
        fig = P.plot_group_mean_surface(est, resolution=RES, **pts)
        assert len(panels(fig)) == 1 and len(colorbars(fig)) == 1


@pytest.mark.parametrize("layer, n_weights", [(0, 2 * 5), (1, 5 * 5)])
def test_plot_weight_correlation_is_a_correlation_matrix(layer, n_weights, hier):
    fig = P.plot_weight_correlation(hier, layer=layer)
    assert len(fig.axes) == 4  # heatmap, two dendrograms, colorbar
    image = [ax for ax in fig.axes if ax.images][0].images[0].get_array()
    assert image.shape == (n_weights, n_weights)
    np.testing.assert_allclose(np.diag(image), 1.0)
    np.testing.assert_allclose(image, image.T, atol=1e-12)
    assert np.all(np.abs(image) <= 1 + 1e-12)


def test_weight_correlation_aligns_permuted_chains(hier):
    """A second chain that is the first with hidden units permuted and
    sign-flipped gives the single chain's map once aligned, and mush without."""
    rng = np.random.default_rng(0)
    perm, sign = rng.permutation(5), np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    draws = dict(hier.posterior_draws_)
    w0, w1 = draws["w0_mu"], draws["w1_mu"]
    w0_b = w0[..., perm] * sign
    w1_b = w1[..., perm, :] * sign[:, None]
    two = copy.copy(hier)
    two.posterior_draws_ = {
        **draws,
        "w0_mu": np.concatenate([w0, w0_b]),
        "w1_mu": np.concatenate([w1, w1_b]),
        "w2_mu": np.concatenate([draws["w2_mu"]] * 2),
    }

    def heat(est, align):
        fig = P.plot_weight_correlation(est, align=align)
        return [ax for ax in fig.axes if ax.images][0].images[0].get_array()

    single = heat(hier, True)
    np.testing.assert_allclose(heat(two, True), single, atol=1e-10)
    assert np.abs(heat(two, False) - single).max() > 0.05


class PublicOnly:
    """A fitted estimator seen through a proxy that records every private name
    (``_x``, not dunders) asked of it, or of the estimators it hands out."""

    def __init__(self, est, private):
        self.__dict__.update(_est=est, _private=private)

    def __getattr__(self, name):
        if name.startswith("_") and not name.startswith("__"):
            self._private.append(name)
        return _public_only(getattr(self._est, name), self._private)


def _public_only(value, private):
    if hasattr(value, "predict_proba") and not isinstance(value, type):
        return PublicOnly(value, private)
    if callable(value) and not isinstance(value, type):
        @functools.wraps(value)  # keeps the signature (return_std) readable
        def method(*args, **kwargs):
            return _public_only(value(*args, **kwargs), private)

        return method
    return value


@pytest.mark.parametrize("model", ["flat", "hierarchical", "transfer"])
def test_figures_use_only_public_estimator_api(model, data, hier, transfer, flats):
    X, y, g = data
    real = {"flat": flats[0], "hierarchical": hier, "transfer": transfer}[model]
    groups = None if model == "flat" else g
    private = []
    est = PublicOnly(real, private)
    surf = P.decision_surfaces(est, groups, resolution=RES)
    expected = P.decision_surfaces(real, groups, resolution=RES)
    np.testing.assert_array_equal(surf.proba, expected.proba)
    np.testing.assert_array_equal(surf.std, expected.std)
    P.plot_decision_surfaces(est, X, y, groups, kind="std", resolution=RES)
    if model != "flat":
        P.plot_group_sd(est)
        P.plot_group_mean_surface(est, resolution=RES)
        P.plot_weight_correlation(est)
    assert private == []


class TwoCalls:
    """Not an skhbnn estimator: predict_proba without return_std, predict_std."""

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-np.asarray(X)[:, 0]))
        return np.column_stack([1 - p, p])

    def predict_std(self, X):
        return np.full((len(X), 2), 0.25)


def test_other_estimators_are_asked_predict_proba_and_predict_std(data):
    X, y, _ = data
    surf = P.decision_surfaces(TwoCalls(), resolution=RES)
    assert surf.groups == [None]
    np.testing.assert_allclose(surf.proba[0], 1 / (1 + np.exp(-surf.xx)))
    np.testing.assert_allclose(surf.std, 0.25)
    fig = P.plot_decision_surfaces(TwoCalls(), X, y, kind="std", resolution=RES)
    assert len(panels(fig)) == 1 and len(colorbars(fig)) == 1


def test_group_mean_network_delegates(hier, transfer):
    assert P.group_mean_network(transfer) is transfer.prior_network_

    class Hierarchical:  # the public surface plotting recognises
        network_ = hier.network_
        sentinel = object()

        def group_mean_network(self):
            return self.sentinel

    assert P.group_mean_network(Hierarchical()) is Hierarchical.sentinel
    with pytest.raises(TypeError, match="is it fitted"):
        P.group_mean_network(HierarchicalBayesianMLPClassifier())


def test_import_leaves_matplotlib_unimported():
    code = (
        "import sys, skhbnn; before = 'matplotlib' in sys.modules; "
        "import skhbnn.plotting; print(before, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    if out[0] == "True":
        pytest.skip("skhbnn itself imports matplotlib")
    assert out == ["False", "False"]
