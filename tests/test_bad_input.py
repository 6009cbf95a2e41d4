"""Bad input, table-driven: every public estimator and method, every way users
break things.

Each case expects a specific exception type and a message that names the
argument and says what to do.  Sampling and model building are replaced by
functions that raise ``AssertionError("sampling started")``, so a case that
gets past validation fails loudly; each case must also fail in under a second
and leave the estimator exactly as it was.
"""

from __future__ import annotations

import copy
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

import skhbnn._base
from skhbnn.models import MODEL_KINDS
import skhbnn.inference
from skhbnn import (
    BayesianMLPClassifier,
    HierarchicalBayesianMLPClassifier,
    InformedPriorTransfer,
    MvNormalPrior,
)
from skhbnn.network import NetworkSpec

from .conftest import TINY

# The fitted fixtures saw DataFrames; cases that pass arrays on purpose would
# otherwise also warn about the missing feature names.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

KINDS = ("flat", "hier", "transfer")
GROUPED = ("hier", "transfer")
PREDICT_METHODS = ("predict", "predict_proba", "predict_std")
FLAT_HIDDEN = (4,)
MAX_SECONDS = 1.0


def make(kind, **params):
    """A fresh, tiny estimator; for the transfer ``params`` go to its
    hierarchical estimator."""
    if kind == "flat":
        return BayesianMLPClassifier(**{"hidden_layer_sizes": FLAT_HIDDEN, **TINY, **params})
    hier = HierarchicalBayesianMLPClassifier(**{**TINY, **params})
    return hier if kind == "hier" else InformedPriorTransfer(hier)


def _frame(X):
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def data(moons_groups):
    X, y, g = moons_groups
    return SimpleNamespace(X=X, y=y, g=g, df=_frame(X))


@pytest.fixture(scope="module")
def fitted_flat(data):
    return make("flat").fit(data.df, data.y)


@pytest.fixture(scope="module")
def fitted_hier(data):
    return make("hier").fit(data.df, data.y, groups=data.g)


@pytest.fixture(scope="module")
def fitted_transfer(data):
    return make("transfer").fit(data.df, data.y, groups=data.g)


def _boom(*args, **kwargs):
    raise AssertionError("sampling started")


def _no_sampling(monkeypatch):
    """Make any sampling or model building raise; applied after the fitted
    fixtures exist, so only the case under test is guarded."""
    for module in (skhbnn.inference, skhbnn._base):
        monkeypatch.setattr(module, "sample_nuts", _boom)
        monkeypatch.setattr(module, "fit_advi", _boom)
    for kind in MODEL_KINDS.values():
        monkeypatch.setattr(kind, "build_pymc", _boom)
        monkeypatch.setattr(kind, "build_kernel", _boom)


def _call(est, method, X, y=None, groups=None):
    kw = {} if isinstance(est, BayesianMLPClassifier) else {"groups": groups}
    if method == "fit":
        return est.fit(X, y, **kw)
    return getattr(est, method)(X, **kw)


def _check_case(est, monkeypatch, exc, match, method, X, y=None, groups=None):
    """The call raises ``exc`` matching ``match`` quickly, without sampling,
    and leaves every attribute of ``est`` as it was."""
    before = dict(vars(est))
    _no_sampling(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(exc, match=match) as info:
        _call(est, method, X, y, groups)
    elapsed = time.perf_counter() - start
    assert "sampling started" not in str(info.value)
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f} s"
    after = vars(est)
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)


# ------------------------------------------------------------- bad X tables
def _with_value(value):
    """X as a DataFrame with ``value`` at row 3 of column x1."""

    def build(X):
        arr = X.astype(float if isinstance(value, float) else object)
        arr[3, 1] = value
        return _frame(arr)

    return build


