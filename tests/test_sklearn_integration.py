"""skhbnn where scikit-learn users work: DataFrames with a group column,
pipelines, cross-validation, grid search, metadata routing, pickling, save /
load, ArviZ and quiet progress.

Every hierarchical fit in this module sees 6 groups, so all of them re-use one
compiled model (the compile cache is keyed by structure and group count).
"""

import copy
import os
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
    monkeypatch.setattr(skhbnn.inference, "KERNELS", False)
    compiles = []
    real = nutpie.compile_pymc_model
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda *a, **k: compiles.append(1) or real(*a, **k))
    monkeypatch.setattr(skhbnn.inference, "_compiled_cache", skhbnn.inference.OrderedDict())
    df, y = six
    if kind == "flat":
        est, X = BayesianMLPClassifier(hidden_layer_sizes=(3,), **TINY), df[FEATURES]
    else:
        est, X = HierarchicalBayesianMLPClassifier(group_column="store", **TINY), df
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


# ------------------------------------------------------------ save / load
def _unseen_store(df):
    new = df.copy()
    new.loc[: len(df) // 4, "store"] = "store_never_seen"
    return new


@pytest.mark.parametrize("which", ["flat", "hier"])
@pytest.mark.parametrize("include_idata", [True, False])
def test_save_load_identical_predictions(which, include_idata, request, six, tmp_path):
    est = request.getfixturevalue(which)
    df, _ = six
    X = _unseen_store(df) if which == "hier" else df[FEATURES]
    path = est.save(tmp_path / "model.nc", include_idata=include_idata)
    assert path.is_file()
    restored = skhbnn.load(path)
    assert type(restored) is type(est)
    assert restored.get_params() == est.get_params()
    # Every attribute predict relies on, private ones included, comes back.
    assert set(vars(restored)) == set(vars(est))
    for method in ("predict_proba", "predict_std", "predict"):
        np.testing.assert_array_equal(
            getattr(restored, method)(X), getattr(est, method)(X)
        )
    if which == "hier":
        assert restored._prediction_seed == est._prediction_seed
        np.testing.assert_array_equal(restored.groups_, est.groups_)
    assert list(restored.feature_names_in_) == list(est.feature_names_in_)
    assert restored.network_ == est.network_
    assert restored.diagnostics_.keys() == est.diagnostics_.keys()
    if include_idata:
        assert type(restored.idata_) is type(est.idata_)
        np.testing.assert_array_equal(
            restored.idata_.posterior["w0"].values, est.idata_.posterior["w0"].values
        )
    else:
        assert restored.idata_ is None


def test_save_load_round_trips_prior_random_state_and_string_classes(tmp_path):
    """An MvNormalPrior parameter, a RandomState and string labels survive."""
    from skhbnn.network import NetworkSpec
    from skhbnn.priors import MvNormalPrior

    spec = NetworkSpec(n_features=2, hidden_layer_sizes=(3,), n_outputs=1, use_bias=False)
    rng = np.random.default_rng(0)
    prior = MvNormalPrior(
        means={"w0": rng.normal(size=6), "w1": rng.normal(size=3)},
        covs={"w0": np.eye(6) * 0.5, "w1": np.eye(3)},
        layer_sizes=spec.layer_sizes,
    )
    draws = {"w0": rng.normal(size=(2, 10, 2, 3)), "w1": rng.normal(size=(2, 10, 3, 1))}
    params = dict(
        hidden_layer_sizes=(3,), use_bias=False, prior=prior,
        random_state=np.random.RandomState(7), **{k: v for k, v in TINY.items()
                                                   if k != "random_state"},
    )
    est = BayesianMLPClassifier._from_draws(draws, spec, np.array(["no", "yes"]), params)
    path = est.save(tmp_path / "prior.nc")
    restored = skhbnn.load(path)
    p = restored.get_params()
    for name in ("means", "covs"):
        for key, value in getattr(prior, name).items():
            np.testing.assert_array_equal(getattr(p["prior"], name)[key], value)
    assert p["prior"].layer_sizes == prior.layer_sizes
    assert p["hidden_layer_sizes"] == (3,)
    assert p["random_state"].randint(10**9) == np.random.RandomState(7).randint(10**9)
    X = rng.normal(size=(20, 2))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    assert restored.classes_.dtype == est.classes_.dtype
    # The restored prior still works as a prior.
    restored.get_params()["prior"].validate(spec)


def test_load_accepts_the_expected_class(hier, tmp_path):
    path = hier.save(tmp_path / "h.nc")
    restored = skhbnn.load(path, estimator_class=HierarchicalBayesianMLPClassifier)
    assert isinstance(restored, HierarchicalBayesianMLPClassifier)


@pytest.fixture(scope="module")
def saved(hier, tmp_path_factory):
    """Bytes of a saved hierarchical model (tests edit copies of them)."""
    path = hier.save(tmp_path_factory.mktemp("saved") / "hier.nc")
    return path.read_bytes()


def _edit_attrs(path, **attrs):
    import h5netcdf

    with h5netcdf.File(path, "r+") as f:
        for key, value in attrs.items():
            f.attrs[key] = value


# (attribute edits, load kwargs, message regex)
REFUSALS = [
    ({"skhbnn_version": "99.0.0"}, {}, r"written by skhbnn 99\.0\.0, which is not compatible"),
    ({"skhbnn_version": f"0.{99}.0"}, {}, r"not compatible.*major\.minor"),
    ({"skhbnn_format_version": 99}, {}, r"file format 99.*Upgrade skhbnn"),
    ({"skhbnn_format": "something-else"}, {}, r"not a file written by skhbnn\.save"),
    ({"estimator_class": "RandomForestClassifier"}, {},
     r"class 'RandomForestClassifier'.*cannot load"),
    ({}, {"estimator_class": BayesianMLPClassifier},
     r"class HierarchicalBayesianMLPClassifier, not BayesianMLPClassifier"),
    ({}, {"estimator_class": "InformedPriorTransfer"}, r"not InformedPriorTransfer"),
]


@pytest.mark.parametrize("attrs, kwargs, match", REFUSALS)
def test_load_refuses_mismatched_version_or_class(saved, tmp_path, attrs, kwargs, match):
    path = tmp_path / "edited.nc"
    path.write_bytes(saved)
    _edit_attrs(path, **attrs)
    with pytest.raises(ValueError, match=match):
        skhbnn.load(path, **kwargs)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_load_refuses_truncated_file(saved, tmp_path, fraction):
    path = tmp_path / "truncated.nc"
    path.write_bytes(saved[: int(len(saved) * fraction)])
    with pytest.raises(ValueError, match="truncated or corrupted|checksum"):
        skhbnn.load(path)


def test_load_refuses_tampered_values(saved, hier, tmp_path):
    import h5netcdf

    # A posterior draw changed in place, through the netCDF API.
    path = tmp_path / "tampered.nc"
    path.write_bytes(saved)
    with h5netcdf.File(path, "r+") as f:
        var = f["idata_0/posterior"].variables["w0_mu"]
        var[0, 0, 0, 0] = var[0, 0, 0, 0] + 1.0
    with pytest.raises(ValueError, match="failed its checksum"):
        skhbnn.load(path)

    # The same, by flipping raw bytes of a stored float.
    value = hier.posterior_draws_["w0_mu"][0, 5].tobytes()
    assert saved.count(value) >= 1
    at = saved.index(value)
    flipped = bytearray(saved)
    flipped[at + 3] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="failed its checksum"):
        skhbnn.load(path)


