"""``import skhbnn`` and ``skhbnn.load(path).predict_proba(X)`` stay light.

A process that only loads a saved model and predicts (a web service) must not
pay for PyMC, pytensor, nutpie or numba: they are imported by fitting only.
Each check runs in a fresh interpreter, since this one has imported them all
(the fixtures fit models).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import arviz
import numpy as np
import pytest

import skhbnn
from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier

HEAVY = ("pymc", "pytensor", "nutpie", "numba")
TINY = {"hidden_layer_sizes": (2,), "draws": 30, "tune": 30, "chains": 1,
        "progressbar": False, "random_state": 0}
# ArviZ 0.x (the Python 3.11 / PyMC 5 stack) imports numba when it is imported,
# if numba is installed (arviz/stats/stats_utils.py: @conditional_vect); ArviZ 1.x
# does not.  Loading a file saved with include_idata=True builds ``idata_`` and
# so imports ArviZ (skhbnn/persistence/netcdf.py, make_idata).
ARVIZ_IMPORTS_NUMBA = int(arviz.__version__.split(".")[0]) < 1
# The folder holding the skhbnn package, so the child imports the same one.
SOURCE_ROOT = str(Path(skhbnn.__file__).resolve().parent.parent)


def _fresh_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last."""
    prelude = f"import sys; sys.path.insert(0, {SOURCE_ROOT!r}); HEAVY = {HEAVY!r}\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code],
        check=False, capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:  # not AssertionError: the xfail below expects only those
        pytest.fail(f"the child interpreter failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_REPORT = """
import json
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print(json.dumps({"heavy": heavy, "skhbnn": skhbnn.__file__}))
"""


def test_import_skhbnn_is_light():
    out = _fresh_python("import skhbnn\n" + _REPORT)
    assert out["skhbnn"] == skhbnn.__file__
    assert out["heavy"] == []


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny flat and hierarchical fits saved with and without idata_, the data,
    and the fitted estimators' predictions."""
    folder = tmp_path_factory.mktemp("light")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    groups = np.repeat([0, 1], 20)
    flat = BayesianMLPClassifier(**TINY).fit(X, y)
    hier = HierarchicalBayesianMLPClassifier(**TINY).fit(X, y, groups=groups)
    for include_idata in (False, True):
        flat.save(folder / f"flat_{include_idata}.nc", include_idata=include_idata)
        hier.save(folder / f"hier_{include_idata}.nc", include_idata=include_idata)
    np.savez(folder / "data.npz", X=X, groups=groups, flat=flat.predict_proba(X),
             hier=hier.predict_proba(X, groups=groups))
    return folder


_cache: dict = {}


def _load_and_predict(folder: Path, include_idata: bool) -> dict:
    """Heavy modules a fresh interpreter holds after loading both saved models
    (``include_idata`` as saved) and predicting with them."""
    if include_idata not in _cache:
        code = f"""
        import numpy as np, skhbnn
        data = np.load({str(folder / "data.npz")!r})
        X, groups = data["X"], data["groups"]
        flat = skhbnn.load({str(folder / f"flat_{include_idata}.nc")!r})
        hier = skhbnn.load({str(folder / f"hier_{include_idata}.nc")!r})
        assert (flat.idata_ is not None) == {include_idata}
        np.testing.assert_allclose(flat.predict_proba(X), data["flat"])
        np.testing.assert_allclose(hier.predict_proba(X, groups=groups), data["hier"])
        """
        _cache[include_idata] = _fresh_python(textwrap.dedent(code) + _REPORT)
    return _cache[include_idata]


@pytest.mark.parametrize("include_idata", [False, True])
def test_load_and_predict_without_pymc(saved, include_idata):
    heavy = _load_and_predict(saved, include_idata)["heavy"]
    assert not set(heavy) & {"pymc", "pytensor", "nutpie"}


@pytest.mark.parametrize("include_idata", [
    False,
    pytest.param(True, marks=pytest.mark.xfail(
        ARVIZ_IMPORTS_NUMBA, strict=True, raises=AssertionError,
        reason="ArviZ 0.x imports numba; loading idata_ imports ArviZ")),
])
def test_load_and_predict_without_numba(saved, include_idata):
    heavy = _load_and_predict(saved, include_idata)["heavy"]
    assert "numba" not in heavy
