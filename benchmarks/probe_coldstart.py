"""How NUTS mixes under a population prior, and how to combine its chains.

``python -m benchmarks.probe_coldstart [SEEDS]`` (default ``0,1,2``): the data,
population fits and new groups of ``python -m benchmarks coldstart``; every
new group at every K fitted under ``hier.population_prior()`` (package
defaults, ``random_state=0``) twice, its chains combined as ``"auto"`` does
(averaged: each chain started in a component drawn by its posterior
probability given the K points) and by ``"stacking"`` (PSIS-LOO on the K
points).  Prints per K: mean test accuracy and log loss of both, the number
of modes the four chains sat in (R-hat of the predicted probabilities
above 1.05 between them), the combined ESS, and the effective number of
components the K points leave (``PopulationPrior.component_posterior``).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np


def main(argv=None) -> int:
    from sklearn.metrics import log_loss

    from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier

    from .bench_coldstart import KS, N_NEW, N_POPULATION, data, first_k

    argv = sys.argv[1:] if argv is None else argv
    seeds = [int(s) for s in argv[0].split(",")] if argv else [0, 1, 2]
    warnings.simplefilter("ignore")
    rows = {}
    for seed in seeds:
        X, y, groups, train = data(seed)
        pop = (groups < N_POPULATION) & train
        hier = HierarchicalBayesianMLPClassifier(random_state=0, progressbar=False).fit(
            X[pop], y[pop], groups=groups[pop])
        prior = hier.population_prior()
        for k in KS:
            for g in range(N_POPULATION, N_POPULATION + N_NEW):
                pick = first_k(y, np.flatnonzero((groups == g) & train), k)
                test = np.flatnonzero((groups == g) & ~train)
                ess = prior.component_posterior(hier.network_, X[pick], y[pick])[1]
                for combine in ("auto", "stacking"):
                    flat = BayesianMLPClassifier(
                        prior=prior, combine_chains=combine, random_state=0, progressbar=False
                    ).fit(X[pick], y[pick])
                    proba = flat.predict_proba(X[test])
                    d = flat.diagnostics_
                    rows.setdefault((k, combine), []).append((
                        np.mean(proba.argmax(axis=1) == y[test]),
                        log_loss(y[test], proba, labels=[0, 1]),
                        len(set(d.get("chain_modes", [0]))), d["min_ess"], ess,
                    ))
        print(f"seed {seed} done", flush=True)
    print("K   combine    accuracy  log loss  modes (mean)  min ESS (median)  "
          "components' ESS (median)")
    for (k, combine), values in sorted(rows.items()):
        v = np.array(values, dtype=float)
        print(f"{k:<3} {combine:<10} {100 * v[:, 0].mean():7.2f}%  {v[:, 1].mean():.4f}  "
              f"{v[:, 2].mean():12.2f}  {np.median(v[:, 3]):16.0f}  {np.median(v[:, 4]):10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
