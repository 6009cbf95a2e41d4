"""The seed experiment's three models, fitted and scored.

``data`` is what ``make_rotated_moons(..., split=True)`` returns:
``(X_train, X_test, y_train, y_test, groups_train, groups_test)``.
"""

from __future__ import annotations

import warnings

import numpy as np


def _accuracy(y_true, y_pred) -> float:
    return float(100.0 * np.mean(np.asarray(y_true) == np.asarray(y_pred)))


# The post's network: 2-5-5-1, tanh, no biases.
# The post's network and procedure: a fixed number of draws per chain (its
# fits never continued chains that had not mixed, skhbnn.continuation).
NETWORK = dict(hidden_layer_sizes=(5, 5), activation="tanh", use_bias=False, max_draws=None)


def fit_models(
    data, *, seed, sampler, flat_sampler, hier_sampler, align, joint_prior, progress
):
    """Fit the three models on the training part of ``data``.

    ``sampler`` is the NUTS implementation, ``flat_sampler`` and
    ``hier_sampler`` the draws / tune / chains of the flat and the
    hierarchical models; ``progress`` a
    :class:`~skhbnn.experiments.progress.Progress`.  Returns
    ``(flats, hier, transfer, population)``: the dict ``{group: flat
    BNN}``, the hierarchical BNN, the informed-prior transfer built from it
    with the post's MvNormal priors, and the one with the population prior.
    """
    from sklearn.exceptions import ConvergenceWarning

    from .. import (
        BayesianMLPClassifier,
        HierarchicalBayesianMLPClassifier,
        InformedPriorTransfer,
    )

    X_tr, _, y_tr, _, g_tr, _ = data
    labels = np.unique(g_tr)
    network = dict(NETWORK, sampler=sampler)
    common = dict(network, **flat_sampler)
    with warnings.catch_warnings():
        # 48 fits, many with one chain, would print a wall of R-hat/ESS
        # warnings; the hierarchical model's diagnostics go to results.json.
        warnings.simplefilter("ignore", ConvergenceWarning)

        # 1. One flat BNN per group, isotropic N(0, 1) prior.
        flats = {}
        with progress.stage("flat", f"flat BNNs ({len(labels)} groups)", len(labels)) as step:
            for k, label in enumerate(labels):
                rows = g_tr == label
                flats[label] = BayesianMLPClassifier(
                    **common, random_state=seed + k, progressbar=False
                ).fit(X_tr[rows], y_tr[rows])
                step()

        # 2. The hierarchical BNN; its sampler draws its own bar.
        with progress.stage("hierarchical", "hierarchical BNN", own_bar=True):
            hier = HierarchicalBayesianMLPClassifier(
                **network, **hier_sampler, random_state=seed, progressbar=progress.bars
            ).fit(X_tr, y_tr, groups=g_tr)

        # 3. Informed priors from (2), one flat BNN per group under them.
        with progress.stage("informed prior", f"informed-prior BNNs ({len(labels)} groups)"):
            transfer = InformedPriorTransfer(
                hier,
                prefit=True,
                flat_estimator=BayesianMLPClassifier(
                    **common, random_state=seed, progressbar=False
                ),
                prior_type="mvnormal",
                align=align,
                **({"joint_prior": True} if joint_prior else {}),
            ).fit(X_tr, y_tr, groups=g_tr)

        # 4. The same under the population prior (the package's default).
        with progress.stage(
            "population prior", f"population-prior BNNs ({len(labels)} groups)"
        ):
            population = InformedPriorTransfer(
                hier,
                prefit=True,
                flat_estimator=BayesianMLPClassifier(
                    **common, random_state=seed, progressbar=False
                ),
                prior_type="population",
            ).fit(X_tr, y_tr, groups=g_tr)
    return flats, hier, transfer, population


def accuracies(data, flats, hier, transfer, population=None) -> dict:
    """Train and test accuracy (percent) and test log loss of every model."""
    from sklearn.metrics import log_loss

    X_tr, X_te, y_tr, y_te, g_tr, g_te = data
    classes = np.unique(y_tr)

    def per_group(X, g):
        proba = np.empty((len(X), len(classes)))
        for label, flat in flats.items():
            rows = g == label
            proba[rows] = flat.predict_proba(X[rows])
        return proba

    models = {"flat": None, "hierarchical": hier, "informed prior": transfer}
    if population is not None:
        models["population prior"] = population
    out = {}
    for key, model in models.items():
        if model is None:
            p_tr, p_te = per_group(X_tr, g_tr), per_group(X_te, g_te)
        else:
            p_tr, p_te = model.predict_proba(X_tr, groups=g_tr), model.predict_proba(X_te, groups=g_te)
        out[key] = {
            "train": _accuracy(y_tr, classes[p_tr.argmax(axis=1)]),
            "test": _accuracy(y_te, classes[p_te.argmax(axis=1)]),
            "test_log_loss": float(log_loss(y_te, p_te, labels=classes)),
        }
    return out
