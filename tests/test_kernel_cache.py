"""A stale numba cache gives a recompile, never wrong numbers.

numba invalidates a cached function only when its own source file changes:
after an edit of ``skhbnn/kernels/density.py`` or of the header slots in
``skhbnn/kernels/abi.py``, the cached callbacks of ``cfuncs.py`` would still
load, with the old kernels or the old header layout compiled in.  A stamp
file beside the cache (:func:`skhbnn.kernels.abi.refresh_dependent_caches`,
run on ``density.py``'s import) has that cache deleted before it loads, so
the callbacks are compiled afresh.  Recompiling after the stale code has
loaded is not enough: the new callbacks can link the loaded, same-named
stale symbols (an edit that moved ``density.py``'s functions to other lines
computed the old gradient that way), so a stale callback found loaded
anyway raises :class:`~skhbnn.kernels.problem.StaleKernelError` and clears
the cache for the next process.

Each test copies the ``skhbnn`` package to a temporary folder and runs fresh
interpreters on the copy (``PYTHONPATH`` plus ``sys.path``, checked through
``skhbnn.__file__``: ``.venv`` has an editable install of the working tree)
with ``NUMBA_CACHE_DIR`` in the temporary folder.  A run prints the log
density, gradient and expanded variables of a flat and a hierarchical
problem at fixed points, and how it got its callbacks (stale at first,
reloaded, cache hits).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

_NAMES = ("flat_logp", "flat_expand", "hierarchical_logp", "hierarchical_expand")

_RUN = r"""
import json, sys
root, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
import numpy as np
import skhbnn
assert skhbnn.__file__.startswith(root), skhbnn.__file__
from skhbnn.datasets import make_rotated_moons
from skhbnn.kernels import abi, problem as kp
from skhbnn.kernels import cfuncs  # decorating the cfuncs compiles or loads them
from skhbnn.models import FlatModel, HierarchicalModel
from skhbnn.network import NetworkSpec

names = __NAMES__
loaded = {name: getattr(cfuncs, name) for name in names}
stale_at_first = kp._stale(cfuncs)

X, y, g = make_rotated_moons(n_groups=3, n_samples=20, random_state=5)
spec = NetworkSpec(2, (4, 3), 1, "tanh", True)
weights = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
problems = [
    FlatModel(spec, prior_sd=1.5).build_kernel(X[g == 0], y[g == 0]),
    HierarchicalModel(spec, 3).build_kernel(X, y, g),
    HierarchicalModel(spec, 3).build_kernel(X, y, g, weights),
]
rng = np.random.default_rng(0)
values = []
for problem in problems:
    for scale in (0.1, 1.0, 3.0):
        x = rng.normal(size=problem.n_dim) * scale
        logp, grad = problem.logp_grad(x)
        expanded = problem.expand(x)
        values += [[logp], grad] + [np.ravel(v) for v in expanded.values()]
np.save(out, np.concatenate(values))

used = {
    name: fn
    for kind, pair in kp._NAMES.items()
    for name, fn in zip(pair, kp.callbacks()[kind])
}
print(json.dumps({
    "file": skhbnn.__file__,
    "stamp": abi.ABI_STAMP,
    "stale_at_first": stale_at_first,
    "reloaded": [name for name in names if used[name] is not loaded[name]],
    "cache_hits": {name: used[name].cache_hits for name in names},
}))
""".replace("__NAMES__", repr(_NAMES))


def _copy_package(root: Path) -> Path:
    """``skhbnn`` copied under ``root`` (no ``__pycache__``: no numba cache)."""
    source = Path(__file__).resolve().parents[1] / "skhbnn"
    shutil.copytree(source, root / "skhbnn", ignore=shutil.ignore_patterns("__pycache__"))
    return root / "skhbnn"


def _run(root: Path, cache: Path, out: Path) -> tuple[dict, np.ndarray]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        "NUMBA_CACHE_DIR": str(cache),
    }
    env.pop("NUMBA_DISABLE_JIT", None)
    result = subprocess.run(
        [sys.executable, "-c", _RUN, str(root), str(out)],
        env=env,
        cwd=root,  # not the working tree: "" on sys.path must not find it
        capture_output=True,
        text=True,
        timeout=600,
        check=False,  # the assertion shows stderr
    )
    assert result.returncode == 0, result.stderr[-4000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(root.resolve()), info["file"]
    return info, np.load(out)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    # a new size as well as a new mtime: numba's index of the edited file
    # is invalidated whatever the file system's mtime resolution
    assert len(new) != len(old)
    path.write_text(text.replace(old, new))


def _swap_slots(path: Path, first: str, second: str) -> None:
    """Swap two names in abi.py's tuple of shared header slots."""
    text = path.read_text()
    (line,) = re.findall(r"^XT, Y\b.*= range\(\d+\)$", text, flags=re.MULTILINE)
    names = line.split("=")[0].replace(" ", "").split(",")
    i, j = names.index(first), names.index(second)
    names[i], names[j] = names[j], names[i]
    new = ", ".join(names) + " =" + line.split("=", 1)[1] + "  # swapped"
    _edit(path, line, new)


@pytest.fixture
def copy(tmp_path):
    """A copy of skhbnn, its numba cache written by a first run: ``(root,
    package, cache, info, values)``."""
    root = tmp_path / "src"
    package = _copy_package(root)
    cache = tmp_path / "numba-cache"
    info, values = _run(root, cache, tmp_path / "first.npy")
    assert not info["stale_at_first"]
    assert info["reloaded"] == []
    assert set(info["cache_hits"].values()) == {0}  # compiled
    assert any(cache.rglob("*cfuncs*.nbi"))
    assert np.isfinite(values).all()
    return root, package, cache, info, values


