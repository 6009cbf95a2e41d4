"""Helpers shared by the benchmarks: data, timing, plain-PyMC seed models, ESS."""

from __future__ import annotations

import datetime
import os
import platform
import time
import warnings
from contextlib import contextmanager

import numpy as np

N_HIDDEN = 5
# The seed's sampler settings (its hierarchical fit used target_accept=0.9,
# which is also skhbnn's default): both sides of every comparison use them.
TARGET_ACCEPT = 0.9


def quiet() -> None:
    """Silence the warnings that plain PyMC scripts and tiny quick runs raise."""
    warnings.filterwarnings("ignore")
    import logging

    import pymc  # noqa: F401  (importing PyMC sets its logger to INFO; undo it after)

    for name in ("pymc", "pymc.sampling", "pymc.stats", "pytensor", "arviz"):
        logging.getLogger(name).setLevel(logging.ERROR)


def environment() -> str:
    import arviz
    import pymc
    import pytensor

    try:
        import nutpie

        nutpie_version = nutpie.__version__
    except ImportError:  # nutpie is a dependency, but say so if it is missing
        nutpie_version = "not installed"
    return (
        f"{datetime.date.today().isoformat()}  Python {platform.python_version()}  "
        f"PyMC {pymc.__version__}  pytensor {pytensor.__version__}  "
        f"nutpie {nutpie_version}  ArviZ {arviz.__version__}  "
        f"cpus {os.cpu_count()}  load {os.getloadavg()[0]:.2f}"
    )


def header(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def row(label: str, *values) -> None:
    print(f"  {label:<42} " + "  ".join(str(v) for v in values), flush=True)


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children.

    The machine is shared, so wall time depends on what else runs; CPU time
    shows the work done.  PyMC's chains run in forked child processes (the
    Linux default up to Python 3.13), which are reaped before ``pm.sample``
    returns, so they count here too.
    """
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def timed(out: dict, key: str):
    """Store the wall time of the block in ``out[key]`` and its CPU time in
    ``out[key + "_cpu"]`` (seconds)."""
    start, start_cpu = time.perf_counter(), cpu_seconds()
    try:
        yield
    finally:
        out[key] = time.perf_counter() - start
        out[f"{key}_cpu"] = cpu_seconds() - start_cpu


def seed_data(n_groups: int = 18, n_samples: int = 100, random_state: int = 31):
    """The seed's split: first half of each group's points trains, second tests."""
    from skhbnn.datasets import make_rotated_moons

    return make_rotated_moons(
        n_groups=n_groups, n_samples=n_samples, random_state=random_state, split=True
    )


def stacked(X, y, groups):
    """Rows ordered group by group (equal sizes) -> the seed's (G, n, 2), (G, n)."""
    n_groups = len(np.unique(groups))
    return X.reshape(n_groups, -1, X.shape[1]), y.reshape(n_groups, -1)


def arviz_psislw(log_lik: np.ndarray):
    """ArviZ's PSIS of the LOO ratios ``1 / p(y_i | theta_s)`` of the rows of
    ``log_lik`` ``(n, S)``, one row per call inside ArviZ: the reference
    :func:`skhbnn.stacking._psislw` is held to.  ArviZ 0.x's ``az.psislw``
    takes the log ratios, ArviZ 1.x's ``array_stats.psislw`` the
    log-likelihood."""
    try:
        from arviz_stats.base import array_stats
    except ImportError:  # ArviZ 0.x
        import arviz as az

        return az.psislw(-log_lik, 1.0)
    return array_stats.psislw(log_lik, r_eff=1.0, axis=-1)


def ess(draws) -> float:
    """Bulk ESS of one scalar quantity with draws of shape (chain, draw)."""
    import arviz as az

    return float(np.asarray(az.ess(np.asarray(draws, dtype=float))).squeeze())


def percent(x: float) -> str:
    return f"{100 * x:.2f}%"


def seconds(x: float) -> str:
    return f"{x:.1f} s"


