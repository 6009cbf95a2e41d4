"""The ``skhbnn`` command: ``skhbnn reproduce`` runs the seed post end to end.

``skhbnn reproduce --out DIR`` fits, on the post's data
(``make_rotated_moons(random_state=31, split=True)``):

1. one flat 2-5-5-1 tanh BNN per group (no biases, as the post),
2. the hierarchical BNN over all groups (sampled as the post did: one chain,
   5000 tuning steps),
3. flat BNNs per group under informed priors built from (2) (no refit of (2)),

prints train / test accuracy next to the post's numbers, and writes the
table (``results.json``, ``results.md``) and the post's figures (PNG) to DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .alignment import ALIGN_OPTIONS

# The post's accuracies in percent (train, test), as printed in the post.
POST_RESULTS = {
    "flat": (86.78, 83.78),
    "hierarchical": (91.11, 89.78),
    "informed prior": (91.56, 87.11),
}
MODEL_LABELS = {
    "flat": "flat BNN per group",
    "hierarchical": "hierarchical BNN",
    "informed prior": "informed-prior BNN per group",
}
FULL_SAMPLER = dict(draws=1000, tune=1000, chains=2)
QUICK_SAMPLER = dict(draws=200, tune=200, chains=1)
# The hierarchical model is sampled as the post did (one chain, 5000 tuning
# steps).  Measured on seed 31 against 2 chains x (1000 + 1000): hierarchical
# test 89.89 % vs 89.22 %, and a tighter group distribution, which raises the
# informed-prior BNNs built from it (87.67-87.78 % vs 87.00-87.33 %).
FULL_HIERARCHICAL = dict(tune=5000, chains=1)


# ------------------------------------------------------------- progress
class _Progress:
    """Stage timing with a progress bar per stage on an interactive stderr.

    Bars are drawn with ``rich`` (installed with PyMC) when stderr is a
    terminal; otherwise each stage only prints one line with its duration,
    so logs stay readable.
    """

    def __init__(self, stream=None, bars=None):
        self.stream = sys.stderr if stream is None else stream
        if bars is None:
            bars = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bars = bars and self._rich_available()
        self.durations: dict[str, float] = {}

    @staticmethod
    def _rich_available() -> bool:
        try:
            import rich.progress  # noqa: F401
        except ImportError:
            return False
        return True

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    @contextlib.contextmanager
    def stage(self, key: str, description: str, total: int | None = None, own_bar=False):
        """Time a stage; yields ``advance()`` to move its bar by one step.

        ``own_bar``: the work draws its own bar (the sampler's), so none is
        drawn here, only the start line.
        """
        start = time.perf_counter()
        if not self.bars or own_bar:
            self.say(f"- {description} ...")
            yield lambda: None
        else:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
            if total is not None:
                columns.append(MofNCompleteColumn())
            columns.append(TimeElapsedColumn())
            with Progress(
                *columns, console=Console(file=self.stream), transient=True
            ) as bar:
                task = bar.add_task(description, total=total)
                yield lambda: bar.advance(task)
        elapsed = time.perf_counter() - start
        self.durations[key] = elapsed
        self.say(f"  {description}: done in {_fmt_seconds(elapsed)}")


def _fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


# ------------------------------------------------------------- the table
def _accuracy(y_true, y_pred) -> float:
    return float(100.0 * np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def format_table(results: dict) -> str:
    """The accuracy table, ours next to the post's (markdown)."""
    lines = [
        "| model | train % | test % | post train % | post test % |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, (post_train, post_test) in POST_RESULTS.items():
        if key not in results:
            continue
        r = results[key]
        lines.append(
            f"| {MODEL_LABELS[key]} | {r['train']:.2f} | {r['test']:.2f} "
            f"| {post_train:.2f} | {post_test:.2f} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------- reproduce
def _sampler_settings(args) -> dict:
    """Sampler settings of the flat models (``--draws/--tune/--chains``)."""
    base = QUICK_SAMPLER if args.quick else FULL_SAMPLER
    return {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in base.items()}


def _hierarchical_settings(args) -> dict:
    """Sampler settings of the hierarchical model: the flat models' settings,
    with the post's tune and chains in a full run (``--hier-tune/--hier-chains``
    override)."""
    settings = _sampler_settings(args)
    if not args.quick:
        settings.update(FULL_HIERARCHICAL)
    for key in ("tune", "chains"):
        value = getattr(args, f"hier_{key}")
        if value is not None:
            settings[key] = value
    return settings


def reproduce(args, progress: _Progress | None = None) -> dict:
    """Run the seed experiment; return the results dict written to results.json."""
    # PyMC's sampler logs a few lines per fit (48 fits here); the stage lines
    # say what is running.
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return _reproduce(args, progress)
    finally:
        logger.setLevel(level)


def _reproduce(args, progress):
    from sklearn.exceptions import ConvergenceWarning

    from .classifiers import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
    from .datasets import make_rotated_moons
    from .transfer import InformedPriorTransfer

    progress = progress or _Progress()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler = _sampler_settings(args)
    hier_sampler = _hierarchical_settings(args)
    network = dict(
        hidden_layer_sizes=(5, 5), activation="tanh", use_bias=False, sampler=args.sampler
    )
    common = dict(network, **sampler)
    seed = args.seed
    progress.say(
        f"skhbnn reproduce: seed={seed}, groups={args.n_groups}, flat models "
        f"draws={sampler['draws']} tune={sampler['tune']} chains={sampler['chains']}, "
        f"hierarchical draws={hier_sampler['draws']} tune={hier_sampler['tune']} "
        f"chains={hier_sampler['chains']}, sampler={args.sampler}, out={out}"
    )
    total_start = time.perf_counter()
    X_tr, X_te, y_tr, y_te, g_tr, g_te = make_rotated_moons(
        n_groups=args.n_groups, random_state=seed, split=True
    )
    labels = np.unique(g_tr)
    diagnostics = {}

    with warnings.catch_warnings():
        # 48 fits, many with one chain, would print a wall of R-hat/ESS
        # warnings; the hierarchical model's diagnostics go to results.json.
        warnings.simplefilter("ignore", ConvergenceWarning)

        # 1. One flat BNN per group, isotropic N(0, 1) prior.
        flats = {}
        with progress.stage("flat", f"flat BNNs ({len(labels)} groups)", len(labels)) as step:
            for k, label in enumerate(labels):
                rows = g_tr == label
                flats[label] = BayesianMLPClassifier(
                    **common, random_state=seed + k, progressbar=False
                ).fit(X_tr[rows], y_tr[rows])
                step()

        # 2. The hierarchical BNN; its sampler draws its own bar.
        with progress.stage("hierarchical", "hierarchical BNN", own_bar=True):
            hier = HierarchicalBayesianMLPClassifier(
                **network, **hier_sampler, random_state=seed, progressbar=progress.bars
            ).fit(X_tr, y_tr, groups=g_tr)
        diagnostics["hierarchical"] = _jsonable(hier.diagnostics_)

        # 3. Informed priors from (2), one flat BNN per group under them.
        with progress.stage(
            "informed prior", f"informed-prior BNNs ({len(labels)} groups)"
        ):
            transfer = InformedPriorTransfer(
                hier,
                prefit=True,
                flat_estimator=BayesianMLPClassifier(
                    **common, random_state=seed, progressbar=False
                ),
                align=args.align,
                **({"joint_prior": True} if args.joint_prior else {}),
            ).fit(X_tr, y_tr, groups=g_tr)

    results = {}
    with progress.stage("evaluate", "accuracy"):
        def per_group(X, g):
            pred = np.empty(len(X), dtype=y_tr.dtype)
            for label in labels:
                rows = g == label
                pred[rows] = flats[label].predict(X[rows])
            return pred

        preds = {
            "flat": (per_group(X_tr, g_tr), per_group(X_te, g_te)),
            "hierarchical": (hier.predict(X_tr, groups=g_tr), hier.predict(X_te, groups=g_te)),
            "informed prior": (
                transfer.predict(X_tr, groups=g_tr), transfer.predict(X_te, groups=g_te)
            ),
        }
        for key, (p_tr, p_te) in preds.items():
            results[key] = {"train": _accuracy(y_tr, p_tr), "test": _accuracy(y_te, p_te)}

    figures = []
    if not args.no_figures:
        figures = _write_figures(
            out, progress, args.grid_size, X_tr, y_tr, g_tr, flats, hier, transfer
        )

    total = time.perf_counter() - total_start
    summary = {
        "command": "skhbnn reproduce " + " ".join(args.argv),
        "seed": seed,
        "n_groups": int(args.n_groups),
        "sampler": {**sampler, "sampler": args.sampler},
        "hierarchical_sampler": hier_sampler,
        "joint_prior": bool(args.joint_prior),
        "quick": bool(args.quick),
        "accuracy_percent": results,
        "post_accuracy_percent": {
            k: {"train": v[0], "test": v[1]} for k, v in POST_RESULTS.items()
        },
        "durations_s": {k: round(v, 2) for k, v in progress.durations.items()},
        "total_s": round(total, 2),
        "hierarchical_diagnostics": diagnostics.get("hierarchical"),
        "figures": figures,
        "python": sys.version.split()[0],
    }
    table = format_table(results)
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "results.md").write_text(
        "# skhbnn reproduce\n\n"
        f"`{summary['command']}` (seed {seed}, {args.n_groups} groups, "
        f"flat models draws={sampler['draws']}, tune={sampler['tune']}, "
        f"chains={sampler['chains']}; hierarchical draws={hier_sampler['draws']}, "
        f"tune={hier_sampler['tune']}, chains={hier_sampler['chains']}; "
        f"total {_fmt_seconds(total)})\n\n{table}\n"
    )
    print(table)
    print(f"\ntotal time {_fmt_seconds(total)}; figures and results in {out}")
    return summary


def _jsonable(obj):
    """Diagnostics dict -> plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _write_figures(out, progress, resolution, X, y, groups, flats, hier, transfer):
    """The post's figures as PNG files; returns their names."""
    import matplotlib

    matplotlib.use("Agg")  # headless: the command only writes files
    import matplotlib.pyplot as plt

    from . import plotting as P

    kw = dict(resolution=resolution)
    # Predict every grid once per model: both surface kinds come from it.
    surfaces = {}
    jobs = [
        ("data.png", lambda: P.plot_data_grid(X, y, groups, title="Training data per group")),
    ]
    models = [
        ("flat", flats, "flat BNN per group"),
        ("hierarchical", hier, "hierarchical BNN"),
        ("informed", transfer, "informed-prior BNN per group"),
    ]
    for key, model, name in models:
        def surf(key=key, model=model):
            if key not in surfaces:
                surfaces[key] = P.decision_surfaces(model, groups, **kw)
            return surfaces[key]

        jobs.append((
            f"surfaces_{key}.png",
            lambda surf=surf, name=name: P.plot_decision_surfaces(
                surf(), X, y, groups, title=f"Decision surfaces: {name}"
            ),
        ))
        jobs.append((
            f"uncertainty_{key}.png",
            lambda surf=surf, name=name: P.plot_decision_surfaces(
                surf(), X, y, groups, kind="std",
                title=f"Uncertainty (posterior sd of P(class 1)): {name}",
            ),
        ))
    jobs += [
        ("group_sd.png", lambda: P.plot_group_sd(hier)),
        ("group_mean_surface.png", lambda: P.plot_group_mean_surface(hier, **kw)),
        ("weight_correlation_layer0.png", lambda: P.plot_weight_correlation(hier, layer=0)),
    ]
    written = []
    with progress.stage("figures", f"figures ({len(jobs)} PNG)", len(jobs)) as step:
        for name, make in jobs:
            fig = make()
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
            written.append(name)
            step()
    return written


# ------------------------------------------------------------------ main
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


def main(argv=None) -> int:
    """Entry point of the ``skhbnn`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "reproduce":
        if args.grid_size < 2:
            raise SystemExit("skhbnn reproduce: --grid-size must be at least 2")
        args.argv = argv[1:]
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            if not args.no_figures:
                print(
                    "skhbnn reproduce writes figures with matplotlib: "
                    "pip install 'skhbnn[plot]'",
                    file=sys.stderr,
                )
                return 2
        reproduce(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
