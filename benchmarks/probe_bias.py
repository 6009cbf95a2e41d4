"""Which bias structure for the hierarchical model: a PyMC model per variant,
sampled by nutpie (2 chains x (1000 + 1000), target_accept 0.9).

``python -m benchmarks.probe_bias DATA MODES SEEDS`` prints one JSON line per
fit: test accuracy, log loss, sampling seconds, divergences, mean tree depth
and the chains' mean group sds.

* DATA: ``seed`` (the post's data, seed 31), ``moonsN`` (data seed N),
  ``grouped`` (``make_grouped_classification(random_state=0)``, 30% test) or
  a defaults-suite set (``offsets``, ``multiclass``;
  :func:`benchmarks.bench_defaults.datasets`);
* MODES: comma-separated ``mode[:bias_sd_scale[:bias_mu_sd]]`` with mode
  ``nobias`` (no biases), ``layer`` (biases share their layer's group sd,
  skhbnn 0.1), ``sep`` (biases have their own group sd, HalfNormal(scale))
  ``shared`` (biases do not vary between groups), ``outb`` (as ``sep``, but
  only the output layer has biases) or ``ard`` (as ``sep``, and
  each layer's group-mean biases ``Normal(0, tau_b)`` with a learned
  ``tau_b ~ HalfNormal(bias_mu_sd)``, non-centred);
  a suffix ``-ref`` (e.g. ``sep-ref``) gives a multiclass network K - 1
  outputs, the first class's logit fixed at 0 (as the binary network has);
* SEEDS: comma-separated sampler seeds.

``SKHBNN_PROBE_CHAINS=4 SKHBNN_PROBE_DRAWS=500 SKHBNN_PROBE_TUNE=500`` set the
sampler (the package defaults' 4 x (500 + 500) with those values).  Each line
also has, per chain, the smallest bulk ESS of the predicted probabilities of
50 test rows (``ess_p``; within the chain alone, so that chains in different
modes do not count as unmixed).
"""
import os
import sys, time, json, warnings
import numpy as np
warnings.filterwarnings("ignore")
import pymc as pm, pytensor.tensor as pt, nutpie
from skhbnn.network import NetworkSpec, forward
from skhbnn.groups import pad_by_group
from skhbnn.datasets import make_rotated_moons, make_grouped_classification
from sklearn.metrics import log_loss, accuracy_score
from scipy.special import expit

def build(X, y, codes, G, spec, mode, b_scale, b_mu_sd, ref=False):
    X_pad, y_pad, idx = pad_by_group(X, y, codes, G)
    yo = y_pad.reshape(-1)[idx]
    with pm.Model() as m:
        rv = {}
        for l in range(spec.n_layers):
            rv[f"sd{l}"] = pm.HalfNormal(f"sd{l}", 1.0)
            if mode in ("sep", "ard", "sep-cout", "outb") and spec.use_bias:
                rv[f"sdb{l}"] = pm.HalfNormal(f"sdb{l}", b_scale)
            if mode == "ard" and spec.use_bias:
                rv[f"sdtau{l}"] = pm.HalfNormal(f"sdtau{l}", b_mu_sd)
        params = {}
        for name, shape in spec.param_shapes().items():
            l = spec.layer_of(name)
            isb = name.startswith("b")
            if isb and mode == "ard":
                mu = pm.Deterministic(f"{name}_mu", rv[f"sdtau{l}"] * pm.Normal(f"{name}_z", 0, 1, shape=shape))
            else:
                mu = pm.Normal(f"{name}_mu", 0, b_mu_sd if isb else 1.0, shape=shape)
            if isb and mode == "outb" and l < spec.n_layers - 1:  # output biases only
                params[name] = pm.Deterministic(name, pt.zeros((G, *shape)))
                continue
            if isb and mode == "shared":
                params[name] = pm.Deterministic(name, pt.broadcast_to(mu, (G, *shape)))
                continue
            sd = rv[f"sdb{l}"] if (isb and mode in ("sep", "ard", "sep-cout", "outb")) else rv[f"sd{l}"]
            if mode.endswith("-cout") and l == spec.n_layers - 1:  # centred output layer
                params[name] = pm.Normal(name, mu, sd, shape=(G, *shape))
                continue
            raw = pm.Normal(f"{name}_raw", 0, 1, shape=(G, *shape))
            params[name] = pm.Deterministic(name, mu + sd * raw)
        logits = forward(params, pt.as_tensor(X_pad), spec, xp=pt).reshape((-1, spec.n_outputs))[idx]
        if spec.n_outputs == 1 or ref:  # a reference class with logit 0
            logits = pt.concatenate([pt.zeros_like(logits[:, :1]), logits], axis=-1)
        pm.Categorical("y", logit_p=logits, observed=yo)
    return m

