"""``python -m benchmarks [name ...] [--quick] [--json PATH]``, from the repo root.

Names: hierarchical, flat, predict, scaling, then any other ``bench_<name>.py``
module here (default: all, in that order).
``--quick`` shrinks every benchmark to a smoke run of a few minutes in all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time

from ._common import environment, quiet

# The four benchmarks first, then any other ``bench_<name>.py`` module
# of this package that defines ``run(quick=...)``.
_FIRST = ("hierarchical", "flat", "predict", "scaling")
_FOUND = sorted(
    m.name[len("bench_") :]
    for m in pkgutil.iter_modules([os.path.dirname(os.path.abspath(__file__))])
    if m.name.startswith("bench_")
)
BENCHMARKS = tuple(n for n in _FIRST if n in _FOUND) + tuple(
    n for n in _FOUND if n not in _FIRST
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="skhbnn against plain PyMC scripts; each prints ratios.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"benchmarks to run, from {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small, fast smoke runs")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    quiet()
    print(environment(), "(quick)" if args.quick else "", flush=True)
    results = {"environment": environment(), "quick": args.quick}
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f".bench_{name}", __package__)
        start = time.perf_counter()
        results[name] = module.run(quick=args.quick)
        print(f"  [{name}: {time.perf_counter() - start:.0f} s wall]", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
