"""Are ranks uniform? The tests and the picture behind :func:`infer.sbc`.

* :func:`ecdf_pvalues`: the simultaneous ECDF test of Säilynoja, Bürkner and Vehtari (2022)
  for discrete ranks in ``0..L``, calibrated on uniform rank sets: :data:`NULL_SIMULATIONS`,
  or more for a test at a small level (:func:`null_size`), so that a p-value below the level
  can be seen at all.
* :func:`ecdf_band`: the simultaneous band that test implies, for plotting.
* :func:`chi2_test`: Pearson's chi-square on at most :data:`MAX_BINS` bins (Talts et al. 2018).
* :func:`plot_ranks`: ECDF minus uniform CDF per parameter, inside its band.
"""

from __future__ import annotations

import functools

import numpy as np

from infer.io import save_png

#: Uniform rank sets that calibrate the ECDF statistic by default, 10 batches of 2000 (p >=
#: 1 / 20001).
NULL_SIMULATIONS = 20_000
#: A test at level ``a`` is calibrated on at least this many uniform rank sets per unit of
#: ``1 / a`` (so that ~20 of them fall below its threshold), up to :data:`MAX_NULL_SIMULATIONS`.
NULL_PER_LEVEL = 20
MAX_NULL_SIMULATIONS = 1_000_000
#: The smallest level a test can be run at: below it no p-value could fall under the level.
MIN_LEVEL = NULL_PER_LEVEL / MAX_NULL_SIMULATIONS


