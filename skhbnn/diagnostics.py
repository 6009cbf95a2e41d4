"""Convergence diagnostics on quantities that survive the BNN's symmetries.

R-hat of raw weights means nothing for a BNN: chains sit in modes that differ
only by a permutation or sign flip of hidden units.  The group sds and the
predicted probabilities do not change under those symmetries, so R-hat and
ESS are computed on them.

R-hat (rank-normalised, split, max of bulk and tail) and bulk ESS follow
Vehtari et al. (2021), "Rank-normalization, folding, and localization", as
ArviZ computes them; they are written here on ``(chain, draw, k)`` arrays so
that all ``k`` quantities of a fit take one vectorised pass instead of ``2k``
ArviZ calls (0.56 s per fit, measured; ``tests/test_diagnostics.py`` checks
the values against ArviZ).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata
from sklearn.exceptions import ConvergenceWarning

RHAT_THRESHOLD = 1.05
MIN_DRAWS_FOR_RHAT = 50
# A variational fit's draws are independent: R-hat across its restarts (which
# decides the modes stacking weighs) needs no autocorrelation estimated, so
# 20 per restart do; an SVI fit stores at least that many where the memory
# cap binds (skhbnn.variational._MIN_DRAWS_PER_RESTART).
MIN_INDEPENDENT_DRAWS = 20
MIN_ESS = 100
# Independent draws (a variational fit's): their Monte Carlo error is known,
# sd / sqrt(ESS), with no autocorrelation or R-hat to estimate, and 50 of them
# put it at 14% of the posterior sd.  Where the memory cap on stored draws
# binds, an SVI fit keeps at least 200 over its restarts
# (skhbnn.variational._MIN_DRAWS: 25 each of 8), so the cap warns only when
# stacking puts most of the weight on one restart; ``draws`` below 50 warns.
MIN_INDEPENDENT_ESS = 50
MAX_DIVERGENCE_RATE = 0.01
# Invariants of the model's structure rather than of its predictions: reported
# in diagnostics_ (``ess``, ``rhat``, ``within_rhat``) but not judged by the
# warning.  A BNN's group sds are weakly identified (the output bias, or a
# hidden layer's biases through the output weights, can carry the same group
# offsets), so they mix slowly along that ridge while every prediction, for
# fitted groups and for new ones (the ``population`` invariant), is well mixed
# (benchmarks/README.md, "Regression").
STRUCTURAL = frozenset({"group_sd"})


def _predictive(values: dict) -> dict:
    """The entries of a per-quantity dict that the warning judges."""
    return {k: v for k, v in values.items() if k not in STRUCTURAL}


def _split_chains(x: np.ndarray) -> np.ndarray:
    """(C, S, k) -> (2C, S // 2, k): first and last halves of every chain."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise every column over all chains and draws."""
    flat = x.reshape(-1, x.shape[-1])
    ranks = rankdata(flat, axis=0, method="average")
    return ndtri((ranks - 0.375) / (flat.shape[0] + 0.25)).reshape(x.shape)


def _rhat(x: np.ndarray) -> np.ndarray:
    """Classic R-hat of every column of a (C, S, k) array."""
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), axis=0, ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def rhat_rank(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat (max of bulk and folded tail), per column."""
    x = np.asarray(x, dtype=float)
    folded = np.abs(x - np.median(x.reshape(-1, x.shape[-1]), axis=0))
    bulk = _rhat(_z_scale(_split_chains(x)))
    tail = _rhat(_z_scale(_split_chains(folded)))
    return np.maximum(bulk, tail)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance along the draw axis (axis 1) by FFT, biased as ArviZ's."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), n=size, axis=1)[:, :n]
    return acov / n


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk effective sample size (Geyer's initial monotone sequence), per column."""
    z = _z_scale(_split_chains(np.asarray(x, dtype=float)))
    n_chain, n_draw, k = z.shape
    acov = _autocov(z).mean(axis=0)  # (n_draw, k): mean over chains
    mean_var = acov[0] * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + np.var(z.mean(axis=1), axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov) / var_plus  # (n_draw, k)
    rho[0] = 1.0
    out = np.full(k, np.nan)
    for j in range(k):
        if not np.isfinite(var_plus[j]) or var_plus[j] <= 0:
            continue
        out[j] = _geyer_ess(rho[:, j].copy(), n_chain * n_draw)
    return out


def _geyer_ess(rho: np.ndarray, n_total: int) -> float:
    n_draw = rho.shape[0]
    # Initial positive sequence: sum pairs while they stay positive.
    t = 1
    even, odd = rho[0], rho[1]
    while t < n_draw - 3 and even + odd > 0.0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd < 0:
            rho[t + 1 : t + 3] = 0.0  # not part of the sum below
        t += 2
    max_t = t - 2
    if even > 0 and max_t + 1 < n_draw:
        rho[max_t + 1] = even
    # Initial monotone sequence.
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1.0 / np.log10(n_total))
    return n_total / tau


