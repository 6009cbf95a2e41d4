"""skhbnn.save / skhbnn.load: round trips, refusals, what is saved, which
files load (the file format version, not the skhbnn version) and files written
by skhbnn 0.1.0 (tests/data/saved_v0_1_0)."""

import ast
import copy
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skhbnn
from skhbnn import (
    BayesianMLPClassifier,
    HierarchicalBayesianMLPClassifier,
    InformedPriorTransfer,
)
from skhbnn.datasets import make_rotated_moons
from skhbnn.persistence import FORMAT_VERSION, save
from skhbnn.registry import registered

from .conftest import TINY

FEATURES = ["x0", "x1"]
SMALL = dict(TINY, hidden_layer_sizes=(3,))
PACKAGE = Path(skhbnn.persistence.__file__).parent
SAVED_V0_1_0 = Path(__file__).parent / "data" / "saved_v0_1_0"


@pytest.fixture(scope="module")
def stores():
    """3 stores x 20 points of rotated moons: X with a "store" column, y."""
    X, y, g = make_rotated_moons(n_groups=3, n_samples=20, rotation_sd=30.0, random_state=1)
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"] = np.array(["north", "south", "east"], dtype=object)[g]
    return df, y


@pytest.fixture(scope="module")
def hier(stores):
    df, y = stores
    return HierarchicalBayesianMLPClassifier(group_column="store", **SMALL).fit(df, y)


@pytest.fixture(scope="module")
def flat(stores):
    df, y = stores
    return BayesianMLPClassifier(**SMALL).fit(df[FEATURES].to_numpy(), y)


@pytest.fixture(scope="module")
def transfer(hier, stores):
    df, y = stores
    return InformedPriorTransfer(hier, prefit=True, group_column="store").fit(df, y)


