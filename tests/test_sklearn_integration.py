"""skhbnn where scikit-learn users work: DataFrames with a group column,
pipelines, cross-validation, grid search, metadata routing, pickling, ArviZ
and quiet progress (skhbnn.save / skhbnn.load: tests/test_persistence.py).

Every hierarchical fit in this module sees 6 groups, so all of them re-use one
compiled model (the compile cache is keyed by structure and group count).
"""

import copy
import pickle
import warnings

import arviz as az
import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skhbnn
from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
from skhbnn.datasets import make_rotated_moons

from .conftest import TINY

N_STORES = 9
FEATURES = ["x0", "x1"]


@pytest.fixture(scope="module")
def stores():
    """9 stores x 40 points of rotated moons; rotations with a 30 degree sd, so
    that a store never seen in fit is predictable from the others (with the
    seed's 90 degrees even the Bayes-optimal predictor scores only ~0.60)."""
    X, y, g = make_rotated_moons(
        n_groups=N_STORES, n_samples=40, rotation_sd=30.0, random_state=0
    )
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"] = np.array([f"store_{i}" for i in range(N_STORES)], dtype=object)[g]
    return df, y


@pytest.fixture(scope="module")
def six(stores):
    """The first 6 stores: X with the group column, y."""
    df, y = stores
    rows = df["store"].isin([f"store_{i}" for i in range(6)]).to_numpy()
    return df[rows].reset_index(drop=True), y[rows]


@pytest.fixture(scope="module")
def hier(six):
    df, y = six
    return HierarchicalBayesianMLPClassifier(group_column="store", **TINY).fit(df, y)


@pytest.fixture(scope="module")
def flat(six):
    df, y = six
    return BayesianMLPClassifier(hidden_layer_sizes=(4,), **TINY).fit(df[FEATURES], y)


# ------------------------------------------------------------ group column
def test_group_column_dataframe_fit_predict(hier, six):
    df, y = six
    assert list(hier.feature_names_in_) == FEATURES
    assert hier.n_features_in_ == 2
    assert list(hier.groups_) == [f"store_{i}" for i in range(6)]
    assert (hier.predict(df) == y).mean() > 0.8
    # The column is what groups= would have been.
    as_groups = copy.deepcopy(hier).set_params(group_column=None)
    np.testing.assert_array_equal(
        hier.predict_proba(df), as_groups.predict_proba(df[FEATURES], groups=df["store"])
    )


def test_group_column_position_in_numpy_array(hier, six):
    df, _ = six
    arr = df[["store", "x0", "x1"]].to_numpy(dtype=object)
    by_position = copy.deepcopy(hier).set_params(group_column=0)
    with warnings.catch_warnings():
        # A bare array has no feature names; sklearn rightly says so.
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        proba = by_position.predict_proba(arr)
    np.testing.assert_array_equal(proba, hier.predict_proba(df))


@pytest.mark.parametrize("method", ["fit", "predict", "predict_proba", "predict_std"])
def test_groups_and_group_column_together_raise(hier, six, method):
    df, y = six
    est = copy.deepcopy(hier)
    args = (df, y) if method == "fit" else (df,)
    with pytest.raises(ValueError, match="either as a column of X or as groups=, not both"):
        getattr(est, method)(*args, groups=df["store"])


