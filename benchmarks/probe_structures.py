"""``use_bias="auto"`` (skhbnn.structures): which structure stacking keeps,
and what the fits score.

``python -m benchmarks.probe_structures fits DATA SEEDS [PARAMS_JSON]``: the
hierarchical classifier at its defaults (plus PARAMS_JSON) for each
``random_state`` in SEEDS; one JSON line per fit: wall seconds, test accuracy
and log loss, the structure kept (``bias``), both structures' weights
(``sw``), the chain weights (``w``), the worst within-mode split R-hat, the
min ESS of the predictive and the ``ConvergenceWarning`` text, if any.

``python -m benchmarks.probe_structures separate DATA SEEDS``: the evidence
behind the choice.  Per seed, two separate default fits, ``use_bias=True``
and ``use_bias=False`` (4 chains each), each fit's modes' PSIS-LOO elpd, and
the test score of the stacked mixture of both fits' modes with the weights
(what stacking across the two structures does with all 8 chains).

DATA: a defaults-suite set (``moons-31``, ``moons-7``, ``moons-11``,
``offsets``, ``multiclass``, ``midsize``; :func:`benchmarks.bench_defaults.datasets`).
"""
import json
import sys

import numpy as np
from sklearn.metrics import log_loss

from skhbnn.stacking import chain_loo, stacking_weights

from .bench_defaults import datasets
from .probe_chains import chain_probabilities, fit_timed


def _fit(data, seed, params):
    X_tr, y_tr, g_tr = data[0], data[2], data[4]
    return fit_timed(X_tr, y_tr, g_tr, seed, params)


def _score(clf, proba, y_te) -> dict:
    return dict(acc=round(float(np.mean(clf.classes_[proba.argmax(1)] == y_te)), 4),
                ll=round(log_loss(y_te, proba, labels=clf.classes_), 4))


def fits(data, seeds, params):
    X_te, y_te, g_te = data[1], data[3], data[5]
    for seed in seeds:
        clf, seconds, warned = _fit(data, seed, params)
        d = clf.diagnostics_
        w = clf.chain_weights_
        print(json.dumps(dict(
            seed=seed, t=round(seconds, 1), **_score(clf, clf.predict_proba(X_te, groups=g_te), y_te),
            bias=bool(clf.network_.use_bias), sw=d.get("structure_weights"),
            w=None if w is None else [round(float(x), 3) for x in w],
            rhat=round(d.get("within_mode_rhat", float("nan")), 3),
            ess=round(d.get("min_ess", float("nan"))), n_draws=d.get("n_draws"), warned=warned,
        )), flush=True)


def separate(data, seeds):
    X_te, y_tr, y_te, g_te = data[1], data[2], data[3], data[5]
    for seed in seeds:
        out, lpds, probs, names = {}, [], [], []
        for name, use_bias in (("bias", True), ("nobias", False)):
            clf, seconds, warned = _fit(data, seed, {"use_bias": use_bias})
            n_chains = clf.posterior_draws_["w0"].shape[0]
            ll = np.asarray(clf.idata_.log_likelihood["y_obs"]).reshape(n_chains, -1, len(y_tr))
            modes = np.asarray(clf.diagnostics_.get("chain_modes", np.zeros(n_chains, int)))
            per_chain = chain_probabilities(clf, X_te, g_te)
            elpd = []
            for m in np.unique(modes):  # each mode's chains pooled, as the package does
                lpd, _ = chain_loo(ll[modes == m].reshape(1, -1, ll.shape[2]))
                lpds.append(lpd[0])
                elpd.append(round(float(lpd[0].sum()), 1))
                probs.append(per_chain[modes == m].mean(0))
                names.append(name)
            out[name] = dict(t=round(seconds, 1), warned=len(warned), elpd=elpd,
                             **_score(clf, clf.predict_proba(X_te, groups=g_te), y_te))
        w = stacking_weights(np.array(lpds))
        out["stack"] = dict(**_score(clf, np.tensordot(w, np.array(probs), axes=1), y_te),
                            w=[(n, round(float(x), 3)) for n, x in zip(names, w)])
        print(json.dumps(dict(seed=seed, **out)), flush=True)


def main():
    mode, which, seeds = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")]
    data = datasets()[which]
    if mode == "separate":
        separate(data, seeds)
    else:
        fits(data, seeds, json.loads(sys.argv[4]) if len(sys.argv) > 4 else {})


if __name__ == "__main__":
    main()
