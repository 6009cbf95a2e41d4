"""Where a default NUTS fit's leapfrog steps go, and nutpie settings that
might cut them (session 15, issue 11).

``python -m benchmarks.probe_nuts_settings SEEDS ['{"nutpie_setting": value}']``:
the default ``HierarchicalBayesianMLPClassifier`` on the post's data (18
groups x 50 points, seed 31) for each ``random_state`` in ``SEEDS``
(comma-separated), with the JSON object's entries passed on to
``nutpie.sample`` (e.g. ``{"maxdepth": 8}``, ``{"mass_matrix_switch_freq":
40}``).  Prints per fit its wall and CPU seconds, test accuracy and log loss,
the leapfrog steps of all chains in warm-up and in sampling (nutpie's
``n_steps``; the warm-up is kept for the count and dropped before the
estimator sees the trace), the ``ConvergenceWarning`` if any, the
divergences and the stacking weights.
"""

import json
import sys
import warnings

import numpy as np

from ._common import quiet, seed_data, timed
from .bench_defaults import _metrics


def main():
    from sklearn.exceptions import ConvergenceWarning

    import skhbnn.inference as inference
    from skhbnn import HierarchicalBayesianMLPClassifier

    quiet()
    extra = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    steps = {}

    def sample(compiled, **settings):
        import nutpie

        settings.update(extra)
        idata = nutpie.sample(compiled, save_warmup=True, **settings)
        steps["warm-up"] = int(np.asarray(idata.warmup_sample_stats["n_steps"].values).sum())
        steps["sampling"] = int(np.asarray(idata.sample_stats["n_steps"].values).sum())
        for group in ("warmup_posterior", "warmup_sample_stats"):
            del idata[group]
        return idata

    inference._sample_kept = sample  # what the kernel route calls (it adds the weights after)
    X, X_te, y, y_te, g, g_te = seed_data()
    small = g < 3
    HierarchicalBayesianMLPClassifier(inference="nuts", chains=2, draws=20, tune=20,
                                      progressbar=False).fit(X[small], y[small], groups=g[small])
    for seed in (int(s) for s in sys.argv[1].split(",")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = HierarchicalBayesianMLPClassifier(progressbar=False, random_state=seed)
            t: dict = {}
            with timed(t, "fit"):
                est.fit(X, y, groups=g)
        m = _metrics(y_te, est.predict_proba(X_te, groups=g_te), est.classes_)
        warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        weights = None if est.chain_weights_ is None else np.round(est.chain_weights_, 2).tolist()
        print(f"{extra or 'defaults'} random_state={seed} fit {t['fit']:.1f} s "
              f"(CPU {t['fit_cpu']:.1f} s) {100 * m['accuracy']:.2f}% / {m['log_loss']:.4f} "
              f"leapfrog steps: warm-up "
              f"{steps['warm-up']}, sampling {steps['sampling']}; warned {warned}, "
              f"divergences {est.diagnostics_.get('divergences')}, weights {weights}",
              flush=True)


if __name__ == "__main__":
    main()
