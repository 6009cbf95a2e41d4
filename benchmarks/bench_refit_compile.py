"""No recompiling for refits: 5-fold cross-validation against 5 fresh fits.

Compiling a model (pytensor graph -> numba for nutpie) can cost more than
sampling it.  skhbnn compiles once per model *structure* and re-uses the
compiled model with new data (``skhbnn.inference._nutpie_model``), so the five
fits of a 5-fold cross-validation in one process pay compilation once.

Three ways to run the same five fits (same folds, same sampler settings):

* ``cross_val_score``: one fresh process runs ``cross_val_score(cv=5)``;
* ``no cache``: the same process clears the compile cache before every fold,
  so each fit compiles again (what a library without the cache pays);
* ``fresh processes``: five processes each import skhbnn, fit one fold and
  score it (what five independent scripts or jobs pay).

Only the fit-and-score time inside each process is counted (interpreter
start-up and imports are reported separately), so the ratios measure
compilation, not Python start-up.  Wall time and CPU time (all threads of the
process) are both reported: on a busy machine the CPU-time ratio is the
steadier of the two.

Run standalone from the repository root::

    python benchmarks/bench_refit_compile.py [--quick] [--model flat|hierarchical]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import environment, header, quiet, ratio, row, seconds  # noqa: E402

N_FOLDS = 5
MODELS = ("flat", "hierarchical")


def _settings(quick: bool) -> dict:
    # Full: the seed's data and a realistic (if shortened) NUTS run per fit.
    if quick:
        return dict(n_groups=6, n_samples=40, draws=100, tune=100, chains=1)
    return dict(n_groups=18, n_samples=100, draws=500, tune=500, chains=2)


def _problem(model: str, s: dict):
    """Estimator, X (DataFrame with the group column for hierarchical), y, folds."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import KFold

    from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier
    from skhbnn.datasets import make_rotated_moons

    X, y, g = make_rotated_moons(
        n_groups=s["n_groups"], n_samples=s["n_samples"], random_state=31
    )
    sampler = dict(draws=s["draws"], tune=s["tune"], chains=s["chains"],
                   progressbar=False, random_state=0)
    if model == "flat":
        # One group's points: the seed's per-group flat fits.
        X, y = X[g == 0], y[g == 0]
        est = BayesianMLPClassifier(**sampler)
    else:
        X = pd.DataFrame(X, columns=["x0", "x1"]).assign(group=g)
        est = HierarchicalBayesianMLPClassifier(group_column="group", **sampler)
    folds = list(KFold(N_FOLDS, shuffle=True, random_state=0).split(np.zeros(len(y))))
    return est, X, y, folds


