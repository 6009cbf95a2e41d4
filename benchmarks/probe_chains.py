"""Per-chain quality of default hierarchical fits: test log loss and PSIS-LOO
elpd of every chain, the chains' modes and stacking weights.

``python -m benchmarks.probe_chains DATA SEEDS [PARAMS_JSON]``: DATA is
``moonsN`` (``make_rotated_moons(random_state=N, split=True)``) or
``groupedN`` (``make_grouped_classification(random_state=N)``, 30% test) or
``offsets`` (the defaults suite's set);
SEEDS comma-separated ``random_state`` values; PARAMS_JSON estimator
parameters beside the defaults, e.g. ``'{"chains": 4}'``.  One JSON line per
fit.  Per chain also: ``p_loo`` (in-sample lpd minus PSIS-LOO elpd), the
rows with k-hat above 0.7 (``n_bad``) and ``elpd_ok``, the elpd summed over
the rows where every chain's k-hat is below 0.7 (where PSIS is reliable for
all of them), so that modes can be compared on the same reliable rows.
"""
import sys, time, json, warnings
import numpy as np
from sklearn.metrics import log_loss, accuracy_score
from skhbnn import HierarchicalBayesianMLPClassifier
from skhbnn.datasets import make_rotated_moons, make_grouped_classification
from skhbnn.stacking import chain_loo

def chain_probabilities(clf, X, groups):
    """(chain, row, class): each chain's own predictive, from a shallow copy
    of the fitted estimator that keeps only that chain's draws."""
    out = []
    for c in range(clf.posterior_draws_["w0"].shape[0]):
        sub = type(clf).__new__(type(clf))
        sub.__dict__.update(clf.__dict__)
        sub.posterior_draws_ = {k: v[c : c + 1] for k, v in clf.posterior_draws_.items()}
        sub.chain_weights_ = None
        out.append(sub.predict_proba(X, groups=groups))
    return np.stack(out)

def fit_timed(X, y, groups, seed, params):
    """A hierarchical classifier fitted at ``random_state=seed`` with
    ``params``: ``(estimator, wall seconds, ConvergenceWarning texts)``."""
    clf = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False, **params)
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        clf.fit(X, y, groups=groups)
    t = time.perf_counter() - t
    return clf, t, [str(x.message)[60:260] for x in w if "Convergence" in type(x.message).__name__]

def data_of(which):
    if which == "offsets":  # the defaults suite's offsets set
        return make_grouped_classification(n_groups=40, n_features=10, random_state=0, split=True)
    if which.startswith("moons"):
        return make_rotated_moons(n_groups=18, n_samples=100, random_state=int(which[5:]), split=True)
    from sklearn.model_selection import train_test_split
    X, y, g = make_grouped_classification(random_state=int(which[7:] or 0))
    return train_test_split(X, y, g, test_size=0.3, random_state=0, stratify=g)

def main():
    which = sys.argv[1]; seeds = [int(s) for s in sys.argv[2].split(",")]
    kw = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    Xtr, Xte, ytr, yte, gtr, gte = data_of(which)
    for s in seeds:
        clf, t, warned = fit_timed(Xtr, ytr, gtr, s, kw)
        P = clf.predict_proba(Xte, groups=gte)
        C = clf.posterior_draws_["w0"].shape[0]
        ll = np.asarray(clf.idata_.log_likelihood["y_obs"]).reshape(C, -1, len(ytr))
        per = []
        lpd_all, k_all = chain_loo(ll)  # per chain
        ok = (k_all < 0.7).all(axis=0)
        for c, Pc in enumerate(chain_probabilities(clf, Xte, gte)):
            lpd, k = lpd_all[c], k_all[c]
            per.append(dict(ll=round(log_loss(yte, Pc, labels=clf.classes_), 4), acc=round(accuracy_score(yte, clf.classes_[Pc.argmax(1)]), 4),
                            elpd=round(float(lpd.sum()), 1), kmax=round(float(k.max()), 2),
                            p_loo=round(float(np.log(np.exp(ll[c]).mean(0)).sum() - lpd.sum()), 1),
                            n_bad=int((k > 0.7).sum()), elpd_ok=round(float(lpd[ok].sum()), 1), n_ok=int(ok.sum()),
                            sds={k2: round(float(v[c].mean()), 3) for k2, v in clf.posterior_draws_.items() if k2.startswith("sd")}))
        d = clf.diagnostics_
        print(json.dumps(dict(data=which, seed=s, kw=kw, t=round(t, 1), ll=round(log_loss(yte, P, labels=clf.classes_), 4),
                              acc=round(accuracy_score(yte, clf.classes_[P.argmax(1)]), 4), div=d.get("divergences"), rhat=round(d["max_rhat"], 3),
                              warned=warned, weights=d.get("chain_weights"), modes=d.get("chain_modes"), chains=per)), flush=True)


if __name__ == "__main__":
    main()