# --------------------------------------------------------------- pipelines
def _pipeline():
    scale = ColumnTransformer(
        [("scale", StandardScaler(), ["x0"]), ("group", "passthrough", ["store"])],
        remainder="passthrough",  # x1 passes through unscaled
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    return make_pipeline(
        scale, HierarchicalBayesianMLPClassifier(group_column="store", **TINY)
    )


def test_pipeline_column_transformer_passes_group_column(six):
    df, y = six
    pipe = _pipeline().fit(df, y)
    est = pipe[-1]
    assert list(est.feature_names_in_) == ["x0", "x1"]
    assert list(est.groups_) == [f"store_{i}" for i in range(6)]
    assert pipe.predict_proba(df).shape == (len(df), 2)
    assert pipe.score(df, y) > 0.8
    # Same as scaling by hand and fitting the estimator on the result.
    manual = df.assign(x0=StandardScaler().fit_transform(df[["x0"]])[:, 0])
    direct = HierarchicalBayesianMLPClassifier(group_column="store", **TINY)
    direct.fit(manual[["x0", "store", "x1"]], y)
    np.testing.assert_allclose(pipe.predict_proba(df), direct.predict_proba(manual))


# ----------------------------------------------- cross-validation / search
def test_cross_val_score_with_group_column_in_X(six):
    df, y = six
    est = HierarchicalBayesianMLPClassifier(group_column="store", **TINY)
    scores = cross_val_score(est, df, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,)
    assert scores.mean() > 0.75


@pytest.mark.parametrize("kind", ["flat", "hier"])
def test_cross_validation_folds_compile_once(kind, six, monkeypatch):
    """On nutpie's pytensor route (no kernels), refits of one structure
    re-use one compiled model with new data."""
    nutpie = pytest.importorskip("nutpie")
    compiles = []
    real = nutpie.compile_pymc_model
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda *a, **k: compiles.append(1) or real(*a, **k))
    monkeypatch.setattr(skhbnn.inference, "_compiled_cache", skhbnn.inference.OrderedDict())
    df, y = six
    route = {**TINY, "sampler": "nutpie-pytensor"}
    if kind == "flat":
        est, X = BayesianMLPClassifier(hidden_layer_sizes=(3,), **route), df[FEATURES]
    else:
        est, X = HierarchicalBayesianMLPClassifier(group_column="store", **route), df
    # Folds of equal size: the same data shapes in every fit.
    scores = cross_val_score(est, X, y, cv=KFold(3, shuffle=True, random_state=1))
    assert len(scores) == 3 and len(compiles) == 1


def test_group_kfold_predicts_unseen_stores_from_the_population(stores):
    """Every test fold is made of stores never seen in fit: they are predicted
    by the population predictive, well above chance (Bayes-optimal is ~0.86
    for 30 degree rotations)."""
    df, y = stores
    est = HierarchicalBayesianMLPClassifier(group_column="store", **TINY)
    res = cross_validate(
        est, df, y, groups=df["store"], cv=GroupKFold(3),
        return_estimator=True, return_indices=True,
    )
    for fitted, test in zip(res["estimator"], res["indices"]["test"]):
        unseen = set(df["store"].iloc[test])
        assert unseen.isdisjoint(fitted.groups_)
        # The population predictive is what predicted them.
        codes = fitted._group_codes(df["store"].iloc[test].to_numpy(), len(test))
        assert (codes == -1).all()
    assert res["test_score"].min() > 0.6
    assert res["test_score"].mean() > 0.7


def test_new_groups_error_refuses_unseen_stores_in_group_kfold(stores):
    df, y = stores
    est = HierarchicalBayesianMLPClassifier(group_column="store", new_groups="error", **TINY)
    with pytest.raises(ValueError, match="not seen in fit"):
        cross_val_score(est, df, y, groups=df["store"], cv=GroupKFold(3), error_score="raise")


def test_grid_search_with_group_column(six):
    df, y = six
    est = HierarchicalBayesianMLPClassifier(group_column="store", **TINY)
    search = GridSearchCV(
        est, {"prior_sd": [0.5, 2.0]}, cv=KFold(2, shuffle=True, random_state=0)
    ).fit(df, y)
    assert search.best_params_["prior_sd"] in (0.5, 2.0)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.group_column == "store"
    assert search.score(df, y) > 0.75