# name: (build bad X from a good X, exception, message regex)
BAD_X = {
    "X-nan": (_with_value(np.nan), ValueError, r"X contains NaN; impute missing values"),
    "X-inf": (_with_value(np.inf), ValueError, r"X contains infinite values; replace them"),
    "X-minus-inf": (_with_value(-np.inf), ValueError, r"X contains infinite values; replace"),
    "X-1d": (lambda X: X[:, 0], ValueError, r"X must be 2-D.*X\.reshape\(-1, 1\)"),
    "X-3d": (lambda X: X[:, :, None], ValueError, r"X must be 2-D.*flatten the extra dim"),
    "X-empty": (lambda X: _frame(X)[:0], ValueError, r"X is empty; pass at least one row"),
    "X-no-features": (lambda X: X[:, :0], ValueError, r"X has no feature columns; pass at"),
    "X-strings": (_with_value("red"), ValueError, r"X must contain numbers only; encode"),
    "X-object": (_with_value({"a": 1}), TypeError, r"X must contain numbers only; encode"),
    "X-complex": (
        lambda X: _frame(X + 1j),
        ValueError,
        r"X and y must be real numbers; split complex features",
    ),
    "X-sparse-csr": (sp.csr_matrix, TypeError, r"does not accept sparse X; pass a dense array"),
    "X-sparse-coo": (sp.coo_matrix, TypeError, r"does not accept sparse X; pass a dense array"),
}


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_X_in_fit(kind, case, data, monkeypatch):
    build, exc, match = BAD_X[case]
    X = build(data.X)
    n = _n_rows(X)
    _check_case(make(kind), monkeypatch, exc, match, "fit", X, data.y[:n], data.g[:n])


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_X_in_predict(kind, case, method, data, request, monkeypatch):
    est = request.getfixturevalue(f"fitted_{kind}")
    build, exc, match = BAD_X[case]
    X = build(data.X)
    _check_case(est, monkeypatch, exc, match, method, X, groups=data.g[: _n_rows(X)])


# ------------------------------------------------------------ bad y tables
def _y_nan(y):
    out = y.astype(float)
    out[5] = np.nan
    return out


BAD_Y = {
    "y-one-class": (
        lambda y: np.zeros_like(y),
        ValueError,
        r"y contains only one class .*needs samples of at least 2 classes",
    ),
    "y-nan": (_y_nan, ValueError, r"y contains NaN or infinite values; drop those rows"),
    "y-too-short": (
        lambda y: y[:-1],
        ValueError,
        r"X and y must have the same number of rows; pass one label in y per row",
    ),
    "y-too-long": (
        lambda y: np.r_[y, y[:3]],
        ValueError,
        r"X and y must have the same number of rows",
    ),
    "y-continuous": (
        lambda y: y + np.linspace(0, 0.5, len(y)),
        ValueError,
        r"Unknown label type: continuous.*expects discrete classes",
    ),
}


@pytest.mark.parametrize("case", list(BAD_Y))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_y_in_fit(kind, case, data, monkeypatch):
    build, exc, match = BAD_Y[case]
    _check_case(make(kind), monkeypatch, exc, match, "fit", data.df, build(data.y), data.g)


# ------------------------------------------------------- bad groups tables
def _label_at(value):
    def build(g):
        out = np.asarray(g, dtype=object).copy()
        out[7] = value
        return out

    return build


BAD_GROUPS = {
    "groups-too-short": (
        lambda g: g[:-1],
        r"groups has 119 labels but X has 120 rows; pass one group label per row",
    ),
    "groups-too-long": (lambda g: np.r_[g, g[:2]], r"groups has 122 labels but X has 120"),
    "groups-None": (_label_at(None), r"groups contains 1 missing labels .*give every row a group"),
    "groups-NaN": (_label_at(np.nan), r"groups contains 1 missing labels .*give every row"),
    "groups-pd.NA": (_label_at(pd.NA), r"groups contains 1 missing labels"),
    "groups-2d": (lambda g: np.c_[g, g], r"groups must be 1-D with one label per row of X"),
}