def run(data, mode, b_scale, b_mu_sd, seed, hidden=(5, 5),
        draws=int(os.environ.get("SKHBNN_PROBE_DRAWS", 1000)),
        tune=int(os.environ.get("SKHBNN_PROBE_TUNE", 1000)),
        chains=int(os.environ.get("SKHBNN_PROBE_CHAINS", 2))):
    Xtr, Xte, ytr, yte, gtr, gte = data
    classes = np.unique(ytr); K = len(classes)
    ref = mode.endswith("-ref")
    mode = mode.removesuffix("-ref")
    G = len(np.unique(gtr))
    spec = NetworkSpec(n_features=Xtr.shape[1], hidden_layer_sizes=hidden, n_outputs=1 if K == 2 else K - ref,
                       activation="tanh", use_bias=not mode.startswith("nobias"))
    m = build(Xtr, ytr, gtr, G, spec, mode, b_scale, b_mu_sd, ref)
    t = time.perf_counter()
    cm = nutpie.compile_pymc_model(m, var_names=list(spec.param_shapes()) + [v.name for v in m.free_RVs if v.name.startswith("sd")])
    tc = time.perf_counter() - t
    idata = nutpie.sample(cm, draws=draws, tune=tune, chains=chains, seed=seed, target_accept=0.9, progress_bar=False)
    ts = time.perf_counter() - t - tc
    post = idata.posterior
    S = lambda a: np.asarray(a).reshape(-1, *np.asarray(a).shape[2:])
    params = {n: S(post[n]) for n in spec.param_shapes()}
    P = np.zeros((len(yte), K))
    for g in range(G):
        sel = gte == g
        pg = {n: v[:, g] for n, v in params.items()}
        z = forward(pg, Xte[sel][None], spec, xp=np)  # (S, n, out)
        if ref:
            z = np.concatenate([np.zeros_like(z[..., :1]), z], axis=-1)
        if K == 2:
            p1 = expit(z[..., 0]).mean(0); P[sel, 1] = p1; P[sel, 0] = 1 - p1
        else:
            e = np.exp(z - z.max(-1, keepdims=True)); pr = e / e.sum(-1, keepdims=True); P[sel] = pr.mean(0)
    from skhbnn.diagnostics import ess_bulk
    rows = np.flatnonzero(gte == 0)[:50]
    full = {n: np.asarray(post[n]) for n in spec.param_shapes()}  # (C, S, G, ...)
    zr = forward({n: v[:, :, 0] for n, v in full.items()}, Xte[rows][None, None], spec, xp=np)
    if ref:
        zr = np.concatenate([np.zeros_like(zr[..., :1]), zr], axis=-1)
    pr = expit(zr[..., 0]) if K == 2 else np.exp(zr[..., 0] - np.logaddexp.reduce(zr, axis=-1))
    ess_p = [int(np.nanmin(ess_bulk(pr[c:c + 1]))) for c in range(pr.shape[0])]
    div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    sds = {v: np.asarray(post[v]).mean(axis=1).round(3).tolist() for v in post.data_vars if v.startswith("sd")}
    depth = float(np.asarray(idata.sample_stats["depth"]).mean())
    return dict(acc=accuracy_score(yte, classes[P.argmax(1)]), ll=log_loss(yte, P, labels=classes), t=ts, div=div, depth=depth, sds=sds, ess_p=ess_p)

if __name__ == "__main__":
    which, modes = sys.argv[1], sys.argv[2].split(",")
    seeds = [int(s) for s in sys.argv[3].split(",")]
    if which == "seed":
        data = make_rotated_moons(n_groups=18, n_samples=100, random_state=31, split=True)
    elif which.startswith("moons"):
        data = make_rotated_moons(n_groups=18, n_samples=100, random_state=int(which[5:]), split=True)
    elif which in ("offsets", "multiclass", "midsize"):
        from benchmarks.bench_defaults import datasets
        data = datasets()[which]
    elif which == "grouped":
        from sklearn.model_selection import train_test_split
        X, y, g = make_grouped_classification(random_state=0)
        Xtr, Xte, ytr, yte, gtr, gte = train_test_split(X, y, g, test_size=0.3, random_state=0, stratify=g)
        _, codes = np.unique(np.concatenate([gtr, gte]), return_inverse=True)
        data = (Xtr, Xte, ytr, yte, codes[:len(gtr)], codes[len(gtr):])
    for spec in modes:
        mode, bs, bm = (spec.split(":") + ["1", "1"])[:3]
        for s in seeds:
            r = run(data, mode, float(bs), float(bm), s)
            print(json.dumps(dict(data=which, mode=spec, seed=s, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})), flush=True)