def informative_columns(invariants: dict) -> dict[str, np.ndarray]:
    """Every invariant as ``(chain, draw, k)`` columns, without the constant
    ones (e.g. saturated probabilities: they carry no information); an
    invariant with none left is dropped."""
    out = {}
    for name, arr in invariants.items():
        arr = np.asarray(arr, dtype=float)
        cols = arr.reshape(arr.shape[0], arr.shape[1], -1)
        cols = cols[:, :, np.ptp(cols, axis=(0, 1)) > 1e-12]
        if cols.shape[2]:
            out[name] = cols
    return out


def _per_quantity(columns: dict, fn) -> dict[str, float]:
    """``fn`` of every quantity's columns, where it is finite."""
    out = {}
    for name, cols in columns.items():
        value = fn(cols)
        if np.isfinite(value):
            out[name] = float(value)
    return out


def _combined_ess(cols: np.ndarray, weights: np.ndarray) -> float:
    """Worst column's ESS of the weighted mixture of chains: each chain's bulk
    ESS ``n_k`` enters as ``1 / sum_k (w_k**2 / n_k)`` (the variance of a
    weighted mean of independent chain means)."""
    used = np.flatnonzero(weights > 0)
    per_chain = np.stack([ess_bulk(cols[k : k + 1]) for k in used])  # (K, cols)
    w = weights[used][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nanmin(1.0 / np.sum(w**2 / per_chain, axis=0)))


def _within_rhat(cols: np.ndarray, weights: np.ndarray, modes) -> float:
    """Worst split R-hat within one mode (its chains' halves together; a
    mode of one chain: that chain's two halves), over the modes prediction
    uses: chains still drifting, whatever the other modes do."""
    modes = np.zeros(len(weights), dtype=int) if modes is None else np.asarray(modes)
    worst = []
    for mode in np.unique(modes[weights > 0]):
        worst.append(np.nanmax(rhat_rank(cols[modes == mode])))
    return float(np.nanmax(worst))