def _unseen_store(df):
    new = df.copy()
    new.loc[: len(df) // 4, "store"] = "store_never_seen"
    return new


def _rows(which, stores):
    """What ``which`` predicts on: flat sees bare features, the others the
    frame with a store never seen in fit."""
    df, _ = stores
    return df[FEATURES].to_numpy() if which == "flat" else _unseen_store(df)


# ------------------------------------------------------------- round trips
@pytest.mark.parametrize("which", ["flat", "hier"])
@pytest.mark.parametrize("include_idata", [True, False])
def test_save_load_identical_predictions(which, include_idata, request, stores, tmp_path):
    est = request.getfixturevalue(which)
    X = _rows(which, stores)
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
    else:
        assert not hasattr(restored, "feature_names_in_")  # absent, and stays so
    assert restored.network_ == est.network_
    assert restored.diagnostics_.keys() == est.diagnostics_.keys()
    if include_idata:
        assert type(restored.idata_) is type(est.idata_)
        var = "w0_mu" if which == "hier" else "w0"
        np.testing.assert_array_equal(
            restored.idata_.posterior[var].values, est.idata_.posterior[var].values
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


def test_save_load_informed_prior_transfer(transfer, hier, stores, tmp_path):
    """The transfer with its hierarchical model, prior and per-store flat
    models; objects shared before saving are shared after loading."""
    restored = skhbnn.load(save(transfer, tmp_path / "transfer.nc"))
    X = _unseen_store(stores[0])
    np.testing.assert_array_equal(restored.predict_proba(X), transfer.predict_proba(X))
    np.testing.assert_array_equal(restored.predict_std(X), transfer.predict_std(X))
    assert restored.estimator is restored.estimator_  # prefit: one object, as before
    assert list(restored.estimators_) == list(transfer.estimators_)
    assert all(est.prior is restored.prior_ for est in restored.estimators_.values())
    np.testing.assert_array_equal(
        restored.estimator_.predict_proba(X), hier.predict_proba(X)
    )


def test_load_accepts_the_expected_class(hier, tmp_path):
    path = hier.save(tmp_path / "h.nc")
    restored = skhbnn.load(path, estimator_class=HierarchicalBayesianMLPClassifier)
    assert isinstance(restored, HierarchicalBayesianMLPClassifier)


# -------------------------------------------------- what is saved: by name
# Attributes an instance may carry that are deliberately not saved, and why.
NOT_SAVED = {
    "_metadata_request": "scikit-learn's metadata-routing requests: session configuration",
    "_skhbnn_clone": "marks a clone made by model selection or a transfer (progress bars)",
}
# Fitted attributes that fit sets only for some inputs.
OPTIONAL = {
    "feature_names_in_": "set only when X has column names",
    "new_group_estimators_": "set by fit_new_group, not by fit (tests/test_coldstart.py saves it)",
    "elbo_": "set by variational fits only (tests/test_svi.py saves it)",
}


def _fitted(which, request):
    name, _, part = which.partition(".")
    est = request.getfixturevalue(name)
    if part == "estimators_":
        return next(iter(est.estimators_.values()))
    return getattr(est, part) if part else est


@pytest.mark.parametrize("which", [
    "flat", "hier", "transfer",
    # What a transfer holds: its hierarchical model, a per-group flat model
    # (fitted under the informed prior) and the group-mean flat model.
    "transfer.estimator_", "transfer.estimators_", "transfer.prior_network_",
])
def test_registry_names_every_attribute_fit_sets(which, request):
    """Saving goes by the registry's list, so an attribute that fit sets and
    the list lacks would be lost silently: every attribute of a fitted
    estimator is a parameter, in the list, or deliberately not saved."""
    est = _fitted(which, request)
    fitted = registered()[type(est).__name__].fitted
    params = set(est.get_params(deep=False))
    set_by_fit = set(vars(est)) - params
    forgotten = set_by_fit - set(fitted) - set(NOT_SAVED)
    assert not forgotten, (
        f"{type(est).__name__} sets {sorted(forgotten)} in fit but the registry does "
        "not name them: add them to its register_estimator(fitted=...) or to NOT_SAVED."
    )
    # ... and the list names nothing fit does not set (a typo would never save).
    assert set(fitted) - set(vars(est)) <= set(OPTIONAL)
    assert not set(fitted) & params


def test_save_skips_attributes_the_registry_does_not_name(hier, tmp_path):
    odd = copy.deepcopy(hier)
    odd.extra_ = object()  # no portable form, but not saved at all
    odd._scratch = [1, 2]
    restored = skhbnn.load(odd.save(tmp_path / "x.nc"))
    assert not hasattr(restored, "extra_") and not hasattr(restored, "_scratch")
    assert set(vars(restored)) == set(vars(hier))


def test_save_refuses_unfitted_unportable_and_foreign(hier, tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(NotFittedError):
        HierarchicalBayesianMLPClassifier().save(tmp_path / "x.nc")
    odd = copy.deepcopy(hier)
    odd.diagnostics_ = {"note": object()}  # a saved attribute without portable form
    with pytest.raises(TypeError, match=r"cannot save estimator\.diagnostics_.*pickle or joblib"):
        odd.save(tmp_path / "x.nc")

    class Sub(BayesianMLPClassifier):  # not registered
        pass

    # Not registered either, though it has a registered class's name.
    impostor = type("BayesianMLPClassifier", (BayesianMLPClassifier,), {})
    for est in (LogisticRegression(), Sub(), impostor()):
        with pytest.raises(TypeError, match=r"save\(\) supports the skhbnn estimators"):
            save(est, tmp_path / "x.nc")
    assert not (tmp_path / "x.nc").exists()


# ------------------------------------------- which files load: the format
@pytest.mark.parametrize("writer", ["0.0.1", "9.9.0"])
def test_load_ignores_the_skhbnn_version_that_wrote_the_file(
    writer, hier, stores, tmp_path, monkeypatch
):
    """A file of this format loads whatever skhbnn version wrote it."""
    import h5netcdf

    from skhbnn import persistence

    with monkeypatch.context() as patch:
        patch.setattr(persistence, "_skhbnn_version", lambda: writer)
        path = hier.save(tmp_path / "other-version.nc")
    with h5netcdf.File(path, "r") as f:
        assert f.attrs["skhbnn_version"] == writer
        assert int(f.attrs["skhbnn_format_version"]) == FORMAT_VERSION
    X = _unseen_store(stores[0])
    np.testing.assert_array_equal(skhbnn.load(path).predict_proba(X), hier.predict_proba(X))


@pytest.mark.parametrize("name", ["flat", "hierarchical", "transfer"])
def test_files_saved_by_skhbnn_0_1_0_predict_identically(name):
    """Files written by skhbnn 0.1.0 (tests/data/saved_v0_1_0/make_files.py)."""
    expected = dict(np.load(SAVED_V0_1_0 / "expected.npz"))
    X, groups = expected["X"], expected["groups"]
    est = skhbnn.load(SAVED_V0_1_0 / f"{name}.nc")
    if name == "flat":
        proba = est.predict_proba(X)
        assert type(est.idata_).__name__ in ("InferenceData", "DataTree")
    elif name == "hierarchical":
        frame = pd.DataFrame(X, columns=FEATURES).assign(
            store=expected["stores"].astype(object)
        )
        proba = est.predict_proba(frame)
        assert est.idata_ is None
    else:
        proba = est.predict_proba(X, groups=groups)
        assert est.estimator_.idata_ is None
    # as saved, up to float rounding: numpy 2.5 reorders some sums (differences ~4e-9)
    np.testing.assert_allclose(proba, expected[name], rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------- refusals
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
    ({"skhbnn_format_version": FORMAT_VERSION + 1}, {},
     rf"file format {FORMAT_VERSION + 1}.*reads format {FORMAT_VERSION} at most.*Upgrade skhbnn"),
    ({"skhbnn_format_version": "one"}, {}, r"no valid skhbnn_format_version"),
    ({"skhbnn_format": "something-else"}, {}, r"not a file written by skhbnn\.save"),
    ({"estimator_class": "RandomForestClassifier"}, {},
     r"class 'RandomForestClassifier'.*cannot load"),
    ({}, {"estimator_class": BayesianMLPClassifier},
     r"class HierarchicalBayesianMLPClassifier, not BayesianMLPClassifier"),
    ({}, {"estimator_class": "InformedPriorTransfer"}, r"not InformedPriorTransfer"),
    # Another skhbnn version is no reason to refuse, but an edited header is.
    ({"skhbnn_version": "99.0.0"}, {}, r"failed its checksum"),
]


@pytest.mark.parametrize("attrs, kwargs, match", REFUSALS)
def test_load_refuses_newer_format_or_other_class(saved, tmp_path, attrs, kwargs, match):
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


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        skhbnn.load(tmp_path / "nope.nc")


def test_save_is_atomic(hier, tmp_path, monkeypatch):
    from skhbnn.persistence import netcdf

    target = tmp_path / "model.nc"

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(netcdf, "write_idata", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        hier.save(target)
    assert os.listdir(tmp_path) == []  # no partial file, no temporary left over

    # An existing file is replaced only by a complete one.
    target.write_bytes(b"previous contents")
    with pytest.raises(RuntimeError, match="disk full"):
        hier.save(target)
    assert target.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["model.nc"]


# ------------------------------------------------------------------ imports
def _imports(path):
    """``(absolute module, top level?)`` of every import in a module of the
    package, ``from a import b`` counted as both ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text())
    package = ["skhbnn", "persistence"]
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join(parent + ([node.module] if node.module else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            yield name, id(node) in top


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py")))
def test_persistence_imports_no_estimator_module_and_no_heavy_one_at_import(module):
    """No import cycle with the estimators (the registry is the whitelist), and
    importing skhbnn.persistence loads none of xarray, h5netcdf, ArviZ, PyMC."""
    forbidden = ("skhbnn.classifiers", "skhbnn.transfer", "skhbnn._base")
    heavy = ("xarray", "h5netcdf", "arviz", "pymc")
    for name, top_level in _imports(PACKAGE / module):
        assert not any(name == f or name.startswith(f + ".") for f in forbidden), name
        if top_level:
            assert name.split(".")[0] not in heavy, name