def test_unmodified_copy_loads_the_callbacks_from_the_cache(copy, tmp_path):
    root, _, cache, first, values = copy
    info, again = _run(root, cache, tmp_path / "again.npy")
    assert not info["stale_at_first"]
    assert info["reloaded"] == []
    assert set(info["cache_hits"].values()) == {1}  # loaded, not compiled
    assert info["stamp"] == first["stamp"]
    np.testing.assert_array_equal(again, values)


def _change_tanh(density: Path) -> None:
    """tanh(a) becomes a different function: every logp and gradient changes
    (both tanh codes: libm's and the vectorised one every problem runs)."""
    _edit(density, "e = math.exp(-2.0 * abs(x))", "e = math.exp(-2.25 * abs(x))")
    _edit(density, "e = exp_nonpositive(-2.0 * a if", "e = exp_nonpositive(-2.25 * a if")


def _stamp_of(package: Path) -> int:
    """The ABI stamp of the kernels' sources in ``package`` (abi.py imports
    nothing from skhbnn, so it loads on its own)."""
    spec = importlib.util.spec_from_file_location("copied_abi", package / "kernels" / "abi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ABI_STAMP


def _check_recompiled(root, cache, tmp_path, first, name):
    """After an edit: the run compiled the callbacks afresh (no stale code
    loaded, nothing reloaded), computes what a run on an empty cache
    computes, and a further run loads that from the cache."""
    info, edited = _run(root, cache, tmp_path / f"{name}.npy")
    assert info["stamp"] != first["stamp"]
    assert not info["stale_at_first"]  # the stale cache was deleted before it loaded
    assert info["reloaded"] == []
    assert set(info["cache_hits"].values()) == {0}  # compiled
    fresh, fresh_values = _run(root, tmp_path / f"empty-cache-{name}", tmp_path / "fresh.npy")
    assert not fresh["stale_at_first"] and fresh["reloaded"] == []
    np.testing.assert_array_equal(edited, fresh_values)
    info, loaded = _run(root, cache, tmp_path / "loaded.npy")
    assert not info["stale_at_first"] and info["reloaded"] == []
    assert set(info["cache_hits"].values()) == {1}
    np.testing.assert_array_equal(loaded, fresh_values)
    return edited


@pytest.mark.slow
def test_edited_kernels_with_a_stale_cache_recompile(copy, tmp_path):
    """density.py changed, cfuncs.py not: numba would load the old
    callbacks; they are compiled with the new kernels instead.  The edit also
    moves density.py's functions down by two lines (numba names their cache
    files by line), the case in which recompiling after the stale callbacks
    had loaded computed the old numbers."""
    root, package, cache, first, values = copy
    density = package / "kernels" / "density.py"
    original = density.read_text()
    _change_tanh(density)
    _edit(density, "import math\n", "import math\n\n# moved\n")
    edited = _check_recompiled(root, cache, tmp_path, first, "edited")
    assert not np.array_equal(edited, values)
    # back to the first sources, whose density functions are still cached:
    # before the stamp file, this run loaded the edited callbacks, found them
    # stale, recompiled them, and computed the edited numbers again
    density.write_text(original)
    info, back = _run(root, cache, tmp_path / "back.npy")
    assert info["stamp"] == first["stamp"] and not info["stale_at_first"]
    np.testing.assert_array_equal(back, values)


@pytest.mark.slow
def test_edited_elementary_functions_with_a_stale_cache_recompile(copy, tmp_path):
    """elementary.py changed, density.py and cfuncs.py not: numba would load
    density's and the callbacks' code with the old exp and log inlined; both
    are compiled with the new ones instead."""
    root, package, cache, first, values = copy
    _edit(package / "kernels" / "elementary.py", "p = p * r + _EXP_COEFS[k]",
          "p = p * r + 1.01 * _EXP_COEFS[k]")
    edited = _check_recompiled(root, cache, tmp_path, first, "elementary")
    assert not np.array_equal(edited, values)


@pytest.mark.slow
def test_new_header_slots_with_a_stale_cache_recompile(copy, tmp_path):
    """abi.py's slot table changed (rows and features swapped): the cached
    callbacks would read the header with the old layout; they are recompiled
    instead, and compute what the old layout computed with the old code."""
    root, package, cache, first, values = copy
    _swap_slots(package / "kernels" / "abi.py", "N_ROWS", "N_FEATURES")
    edited = _check_recompiled(root, cache, tmp_path, first, "slots")
    np.testing.assert_array_equal(edited, values)


@pytest.mark.slow
def test_stale_callbacks_loaded_anyway_raise_and_clear_the_cache(copy, tmp_path):
    """A stamp file that claims the current sources over a stale cache (one
    copied in from elsewhere): the stale callbacks load, are caught by their
    ABI stamp, and the fit stops with StaleKernelError instead of running
    them; the cache is cleared, so the next process compiles afresh."""
    root, package, cache, first, values = copy
    _change_tanh(package / "kernels" / "density.py")
    (stamp_file,) = cache.rglob("skhbnn-kernels.*.stamp")
    stamp_file.write_text(str(_stamp_of(package)))
    with pytest.raises(AssertionError, match="StaleKernelError.*restart the Python process"):
        _run(root, cache, tmp_path / "stale.npy")
    assert not stamp_file.exists() and not any(cache.rglob("*cfuncs*.nbi"))
    info, after = _run(root, cache, tmp_path / "after.npy")
    assert not info["stale_at_first"] and set(info["cache_hits"].values()) == {0}
    _, fresh_values = _run(root, tmp_path / "empty-cache", tmp_path / "fresh.npy")
    np.testing.assert_array_equal(after, fresh_values)