def _rows(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


# ------------------------------------------------------------------ workers
def _worker(mode: str, model: str, quick: bool, fold: int) -> dict:
    """Runs in a fresh process; prints its timings as JSON."""
    t_start = time.perf_counter()
    quiet()
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_validate

    from skhbnn import clear_compile_cache

    warnings.simplefilter("ignore", ConvergenceWarning)
    est, X, y, folds = _problem(model, _settings(quick))
    t_ready, cpu_ready = time.perf_counter(), time.process_time()
    scores, fitted = [], []
    if mode == "cv":
        res = cross_validate(est, X, y, cv=folds, return_estimator=True)
        scores, fitted = list(res["test_score"]), list(res["estimator"])
    else:
        chosen = folds if mode == "nocache" else [folds[fold]]
        for train, test in chosen:
            clear_compile_cache()
            fitted.append(clone(est).fit(_rows(X, train), y[train]))
            scores.append(fitted[-1].score(_rows(X, test), y[test]))
    t_end, cpu_end = time.perf_counter(), time.process_time()
    return {"setup": t_ready - t_start, "work": t_end - t_ready,
            "cpu": cpu_end - cpu_ready, "scores": [float(s) for s in scores],
            "steps": [_leapfrog_steps(f) for f in fitted]}


def _leapfrog_steps(est) -> int:
    """Gradient evaluations of a NUTS fit: the sampling work, apart from compiling."""
    import numpy as np

    return int(np.asarray(est.idata_.sample_stats["n_steps"]).sum())


def _spawn(mode: str, model: str, quick: bool, fold: int = 0) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode,
           "--model", model, "--fold", str(fold)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


# --------------------------------------------------------------------- run
def run(quick: bool = False, models=MODELS) -> dict:
    """Time the three ways for each model; print and return the ratios."""
    s = _settings(quick)
    header(
        f"refit without recompiling: {N_FOLDS}-fold CV vs {N_FOLDS} fresh fits "
        f"({s['n_groups']} groups x {s['n_samples']} points, draws={s['draws']}, "
        f"tune={s['tune']}, chains={s['chains']})"
    )
    results = {"settings": s}
    for model in models:
        cv = _spawn("cv", model, quick)
        nocache = _spawn("nocache", model, quick)
        fresh = [_spawn("fresh", model, quick, fold) for fold in range(N_FOLDS)]
        fresh_work = sum(r["work"] for r in fresh)
        fresh_cpu = sum(r["cpu"] for r in fresh)
        fresh_process = sum(r["process"] for r in fresh)
        res = {
            "cv_s": cv["work"],
            "nocache_s": nocache["work"],
            "fresh_fit_s": fresh_work,
            "fresh_process_s": fresh_process,
            "cv_process_s": cv["process"],
            "cv_cpu_s": cv["cpu"],
            "nocache_cpu_s": nocache["cpu"],
            "fresh_cpu_s": fresh_cpu,
            "ratio_fresh_fits_cpu": fresh_cpu / cv["cpu"],
            "ratio_fresh_fits": fresh_work / cv["work"],
            "ratio_fresh_processes": fresh_process / cv["process"],
            "ratio_nocache": nocache["work"] / cv["work"],
            "cv_accuracy": sum(cv["scores"]) / N_FOLDS,
            "fresh_accuracy": sum(sum(r["scores"]) for r in fresh) / N_FOLDS,
            "cv_scores": cv["scores"],
            "fresh_scores": [r["scores"][0] for r in fresh],
            "cv_steps": cv["steps"],
            "fresh_steps": [r["steps"][0] for r in fresh],
        }
        results[model] = res
        print(f"  {model}")
        row("", "wall      ratio   CPU       ratio")
        row("cross_val_score, one process (fits)", seconds(res["cv_s"]), "     ",
            seconds(cv["cpu"]), f"       accuracy {res['cv_accuracy']:.3f}")
        row("same process, cache cleared per fold", seconds(res["nocache_s"]),
            ratio(res["nocache_s"], res["cv_s"]), seconds(nocache["cpu"]),
            ratio(nocache["cpu"], cv["cpu"]))
        row(f"{N_FOLDS} fresh processes (fits)", seconds(fresh_work),
            ratio(fresh_work, res["cv_s"]), seconds(fresh_cpu), ratio(fresh_cpu, cv["cpu"]),
            f"accuracy {res['fresh_accuracy']:.3f}")
        # Identical seeds and data should give identical draws; if the step
        # counts differ, the sampling work differed and so do the timings.
        row("leapfrog steps, CV vs fresh", sum(res["cv_steps"]), sum(res["fresh_steps"]))
        row(f"{N_FOLDS} fresh processes (incl. start-up)", seconds(fresh_process),
            ratio(fresh_process, cv["process"]), "vs CV process incl. start-up")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small, fast smoke run")
    parser.add_argument("--model", choices=MODELS, action="append",
                        help="model(s) to time (default: both)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--worker", choices=("cv", "nocache", "fresh"), help=argparse.SUPPRESS)
    parser.add_argument("--fold", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.model[0], args.quick, args.fold)))
        return 0
    quiet()
    print(environment(), "(quick)" if args.quick else "", flush=True)
    results = run(quick=args.quick, models=tuple(args.model or MODELS))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
