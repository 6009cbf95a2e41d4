"""Partial centring of the hierarchical model's per-group offsets (Gorinova,
Moore & Hoffman 2020): does it make the default NUTS fits mix?

``python -m benchmarks.probe_centring DATA SEEDS CENTRING [PARAMS_JSON]``: the
hierarchical classifier at its defaults (plus PARAMS_JSON) for each
``random_state`` in SEEDS, with the model definition's ``centring`` set to
CENTRING, a JSON object ``{group sd name: lam}`` (``{}``: the package's
non-centred model; ``{"sd2": 1}``: a centred output layer).  Each offset is
then ``raw ~ Normal(lam * mu, sd ** lam)``, the weight ``mu + sd ** (1 - lam)
* (raw - lam * mu)``: the same posterior in other coordinates.  The centring
is set by wrapping the estimator's model definition in this process (a
probe, not an option of the package).  One JSON line per fit, as
``probe_structures fits``: wall seconds, test accuracy and log loss, the
worst within-mode split R-hat, the min ESS of the predictive, the warning.

DATA: a defaults-suite set (``moons-31``, ``moons-7``, ``moons-11``,
``offsets``, ``multiclass``, ``midsize``; :func:`benchmarks.bench_defaults.datasets`).
"""
import dataclasses
import json
import sys

from skhbnn.grouped import HierarchicalMixin

from .bench_defaults import datasets
from .probe_structures import fits


def centred(centring: dict) -> None:
    """Every hierarchical model definition built in this process gets ``centring``."""
    original = HierarchicalMixin._definition
    pairs = tuple(sorted((name, float(lam)) for name, lam in centring.items()))

    def _definition(self, *args, **kwargs):
        return dataclasses.replace(original(self, *args, **kwargs), centring=pairs)

    HierarchicalMixin._definition = _definition


def main():
    which, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    centred(json.loads(sys.argv[3]))
    params = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    fits(datasets()[which], seeds, params)


if __name__ == "__main__":
    main()