def null_size(level: float | None = None) -> int:
    """How many uniform rank sets calibrate the test at ``level`` (None: the default
    :data:`NULL_SIMULATIONS`): enough that ~:data:`NULL_PER_LEVEL` statistics fall below
    the level's threshold, in batches of 2000. A ``ValueError`` below :data:`MIN_LEVEL`."""
    if level is None:
        return NULL_SIMULATIONS
    if not level >= MIN_LEVEL * (1 - 1e-9):  # round-off of alpha / num_params
        raise ValueError(
            f"a test at level {level:.3g} needs more than {MAX_NULL_SIMULATIONS:,} uniform "
            f"rank sets to calibrate (p-values go down to 1 / (sets + 1)); the smallest level "
            f"is {MIN_LEVEL:g}."
        )
    wanted = -(-int(np.ceil(NULL_PER_LEVEL / level)) // 2000) * 2000
    return min(max(NULL_SIMULATIONS, wanted), MAX_NULL_SIMULATIONS)


#: The most panels :func:`plot_ranks` draws: those of the smallest p-values.
MAX_PANELS = 40
#: The most chi-square bins (Talts et al. use 20).
MAX_BINS = 20


def _evaluation_points(num_draws: int) -> np.ndarray:
    """The ranks ``k`` (at most 256 of ``1..L``) where the ECDF is checked at ``k / (L + 1)``."""
    return np.unique(np.linspace(1, num_draws, min(num_draws, 256)).round().astype(int))


def _ecdf_statistic(counts: np.ndarray, pointwise: np.ndarray) -> np.ndarray:
    """The smallest pointwise tail probability of each row of ``counts`` ``(n, K)``."""
    return pointwise[np.arange(pointwise.shape[0]), counts].min(axis=1)


def _ecdf_counts(ranks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(n, K)``: how many of each row's ranks ``(n, S)`` lie below each point."""
    index = np.searchsorted(points, ranks, side="right")  # how many points are <= the rank
    rows = np.arange(ranks.shape[0])[:, None] * (points.size + 1)
    counts = np.bincount((rows + index).ravel(), minlength=ranks.shape[0] * (points.size + 1))
    return np.cumsum(counts.reshape(ranks.shape[0], -1), axis=1)[:, :-1]


@functools.lru_cache(maxsize=8)
def _ecdf_null(num_simulations: int, num_draws: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided binomial tail probabilities ``(K, S + 1)`` of each count at each evaluation
    point, and the sorted statistics of ``size`` uniform rank sets (the same first sets
    whatever ``size``)."""
    from scipy import stats

    points = _evaluation_points(num_draws)
    z = points[:, None] / (num_draws + 1)
    counts = np.arange(num_simulations + 1)[None, :]
    lower = stats.binom.cdf(counts, num_simulations, z)
    upper = stats.binom.sf(counts - 1, num_simulations, z)
    pointwise = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    rng = np.random.default_rng(2022)
    sizes = (2000, num_simulations)
    batches = (rng.integers(0, num_draws + 1, sizes) for _ in range(size // 2000))
    null = [_ecdf_statistic(_ecdf_counts(ranks, points), pointwise) for ranks in batches]
    return pointwise, np.sort(np.concatenate(null))


def ecdf_pvalues(ranks: np.ndarray, num_draws: int, level: float | None = None) -> np.ndarray:
    """``(num_params,)`` p-values of the simultaneous ECDF test (Säilynoja et al. 2022) of
    ranks ``(S, num_params)`` in ``0..num_draws``: the share of uniform rank sets whose
    smallest pointwise tail probability is at most the observed one. ``level``: the level
    each parameter is tested at, which sets how many rank sets calibrate it
    (:func:`null_size`): p-values go down to ``1 / (sets + 1)``."""
    pointwise, null = _ecdf_null(ranks.shape[0], num_draws, null_size(level))
    counts = _ecdf_counts(ranks.T, _evaluation_points(num_draws))
    observed = _ecdf_statistic(counts, pointwise)
    return (1.0 + np.searchsorted(null, observed, side="right")) / (null.size + 1.0)


def ecdf_band(num_simulations: int, num_draws: int, level: float) -> tuple:
    """``(z, lower, upper)``: evaluation points and the simultaneous band of ECDF values at
    them, at ``level`` (an ECDF leaves it exactly when ``ecdf_pvalues(..., level)`` <
    ``level``)."""
    pointwise, null = _ecdf_null(num_simulations, num_draws, null_size(level))
    needed = int(np.ceil(level * (null.size + 1) - 1))  # null statistics <= the threshold
    threshold = null[needed - 1] if needed > 0 else 0.0
    inside = pointwise >= threshold
    counts = np.arange(num_simulations + 1)
    lower = np.where(inside, counts, num_simulations).min(axis=1)
    upper = np.where(inside, counts, 0).max(axis=1)
    z = _evaluation_points(num_draws) / (num_draws + 1)
    return z, lower / num_simulations, upper / num_simulations


def chi2_test(ranks: np.ndarray, num_draws: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(statistics, p-values, bins)`` of Pearson's chi-square of ranks ``(S, num_params)``
    against uniform on ``0..num_draws``, on the most bins (<= :data:`MAX_BINS`) expecting >= 5
    ranks each; 2 bins where none does (with few simulations, or an odd number of rank values,
    some bin then expects fewer than 5, and the chi-square approximation is rough)."""
    from scipy import stats

    num_simulations, values = ranks.shape[0], num_draws + 1
    fits = range(2, min(MAX_BINS, values) + 1)
    bins = max((b for b in fits if num_simulations * (values // b) >= 5 * values), default=2)
    expected = num_simulations * np.bincount(np.arange(values) * bins // values) / values
    counts = np.stack([np.bincount(r * bins // values, minlength=bins) for r in ranks.T])
    statistic = np.sum((counts - expected) ** 2 / expected, axis=1)
    return statistic, stats.chi2.sf(statistic, bins - 1), bins


def plot_ranks(result, path=None):
    """One panel per parameter of an :class:`infer.SBCResult` (at most :data:`MAX_PANELS`,
    those of the smallest p-values, every failing one among them up to that many): the ECDF
    of its ranks minus the uniform CDF, in the ECDF test's simultaneous band at
    ``alpha / num_params`` (grey; red: outside it); 7 inches wide at least, for the title.
    Returns the matplotlib ``Figure``, or writes it to ``path`` as PNG and closes it."""
    import matplotlib.pyplot as plt

    num_params, level = len(result.names), result.alpha / len(result.names)
    shown = np.sort(np.argsort(result.pvalue, kind="stable")[:MAX_PANELS])
    rows, cols = -(-shown.size // 5), min(shown.size, 5)
    figure, axes = plt.subplots(
        rows, cols, figsize=(max(2.6 * cols, 7.0), 0.8 + 2.0 * rows), sharex=True, sharey=True,
        layout="constrained", squeeze=False,
    )  # fmt: skip
    z, lower, upper = ecdf_band(result.num_simulations, result.num_draws, level)
    x = np.concatenate([[0.0], z, [1.0]])
    counts = _ecdf_counts(result.ranks.T, _evaluation_points(result.num_draws))
    for panel, axis in enumerate(axes.flat):
        if panel >= shown.size:
            axis.axis("off")
            continue
        i = shown[panel]
        colour = "C3" if result.pvalue[i] < level else "C0"
        band = (np.r_[0.0, lower - z, 0.0], np.r_[0.0, upper - z, 0.0])
        axis.fill_between(x, *band, step="post", color="0.85", lw=0)
        difference = np.r_[0.0, counts[i] / result.num_simulations - z, 0.0]
        axis.step(x, difference, where="post", color=colour, lw=1.2)
        axis.axhline(0.0, color="0.5", lw=0.6)
        axis.set_title(f"{result.names[i]}: p = {result.pvalue[i]:.2g}", fontsize=9, c=colour)
    verdict = "passed" if result.passed else f"failed ({len(result.failed)} of {num_params})"
    if result.inconclusive:  # stuck chains: whatever the p-values (as result.verdict says)
        rejected = f", rejects {len(result.failed)} of {num_params}" * bool(result.failed)
        verdict = f"inconclusive (stuck chains{rejected})"
    lines = [
        f"SBC of {result.sampler} on {result.model}: {verdict}",
        f"at {result.alpha:g} / {num_params}; {result.num_simulations} simulations x "
        f"{result.num_draws} draws"
        + (
            f" (the {shown.size} parameters of smallest p-value shown)"
            if shown.size < num_params
            else ""
        ),
    ]
    figure.suptitle("\n".join(lines), fontsize=10, wrap=True)  # wrapped at the figure's edges
    figure.supxlabel("rank / (draws + 1)", fontsize=9)
    figure.supylabel("ECDF - uniform CDF", fontsize=9)
    if path is None:
        return figure
    save_png(figure, path)
    return None
