"""One definition per model kind; everything else derives from it.

Each model kind is a class with its variable table (name, shape, role,
layer of every posterior variable) and two back-ends with one signature,
``build_pymc(X, y, codes)`` (the PyMC model) and ``build_kernel(X, y, codes)``
(the same model packed for :mod:`skhbnn.kernels`).  See
:mod:`skhbnn.models.definition`.
"""

from .definition import ROLES, ModelDefinition, Variable
from .flat import FlatModel
from .hierarchical import HierarchicalModel

MODEL_KINDS = {model.kind: model for model in (FlatModel, HierarchicalModel)}

__all__ = ["MODEL_KINDS", "ROLES", "FlatModel", "HierarchicalModel", "ModelDefinition", "Variable"]
