"""skhbnn: scikit-learn compatible (hierarchical) Bayesian neural networks on PyMC."""

from .classifiers import BayesianMLPClassifier
from .hierarchical import HierarchicalBayesianMLPClassifier
from .inference import clear_compile_cache
from .network import NetworkSpec
from .persistence import load
from .priors import MvNormalPrior, informed_prior
from .transfer import InformedPriorTransfer

__version__ = "0.1.0"

__all__ = [
    "BayesianMLPClassifier",
    "HierarchicalBayesianMLPClassifier",
    "InformedPriorTransfer",
    "MvNormalPrior",
    "NetworkSpec",
    "clear_compile_cache",
    "informed_prior",
    "load",
    "__version__",
]