def test_load_refuses_tampered_parameters(saved, tmp_path):
    """Editing the JSON (here: a parameter) is caught by the checksum too."""
    import h5netcdf

    path = tmp_path / "params.nc"
    path.write_bytes(saved)
    with h5netcdf.File(path, "r+") as f:
        text = f.variables["metadata"][()]
        text = text.decode() if isinstance(text, bytes) else str(text)
        assert '"prior_sd": 1.0' in text
        f.variables["metadata"][()] = text.replace('"prior_sd": 1.0', '"prior_sd": 9.0')
    with pytest.raises(ValueError, match="failed its checksum"):
        skhbnn.load(path)


def test_load_does_not_unpickle(saved, tmp_path, monkeypatch):
    path = tmp_path / "m.nc"
    path.write_bytes(saved)

    def refuse(*args, **kwargs):
        raise AssertionError("load() must not unpickle anything")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(np, "load", refuse)
    assert isinstance(skhbnn.load(path), HierarchicalBayesianMLPClassifier)


def test_save_is_atomic(hier, tmp_path, monkeypatch):
    from skhbnn import persistence

    target = tmp_path / "model.nc"

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(persistence, "_write_idata", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        hier.save(target)
    assert os.listdir(tmp_path) == []  # no partial file, no temporary left over

    # An existing file is replaced only by a complete one.
    target.write_bytes(b"previous contents")
    with pytest.raises(RuntimeError, match="disk full"):
        hier.save(target)
    assert target.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["model.nc"]


def test_save_refuses_unfitted_and_unportable(hier, tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HierarchicalBayesianMLPClassifier().save(tmp_path / "x.nc")
    odd = copy.deepcopy(hier)
    odd.extra_ = object()
    with pytest.raises(TypeError, match=r"cannot save estimator\.extra_"):
        odd.save(tmp_path / "x.nc")
    assert not (tmp_path / "x.nc").exists()


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        skhbnn.load(tmp_path / "nope.nc")


@pytest.mark.slow  # six flat fits under the informed prior, one more compile
def test_save_load_informed_prior_transfer(hier, six, tmp_path):
    """The transfer with its hierarchical model, prior and per-store flat
    models; objects shared before saving are shared after loading."""
    from skhbnn import InformedPriorTransfer
    from skhbnn.persistence import save

    df, y = six
    transfer = InformedPriorTransfer(hier, prefit=True, group_column="store").fit(df, y)
    restored = skhbnn.load(save(transfer, tmp_path / "transfer.nc"))
    X = _unseen_store(df)
    np.testing.assert_array_equal(restored.predict_proba(X), transfer.predict_proba(X))
    np.testing.assert_array_equal(restored.predict_std(X), transfer.predict_std(X))
    assert restored.estimator is restored.estimator_  # prefit: one object, as before
    assert list(restored.estimators_) == list(transfer.estimators_)
    assert all(est.prior is restored.prior_ for est in restored.estimators_.values())
    np.testing.assert_array_equal(
        restored.estimator_.predict_proba(X), hier.predict_proba(X)
    )


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
    the many fits of cross-validation or a grid search."""
    import sys

    df, y = six
    seen = []
    est = BayesianMLPClassifier(hidden_layer_sizes=(4,), **{**TINY, "progressbar": "auto"})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert est._show_progress() is True

    import skhbnn._base as base

    original = base.BaseBayesianMLP._show_progress

    def spy(self):
        seen.append(original(self))
        return False  # keep the test's own output clean

    monkeypatch.setattr(base.BaseBayesianMLP, "_show_progress", spy)
    cross_val_score(est, df[FEATURES], y, cv=2)
    assert seen == [False, False]