@pytest.mark.parametrize("method", ("fit", *PREDICT_METHODS))
@pytest.mark.parametrize("case", list(BAD_GROUPS))
@pytest.mark.parametrize("kind", GROUPED)
def test_bad_groups(kind, case, method, data, request, monkeypatch):
    est = make(kind) if method == "fit" else request.getfixturevalue(f"fitted_{kind}")
    build, match = BAD_GROUPS[case]
    _check_case(est, monkeypatch, ValueError, match, method, data.df, data.y, build(data.g))


@pytest.mark.parametrize("method", ("fit", *PREDICT_METHODS))
@pytest.mark.parametrize("kind", GROUPED)
def test_sparse_groups(kind, method, data, request, monkeypatch):
    est = make(kind) if method == "fit" else request.getfixturevalue(f"fitted_{kind}")
    groups = sp.csr_matrix(data.g.reshape(-1, 1))
    match = r"groups must be a 1-D array-like of labels, not a sparse matrix; pass"
    _check_case(est, monkeypatch, TypeError, match, method, data.df, data.y, groups)


# group_column given: (group_column, X builder, pass groups=?, message regex)
BAD_GROUP_COLUMN = {
    "column-not-in-frame": (
        "site",
        lambda d: d.df.assign(grp=d.g),
        False,
        r"group_column='site' is not a column of X; set it to one of X's columns",
    ),
    "column-and-groups": (
        "grp",
        lambda d: d.df.assign(grp=d.g),
        True,
        r"group_column='grp' is set; give groups either as a column of X or as groups=",
    ),
    "name-on-array": (
        "grp",
        lambda d: np.c_[d.X, d.g],
        False,
        r"X is not a pandas DataFrame; pass a DataFrame or the integer position",
    ),
    "position-out-of-range": (
        5,
        lambda d: np.c_[d.X, d.g],
        False,
        r"group_column=5 is out of range for X with 3 columns; use a position from -3 to 2",
    ),
}


@pytest.mark.parametrize("method", ("fit", *PREDICT_METHODS))
@pytest.mark.parametrize("case", list(BAD_GROUP_COLUMN))
@pytest.mark.parametrize("kind", GROUPED)
def test_bad_group_column(kind, case, method, data, request, monkeypatch):
    column, build, pass_groups, match = BAD_GROUP_COLUMN[case]
    if method == "fit":
        est = make(kind)
    else:
        est = copy.deepcopy(request.getfixturevalue(f"fitted_{kind}"))
    est.set_params(group_column=column)
    groups = data.g if pass_groups else None
    _check_case(est, monkeypatch, ValueError, match, method, build(data), data.y, groups)


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("kind", GROUPED)
def test_groups_missing_in_predict(kind, method, data, request, monkeypatch):
    est = request.getfixturevalue(f"fitted_{kind}")
    match = r"groups is required: the model was fitted on 4 groups\. Pass groups="
    _check_case(est, monkeypatch, ValueError, match, method, data.df, groups=None)


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize(
    "kind, match",
    [
        ("hier", r"were not seen in fit and new_groups='error'; set new_groups='population'"),
        ("transfer", r"not seen in fit and new_groups='error'; set new_groups='prior'"),
    ],
)
def test_unseen_group_with_new_groups_error(kind, match, method, data, request, monkeypatch):
    est = copy.deepcopy(request.getfixturevalue(f"fitted_{kind}"))
    est.set_params(new_groups="error")
    groups = data.g.astype(object)
    groups[4] = "never-seen"
    _check_case(est, monkeypatch, ValueError, match, method, data.df, groups=groups)


