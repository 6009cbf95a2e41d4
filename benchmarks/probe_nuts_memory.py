"""Where a NUTS fit's peak memory comes from (session 15, issue 12).

``python -m benchmarks.probe_nuts_memory GROUPS TUNE DRAWS``: one NUTS fit
of ``HierarchicalBayesianMLPClassifier`` (``inference="nuts"``, the default
4 chains, ``tune`` and ``draws`` as given) on the first ``GROUPS`` groups of
the 10,000-group, 6-class set of ``python -m benchmarks scale``.  Prints the
fit's time, the process's peak resident memory, and the size of the stored
per-group arrays: the non-centred offsets (``*_raw``) and the per-group
weights of ``idata_.posterior``, float64.  Two runs that differ only in
``TUNE`` show what the warm-up costs in memory: nutpie keeps every warm-up
draw of every stored variable until sampling ends.  Until session 16 it
stored the whole variable table per draw and converted the warm-up draws to
numpy before dropping them (``save_warmup=False``): ``50 550 100`` peaked at
1.52 GB against 0.67 GB for ``50 50 100``.  Since then it stores only the
free variables and skhbnn converts the kept draws only
(``skhbnn.inference._sample_kept``): 0.73 GB.
"""

import resource
import sys
import time

from ._common import quiet


def main():
    from skhbnn import HierarchicalBayesianMLPClassifier

    from .bench_scale import grouped_data

    quiet()
    n_groups, tune, draws = (int(a) for a in sys.argv[1:4])
    X, _, y, _, g, _ = grouped_data(10000, 6)
    keep = g < n_groups
    est = HierarchicalBayesianMLPClassifier(inference="nuts", tune=tune, draws=draws,
                                            progressbar=False, random_state=0)
    start = time.perf_counter()
    est.fit(X[keep], y[keep], groups=g[keep])
    post = est.idata_.posterior
    per_group = {name: post[name] for name in post.data_vars
                 if f"{name}_dim_0" in post[name].dims and post[name].sizes[f"{name}_dim_0"]
                 == n_groups}
    raw = sum(v.nbytes for k, v in per_group.items() if k.endswith("_raw")) / 1e9
    weights = sum(v.nbytes for k, v in per_group.items() if not k.endswith("_raw")) / 1e9
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{n_groups} groups, 4 chains x ({tune} tune + {draws} draws): fit "
          f"{time.perf_counter() - start:.1f} s, peak {peak:.2f} GB; stored per-group arrays "
          f"(float64): offsets {raw:.3f} GB, weights {weights:.3f} GB")


if __name__ == "__main__":
    main()
