"""Write the files of this folder with skhbnn 0.1.0's save() (file format 1).

They are a regression fixture: ``tests/test_persistence.py`` loads them with
the current code and checks that ``predict_proba`` on the rows stored in
``expected.npz`` is exactly the one stored beside them.  Run this only
against the code that wrote them (it refuses any other version), from the
repository root::

    git worktree add /tmp/skhbnn-head <commit of skhbnn 0.1.0's save()>
    PYTHONPATH=/tmp/skhbnn-head .venv/bin/python tests/data/saved_v0_1_0/make_files.py

The files were written with Python 3.11, NumPy 2.4.6, PyMC 5.28.5 and
ArviZ 0.23.4 at commit 240ad43.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import skhbnn
from skhbnn import (
    BayesianMLPClassifier,
    HierarchicalBayesianMLPClassifier,
    InformedPriorTransfer,
)
from skhbnn.datasets import make_rotated_moons
from skhbnn.persistence import save

HERE = Path(__file__).resolve().parent
SAMPLER = {
    "hidden_layer_sizes": (3,), "draws": 30, "tune": 30, "chains": 1,
    "progressbar": False, "random_state": 0,
}


def data():
    """3 groups of rotated moons (20 points each) and the rows predicted:
    rows of groups 0 to 2, and the same points as a group never seen in fit
    (group 7, store "new")."""
    X, y, g = make_rotated_moons(n_groups=3, n_samples=20, rotation_sd=30.0, random_state=1)
    rows = np.r_[0:4, 20:24, 40:44]
    X_new = np.r_[X[rows], X[rows[:4]]]
    g_new = np.r_[g[rows], np.full(4, 7)]
    return X, y, g, X_new, g_new


def main():
    if skhbnn.__version__ != "0.1.0":
        sys.exit(f"this writes skhbnn 0.1.0 files; skhbnn is {skhbnn.__version__}")
    warnings.simplefilter("ignore")  # tiny samplers do not converge
    X, y, g, X_new, g_new = data()
    labels = np.array(["north", "south", "east", "", "", "", "", "new"], dtype=object)
    frame = pd.DataFrame(X, columns=["x0", "x1"]).assign(store=labels[g])
    frame_new = pd.DataFrame(X_new, columns=["x0", "x1"]).assign(store=labels[g_new])

    flat = BayesianMLPClassifier(**SAMPLER).fit(X, y)
    hier = HierarchicalBayesianMLPClassifier(group_column="store", **SAMPLER).fit(frame, y)
    transfer = InformedPriorTransfer(HierarchicalBayesianMLPClassifier(**SAMPLER)).fit(
        X, y, groups=g
    )
    save(flat, HERE / "flat.nc", include_idata=True)
    save(hier, HERE / "hierarchical.nc", include_idata=False)
    save(transfer, HERE / "transfer.nc", include_idata=False)
    np.savez(
        HERE / "expected.npz",
        X=X_new, groups=g_new, stores=labels[g_new].astype(str),
        flat=flat.predict_proba(X_new),
        hierarchical=hier.predict_proba(frame_new),
        transfer=transfer.predict_proba(X_new, groups=g_new),
    )


if __name__ == "__main__":
    main()