# ------------------------------------------------- predict-time mismatches
MISMATCH = {
    "not-fitted": (None, NotFittedError, r"is not fitted yet\. Call 'fit'"),
    "three-features": (
        lambda d: np.c_[d.X, d.X[:, 0]],
        ValueError,
        r"(?s)X must have the same feature columns.*X has 3 features, but \w+ is expecting 2",
    ),
    "one-feature": (lambda d: d.X[:, :1], ValueError, r"X must have the same feature columns"),
    "other-column-names": (
        lambda d: d.df.set_axis(["a", "b"], axis=1),
        ValueError,
        r"X must have the feature names seen in fit.*X\[estimator\.feature_names_in_\]",
    ),
    "columns-reordered": (
        lambda d: d.df[["x1", "x0"]],
        ValueError,
        r"(?s)X must have the feature names seen in fit, in the same order.*same order",
    ),
    "extra-named-column": (
        lambda d: d.df.assign(x2=1.0),
        ValueError,
        r"(?s)X must have the feature names seen in fit.*unseen at fit time",
    ),
}


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("case", list(MISMATCH))
@pytest.mark.parametrize("kind", KINDS)
def test_predict_mismatch(kind, case, method, data, request, monkeypatch):
    build, exc, match = MISMATCH[case]
    if build is None:  # predict before fit
        est, X = make(kind), data.df
    else:
        est, X = request.getfixturevalue(f"fitted_{kind}"), build(data)
    _check_case(est, monkeypatch, exc, match, method, X, groups=data.g)


# ------------------------------------------------------ bad hyperparameters
def _invalid(param):
    return rf"The '{param}' parameter of \w+ must be"


# (params, message regex); every case is an InvalidParameterError or our own
# ValueError, both ValueErrors.
BAD_PARAMS = {
    "draws=0": ({"draws": 0}, _invalid("draws")),
    "draws=-5": ({"draws": -5}, _invalid("draws")),
    "draws=2.5": ({"draws": 2.5}, _invalid("draws")),
    "tune=0": ({"tune": 0}, _invalid("tune")),
    "chains=0": ({"chains": 0}, _invalid("chains")),
    "chains=-1": ({"chains": -1}, _invalid("chains")),
    "target_accept=0": ({"target_accept": 0.0}, _invalid("target_accept")),
    "target_accept=1": ({"target_accept": 1.0}, _invalid("target_accept")),
    "target_accept=1.5": ({"target_accept": 1.5}, _invalid("target_accept")),
    "target_accept=-0.2": ({"target_accept": -0.2}, _invalid("target_accept")),
    "target_accept=nan": ({"target_accept": float("nan")}, _invalid("target_accept")),
    "activation": ({"activation": "softplus"}, _invalid("activation") + r" a str among"),
    "inference": ({"inference": "mcmc"}, _invalid("inference") + r" a str among"),
    "sampler": ({"sampler": "stan"}, _invalid("sampler") + r" a str among"),
    "mass_matrix": ({"mass_matrix": "dense"}, _invalid("mass_matrix") + r" a str among"),
    "hidden=()": (
        {"hidden_layer_sizes": ()},
        r"hidden_layer_sizes must be a non-empty tuple of positive integers, e\.g\. \(5, 5\)",
    ),
    "hidden=(5, 0)": (
        {"hidden_layer_sizes": (5, 0)},
        r"hidden_layer_sizes must be a non-empty tuple of positive integers",
    ),
    "hidden=(-3,)": (
        {"hidden_layer_sizes": (-3,)},
        r"hidden_layer_sizes must be a non-empty tuple of positive integers",
    ),
    "hidden=0": ({"hidden_layer_sizes": 0}, _invalid("hidden_layer_sizes")),
    "prior_sd=0": ({"prior_sd": 0.0}, _invalid("prior_sd")),
    "n_jobs=0": ({"n_jobs": 0}, _invalid("n_jobs")),
    "n_jobs=1.5": ({"n_jobs": 1.5}, _invalid("n_jobs")),
    "advi_iterations=0": (
        {"inference": "advi", "advi_iterations": 0},
        _invalid("advi_iterations"),
    ),
}


