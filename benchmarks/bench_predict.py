"""Grid prediction: ``predict_proba`` + ``predict_std`` vs the seed's
``sample_posterior_predictive``.

One flat 2-5-5-1 BNN (the seed's first group) is fitted once with 2 chains x
1000 draws, i.e. 2,000 posterior draws; both methods then evaluate the seed's
100 x 100 grid over [-3, 3]^2 (10,000 points) from the same 2,000 draws:

* baseline (the seed's way): the plain PyMC model with its inputs set to the
  grid (``pm.set_data``), ``pm.sample_posterior_predictive`` drawing one
  Bernoulli outcome per draw and point (2,000 x 10,000), then the mean and sd
  over draws;
* skhbnn: ``predict_proba(grid, return_std=True)``: exact posterior means and
  sds of the probabilities from one chunked numpy pass over the draws (hidden
  layers in float32); then the same with ``n_jobs=-1`` (one thread per CPU).

Each method runs in its own fresh process, so its peak resident memory is
measured alone (the kernel's high-water mark is reset just before the call;
pytensor's compiled C code allocates outside Python, where tracemalloc cannot
see it).  "peak RSS" is the whole process at its peak during the call,
interpreter and PyMC included; "added" is that minus the RSS just before.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

from ._common import header, quiet, ratio, row, seconds, seed_data, timed

FULL = {"draws": 1000, "tune": 1000, "chains": 2, "grid": 100}
QUICK = {"draws": 200, "tune": 200, "chains": 2, "grid": 50}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _grid(n: int) -> np.ndarray:
    grid = np.mgrid[-3 : 3 : complex(0, n), -3 : 3 : complex(0, n)]
    return grid.reshape(2, -1).T


def _memory_kib() -> dict:
    with open("/proc/self/status") as fh:
        lines = dict(line.split(":", 1) for line in fh if ":" in line)
    return {k: int(lines[k].split()[0]) for k in ("VmRSS", "VmHWM")}


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _predict_skhbnn(workdir, grid, n_jobs=None):
    with open(os.path.join(workdir, "clf.pkl"), "rb") as fh:
        clf = pickle.load(fh)
    clf.set_params(n_jobs=n_jobs)

    def call():
        # Mean and sd from one pass, as the seed gets both from one
        # sample_posterior_predictive.
        proba, std = clf.predict_proba(grid, return_std=True)
        return proba[:, 1], std[:, 1]

    return call


def _predict_seed(workdir, grid):
    import pymc as pm
    import xarray as xr

    from ._common import plain_flat_model

    saved = np.load(os.path.join(workdir, "draws.npz"))
    posterior = xr.Dataset(
        {
            "w_in_1": (("chain", "draw", "i0", "h0"), saved["w0"]),
            "w_1_2": (("chain", "draw", "h1", "h2"), saved["w1"]),
            "w_2_out": (("chain", "draw", "h3"), saved["w2"][..., 0]),
        }
    )
    model = plain_flat_model(saved["X"], saved["y"], np.random.default_rng(0))
    dummy_out = np.ones(len(grid), dtype=np.int64)

    def call():
        with model:
            pm.set_data({"ann_input": grid, "ann_output": dummy_out})
            ppc = pm.sample_posterior_predictive(
                posterior, var_names=["out"], random_seed=1, progressbar=False
            )
        out = ppc.posterior_predictive["out"]
        return (
            np.asarray(out.mean(("chain", "draw")).values),
            np.asarray(out.std(("chain", "draw")).values),
        )

    return call


def _worker(method: str, workdir: str, grid_n: int) -> None:
    """Run one method in this (fresh) process; print a JSON line of results."""
    quiet()
    grid = _grid(grid_n)
    if method == "seed":
        call = _predict_seed(workdir, grid)
    else:
        call = _predict_skhbnn(workdir, grid, n_jobs=-1 if method == "skhbnn-threads" else None)
    before = _memory_kib()
    reset = _reset_peak()
    t = {}
    with timed(t, "time"):
        mean, std = call()
    after = _memory_kib()
    np.savez(os.path.join(workdir, f"{method}.npz"), mean=mean, std=std)
    peak = after["VmHWM"] if reset else max(after["VmHWM"], before["VmRSS"])
    print(
        json.dumps(
            {
                **t,
                "rss_before_mib": before["VmRSS"] / 1024,
                "peak_rss_mib": peak / 1024,
                "added_mib": (peak - before["VmRSS"]) / 1024,
                "peak_reset": reset,
            }
        )
    )


def _spawn(method: str, workdir: str, grid_n: int) -> dict:
    code = (
        "from benchmarks.bench_predict import _worker; "
        f"_worker({method!r}, {workdir!r}, {grid_n})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{method} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False, seed: int = 1) -> dict:
    from skhbnn import BayesianMLPClassifier

    s = QUICK if quick else FULL
    n_draws = s["draws"] * s["chains"]
    header(
        f"predict: {s['grid']}x{s['grid']} grid ({s['grid'] ** 2:,} points) x "
        f"{n_draws:,} posterior draws, flat BNN of the seed's group 0"
    )
    X_train, _, y_train, _, g_train, _ = seed_data()
    X, y = X_train[g_train == 0], y_train[g_train == 0]
    clf = BayesianMLPClassifier(
        use_bias=False,
        random_state=seed,
        progressbar=False,
        draws=s["draws"],
        tune=s["tune"],
        chains=s["chains"],
    ).fit(X, y)
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "clf.pkl"), "wb") as fh:
            pickle.dump(clf, fh)
        d = clf.posterior_draws_
        np.savez(os.path.join(workdir, "draws.npz"), X=X, y=y, **d)
        seed_res = _spawn("seed", workdir, s["grid"])
        ours = _spawn("skhbnn", workdir, s["grid"])
        threads = _spawn("skhbnn-threads", workdir, s["grid"])
        a = np.load(os.path.join(workdir, "seed.npz"))
        b = np.load(os.path.join(workdir, "skhbnn.npz"))
        gap_mean = float(np.max(np.abs(a["mean"] - b["mean"])))
    for name, res in (
        ("seed (sample_posterior_predictive)", seed_res),
        ("skhbnn", ours),
        (f"skhbnn, n_jobs=-1 ({os.cpu_count()} CPUs)", threads),
    ):
        row(f"{name}: wall / CPU", seconds(res["time"]), seconds(res["time_cpu"]))
        row(
            f"{name}: peak RSS / added",
            f"{res['peak_rss_mib']:.0f} MiB",
            f"{res['added_mib']:+.0f} MiB",
        )
    row("RATIO wall (seed / skhbnn)", ratio(seed_res["time"], ours["time"]))
    row("RATIO CPU (seed / skhbnn)", ratio(seed_res["time_cpu"], ours["time_cpu"]))
    row("RATIO wall (seed / skhbnn, n_jobs=-1)", ratio(seed_res["time"], threads["time"]))
    row("RATIO CPU (seed / skhbnn, n_jobs=-1)", ratio(seed_res["time_cpu"], threads["time_cpu"]))
    # The seed's Bernoulli average carries Monte-Carlo error (sd <= 0.5 /
    # sqrt(draws)); skhbnn's mean is exact.  (The seed's sd is the sd of 0/1
    # outcomes, skhbnn's the sd of the probability: different quantities.)
    row("max |P(class 1) difference| over grid", f"{gap_mean:.3f}")
    return {"seed": seed_res, "skhbnn": ours, "skhbnn_threads": threads,
            "max_mean_gap": gap_mean}