def ratio(baseline: float, ours: float) -> str:
    return f"{baseline / ours:.2f}x"


# ---------------------------------------------------------------- plain PyMC
# The seed's models, written as a PyMC user would write them today: pm.Data
# instead of theano.shared, batched matmul instead of batched_dot, initval
# instead of testval.  These are the baselines; skhbnn is not used here.


def plain_hierarchical_model(Xs, Ys, rng):
    """The seed's ``construct_hierarchical_nn`` (non-centred, one sd per layer)."""
    import pymc as pm
    import pytensor.tensor as pt

    n_grps, _, n_data = Xs.shape
    init_1 = rng.standard_normal((n_data, N_HIDDEN))
    init_2 = rng.standard_normal((N_HIDDEN, N_HIDDEN))
    init_out = rng.standard_normal(N_HIDDEN)
    with pm.Model() as neural_network:
        ann_input = pm.Data("ann_input", Xs)
        ann_output = pm.Data("ann_output", Ys)
        weights_in_1_grp = pm.Normal(
            "w_in_1_grp", 0, sigma=1, shape=(n_data, N_HIDDEN), initval=init_1
        )
        weights_in_1_grp_sd = pm.HalfNormal("w_in_1_grp_sd", sigma=1.0)
        weights_1_2_grp = pm.Normal(
            "w_1_2_grp", 0, sigma=1, shape=(N_HIDDEN, N_HIDDEN), initval=init_2
        )
        weights_1_2_grp_sd = pm.HalfNormal("w_1_2_grp_sd", sigma=1.0)
        weights_2_out_grp = pm.Normal(
            "w_2_out_grp", 0, sigma=1, shape=(N_HIDDEN,), initval=init_out
        )
        weights_2_out_grp_sd = pm.HalfNormal("w_2_out_grp_sd", sigma=1.0)
        weights_in_1_raw = pm.Normal("w_in_1", shape=(n_grps, n_data, N_HIDDEN))
        weights_in_1 = weights_in_1_raw * weights_in_1_grp_sd + weights_in_1_grp
        weights_1_2_raw = pm.Normal("w_1_2", shape=(n_grps, N_HIDDEN, N_HIDDEN))
        weights_1_2 = weights_1_2_raw * weights_1_2_grp_sd + weights_1_2_grp
        weights_2_out_raw = pm.Normal("w_2_out", shape=(n_grps, N_HIDDEN))
        weights_2_out = weights_2_out_raw * weights_2_out_grp_sd + weights_2_out_grp
        act_1 = pt.tanh(pt.matmul(ann_input, weights_in_1))
        act_2 = pt.tanh(pt.matmul(act_1, weights_1_2))
        act_out = pt.matmul(act_2, weights_2_out[..., None])[..., 0]
        pm.Bernoulli("out", logit_p=act_out, observed=ann_output, shape=act_out.shape)
    return neural_network


PLAIN_GROUP_SDS = ("w_in_1_grp_sd", "w_1_2_grp_sd", "w_2_out_grp_sd")


def plain_flat_model(X, Y, rng):
    """The seed's ``construct_flat_nn``: a 2-5-5-1 tanh BNN with N(0, 1) weights."""
    import pymc as pm
    import pytensor.tensor as pt

    n_data = X.shape[1]
    with pm.Model() as neural_network:
        ann_input = pm.Data("ann_input", X)
        ann_output = pm.Data("ann_output", Y)
        weights_in_1 = pm.Normal(
            "w_in_1",
            0,
            sigma=1,
            shape=(n_data, N_HIDDEN),
            initval=rng.standard_normal((n_data, N_HIDDEN)),
        )
        weights_1_2 = pm.Normal(
            "w_1_2",
            0,
            sigma=1,
            shape=(N_HIDDEN, N_HIDDEN),
            initval=rng.standard_normal((N_HIDDEN, N_HIDDEN)),
        )
        weights_2_out = pm.Normal(
            "w_2_out",
            0,
            sigma=1,
            shape=(N_HIDDEN,),
            initval=rng.standard_normal(N_HIDDEN),
        )
        act_1 = pt.tanh(pt.dot(ann_input, weights_in_1))
        act_2 = pt.tanh(pt.dot(act_1, weights_1_2))
        act_out = pt.dot(act_2, weights_2_out)
        pm.Bernoulli("out", logit_p=act_out, observed=ann_output, shape=act_out.shape)
    return neural_network


