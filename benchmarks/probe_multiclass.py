"""Many classes, few rows per group: where SVI and the default network stand
(session 10, issue 12).  Data: ``bench_scale.grouped_data(G, K)`` (10
training + 10 test rows per group, 6 features).

``python -m benchmarks.probe_multiclass fit G K ['{"hidden_layer_sizes": [10, 10]}']``
    The hierarchical classifier (``random_state=0``, otherwise the defaults
    or the JSON's settings; ``"kind": "flat"`` for the flat one): test
    accuracy and log loss, the restarts' weights, ELBOs, steps and stage
    times, and the fitted group sds per restart.
``python -m benchmarks.probe_multiclass offdiag G K H 0,0.03,0.1,1``
    One SVI restart of a flat (H, H) network (``skhbnn.svi.fit_one``) with the
    off-diagonal Cholesky learning rate at each factor (``auto`` for the
    shipped ``1 / sqrt(n)``), and an Adam MAP fit of the same log density:
    final ELBO, the approximation mean's test metrics, its marginal sds.
``python -m benchmarks.probe_multiclass mlp G K``
    scikit-learn's ``MLPClassifier`` on the pooled rows at three widths (how
    much network the shared signal needs).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np

from .bench_scale import _metrics, grouped_data


def fit(G: int, K: int, params: dict) -> None:
    from skhbnn import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier

    X, X_te, y, y_te, g, g_te = grouped_data(G, K)
    flat = params.pop("kind", "hierarchical") == "flat"
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if flat:
            est = BayesianMLPClassifier(random_state=0, progressbar=False, **params).fit(X, y)
            proba = est.predict_proba(X_te)
        else:
            est = HierarchicalBayesianMLPClassifier(random_state=0, progressbar=False,
                                                    **params).fit(X, y, groups=g)
            proba = est.predict_proba(X_te, groups=g_te)
    print(f"fit {time.perf_counter() - start:.1f} s  route {est.inference_}  "
          f"network {est.network_.hidden_layer_sizes}  test {_metrics(y_te, proba)}")
    for w in caught:
        print("warning:", str(w.message)[:300])
    d = est.diagnostics_ or {}
    for key in ("chain_weights", "final_elbo", "svi_steps", "svi_stage_seconds", "pareto_k"):
        print(f"  {key}: {d.get(key)}")
    post = est.idata_.posterior
    for v in post.data_vars:
        if v.startswith("sd"):
            print(f"  {v} per restart: {np.round(post[v].mean('draw').values.ravel(), 3)}")


def _flat_problem(G, K, H):
    from skhbnn.models import FlatModel
    from skhbnn.network import NetworkSpec, forward, logits_to_proba

    X, X_te, y, y_te, _, _ = grouped_data(G, K)
    spec = NetworkSpec(X.shape[1], (H, H), K, "tanh", use_bias=True)
    problem = FlatModel(spec).build_kernel(X, y, None, None)

    def proba(x):  # the network at the point x
        return logits_to_proba(forward(problem.expand(x), X_te, spec))

    return problem, y, y_te, proba


def offdiag(G: int, K: int, H: int, factors: str) -> None:
    import skhbnn.kernels.svi_step as steps
    from skhbnn import svi

    problem, y, y_te, proba = _flat_problem(G, K, H)
    x, m, v = problem.initial_point(0), 0.0, 0.0
    for t in range(1, 5001):  # Adam MAP, as a reference point
        _, grad = problem.logp_grad(x)
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad
        x = x + 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    print(f"MAP (Adam, 5000 steps): log density {problem.logp_grad(x)[0]:.0f}  "
          f"test {_metrics(y_te, proba(x))}")
    shipped = steps.offdiag_lr_factor
    for factor in factors.split(","):
        steps.offdiag_lr_factor = shipped if factor == "auto" else (lambda n, c=float(factor): c)
        start = time.perf_counter()
        f = svi.fit_one(problem, 0, max_epochs=5000, tol=0.0, n_rows=len(y))
        sds = np.sqrt(np.sum(f.chol**2, axis=1))
        print(f"off-diagonal rate x {factor}: {f.n_steps} steps  final ELBO {f.elbo[-1]:.0f}  "
              f"mean's test {_metrics(y_te, proba(f.mean))}  marginal sd median "
              f"{np.median(sds):.3f} max {sds.max():.3f}  {time.perf_counter() - start:.1f} s")
    steps.offdiag_lr_factor = shipped


def mlp(G: int, K: int) -> None:
    from sklearn.neural_network import MLPClassifier

    X, X_te, y, y_te, _, _ = grouped_data(G, K)
    warnings.simplefilter("ignore")
    for hidden in ((5, 5), (10, 10), (32, 32)):
        m = MLPClassifier(hidden, alpha=1e-3, max_iter=500, early_stopping=True,
                          random_state=0).fit(X, y)
        print(f"pooled MLPClassifier {hidden}: {_metrics(y_te, m.predict_proba(X_te))}")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "fit":
        fit(int(args[0]), int(args[1]), json.loads(args[2]) if len(args) > 2 else {})
    elif mode == "offdiag":
        offdiag(int(args[0]), int(args[1]), int(args[2]), args[3])
    elif mode == "mlp":
        mlp(int(args[0]), int(args[1]))
    else:
        raise SystemExit(__doc__)
