"""The contract between Python and the compiled callbacks (a leaf module).

Every fit's data, layout and prior reach the C callbacks of
:mod:`skhbnn.kernels.cfuncs` through an int64 *header*: numpy arrays' addresses
and sizes in fixed slots.  This module holds those slots, the activation
codes, the return codes and the *ABI stamp*; it imports nothing from skhbnn,
so both sides read it without an import cycle.

numba's on-disk cache treats globals as constants and invalidates a cached
function only when its own source file changes.  A callback loaded from a
cache written before :mod:`skhbnn.kernels.density` or this slot table changed
would read the header with the old layout: wrong pointers, not an error.  The
stamp prevents that: it hashes this file and the kernels' sources, the
Python side writes it into every header, and each callback, which compiled
the stamp in as a constant, returns :data:`STALE` when they differ.

Recompiling in a process that has already loaded the stale machine code does
not help: the new callbacks link the old, same-named symbols (measured: the
first process after a change of ``density.py`` computed the old gradient,
the next one the new).  So :func:`refresh_dependent_caches`, which
``density.py`` runs on import, before any module that inlines it loads its
cache, compares a stamp file beside numba's cache with :data:`ABI_STAMP`
and deletes the cached code of those modules where it differs.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

# Header slots shared by both kinds of model (W: each row's likelihood weight;
# N_NOISE: the number of noise sds, 0 for a classifier's categorical
# likelihood, else a regression's Normal likelihood on float targets).
XT, Y, W, N_ROWS, N_FEATURES, LAYOUT, N_LAYERS, ACT, P, N_NOISE = range(10)
# flat: prior mean, scale, Cholesky factor (n x n, n = 0 without one), floats
# (const, the noise sd's HalfNormal scale), number of expanded values; then a
# population prior's number of components (0: none), its component means and
# inverse sds (n_mix x P) and each component's log normaliser (n_mix)
F_MEAN, F_SCALE, F_L, F_LN, F_FLOATS, F_EXPANDED = range(10, 16)
F_NMIX, F_MIX_MEAN, F_MIX_INVSD, F_MIX_NORM = range(16, 20)
# hierarchical: group row starts, number of groups, group sd of each parameter,
# (offset, size) of each parameter array and their number, floats
# (prior_sd, const, the noise sd's HalfNormal scale, then the HalfNormal
# scale of each group sd), number of expanded values, number of group sds
H_STARTS, H_GROUPS, H_PLAYER, H_SEGMENTS, H_NSEG, H_FLOATS, H_EXPANDED, H_NSD = range(10, 18)
STAMP = 20
HEADER_SIZE = 21

ACTIVATION_CODES = {"tanh": 0, "relu": 1, "logistic": 2, "identity": 3}
# tanh computed with an exp in arithmetic that LLVM vectorises
# (skhbnn.kernels.elementary.exp_nonpositive): equal to code 0's (libm's exp)
# within 2.2e-16, and faster (benchmarks/README.md, "Session 19").  Not a
# user-facing activation: every tanh network's problem gets it
# (skhbnn.kernels.problem._header; NUTS since session 22, when continued
# chains had made its fits reliable under either tanh).  Code 0 stays, the
# reference tests/test_density.py checks it against.
FAST_TANH = 4

# Return codes.  0, 3 and 4 as nutpie's own callbacks for PyMC models return
# them (3 and 4 are a failed point, a divergence); -1 and -2 are hard errors.
OK = 0
WRONG_SIZE = -1
STALE = -2
NONFINITE_GRADIENT = 3
NONFINITE_LOGP = 4

_SOURCES = ("abi.py", "elementary.py", "rows.py", "density.py", "mixture.py", "svi_step.py", "cfuncs.py")


def _stamp() -> int:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        digest.update(name.encode())
        digest.update((here / name).read_bytes())
    return int.from_bytes(digest.digest()[:8], "little") >> 2  # a positive int64


ABI_STAMP = _stamp()


# Modules whose compiled code inlines another kernel source's functions (density.py
# inlines elementary.py and rows.py; the others density.py): numba checks only their own
# source file, so their caches can hold code of other kernel sources.
_DEPENDENT = ("density.", "cfuncs.", "mixture.", "svi_step.")
_refreshed = False


def _cache_folder() -> Path | None:
    """The folder numba caches this package's kernels in (all the kernel
    modules share it); ``None`` where numba has none to offer."""
    try:
        from numba.core.caching import FunctionCache

        return Path(FunctionCache(_stamp)._cache_path)
    except Exception:  # no usable cache locator: numba caches nothing here
        return None


def _stamp_file(folder: Path) -> Path:
    return folder / f"skhbnn-kernels.py{sys.version_info[0]}{sys.version_info[1]}.stamp"


def refresh_dependent_caches(folder: Path | None = None, force: bool = False) -> None:
    """Delete numba's cached code of the modules that inline the kernels
    (``cfuncs``, ``mixture``, ``svi_step``) when it was written for other
    kernel sources than this process's (the stamp file beside it differs from
    :data:`ABI_STAMP`), or always with ``force``; then record the stamp.
    Once per process unless ``folder`` or ``force`` is given; a folder that
    cannot be read or written is left as it is (numba then recompiles or
    fails on its own terms)."""
    global _refreshed
    if folder is None and not force:
        if _refreshed:
            return
        _refreshed = True
    folder = folder if folder is not None else _cache_folder()
    if folder is None or not folder.is_dir():
        return
    stamp = _stamp_file(folder)
    try:
        if not force and stamp.is_file() and stamp.read_text().strip() == str(ABI_STAMP):
            return
        for entry in os.listdir(folder):
            if entry.startswith(_DEPENDENT) and entry.endswith((".nbi", ".nbc")):
                (folder / entry).unlink(missing_ok=True)
        if force:
            stamp.unlink(missing_ok=True)
        else:
            tmp = folder / f"{stamp.name}.{os.getpid()}.tmp"
            tmp.write_text(str(ABI_STAMP))
            os.replace(tmp, stamp)
    except OSError:
        pass
