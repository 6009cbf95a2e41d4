"""Experiments run by the ``skhbnn`` command, callable from Python too.

- :mod:`skhbnn.experiments.seed`: the seed post's experiment
  (``skhbnn reproduce``), :func:`~skhbnn.experiments.seed.reproduce`;
- :mod:`skhbnn.experiments.figures`: the post's figures as PNG files;
- :mod:`skhbnn.experiments.progress`: stage timing and progress bars.
"""

from .seed import reproduce

__all__ = ["reproduce"]
