"""Probe one default hierarchical regression fit of ``bench_regression``:
its diagnostics, each group sd's mixing, the test RMSE and 90% coverage.

``python -m benchmarks.probe_regression SEED [PARAMS] [--adaptation NAME]``

``PARAMS``: JSON of estimator parameters on top of the defaults (e.g.
``'{"tune": 1000}'``); ``--adaptation``: nutpie's mass-matrix adaptation
(``diag``, nutpie's default, ``low_rank``, ``draw_diag``), passed to
``nutpie.sample`` for this probe only.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe_regression")
    parser.add_argument("seed", type=int)
    parser.add_argument("params", nargs="?", default="{}")
    parser.add_argument("--adaptation", default=None)
    args = parser.parse_args(argv)

    import arviz as az

    import skhbnn.inference as inference
    from skhbnn import HierarchicalBayesianMLPRegressor

    from .bench_regression import split

    if args.adaptation is not None:
        def sample(compiled, **settings):
            import nutpie

            return nutpie.sample(compiled, save_warmup=False, adaptation=args.adaptation,
                                 **settings)

        inference._sample_nutpie = sample
    Xtr, Xte, ytr, yte, gtr, gte = split(args.seed)
    params = {"random_state": args.seed, "progressbar": False, **json.loads(args.params)}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = HierarchicalBayesianMLPRegressor(**params).fit(Xtr, ytr, groups=gtr)
    print(f"fit {time.perf_counter() - start:.1f} s wall; parameters {params}"
          + (f", adaptation {args.adaptation}" if args.adaptation else ""))
    for w in caught:
        if "unreliable" in str(w.message):
            print("warning:", w.message)
    diag = est.diagnostics_
    for key in ("divergences", "within_mode_rhat", "min_ess", "max_rhat", "chain_weights"):
        print(f"  {key}: {diag[key]}")
    print("  ess:", {k: round(v) for k, v in diag["ess"].items()})
    print("  within-mode R-hat:", {k: round(v, 3) for k, v in diag["within_rhat"].items()})
    draws = est.posterior_draws_
    for name in sorted(k for k in draws if k.startswith("sd") or k == "sigma"):
        v = np.asarray(draws[name])
        ess = float(np.asarray(az.ess(v)).squeeze())
        rhat = float(np.asarray(az.rhat(v)).squeeze())
        print(f"  {name}: mean {v.mean():.3f}  ESS {ess:.0f}  R-hat {rhat:.3f}  "
              f"chain means {np.round(v.mean(axis=1), 3).tolist()}")
    print(f"  noise sd in y's units: {draws['sigma'].mean() * est.y_scale_:.3f}")
    mean = est.predict(Xte, groups=gte)
    samples = est.sample_y(Xte, groups=gte, n_samples=4000, random_state=args.seed)
    low, high = np.quantile(samples, [0.05, 0.95], axis=1)
    print(f"test RMSE {np.sqrt(np.mean((mean - yte) ** 2)):.4f}  "
          f"90% coverage {np.mean((yte >= low) & (yte <= high)):.4f}  "
          f"leapfrog steps {int(np.asarray(est.idata_.sample_stats['n_steps'].values).sum())}")


if __name__ == "__main__":
    main()