@pytest.mark.parametrize("case", list(BAD_PARAMS))
@pytest.mark.parametrize("kind", KINDS)
def test_bad_hyperparameters(kind, case, data, monkeypatch):
    params, match = BAD_PARAMS[case]
    est = make(kind, **params)
    _check_case(est, monkeypatch, ValueError, match, "fit", data.df, data.y, data.g)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"group_sd_prior": 0.0}, _invalid("group_sd_prior")),
        ({"new_groups": "ignore"}, _invalid("new_groups") + r" a str among"),
        ({"group_column": 1.5}, _invalid("group_column")),
    ],
)
def test_bad_hierarchical_hyperparameters(params, match, data, monkeypatch):
    est = make("hier", **params)
    _check_case(est, monkeypatch, ValueError, match, "fit", data.df, data.y, data.g)


# ------------------------------------------------------------- bad priors
SPEC = NetworkSpec(n_features=2, hidden_layer_sizes=FLAT_HIDDEN, n_outputs=1)


def _prior(edit=None):
    means = {k: np.zeros(int(np.prod(s))) for k, s in SPEC.param_shapes().items()}
    covs = {k: np.eye(int(np.prod(s))) for k, s in SPEC.param_shapes().items()}
    if edit is not None:
        edit(means, covs)
    return MvNormalPrior(means=means, covs=covs, layer_sizes=SPEC.layer_sizes)


def _set(which, name, value):
    def edit(means, covs):
        (means if which == "mean" else covs)[name] = value

    return edit


def _asymmetric(means, covs):
    cov = np.eye(8)
    cov[0, 1] = 0.5
    covs["w0"] = cov


