"""The ``skhbnn`` command: ``skhbnn reproduce`` runs the seed post end to end.

This module only parses the command line; the experiment itself is
:func:`skhbnn.experiments.seed.reproduce`, which ``skhbnn reproduce --out DIR``
calls: it fits flat, hierarchical and informed-prior BNNs on the post's data,
and writes the accuracy table (``results.json``, ``results.md``) and the
post's figures (PNG) to DIR.  The table is printed here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .alignment import ALIGN_OPTIONS
from .experiments import seed
from .experiments.progress import fmt_seconds


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skhbnn",
        description="scikit-learn compatible (hierarchical) Bayesian neural networks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    rep = sub.add_parser(
        "reproduce",
        help="run the seed post's experiment end to end",
        description=(
            "Fit flat, hierarchical and informed-prior BNNs on the post's rotated "
            "moons (18 groups, 50 train / 50 test points each), print train and test "
            "accuracy next to the post's, and write the table and the figures to --out."
        ),
    )
    rep.add_argument("--out", required=True, help="directory for results and PNG figures")
    rep.add_argument(
        "--quick", action="store_true",
        help="smoke run: draws=200, tune=200, chains=1 for every model (all groups; "
             "under 3 minutes)",
    )
    rep.add_argument("--seed", type=int, default=31, help="data and sampler seed (default 31)")
    rep.add_argument("--draws", type=_positive_int, default=None,
                     help="posterior draws per chain (default 1000; 200 with --quick)")
    rep.add_argument("--tune", type=_positive_int, default=None,
                     help="tuning steps per chain (default 1000; 200 with --quick)")
    rep.add_argument("--chains", type=_positive_int, default=None,
                     help="chains (default 2; 1 with --quick)")
    rep.add_argument("--hier-tune", type=_positive_int, default=None,
                     help="tuning steps of the hierarchical model (default 5000 as the "
                          "post; with --quick: --tune)")
    rep.add_argument("--hier-chains", type=_positive_int, default=None,
                     help="chains of the hierarchical model (default 1 as the post; "
                          "with --quick: --chains)")
    rep.add_argument("--joint-prior", action="store_true",
                     help="one MvNormal prior over all weights instead of the post's "
                          "one per weight matrix")
    rep.add_argument(
        "--align", choices=ALIGN_OPTIONS, default="draws",
        help="how hidden units are aligned before building the informed prior",
    )
    # Hidden knobs for tests and experiments.
    rep.add_argument("--n-groups", type=_positive_int, default=18, help=argparse.SUPPRESS)
    rep.add_argument("--grid-size", type=_positive_int, default=100, help=argparse.SUPPRESS)
    rep.add_argument("--sampler", choices=("auto", "nutpie", "pymc"), default="auto",
                     help=argparse.SUPPRESS)
    rep.add_argument("--no-figures", action="store_true", help=argparse.SUPPRESS)
    return parser


# Arguments passed to seed.reproduce under their own name (and --no-figures
# as figures=False).
_SAME_NAME = (
    "out", "quick", "seed", "n_groups", "draws", "tune", "chains", "hier_tune",
    "hier_chains", "joint_prior", "align", "sampler", "grid_size",
)


def _reproduce_kwargs(args: argparse.Namespace) -> dict:
    """The keywords of :func:`skhbnn.experiments.seed.reproduce` that the
    ``reproduce`` arguments stand for (all but ``command`` and ``progress``)."""
    kwargs = {name: getattr(args, name) for name in _SAME_NAME}
    kwargs["figures"] = not args.no_figures
    return kwargs


def _reproduce(args: argparse.Namespace, argv: list[str]) -> int:
    if args.grid_size < 2:
        raise SystemExit("skhbnn reproduce: --grid-size must be at least 2")
    if not args.no_figures:
        try:
            import matplotlib
        except ImportError:
            print(
                "skhbnn reproduce writes figures with matplotlib: "
                "pip install 'skhbnn[plot]'",
                file=sys.stderr,
            )
            return 2
        matplotlib.use("Agg")  # headless: the command only writes files
    summary = seed.reproduce(
        **_reproduce_kwargs(args), command=" ".join(["skhbnn", *argv])
    )
    print(seed.format_table(summary["accuracy_percent"]))
    print(
        f"\ntotal time {fmt_seconds(summary['total_s'])}; "
        f"figures and results in {Path(args.out)}"
    )
    return 0


def main(argv=None) -> int:
    """Entry point of the ``skhbnn`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "reproduce":
        return _reproduce(args, argv)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
