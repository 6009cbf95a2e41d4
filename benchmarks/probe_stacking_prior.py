"""Does regularised stacking, or coarser modes, remove the seed-data warnings?
(session 19, issue 11).

``python -m benchmarks.probe_stacking_prior SEEDS``: one default fit of
``HierarchicalBayesianMLPClassifier`` per ``random_state`` in ``SEEDS``
(comma-separated) on the seed's data (seed 31, 18 groups x 50 training
points); each fit's symmetry-invariant draws, divergences, pointwise
log-likelihood and per-chain test predictions are kept, and its chains are
combined again offline in each of these ways:

* ``lam``: stacking over the modes with a Dirichlet(1 + lam) prior on the mode
  weights, i.e. ``sum_i log sum_k w_k p_ik + lam sum_k log w_k`` maximised
  (``lam = 0`` is the package's stacking); a positive ``lam`` spreads weight
  over modes that predict alike;
* ``thr``: the R-hat below which two chains count as one mode
  (:func:`skhbnn.stacking.chain_modes`; the package uses 1.05).

Per fit and way: test accuracy and log loss of the combined predictive, the
worst within-mode split R-hat, the min ESS of the combined predictive, the
weights, and the warning the rule of :mod:`skhbnn.diagnostics` would give.
``lam = 0, thr = 1.05`` reproduces the fits' own weights and warnings.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

WAYS = [(0.0, 1.05), (0.5, 1.05), (1.0, 1.05), (2.0, 1.05), (0.0, 1.1), (1.0, 1.1)]


def regularised_stacking(lpd: np.ndarray, lam: float) -> np.ndarray:
    from scipy.optimize import minimize
    from scipy.special import softmax

    from skhbnn.stacking import MIN_WEIGHT

    if lpd.shape[0] == 1:
        return np.ones(1)
    dens = np.exp(lpd - lpd.max(axis=0, keepdims=True))

    def objective(a):
        w = softmax(np.append(a, 0.0))
        mix = w @ dens
        value = -np.sum(np.log(mix)) - lam * np.sum(np.log(w))
        grad_w = -(dens / mix).sum(axis=1) - lam / w
        grad_a = w * (grad_w - w @ grad_w)
        return value, grad_a[:-1]

    w = softmax(np.append(minimize(objective, np.zeros(lpd.shape[0] - 1), jac=True,
                                   method="L-BFGS-B").x, 0.0))
    w[w < MIN_WEIGHT] = 0.0
    return w / w.sum()


def fit_and_keep(seed: int, data) -> dict:
    """A default fit, with what combining its chains needs."""
    from skhbnn import HierarchicalBayesianMLPClassifier, combining

    from .probe_chains import chain_probabilities

    X, X_te, y, y_te, g, g_te = data
    kept = {}
    real = combining.invariant_diagnostics

    def spy(invariants, n_divergent, *args, **kwargs):
        kept["invariants"] = {k: np.asarray(v, float) for k, v in invariants.items()}
        kept["n_divergent"] = n_divergent
        return real(invariants, n_divergent, *args, **kwargs)

    combining.invariant_diagnostics = spy
    try:
        est = HierarchicalBayesianMLPClassifier(random_state=seed, progressbar=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, groups=g)
    finally:
        combining.invariant_diagnostics = real
    n_chains = est.posterior_draws_["w0"].shape[0]
    kept["log_lik"] = np.asarray(est.idata_.log_likelihood["y_obs"]).reshape(n_chains, -1, len(y))
    kept["per_chain"] = chain_probabilities(est, X_te, g_te)
    kept["y_te"] = np.searchsorted(est.classes_, y_te)
    return kept


def combine(kept: dict, lam: float, thr: float) -> dict:
    from sklearn.metrics import log_loss

    from skhbnn.diagnostics import invariant_diagnostics, reliability_problems
    from skhbnn.stacking import chain_loo, chain_modes

    inv = kept["invariants"]
    modes = chain_modes({"proba": inv["proba"]}, thr, 50)
    if modes.max() > 0:
        ll = kept["log_lik"]
        lpd = np.concatenate([chain_loo(ll[modes == m].reshape(1, -1, ll.shape[2]))[0]
                              for m in range(modes.max() + 1)])
        mode_w = regularised_stacking(lpd, lam)
        w = mode_w[modes] / np.bincount(modes)[modes]
        diag = invariant_diagnostics(inv, kept["n_divergent"], w, modes)
    else:
        w = np.full(modes.size, 1.0 / modes.size)
        diag = invariant_diagnostics(inv, kept["n_divergent"], None, modes)
    proba = np.einsum("c,cnk->nk", w, kept["per_chain"])
    y = kept["y_te"]
    return {
        "acc": 100 * float(np.mean(proba.argmax(1) == y)),
        "log_loss": float(log_loss(y, proba, labels=np.arange(proba.shape[1]))),
        "within": diag["within_mode_rhat"], "min_ess": diag["min_ess"],
        "weights": np.round(w, 2).tolist(), "modes": modes.tolist(),
        "problems": reliability_problems(diag),
    }


def main() -> None:
    from ._common import quiet, seed_data

    quiet()
    seeds = [int(s) for s in sys.argv[1].split(",")]
    data = seed_data()
    fits = {s: fit_and_keep(s, data) for s in seeds}
    for lam, thr in WAYS:
        print(f"=== stacking prior lam={lam}, modes at R-hat <= {thr}")
        accs, lls, warned = [], [], 0
        for s, kept in fits.items():
            r = combine(kept, lam, thr)
            accs.append(r["acc"])
            lls.append(r["log_loss"])
            warned += bool(r["problems"])
            why = ("  warns: " + "; ".join(p.split(" (")[0] for p in r["problems"])
                   if r["problems"] else "")
            print(f"  random_state={s}: {r['acc']:.2f}% / {r['log_loss']:.4f}  within-mode "
                  f"R-hat {r['within']:.3f}  min ESS {r['min_ess']:.0f}  weights {r['weights']}  "
                  f"modes {r['modes']}{why}", flush=True)
        print(f"  median {np.median(accs):.2f}% [{min(accs):.2f}-{max(accs):.2f}] / "
              f"{np.median(lls):.4f} [{min(lls):.4f}-{max(lls):.4f}]  warned {warned} of "
              f"{len(fits)}", flush=True)


if __name__ == "__main__":
    main()