def test_metadata_routing_sends_groups_to_fit(stores):
    """With routing, groups= reaches fit (and the splitter).  scikit-learn does
    not route metadata to predict while scoring, so a scorer that predicts
    needs the group column in X; here the scorer reads what fit received."""
    df, y = stores
    X, groups = df[FEATURES], df["store"].to_numpy()

    def n_groups_seen(est, X, y):
        return len(est.groups_)

    with sklearn.config_context(enable_metadata_routing=True):
        est = HierarchicalBayesianMLPClassifier(**TINY).set_fit_request(groups=True)
        res = cross_validate(
            est, X, y, params={"groups": groups}, cv=GroupKFold(3),
            scoring=n_groups_seen, return_estimator=True, return_indices=True,
        )
        for fitted, train in zip(res["estimator"], res["indices"]["train"]):
            assert sorted(fitted.groups_) == sorted(set(groups[train]))
        np.testing.assert_array_equal(res["test_score"], [6, 6, 6])

        search = GridSearchCV(
            est, {"prior_sd": [1.0]}, cv=GroupKFold(3), scoring=n_groups_seen, refit=False
        ).fit(X, y, groups=groups)
        np.testing.assert_array_equal(search.cv_results_["mean_test_score"], [6.0])

        # Default scoring predicts without groups: the error says what to do.
        with pytest.raises(ValueError, match="groups is required.*group_column"):
            cross_validate(
                est, X, y, params={"groups": groups}, cv=GroupKFold(3), error_score="raise"
            )
    assert not sklearn.get_config()["enable_metadata_routing"]


# ------------------------------------------------------------- pickling
@pytest.mark.parametrize("which", ["flat", "hier"])
@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trip(which, how, request, six, tmp_path):
    est = request.getfixturevalue(which)
    df, _ = six
    X = df if which == "hier" else df[FEATURES]
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(est))
    else:
        joblib.dump(est, tmp_path / "est.joblib")
        restored = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(restored.predict_std(X), est.predict_std(X))


# ------------------------------------------------------------------ ArviZ
@pytest.mark.parametrize(
    "which, var_names",
    [("hier", ["sd0", "sd1", "w0_mu"]), ("flat", ["w0", "b1"])],
)
def test_arviz_summary_on_idata(which, var_names, request, tmp_path):
    est = request.getfixturevalue(which)
    for idata in (est.idata_, skhbnn.load(est.save(tmp_path / "m.nc")).idata_):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one tiny chain: R-hat undefined
            summary = az.summary(idata, var_names=var_names)
        names = [str(i) for i in summary.index]
        for var in var_names:
            assert any(n == var or n.startswith(var + "[") for n in names), (var, names)
        assert np.isfinite(np.asarray(summary["mean"], dtype=float)).all()


# ---------------------------------------------------------------- progress
def test_fits_inside_cross_val_score_are_quiet(six, capfd):
    df, y = six
    est = BayesianMLPClassifier(hidden_layer_sizes=(4,), **{**TINY, "progressbar": "auto"})
    capfd.readouterr()
    cross_val_score(est, df[FEATURES], y, cv=2)
    out, err = capfd.readouterr()
    assert out == ""
    for marker in ("Sampling", "draws", "%", "Progress", "\r"):
        assert marker not in err, err[-500:]


def test_auto_progress_is_off_inside_cross_validation_even_on_a_terminal(
    six, monkeypatch
):
    """progressbar="auto" shows a bar in an interactive terminal, but not for
    the many fits of cross-validation or a grid search: they fit clones."""
    import sys

    from sklearn.base import clone

    df, y = six
    seen = []
    est = BayesianMLPClassifier(hidden_layer_sizes=(4,), **{**TINY, "progressbar": "auto"})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert est._show_progress() is True
    assert clone(est)._show_progress() is False
    assert "_skhbnn_clone" not in clone(est).get_params()

    import skhbnn._base as base

    original = base.BaseBayesianMLP._show_progress

    def spy(self):
        seen.append(original(self))
        return False  # keep the test's own output clean

    monkeypatch.setattr(base.BaseBayesianMLP, "_show_progress", spy)
    cross_val_score(est, df[FEATURES], y, cv=2)
    assert seen == [False, False]
    est.fit(df[FEATURES], y)  # the user's own estimator, in a terminal: a bar
    assert seen[-1] is True
