"""Does PSIS-LOO's unreliability at high Pareto k bias stacking between modes?

``python -m benchmarks.probe_stacking_rows DATA SEEDS``: DATA as in
``probe_chains`` (``moonsN``, ``offsets``, ``groupedN``); one default
hierarchical fit per seed.  Its chains' test probabilities are mixed with
three sets of chain weights:

* ``stacking``: the package's (each mode's PSIS-LOO densities of all
  training rows, :func:`skhbnn.stacking.mode_stacking`);
* ``reliable``: the same stacking on only the rows where every mode's Pareto
  k-hat is below 0.7, where PSIS is reliable for all modes alike;
* ``equal``: every chain alike.

One JSON line per fit: per weighting the test accuracy and log loss, the
weights, and per mode the number of rows with k-hat above 0.7 and its elpd
on all rows and on the reliable ones.
"""
import json
import sys
import warnings

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from skhbnn import HierarchicalBayesianMLPClassifier
from skhbnn.stacking import chain_loo, mode_stacking, stacking_weights

from .probe_chains import chain_probabilities, data_of


def main():
    which, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    X_tr, X_te, y_tr, y_te, g_tr, g_te = data_of(which)
    for seed in seeds:
        clf = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X_tr, y_tr, groups=g_tr)
        P = chain_probabilities(clf, X_te, g_te)
        n_chains = P.shape[0]
        modes = np.asarray(clf.diagnostics_.get("chain_modes", np.zeros(n_chains, int)))
        ll = np.asarray(clf.idata_.log_likelihood["y_obs"]).reshape(n_chains, -1, len(y_tr))
        n_modes = int(modes.max()) + 1
        pooled = [ll[modes == m].reshape(1, -1, ll.shape[2]) for m in range(n_modes)]
        lpd, khat = (np.concatenate(a) for a in zip(*(chain_loo(p) for p in pooled)))
        ok = (khat < 0.7).all(axis=0)
        mode_w = stacking_weights(lpd[:, ok]) if n_modes > 1 else np.ones(1)
        weights = {"equal": np.full(n_chains, 1.0 / n_chains),
                   "stacking": mode_stacking(ll, modes)[0],  # the package's own
                   "reliable": mode_w[modes] / np.bincount(modes)[modes]}
        res = {}
        for name, w in weights.items():
            mix = np.tensordot(w, P, axes=1)
            res[name] = {"acc": round(accuracy_score(y_te, clf.classes_[mix.argmax(1)]), 4),
                         "ll": round(log_loss(y_te, mix, labels=clf.classes_), 4),
                         "w": np.round(w, 3).tolist()}
        per_mode = [{"n_k07": int((khat[m] > 0.7).sum()), "elpd": round(float(lpd[m].sum()), 1),
                     "elpd_reliable": round(float(lpd[m][ok].sum()), 1)} for m in range(n_modes)]
        print(json.dumps({"data": which, "seed": seed, "modes": modes.tolist(),
                          "n_reliable": int(ok.sum()), "n_rows": len(y_tr), **res,
                          "per_mode": per_mode}), flush=True)


if __name__ == "__main__":
    main()
