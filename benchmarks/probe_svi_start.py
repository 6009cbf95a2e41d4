"""Where SVI starts: random points against NUTS warm starts.

``python -m benchmarks.probe_svi_start`` (about 3 minutes): the rotated moons,
500 groups x 50 points (``seed_data``, seed 31), the seed's bias-free 2-5-5-1
network; one SVI restart per seed 1 and 2 (:func:`skhbnn.svi.fit_one`, the
shipped learning rate and stopping rule) from

* the NUTS chains' random initial point (``Problem.initial_point``);
* the shipped warm start: where a NUTS run of 200 warm-up steps on a random
  subset of about 1,000 rows has arrived (:func:`skhbnn.variational.warm_starts`);
* a longer warm start: 1,000 warm-up steps on about 2,500 rows.

Prints test accuracy and log loss on the first 100 groups, the last ELBO and
the group sds of the three layers.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from skhbnn import svi, variational
from skhbnn.models import HierarchicalModel
from skhbnn.network import NetworkSpec, forward

from ._common import seed_data


def main() -> None:
    X, X_te, y, y_te, g, g_te = seed_data(n_groups=500)
    spec = NetworkSpec(n_features=2, hidden_layer_sizes=(5, 5), n_outputs=1, use_bias=False)
    model = HierarchicalModel(spec, 500)
    problem = model.build_kernel(X, y, g)
    layout = svi._Layout(problem)
    sub = g_te < 100

    def score(fit):
        rng = np.random.default_rng(0)
        logits = []
        for _ in range(100):
            v = problem.expand(svi.draw(problem, fit, 1, rng, layout)[0])
            params = {k: v[k][g_te[sub]] for k in spec.param_shapes()}
            logits.append(forward(params, X_te[sub][:, None, :], spec)[:, 0, 0])
        p = np.mean(1.0 / (1.0 + np.exp(-np.array(logits))), axis=0)
        return accuracy_score(y_te[sub], p > 0.5), log_loss(y_te[sub], p)

    starts = {"random start": lambda seeds: [None] * len(seeds)}
    for label, rows, tune in (("warm start, 200 steps, ~1,000 rows", 1000, 200),
                              ("warm start, 1,000 steps, ~2,500 rows", 2500, 1000)):
        def warm(seeds, rows=rows, tune=tune):
            variational._WARM_ROWS = rows
            return variational.warm_starts(model, (X, y, g, None), layout, seeds, tune, False)
        starts[label] = warm
    seeds = np.array([1, 2])
    for label, make in starts.items():
        t = time.perf_counter()
        x0 = make(seeds)
        for seed, start in zip(seeds, x0):
            fit = svi.fit_one(problem, int(seed), x0=start, max_epochs=variational._MAX_EPOCHS,
                              tol=variational._TOL, n_rows=len(y), layout=layout)
            acc, ll = score(fit)
            sds = np.round(np.exp(fit.mean[:3]), 3)
            print(f"{label:<38} seed {seed}  accuracy {100 * acc:.2f}%  log loss {ll:.4f}  "
                  f"ELBO {fit.elbo[-1]:9.1f}  group sds {sds}  "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
