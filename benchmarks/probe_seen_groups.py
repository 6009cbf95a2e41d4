"""Seen groups under the population prior: is the double counting the gap?

``python -m benchmarks.probe_seen_groups``: ``skhbnn reproduce``'s setting
(the post's data, seed 31; the post's network; the hierarchical model with 1
chain x (5000 + 1000), the flat models 2 chains x (1000 + 1000)).  Every
group's flat model learns from the 50 points the population was fitted on,
so under ``hier.population_prior()`` those points count twice.  Dividing
each component's weight by its marginal likelihood of the group's points,
``w_s / p(D_g | s)`` (8 draws per component, as
``PopulationPrior.component_posterior`` estimates it), approximately removes
the group from the population (``p(mu, sd | D_-g) ~ p(mu, sd | D) /
p(D_g | mu, sd)``).  Prints test accuracy and log loss over the 900 test
points for the hierarchical model, the population prior, and the
reweighted one, with the reweighted weights' effective number of
components per group (median, min).  A probe, not a package feature.
"""

from __future__ import annotations

import warnings

import numpy as np


def main() -> int:
    from sklearn.metrics import log_loss

    from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier, PopulationPrior
    from skhbnn.datasets import make_rotated_moons
    from skhbnn.experiments.fits import NETWORK
    from skhbnn.prediction import pointwise_log_likelihood

    warnings.simplefilter("ignore")
    X_tr, X_te, y_tr, y_te, g_tr, g_te = make_rotated_moons(random_state=31, split=True)
    hier = HierarchicalBayesianMLPClassifier(
        **NETWORK, draws=1000, tune=5000, chains=1, random_state=31, progressbar=False
    ).fit(X_tr, y_tr, groups=g_tr)
    prior = hier.population_prior()
    spec = hier.network_
    rng = np.random.default_rng(0)
    S, P = prior.means.shape
    theta = (prior.means[:, None] + prior.sds[:, None] * rng.standard_normal((S, 8, P)))
    params = spec.unflatten(theta.reshape(S * 8, P))
    flat = dict(NETWORK, draws=1000, tune=1000, chains=2, random_state=31, progressbar=False)
    proba = {"hierarchical": hier.predict_proba(X_te, groups=g_te),
             "population prior": np.empty((len(X_te), 2)),
             "population prior, group left out": np.empty((len(X_te), 2))}
    ess = []
    for g in np.unique(g_tr):
        rows, test = g_tr == g, g_te == g
        loglik = pointwise_log_likelihood(params, X_tr[rows], y_tr[rows], spec).sum(axis=1)
        total = loglik.reshape(S, 8)
        top = total.max(axis=1, keepdims=True)
        log_marginal = top[:, 0] + np.log(np.mean(np.exp(total - top), axis=1))
        score = prior.log_weights() - log_marginal
        w = np.exp(score - score.max())
        w /= w.sum()
        ess.append(1.0 / np.sum(w**2))
        left_out = PopulationPrior(prior.means, prior.sds, w, prior.layer_sizes)
        for name, p in (("population prior", prior),
                        ("population prior, group left out", left_out)):
            est = BayesianMLPClassifier(prior=p, **flat).fit(X_tr[rows], y_tr[rows])
            proba[name][test] = est.predict_proba(X_te[test])
    for name, p in proba.items():
        print(f"{name:<34} test {100 * np.mean(p.argmax(axis=1) == y_te):.2f}%  "
              f"log loss {log_loss(y_te, p):.4f}")
    print(f"left-out weights' effective number of components: median {np.median(ess):.1f}, "
          f"min {np.min(ess):.1f} (of {S})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
