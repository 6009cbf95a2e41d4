"""skhbnn: scikit-learn compatible (hierarchical) Bayesian neural networks on PyMC."""

# The one place the version is written (pyproject.toml reads it: a plain string
# literal, so building does not import skhbnn).  Before the imports, so that any
# submodule may import it.
__version__ = "0.2.0.dev0"

from .classifiers import BayesianMLPClassifier
from .hierarchical import HierarchicalBayesianMLPClassifier
from .inference import clear_compile_cache
from .network import NetworkSpec
from .persistence import load
from .priors import MvNormalPrior, PopulationPrior, informed_prior, population_prior
from .hierarchical_regressor import HierarchicalBayesianMLPRegressor
from .regressors import BayesianMLPRegressor
from .transfer import InformedPriorTransfer, InformedPriorTransferRegressor

__all__ = [
    "BayesianMLPClassifier",
    "BayesianMLPRegressor",
    "HierarchicalBayesianMLPClassifier",
    "HierarchicalBayesianMLPRegressor",
    "InformedPriorTransfer",
    "InformedPriorTransferRegressor",
    "MvNormalPrior",
    "NetworkSpec",
    "PopulationPrior",
    "__version__",
    "clear_compile_cache",
    "informed_prior",
    "load",
    "population_prior",
]
