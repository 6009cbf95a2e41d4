"""scikit-learn's own conformance checks, with small samplers."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skhbnn import (
    BayesianMLPClassifier,
    HierarchicalBayesianMLPClassifier,
    InformedPriorTransfer,
)

SMALL = dict(draws=40, tune=40, chains=1, progressbar=False, random_state=0)


@parametrize_with_checks(
    [BayesianMLPClassifier(**SMALL), HierarchicalBayesianMLPClassifier(**SMALL)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@parametrize_with_checks(
    [InformedPriorTransfer(HierarchicalBayesianMLPClassifier(hidden_layer_sizes=(3,), **SMALL))]
)
def test_transfer_sklearn_compatible(estimator, check):
    check(estimator)