def ppc_mean(model, idata, seed, **data):
    """The seed's prediction: set new inputs, draw Bernoulli outcomes from the
    posterior predictive, average them.  Returns the (..., n) mean."""
    import pymc as pm

    with model:
        if data:
            pm.set_data(data)
        ppc = pm.sample_posterior_predictive(
            idata, var_names=["out"], random_seed=seed, progressbar=False
        )
    out = ppc.posterior_predictive["out"]
    return np.asarray(out.mean(("chain", "draw")).values)


def plain_default_hierarchical_model(X, y, groups, n_groups, hidden=(5, 5)):
    """skhbnn's default hierarchical classifier (binary) as a PyMC user would
    write it for groups of unequal sizes: tanh layers ``hidden``, biases,
    non-centred group weights and biases around ``Normal(0, 1)`` group means,
    one ``HalfNormal(1)`` sd per layer for the weights and one for the biases;
    each row takes its group's weights by indexing."""
    import pymc as pm
    import pytensor.tensor as pt

    sizes = (X.shape[1], *hidden, 1)
    with pm.Model() as model:
        X_data = pm.Data("X", X)
        g_data = pm.Data("g", groups)
        act = X_data
        for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w_mu = pm.Normal(f"w{layer}_mu", 0.0, 1.0, shape=(n_in, n_out))
            w_sd = pm.HalfNormal(f"w{layer}_sd", 1.0)
            w_raw = pm.Normal(f"w{layer}_raw", 0.0, 1.0, shape=(n_groups, n_in, n_out))
            b_mu = pm.Normal(f"b{layer}_mu", 0.0, 1.0, shape=(n_out,))
            b_sd = pm.HalfNormal(f"b{layer}_sd", 1.0)
            b_raw = pm.Normal(f"b{layer}_raw", 0.0, 1.0, shape=(n_groups, n_out))
            w = (w_mu + w_sd * w_raw)[g_data]  # (rows, n_in, n_out)
            b = (b_mu + b_sd * b_raw)[g_data]
            act = pt.sum(act[:, :, None] * w, axis=1) + b
            if layer < len(sizes) - 2:
                act = pt.tanh(act)
        pm.Bernoulli("y_obs", logit_p=act[:, 0], observed=y)
    return model


def plain_default_predict(posterior, X, groups) -> np.ndarray:
    """P(y = 1) of the rows ``X`` of ``groups`` under the draws of
    :func:`plain_default_hierarchical_model`: the posterior mean of the
    network's output, computed from the draws with numpy (no skhbnn code)."""
    draws = {
        v: np.asarray(posterior[v].values).reshape(-1, *posterior[v].shape[2:])
        for v in posterior.data_vars
    }
    n_layers = sum(1 for v in draws if v.startswith("w") and v.endswith("_sd"))
    n_draws = len(draws["w0_sd"])
    p = np.zeros(len(X))
    for s in range(n_draws):
        act = X
        for layer in range(n_layers):
            w = draws[f"w{layer}_mu"][s] + draws[f"w{layer}_sd"][s] * draws[f"w{layer}_raw"][s]
            b = draws[f"b{layer}_mu"][s] + draws[f"b{layer}_sd"][s] * draws[f"b{layer}_raw"][s]
            act = np.einsum("ri,rio->ro", act, w[groups]) + b[groups]
            if layer < n_layers - 1:
                act = np.tanh(act)
        p += 1.0 / (1.0 + np.exp(-act[:, 0]))
    return p / n_draws
