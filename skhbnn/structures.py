"""``use_bias="auto"``: sample the network with and without biases, keep the
structure that stacking chooses (an option of every estimator; no default
uses it yet, ``docs/inference.md``, "With or without biases").

A network with biases contains the bias-free one (all biases 0), but the two
posteriors are not alike: on data that are point-symmetric about the origin,
as the seed post's rotated moons are, the bias-free tanh network is right by
construction, and the network with biases spends its extra freedom on modes
that predict worse (``benchmarks/README.md``, "Default fits, session 11": no
prior on the biases recovered the bias-free fit).  On data whose groups differ
in their intercepts the biases are needed.  Which one a data set needs is a
question of predictive performance, which the PSIS-LOO densities that
already stack the chains answer (Yao, Vehtari, Simpson & Gelman 2018, "Using
stacking to average Bayesian predictive distributions"):

1. the chains are shared out between the two structures (the biased one gets
   the odd chain), each part sampled by the same route;
2. the bias-free chains are written in the biased network's table (biases,
   their group means and sds all 0: the same network), and every chain of
   both gets its stacking weight from its PSIS-LOO densities;
3. the structure with the larger total weight is kept (the biased one on a
   tie), and new chains of it are sampled until the fit has as many chains
   as it asked for: the fitted estimator is a fit of that structure alone
   (``network_.use_bias``), with the chains and draws of one, so that its
   diagnostics, stacking, informed and population priors, group-mean
   networks and saved files are those of a fit of one network.  Keeping only
   the winner's first chains was faster, but left fits that rest on two
   chains, with a lower and more variable accuracy on the seed's data
   (89.00-90.00% against 89.78-90.00% over ``random_state`` 0-9) and a worse
   median log loss on every set of the suite, by 0.0003-0.006
   (``benchmarks/README.md``, "Default fits, session 17").

The weights of both structures are reported in ``diagnostics_``
(``"structure_weights"``).  The estimators' fit (:mod:`skhbnn._base`) runs the
parts and the choice; this module holds what is independent of an estimator.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# The structures, in the order their chains are laid out.
STRUCTURES = ("bias", "no_bias")


def bias_free(definition):
    """The same model definition with a bias-free network."""
    spec = dataclasses.replace(definition.spec, use_bias=False)
    return dataclasses.replace(definition, spec=spec)


def split_chains(chains: int) -> list[int]:
    """Chains per structure: the biased network gets the odd one."""
    return [chains - chains // 2, chains // 2]


def part_seed(seed: int, part: int) -> int:
    """The seed of one structure's part of a fit (the first keeps ``seed``)."""
    if part == 0:
        return int(seed)
    return int(np.random.default_rng([int(seed), part]).integers(np.iinfo(np.int32).max))


def concat_draws(draws: list[dict]) -> dict:
    """Posterior draws of several parts, their chains in order.  A variable
    the first part has and a later one lacks (a bias-free part's biases, their
    group means and sds) is 0 in that part's chains: the same network."""
    out = {}
    for key, value in draws[0].items():
        blocks = [
            d[key] if key in d
            else np.zeros((next(iter(d.values())).shape[0], *value.shape[1:]), value.dtype)
            for d in draws
        ]
        out[key] = np.concatenate(blocks, axis=0)
    return out


def concat_divergences(n_divergent: list):
    """Divergences per chain of several parts; ``None`` (not recorded) if any
    part has none."""
    if any(n is None for n in n_divergent):
        return None
    return np.concatenate([np.asarray(n) for n in n_divergent])


def concat_idata(idatas: list):
    """ArviZ data of several parts of one structure, their chains in order
    and renumbered from 0: the groups with a chain axis concatenated (the
    variables every part has), the others the first part's."""
    if len(idatas) == 1:
        return idatas[0]
    import xarray as xr

    from .persistence.netcdf import idata_groups, make_idata

    parts = [idata_groups(i) for i in idatas]
    out = {}
    for name, first in parts[0].items():
        datasets = [p.get(name) for p in parts]
        if "chain" not in first.dims or any(d is None for d in datasets):
            out[name] = first
            continue
        common = [v for v in first.data_vars if all(v in ds for ds in datasets)]
        datasets = [ds[common].drop_vars("chain", errors="ignore") for ds in datasets]
        merged = xr.concat(datasets, dim="chain", data_vars="all", coords="minimal",
                           compat="override", join="override")
        out[name] = merged.assign_coords(chain=np.arange(merged.sizes["chain"]))
    return make_idata(out)


def choose(structure_of_chain: np.ndarray, chain_weights) -> tuple[int, list[float]]:
    """The structure to keep and both structures' total weights: the one
    with the larger stacking weight (the biased one, 0, on a tie; with no
    weights, each structure weighs its share of the chains)."""
    n_chains = len(structure_of_chain)
    w = (np.full(n_chains, 1.0 / n_chains) if chain_weights is None
         else np.asarray(chain_weights, dtype=float))
    totals = [float(w[structure_of_chain == s].sum()) for s in range(len(STRUCTURES))]
    return (1 if totals[1] > totals[0] else 0), totals