def invariant_diagnostics(
    invariants: dict[str, np.ndarray],
    n_divergent,
    chain_weights=None,
    modes=None,
    chain_loo: dict | None = None,
    combination: str | None = None,
    min_draws: int = MIN_DRAWS_FOR_RHAT,
) -> dict:
    """Mixing within modes and the mode structure between them, on
    symmetry-invariant quantities.

    Parameters
    ----------
    invariants : dict of str to ndarray
        Arrays of shape ``(chain, draw, k)``: each of the ``k`` columns is one
        scalar quantity.
    n_divergent : int, array of int per chain, or None
        Divergent transitions; ``None`` if the sampler did not record them.
    chain_weights : ndarray of shape (chain,), default=None
        The weight of each chain in prediction (stacking); ``None`` for equal
        weights.
    modes : ndarray of shape (chain,), default=None
        The mode of each chain (:func:`skhbnn.stacking.chain_modes`) when
        chains were to be stacked; ``None`` when they were averaged.
    chain_loo : dict, default=None
        ``elpd`` (per mode, PSIS-LOO) and ``khat_share`` (per mode, the
        share of rows with Pareto k-hat above 0.7), from stacking.
    combination : str, default=None
        ``"population"`` for chains averaged by design across modes (under a
        population prior); ``None``: ``"stacking"`` with ``modes``, else
        ``"equal"``.
    min_draws : int, default=50
        Draws per chain below which no R-hat or ESS is computed
        (:func:`min_draws_per_chain`: 20 for a variational fit's restarts).

    Returns
    -------
    dict with

    * ``divergences``, ``divergence_rate`` (of the draws of the chains
      prediction uses);
    * within modes: ``within_rhat`` / ``within_mode_rhat`` (split R-hat of
      the chains of one mode, each chain split in halves, per quantity and
      worst), ``ess`` / ``min_ess`` (bulk ESS of the combined predictive, per
      quantity and worst); the worst values are over the predictive
      quantities, not the :data:`STRUCTURAL` ones;
    * between chains: ``rhat`` / ``max_rhat`` (R-hat across all chains: above
      1.05 the chains sit in different modes), ``chain_weights``,
      ``combination`` (``"stacking"``, ``"equal"``, or ``"population"``:
      chains under a population prior, started in components drawn by
      their posterior probability and averaged), ``chain_modes`` and,
      where chains sat in several modes, ``mode_elpd_loo`` and
      ``mode_khat_share``.
    """
    first = np.asarray(next(iter(invariants.values())))
    n_chains, n_draws = first.shape[:2]
    stacked = chain_weights is not None
    weights = np.full(n_chains, 1.0 / n_chains) if not stacked else np.asarray(chain_weights, float)
    # chains in one mode agree, so equal weights are the combination
    if combination is None:
        combination = "equal" if modes is None else "stacking"
    used = weights > 0
    if n_divergent is None:
        n_div, rate = None, None
    else:
        counts = np.asarray(n_divergent)
        n_div = int(counts.sum())
        counted = int(counts[used].sum()) if counts.ndim else n_div
        rate = counted / (int(used.sum()) * n_draws)
    columns = informative_columns(invariants) if n_draws >= min_draws else {}
    rhat = _per_quantity(columns, lambda c: np.nanmax(rhat_rank(c))) if n_chains > 1 else {}
    # chains combined by design across modes: the ESS of their mixture
    combined = stacked or (combination == "population" and modes is not None)
    ess_of = (lambda c: _combined_ess(c, weights)) if combined else (lambda c: np.nanmin(ess_bulk(c)))
    ess = _per_quantity(columns, ess_of)
    within = _per_quantity(columns, lambda c: _within_rhat(c, weights, modes))
    out = {
        "n_draws": int(n_draws),
        "divergences": n_div,
        "divergence_rate": rate,
        "within_mode_rhat": max(_predictive(within).values(), default=float("nan")),
        "within_rhat": within,
        "min_ess": min(_predictive(ess).values(), default=float("nan")),
        "ess": ess,
        "max_rhat": max(rhat.values(), default=float("nan")),
        "rhat": rhat,
        "chain_weights": weights.round(6).tolist(),
        "combination": combination,
    }
    if modes is not None:
        out["chain_modes"] = np.asarray(modes).tolist()
    if chain_loo:
        out["mode_elpd_loo"] = [round(float(v), 3) for v in chain_loo["elpd"]]
        out["mode_khat_share"] = [round(float(v), 4) for v in chain_loo["khat_share"]]
    return out