BAD_PRIORS = {
    "not-symmetric": (
        _asymmetric,
        r"prior covariance for 'w0' is not symmetric; pass \(cov \+ cov\.T\) / 2",
    ),
    "not-positive-definite": (
        _set("cov", "w0", np.diag([1.0] * 7 + [-1.0])),
        r"prior covariance for 'w0' is not positive definite; add a small multiple",
    ),
    "singular": (
        _set("cov", "b0", np.ones((4, 4))),
        r"prior covariance for 'b0' is not positive definite",
    ),
    "cov-wrong-shape": (
        _set("cov", "w0", np.eye(3)),
        r"prior for 'w0' must have a mean of shape \(8,\) and a covariance of shape \(8, 8\)",
    ),
    "cov-not-square": (_set("cov", "w1", np.ones((4, 2))), r"covariance of shape \(4, 4\)"),
    "mean-wrong-shape": (
        _set("mean", "w0", np.zeros((2, 4))),
        r"prior for 'w0' must have a mean of shape \(8,\)",
    ),
    "cov-nan": (
        _set("cov", "w1", np.full((4, 4), np.nan)),
        r"prior for 'w1' contains NaN or inf; pass finite means",
    ),
    "mean-inf": (_set("mean", "b1", np.array([np.inf])), r"prior for 'b1' contains NaN or inf"),
    "missing-parameter": (
        lambda means, covs: (means.pop("b0"), covs.pop("b0")),
        r"prior has parameters .* Build the prior from a model with the same hidden_layer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PRIORS))
def test_bad_prior(case, data, monkeypatch):
    edit, match = BAD_PRIORS[case]
    est = make("flat", prior=_prior(edit))
    _check_case(est, monkeypatch, ValueError, match, "fit", data.df, data.y)


@pytest.mark.parametrize(
    "prior", [np.eye(8), "informed", {"w0": np.eye(8)}], ids=["array", "str", "dict"]
)
def test_prior_of_wrong_type(prior, data, monkeypatch):
    est = make("flat", prior=prior)
    match = _invalid("prior") + r" None or an object implementing 'validate'"
    _check_case(est, monkeypatch, ValueError, match, "fit", data.df, data.y)


def test_prior_for_another_network(data, monkeypatch):
    other = NetworkSpec(n_features=2, hidden_layer_sizes=(5, 5), n_outputs=1)
    means = {k: np.zeros(int(np.prod(s))) for k, s in other.param_shapes().items()}
    covs = {k: np.eye(len(m)) for k, m in means.items()}
    est = make("flat", prior=MvNormalPrior(means=means, covs=covs))
    match = r"the network \(2, 4, 1\) .*Build the prior from a model with the same"
    _check_case(est, monkeypatch, ValueError, match, "fit", data.df, data.y)


# ------------------------------------------------ InformedPriorTransfer only
def _transfer_cases(fitted_hier):
    hier = make("hier")
    return {
        "new_groups": (
            InformedPriorTransfer(hier, new_groups="population"),
            ValueError,
            _invalid("new_groups") + r" a str among",
        ),
        "estimator-is-flat": (
            InformedPriorTransfer(make("flat")),
            ValueError,
            _invalid("estimator") + r" None or an object implementing 'fit' and 'informed_prior'",
        ),
        "flat-other-width": (
            InformedPriorTransfer(hier, flat_estimator=make("flat", hidden_layer_sizes=(3, 5))),
            ValueError,
            r"flat_estimator and estimator differ in \['hidden_layer_sizes'\]",
        ),
        "flat-other-depth": (
            InformedPriorTransfer(hier, flat_estimator=make("flat", hidden_layer_sizes=(5,))),
            ValueError,
            r"flat_estimator and estimator differ in \['hidden_layer_sizes'\]; the informed",
        ),
        "flat-other-activation": (
            InformedPriorTransfer(
                hier, flat_estimator=make("flat", hidden_layer_sizes=(5, 5), activation="relu")
            ),
            ValueError,
            r"differ in \['activation'\]",
        ),
        "flat-bad-draws": (
            InformedPriorTransfer(
                hier, flat_estimator=make("flat", hidden_layer_sizes=(5, 5), draws=0)
            ),
            ValueError,
            _invalid("draws"),
        ),
        "flat-not-an-estimator": (
            InformedPriorTransfer(hier, flat_estimator="flat"),
            ValueError,
            _invalid("flat_estimator"),
        ),
        "prefit-but-unfitted": (
            InformedPriorTransfer(hier, prefit=True),
            NotFittedError,
            r"HierarchicalBayesianMLPClassifier instance is not fitted yet\. Call 'fit'",
        ),
        "prefit-other-features": (
            InformedPriorTransfer(copy.deepcopy(fitted_hier), prefit=True),
            ValueError,
            r"the prefit estimator was fitted on 2 features but X has 3; pass the same",
        ),
    }


TRANSFER_CASES = (
    "new_groups",
    "estimator-is-flat",
    "flat-other-width",
    "flat-other-depth",
    "flat-other-activation",
    "flat-bad-draws",
    "flat-not-an-estimator",
    "prefit-but-unfitted",
    "prefit-other-features",
)


@pytest.mark.parametrize("case", TRANSFER_CASES)
def test_bad_transfer_settings(case, data, fitted_hier, monkeypatch):
    est, exc, match = _transfer_cases(fitted_hier)[case]
    X = np.c_[data.X, data.X[:, 0]] if case == "prefit-other-features" else data.df
    _check_case(est, monkeypatch, exc, match, "fit", X, data.y, data.g)


def test_transfer_compares_auto_hidden_layers_as_fitted():
    """The default ``hidden_layer_sizes="auto"`` is compared by the layers it
    gives on the data: (5, 5) matches it on 2 classes, not on 4 (6, 6)."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=40, centers=4, n_features=2, random_state=0)
    groups = np.arange(40) % 2
    flat = BayesianMLPClassifier(hidden_layer_sizes=(5, 5))
    transfer = InformedPriorTransfer(flat_estimator=flat)
    hier = HierarchicalBayesianMLPClassifier()
    assert transfer._flat_template(hier, y % 2).hidden_layer_sizes == (5, 5)
    with pytest.raises(ValueError, match=r"differ in \['hidden_layer_sizes'\]"):
        transfer.fit(X, y, groups=groups)
    six = BayesianMLPClassifier(hidden_layer_sizes=(6, 6))
    assert InformedPriorTransfer(flat_estimator=six)._flat_template(hier, y).hidden_layer_sizes == (6, 6)
