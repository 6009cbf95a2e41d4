"""Cross-validation and grid search on a real Dask cluster, through joblib.

Worker processes compile and sample; fitted estimators travel back to this
process (and out again) by pickling, and must predict identically wherever
they are.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_validate  # noqa: E402

from skhbnn import HierarchicalBayesianMLPClassifier  # noqa: E402
from skhbnn.datasets import make_rotated_moons  # noqa: E402

from .conftest import TINY  # noqa: E402


def _predict_proba(est, X):
    # Runs on a worker: the estimator arrives there by pickle.
    import warnings

    warnings.simplefilter("ignore")
    return est.predict_proba(X)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port / resource notices from the cluster
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=50,
        )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def data():
    X, y, g = make_rotated_moons(n_groups=3, n_samples=30, rotation_sd=30.0, random_state=1)
    return pd.DataFrame(X, columns=["x0", "x1"]).assign(store=g), y


# PyMC's own sampler: its compiled C code is cached on disk, so fresh worker
# processes start in seconds (nutpie's numba code is compiled per process).
SMALL = {**TINY, "sampler": "pymc"}


def test_grid_search_on_dask_cluster(client, data):
    """GridSearchCV(n_jobs=2) fits on the workers; the best estimator, sent to a
    worker and back, predicts identically."""
    df, y = data
    est = HierarchicalBayesianMLPClassifier(group_column="store", **SMALL)
    search = GridSearchCV(
        est, {"prior_sd": [0.5, 2.0]}, cv=KFold(2, shuffle=True, random_state=0),
        n_jobs=2, return_train_score=True,
    )
    with joblib.parallel_backend("dask"):
        search.fit(df, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # 2 folds of ~22 rows, tiny draws: 0.67-0.70 on numpy 2.5 / PyMC 6.4; chance is 0.5
    assert search.cv_results_["mean_test_score"].max() > 0.6
    best = search.best_estimator_
    local = best.predict_proba(df)
    remote = client.submit(_predict_proba, best, df, pure=False).result()
    np.testing.assert_array_equal(remote, local)


def test_cross_validate_estimators_come_back_intact(client, data):
    """Estimators fitted on workers arrive here whole and travel out again."""
    df, y = data
    est = HierarchicalBayesianMLPClassifier(group_column="store", **SMALL)
    with joblib.parallel_backend("dask"):
        res = cross_validate(
            est, df, y, cv=KFold(2, shuffle=True, random_state=0), n_jobs=2,
            return_estimator=True,
        )
    pids = client.run(lambda: __import__("os").getpid())
    assert len(pids) == 2
    for fitted, score in zip(res["estimator"], res["test_score"]):
        local = fitted.predict_proba(df)
        remote = client.submit(_predict_proba, fitted, df, pure=False).result()
        np.testing.assert_array_equal(remote, local)
        np.testing.assert_array_equal(fitted.predict(df), fitted.classes_[local.argmax(1)])
        assert score > 0.6


def test_svi_restarts_of_one_fit_run_on_the_cluster(client, data):
    """The restarts of one variational fit are joblib tasks: under the Dask
    backend each runs on a worker (packing its own problem there), and the
    fit is the one this process computes on its own threads."""
    df, y = data
    params = dict(group_column="store", inference="svi", hidden_layer_sizes=(3,),
                  draws=100, tune=50, chains=2, progressbar=False, random_state=0)
    local = HierarchicalBayesianMLPClassifier(**params).fit(df, y)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            remote = HierarchicalBayesianMLPClassifier(**params).fit(df, y)
    ran = [t for t in stream.data if "fit_restart" in str(t.get("key", ""))]
    workers = {t["worker"] for t in ran}
    assert len(ran) == 2 and workers <= set(client.scheduler_info()["workers"])
    np.testing.assert_array_equal(remote.elbo_, local.elbo_)
    np.testing.assert_array_equal(remote.predict_proba(df), local.predict_proba(df))
