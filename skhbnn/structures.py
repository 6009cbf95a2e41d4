"""``use_bias="auto"``: sample the network with and without biases, keep the
structure that stacking chooses.

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
   their group means and sds all 0: the same network), so that the modes of
   both structures are stacked together, as chains of one fit are;
3. the structure with the larger total stacking weight is kept (the biased
   one on a tie): its chains alone make the fit, re-stacked among
   themselves, and the fitted estimator is exactly a fit of that structure
   (``network_.use_bias``, ``use_bias_``).  Keeping one structure, rather
   than their mixture, keeps every later use of the fit (informed and
   population priors, group-mean networks, saving) a fit of one network.

The weights of both structures are reported in ``diagnostics_``
(``"structure_weights"``).  A leaf module (numpy and xarray only).
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


def _groups(idata) -> dict:
    """``{group: xarray.Dataset}`` of ArviZ 0.x InferenceData or a DataTree."""
    if hasattr(idata, "children"):  # xarray DataTree (ArviZ 1.x)
        return {name: node.to_dataset() for name, node in idata.children.items()}
    return {name: getattr(idata, name) for name in idata.groups()}


def _zeros_like_in(var, n_chains: int):
    """Zeros shaped like ``var`` (a DataArray with a leading chain axis) for
    ``n_chains`` chains."""
    import xarray as xr

    shape = (n_chains, *var.shape[1:])
    return xr.DataArray(np.zeros(shape, dtype=var.dtype), dims=var.dims)


def concat_parts(idatas: list, draws: list[dict], n_divergent: list):
    """One fit from the parts of a ``use_bias="auto"`` fit (the biased part
    first): ArviZ data, posterior draws and divergences with the chains of
    all parts in order; a variable the bias-free part lacks is 0 in its
    chains (the same network).  Groups other than the posterior keep the
    variables every part has, when they have a chain axis; else the first
    part's."""
    import xarray as xr

    from .persistence.netcdf import make_idata

    parts = [_groups(i) for i in idatas]
    out = {}
    for name, first in parts[0].items():
        datasets = [p.get(name) for p in parts]
        if "chain" not in first.dims or any(d is None for d in datasets):
            out[name] = first
            continue
        if name == "posterior":
            filled = []
            for ds in datasets:
                ds = ds.copy()
                for var in first.data_vars:
                    if var not in ds:
                        ds[var] = _zeros_like_in(first[var], ds.sizes["chain"])
                filled.append(ds[list(first.data_vars)])
            datasets = filled
        else:
            common = [v for v in first.data_vars if all(v in ds for ds in datasets)]
            datasets = [ds[common] for ds in datasets]
        datasets = [ds.drop_vars("chain", errors="ignore") for ds in datasets]
        merged = xr.concat(datasets, dim="chain", data_vars="all", coords="minimal",
                           compat="override", join="override")
        out[name] = merged.assign_coords(chain=np.arange(merged.sizes["chain"]))
    first_draws = draws[0]
    merged_draws = {}
    for key, value in first_draws.items():
        blocks = [d[key] if key in d else np.zeros((next(iter(d.values())).shape[0],
                                                     *value.shape[1:]), dtype=value.dtype)
                  for d in draws]
        merged_draws[key] = np.concatenate(blocks, axis=0)
    if any(n is None for n in n_divergent):
        n_div = None
    else:
        n_div = np.concatenate([np.asarray(n) for n in n_divergent])
    return make_idata(out), merged_draws, n_div


def select_chains(idata, keep: np.ndarray, drop_vars=()):
    """ArviZ data holding only the chains ``keep`` (renumbered from 0) and
    none of ``drop_vars``."""
    from .persistence.netcdf import make_idata

    out = {}
    for name, ds in _groups(idata).items():
        dropped = [v for v in drop_vars if v in ds.data_vars]
        if dropped:
            ds = ds.drop_vars(dropped)
            used = {d for var in ds.data_vars.values() for d in var.dims}
            ds = ds.drop_dims([d for d in ds.dims if d not in used and d != "chain"])
        if "chain" in ds.dims:
            ds = ds.isel(chain=keep).assign_coords(chain=np.arange(len(keep)))
        out[name] = ds
    return make_idata(out)


def choose(structure_of_chain: np.ndarray, chain_weights) -> tuple[int, list[float]]:
    """The structure to keep and both structures' total weights: the one
    with the larger stacking weight (the biased one, 0, on a tie; with no
    weights, as when every chain sits in one mode, each structure weighs its
    share of the chains)."""
    n_chains = len(structure_of_chain)
    w = (np.full(n_chains, 1.0 / n_chains) if chain_weights is None
         else np.asarray(chain_weights, dtype=float))
    totals = [float(w[structure_of_chain == s].sum()) for s in range(len(STRUCTURES))]
    return (1 if totals[1] > totals[0] else 0), totals


def bias_names(definition) -> list[str]:
    """The table's variables a bias-free network does not have."""
    kept = {v.name for v in bias_free(definition).variables()}
    return [v.name for v in definition.variables() if v.name not in kept]