def _user_stacklevel() -> int:
    """``stacklevel`` for a warning raised in skhbnn, pointing at the first
    frame outside the package: the user's ``fit`` call (or the scikit-learn
    meta-estimator that made it)."""
    package = str(Path(__file__).resolve().parent)
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _problems_by_kind(diag: dict) -> tuple[list[str], list[str], list[str]]:
    """What makes the predictive unreliable, each with what to try, as
    ``(too few draws to judge, chains not mixed, the rest)``, all empty if
    none.  Judged on the predictive quantities (predicted probabilities or
    means of fitted groups, the population predictive of new groups, a
    regression's noise sd), not on the :data:`STRUCTURAL` ones.

    * too few draws to check anything (fewer than 50 per chain; 20 per
      restart of a variational fit, :func:`min_draws_per_chain`);
    * chains not mixed within their mode: split R-hat above 1.05 among the
      chains of a mode prediction uses (a mode of one chain: its halves);
    * too few effective draws of the combined predictive: bulk ESS below
      100 (the Monte Carlo error of a predicted probability is then above a
      tenth of its posterior sd); for the independent draws of a variational
      fit, Kish's effective number below :data:`MIN_INDEPENDENT_ESS`;
    * divergences in more than 1% of the draws prediction uses (a rare
      divergence in the funnel of a hierarchical model is expected and
      biases nothing measurable; ``benchmarks/README.md``, "Default fits");
    * chains in different modes (R-hat across chains above 1.05) whose
      predictions were averaged with equal weights instead of stacked.
    """
    few, unmixed, rest = [], [], []
    n_draws = diag.get("n_draws")
    needed = min_draws_per_chain(diag.get("inference", "nuts"))
    if n_draws is not None and n_draws < needed:
        few.append(
            f"{n_draws} draws per chain are too few to check convergence "
            f"(use draws >= {needed}, better the default)"
        )
    within = diag.get("within_mode_rhat", float("nan"))
    if within > RHAT_THRESHOLD:
        # NUTS chains that drift along correlated directions: a low-rank mass
        # matrix mixed most on the post's data (benchmarks/README.md, "Session
        # 20"); only a NUTS fit's diagnostics_ hold "mass_matrix"
        remedy = ("try mass_matrix='low_rank', slower, or more tune and draws"
                  if diag.get("mass_matrix") == "diag" else "try more tune and draws")
        unmixed.append(
            f"chains have not mixed within their mode (split R-hat {within:.2f} > "
            f"{RHAT_THRESHOLD}; {remedy})"
        )
    min_ess = MIN_INDEPENDENT_ESS if diag.get("inference") == "svi" else MIN_ESS
    low = {k: v for k, v in _predictive(diag.get("ess", {})).items() if v < min_ess}
    if low:
        worst = ", ".join(f"{k}: {v:.0f}" for k, v in low.items())
        unmixed.append(
            f"effective sample size below {min_ess} ({worst}; try more draws)"
        )
    rate = diag.get("divergence_rate")
    if rate is not None and rate > MAX_DIVERGENCE_RATE:
        rest.append(
            f"{diag['divergences']} divergent transitions ({100 * rate:.1f}% of the draws; "
            "try target_accept=0.95 or more tune)"
        )
    elif rate is None and diag.get("divergences"):  # a summary without the rate
        rest.append(
            f"{diag['divergences']} divergent transitions (try target_accept=0.95 or more tune)"
        )
    stalled = [c for c, done in enumerate(diag.get("svi_converged", [])) if not done]
    if stalled:
        rest.append(
            f"variational restarts {stalled} stopped at the epoch limit before their ELBO "
            "levelled off (the approximation is not converged; try inference='nuts' on "
            "fewer groups, or a smaller network)"
        )
    bad = {k: v for k, v in _predictive(diag.get("rhat", {})).items() if v > RHAT_THRESHOLD}
    if bad and diag.get("combination", "equal") == "equal":
        worst = ", ".join(f"{k}: {v:.2f}" for k, v in bad.items())
        rest.append(
            f"R-hat above {RHAT_THRESHOLD} on symmetry-invariant quantities ({worst}); "
            "chains sit in different modes and were averaged (use "
            "combine_chains='stacking', or more tune and draws, or more chains)"
        )
    return few, unmixed, rest


def reliability_problems(diag: dict) -> list[str]:
    """Every problem of :func:`_problems_by_kind`, in its order."""
    few, unmixed, rest = _problems_by_kind(diag)
    return few + unmixed + rest


def only_unmixed(diag: dict) -> bool:
    """Whether chains not mixed is all that is wrong (:mod:`skhbnn.continuation`)."""
    few, unmixed, rest = _problems_by_kind(diag)
    return bool(unmixed) and not few and not rest


def min_draws_per_chain(inference: str) -> int:
    """Draws per chain below which nothing is checked: 50 of a Markov chain,
    :data:`MIN_INDEPENDENT_DRAWS` independent ones of an SVI restart."""
    return MIN_INDEPENDENT_DRAWS if inference == "svi" else MIN_DRAWS_FOR_RHAT


def warn_if_unreliable(diag: dict, estimator_name: str) -> None:
    """Warn (``ConvergenceWarning``) with what to try when the predictive is
    unreliable (:func:`reliability_problems`)."""
    problems = reliability_problems(diag)
    if problems:
        warnings.warn(
            f"{estimator_name}: the posterior may be unreliable: " + "; ".join(problems) + ".",
            ConvergenceWarning,
            stacklevel=_user_stacklevel(),
        )
