"""Monte Carlo checks with tolerances from the MCSE (ArviZ), pooled over coordinates, and the
power of each check stated, so that a check too weak to catch a wrong sampler fails loudly.

**What is tested.** One run is checked with up to four statistics, each pooling every
coordinate it covers:

* ``mean``: the posterior means;
* ``std``: the marginal standard deviations;
* ``quantile``: the fraction of draws below the true 5% and 95% quantiles, where the marginal
  distributions are known exactly (:data:`MARGINALS`);
* ``correlation``: the correlations of pairs of coordinates with a known value
  (:data:`CORRELATIONS`; the 0.9 of ``correlated_2d``, the zeros between neighbouring
  coordinates of ``normal_10d``).

Every estimate is, to first order, the mean of an *influence series* over the draws: ``x - m``
for a mean, ``((x - m)^2 - s^2) / (2 s)`` for a standard deviation, ``1{x <= q}`` for a
quantile's fraction, ``z_i z_j - r (z_i^2 + z_j^2) / 2`` (standardised ``z``) for a correlation
``r``. Its Monte Carlo standard error is ``sd(series) / sqrt(ESS)`` with ArviZ's ESS of that
series (for the sd this is exactly ArviZ's ``mcse(method="sd")``), combined in quadrature with
the truth's own error when the truth comes from a reference run.

**How it is pooled.** The deviations ``e = estimate - truth`` of one statistic's ``k``
coordinates are pooled by the quadratic form ``T = e' C^-1 e``, where ``C`` is the covariance
of the estimates plus ``diag(se_truth^2)``. Estimates of correlated coordinates are correlated
(a plain sum of squared z would not be chi-square: on ``correlated_2d`` its tail would be ten
times too heavy), so ``C`` is estimated along the principal axes of the influence series'
correlation matrix, each axis with the MCSE of the series projected on it
(:func:`estimate_covariance`). Under the null ``T ~ chi2(k)``. A run fails when any ``T``
reaches its critical value ``chi2(k).ppf(1 - MOMENT_ALPHA / m)``, Bonferroni over its ``m``
statistics. Measured on the settings of ``test_samplers.CASES`` (150 to 300 seeds per case,
about 3,500 runs of 20 cases): at a nominal 1e-3 per run, 0.2% of runs failed, twice the
nominal rate (ArviZ's ESS is slightly optimistic: ``z`` has variance about 1.05 rather than
1), so the nominal level is ``MOMENT_ALPHA = 5e-4`` for a real rate of about 1e-3. HMC with a
fixed trajectory near the period of the whitened target (eight leapfrog steps of the adapted
size) failed 5% of runs: ArviZ overestimates the ESS of such near-periodic chains, so the HMC
cases use a trajectory of length 1.5.

**Power.** Each check also computes, from the run's own MCSEs, its power against two wrong
samplers, with a noncentral chi-square (``scipy.stats.ncx2``):

* ``variance``: variance 20% too large in every coordinate (draws ``mu + sqrt(1.2) (x - mu)``).
  The sds shift by ``(sqrt(1.2) - 1) sd``, the quantile fractions to
  ``F(mu + (q - mu) / sqrt(1.2))``, and their MCSEs grow with the spread (by ``sqrt(1.2)`` for
  the sds, by the binomial factor for the fractions); means and correlations do not move.
* ``mean``: mean shifted by 0.3 sd in every coordinate. The means shift by ``0.3 sd``, the
  quantile fractions to ``F(q - 0.3 sd)``; sds and correlations do not move.

A statistic whose estimates shift by ``delta`` has noncentrality ``lambda = delta' C^-1 delta``
and power ``P(ncx2(k, lambda) > critical)``. The run fails when any statistic does, so its
power is at least the largest of its statistics' powers: that lower bound is what
:func:`assert_moments_pass` requires to be ``>= MIN_POWER`` (0.9), so a test run with too little
ESS to see either error fails, whatever its draws.

Exact samplers (rejection, ARS) give iid draws: :func:`ks_test` compares them with the exact CDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import arviz_stats
import numpy as np
from scipy import optimize, stats

from models import targets

ALPHA = 1e-3  # family-wise false-alarm rate of one run's checks
# The moment check's nominal level: half of ALPHA, because its measured false-alarm rate is
# about twice the nominal one (see the module docstring).
MOMENT_ALPHA = ALPHA / 2
MIN_POWER = 0.9  # required power against each alternative
VARIANCE_ERROR = 1.2  # the "variance" alternative: variance 20% too large
MEAN_SHIFT = 0.3  # the "mean" alternative: means off by 0.3 sd
QUANTILE_PROBS = (0.05, 0.95)
ALTERNATIVES = ("variance", "mean")


def threshold(num_checks: int, alpha: float = ALPHA) -> float:
    """Two-sided normal quantile at level ``alpha / num_checks``."""
    return float(stats.norm.ppf(1.0 - alpha / (2.0 * num_checks)))


# ----------------------------------------------------------------- known truths beyond moments


class NormalMixture:
    """Marginals of a Gaussian mixture with unit component variances, coordinate-wise:
    ``weights (n,)``, ``means (n, dim)``; ``cdf`` and ``ppf`` act elementwise on ``(dim,)``."""

    def __init__(self, weights, means):
        self.weights, self.means = np.asarray(weights), np.asarray(means)

    def cdf(self, x):
        x = np.asarray(x, np.float64)
        return np.sum(self.weights[:, None] * stats.norm.cdf(x[None, :] - self.means), axis=0)

    def ppf(self, prob):
        def one(j):
            def f(t):
                return self.weights @ stats.norm.cdf(t - self.means[:, j]) - prob

            return optimize.brentq(f, self.means[:, j].min() - 10, self.means[:, j].max() + 10)

        return np.array([one(j) for j in range(self.means.shape[1])])


def _gaussian_mixture_correlation() -> float:
    w, mu = targets.MIXTURE_WEIGHTS, targets.MIXTURE_MEANS
    mean = w @ mu
    cov = np.eye(2) + (mu * w[:, None]).T @ mu - np.outer(mean, mean)
    return float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]))


def _conjugate_marginals() -> dict:
    n, k, y = targets.CONJUGATE_TRIALS, targets.CONJUGATE_SUCCESSES, targets.CONJUGATE_COUNTS
    shape, rate = 2.0 + y.sum(), 1.0 + y.size
    return {"p": stats.beta(2.0 + k, 2.0 + n - k), "rate": stats.gamma(shape, scale=1.0 / rate)}


#: Exact marginal distributions (scipy-like: vectorised ``cdf`` and ``ppf``) by target name,
#: then draw name.
MARGINALS = {
    "normal_1d": {"x": stats.norm(0.0, 1.0)},
    "normal_10d": {"x": stats.norm(np.zeros(10), np.ones(10))},
    "correlated_2d": {"x": stats.norm(np.zeros(2), targets.CORRELATED_STD)},
    "ill_conditioned_100d": {"x": stats.norm(np.zeros(100), targets.ILL_CONDITIONED_STD)},
    "gaussian_mixture": {"x": NormalMixture(targets.MIXTURE_WEIGHTS, targets.MIXTURE_MEANS)},
    "conjugate": _conjugate_marginals(),
}

#: Exact correlations by target name, then draw name: ``(pairs (n, 2) of flat indices,
#: correlations (n,))``.
CORRELATIONS = {
    "correlated_2d": {"x": (np.array([[0, 1]]), np.array([targets.CORRELATED_RHO]))},
    "gaussian_mixture": {"x": (np.array([[0, 1]]), np.array([_gaussian_mixture_correlation()]))},
    "normal_10d": {"x": (np.stack([np.arange(9), np.arange(1, 10)], 1), np.zeros(9))},
    "ill_conditioned_100d": {"x": (np.stack([np.arange(99), np.arange(1, 100)], 1), np.zeros(99))},
    "banana": {"x": (np.array([[0, 1]]), np.zeros(1))},
}


def known(target_name: str) -> dict:
    """``{"marginals": ..., "correlations": ...}`` known for the built-in ``target_name``."""
    return {
        "marginals": MARGINALS.get(target_name),
        "correlations": CORRELATIONS.get(target_name),
    }


# --------------------------------------------------------------------------- the statistics


@dataclass(frozen=True)
class Statistic:
    """One pooled statistic of one run.

    Attributes:
        kind: ``"mean"``, ``"std"``, ``"quantile"`` or ``"correlation"``.
        value: ``T = e' C^-1 e``.
        dof: its degrees of freedom ``k`` (the rank of ``C``).
        critical: the ``chi2(k)`` quantile it must stay below.
        power: ``{"variance": p, "mean": p}``, its power against each alternative.
        worst: the coordinate with the largest ``|e| / se``, and that ratio.
    """

    kind: str
    value: float
    dof: int
    critical: float
    power: dict
    worst: tuple[str, float]

    @property
    def rejects(self) -> bool:
        return not self.value < self.critical  # NaN rejects

    def __str__(self) -> str:
        powers = ", ".join(f"{name} {p:.3f}" for name, p in self.power.items())
        return (
            f"{self.kind}: T = {self.value:.1f} vs {self.critical:.1f} (chi2 dof {self.dof}; "
            f"worst {self.worst[0]} |z| = {self.worst[1]:.2f}; power: {powers})"
        )


@dataclass(frozen=True)
class MomentCheck:
    """Every statistic of one run; see the module docstring."""

    label: str
    statistics: tuple[Statistic, ...]

    @property
    def rejects(self) -> bool:
        return any(s.rejects for s in self.statistics)

    def power(self, alternative: str) -> float:
        """Lower bound on the run's power against ``"variance"`` or ``"mean"``."""
        return max(s.power[alternative] for s in self.statistics)

    def __getitem__(self, kind: str) -> Statistic:
        return next(s for s in self.statistics if s.kind == kind)

    def __str__(self) -> str:
        return "\n".join([self.label, *(f"  {s}" for s in self.statistics)])


@dataclass(frozen=True)
class _Part:
    """One statistic's ingredients for some coordinates, before pooling.

    Attributes:
        labels: a name per coordinate, ``k`` of them.
        estimate, truth, truth_se: ``(k,)`` each.
        series: ``(chains, draws, k)``, the influence series whose means the estimates are.
        shift: alternative -> ``(delta (k,), factor (k,))``: how far the estimates move under
            it, and by what factor their MCSEs grow.
    """

    labels: list
    estimate: np.ndarray
    truth: np.ndarray
    truth_se: np.ndarray
    series: np.ndarray
    shift: dict

    @staticmethod
    def join(parts: list[_Part]) -> _Part:
        def cat(field, axis=0):
            return np.concatenate([getattr(p, field) for p in parts], axis=axis)

        shift = {
            alternative: tuple(
                np.concatenate([p.shift[alternative][i] for p in parts]) for i in (0, 1)
            )
            for alternative in ALTERNATIVES
        }
        labels = [label for p in parts for label in p.labels]
        return _Part(
            labels, cat("estimate"), cat("truth"), cat("truth_se"), cat("series", -1), shift
        )


def _flat(draws) -> np.ndarray:
    array = np.asarray(draws, np.float64)
    return array.reshape(array.shape[0], array.shape[1], -1)


def _labels(name: str, size: int) -> list[str]:
    return [name] if size == 1 else [f"{name}[{i}]" for i in range(size)]


def _unmoved(k: int) -> tuple:
    return np.zeros(k), np.ones(k)


def _moment_parts(name, x, truth) -> dict[str, _Part]:
    """The ``mean`` and ``std`` parts of the draws ``x`` (chains, draws, k) named ``name``."""
    k = x.shape[-1]
    mean, std = x.mean(axis=(0, 1)), x.std(axis=(0, 1), ddof=1)
    sigma = np.asarray(truth.std[name], np.float64).ravel()
    truth_se = {
        kind: np.zeros(k) if ses is None else np.ravel(ses.get(name, np.zeros(k)))
        for kind, ses in (("mean", truth.mean_se), ("std", truth.std_se))
    }
    root = math.sqrt(VARIANCE_ERROR)
    return {
        "mean": _Part(
            _labels(name, k),
            mean,
            np.asarray(truth.mean[name], np.float64).ravel(),
            truth_se["mean"],
            x - mean,
            {"variance": _unmoved(k), "mean": (MEAN_SHIFT * sigma, np.ones(k))},
        ),
        "std": _Part(
            _labels(name, k),
            std,
            sigma,
            truth_se["std"],
            ((x - mean) ** 2 - std**2) / (2.0 * std),
            {"variance": ((root - 1.0) * sigma, np.full(k, root)), "mean": _unmoved(k)},
        ),
    }


def _quantile_part(name, x, marginal, mu, sigma) -> _Part:
    """The fractions of ``x`` below the exact 5% and 95% quantiles of ``marginal``."""
    k = x.shape[-1]
    root = math.sqrt(VARIANCE_ERROR)
    parts = []
    for prob in QUANTILE_PROBS:
        q = np.broadcast_to(np.asarray(marginal.ppf(prob), np.float64), (k,))
        below = (x <= q).astype(np.float64)
        fraction = below.mean(axis=(0, 1))
        shift = {}
        for alternative, moved in (
            ("variance", marginal.cdf(mu + (q - mu) / root)),
            ("mean", marginal.cdf(q - MEAN_SHIFT * sigma)),
        ):
            moved = np.broadcast_to(np.asarray(moved, np.float64), (k,))
            factor = np.sqrt(moved * (1.0 - moved) / (prob * (1.0 - prob)))
            shift[alternative] = (moved - prob, factor)
        labels = [f"{label}@{prob:g}" for label in _labels(name, k)]
        parts.append(
            _Part(labels, fraction, np.full(k, prob), np.zeros(k), below - fraction, shift)
        )
    return _Part.join(parts)


def _correlation_part(name, x, pairs) -> _Part:
    """Correlations of the pairs ``(index (n, 2), rho (n,))`` of coordinates of ``x``."""
    index, rho = pairs
    z = (x - x.mean(axis=(0, 1))) / x.std(axis=(0, 1))
    zi, zj = z[..., index[:, 0]], z[..., index[:, 1]]
    r = (zi * zj).mean(axis=(0, 1))
    n = len(rho)
    return _Part(
        [f"{name}[{i}]~{name}[{j}]" for i, j in index],
        r,
        np.asarray(rho, np.float64),
        np.zeros(n),
        zi * zj - 0.5 * r * (zi**2 + zj**2),
        {"variance": _unmoved(n), "mean": _unmoved(n)},
    )


def _parts(result, truth, marginals, correlations) -> dict[str, _Part]:
    """Each statistic's part, joined over the draw names the truth covers."""
    names = [name for name in truth.mean if name in result.draws]
    assert names, f"ground truth covers none of the draws {list(result.draws)}"
    parts: dict[str, list] = {}
    for name in names:
        x = _flat(result.draws[name])
        for kind, part in _moment_parts(name, x, truth).items():
            parts.setdefault(kind, []).append(part)
        marginal = (marginals or {}).get(name)
        if marginal is not None:
            mu = np.asarray(truth.mean[name], np.float64).ravel()
            sigma = np.asarray(truth.std[name], np.float64).ravel()
            parts.setdefault("quantile", []).append(_quantile_part(name, x, marginal, mu, sigma))
        pairs = (correlations or {}).get(name)
        if pairs is not None:
            parts.setdefault("correlation", []).append(_correlation_part(name, x, pairs))
    return {kind: _Part.join(items) for kind, items in parts.items()}


def _quadratic_form(cov: np.ndarray, vector: np.ndarray) -> tuple[float, int]:
    """``(v' C^+ v, rank of C)``, dropping directions with negligible variance."""
    w, v = np.linalg.eigh(cov)
    keep = w > 1e-10 * max(w.max(), 1e-300)
    projected = v[:, keep].T @ vector
    return float(np.sum(projected**2 / w[keep])), int(keep.sum())


def _mcse(series: np.ndarray) -> np.ndarray:
    """MCSE of the mean of each series ``(chains, draws, k)``: sd / sqrt(ArviZ's ESS)."""
    return np.asarray(
        arviz_stats.mcse(series, method="mean", chain_axis=0, draw_axis=1), np.float64
    ).reshape(-1)


def estimate_covariance(series: np.ndarray) -> np.ndarray:
    """Covariance ``(k, k)`` of the means of the series ``(chains, draws, k)``.

    Along the principal axes of the series' correlation matrix, each with its own MCSE
    (ArviZ's ESS of the series projected on that axis): every direction the sampler moves
    along at its own pace gets its own autocorrelation, and the matrix is positive
    semi-definite by construction. Directions with no variance (a coordinate fixed by the
    others) are dropped.
    """
    k = series.shape[-1]
    flat = series.reshape(-1, k)
    sd = flat.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    if k == 1:
        axes = np.ones((1, 1))
    else:
        w, v = np.linalg.eigh(np.nan_to_num(np.corrcoef(flat / sd, rowvar=False)))
        axes = v[:, w > 1e-10 * w.max()]
    mcse = _mcse((series / sd) @ axes)
    return ((axes * mcse**2) @ axes.T) * np.outer(sd, sd)


def _pool(kind: str, part: _Part, num_statistics: int, alpha: float) -> Statistic:
    """The statistic ``T``, its critical value and its power against each alternative."""
    mcse_cov = estimate_covariance(part.series)
    truth_cov = np.diag(part.truth_se**2)
    error = part.estimate - part.truth
    finite = bool(np.all(np.isfinite(mcse_cov)) and np.all(np.isfinite(error)))
    value, dof = _quadratic_form(mcse_cov + truth_cov, error) if finite else (math.nan, error.size)
    critical = float(stats.chi2.ppf(1.0 - alpha / num_statistics, max(dof, 1)))
    power = {}
    for alternative, (delta, factor) in part.shift.items():
        if not finite:
            power[alternative] = 0.0
        elif not np.any(delta):
            power[alternative] = alpha / num_statistics
        else:
            moved_cov = factor[:, None] * mcse_cov * factor[None, :] + truth_cov
            noncentrality, moved_dof = _quadratic_form(moved_cov, delta)
            power[alternative] = float(stats.ncx2.sf(critical, max(moved_dof, 1), noncentrality))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(error) / np.sqrt(np.diag(mcse_cov) + part.truth_se**2)
    worst = int(np.nanargmax(z)) if np.any(np.isfinite(z)) else 0
    return Statistic(kind, value, dof, critical, power, (part.labels[worst], float(z[worst])))


def moment_check(
    result, truth, *, marginals=None, correlations=None, alpha: float = MOMENT_ALPHA
) -> MomentCheck:
    """The pooled statistics of one run (see the module docstring).

    Args:
        result: an :class:`infer.Result` with draws ``(num_chains, num_samples, ...)``.
        truth: an :class:`infer.GroundTruth`.
        marginals: draw name -> exact marginal distribution (``cdf`` and ``ppf``,
            elementwise), for the quantile statistic; ``None`` skips it.
        correlations: draw name -> ``(pairs (n, 2), correlations (n,))``; ``None`` skips it.
        alpha: family-wise level of the run's statistics.
    """
    parts = _parts(result, truth, marginals, correlations)
    statistics = tuple(_pool(kind, part, len(parts), alpha) for kind, part in parts.items())
    label = f"{result.sampler} on {result.target} (seed {result.seed})"
    return MomentCheck(label, statistics)


def assert_moments_pass(check: MomentCheck, min_power: float | None = MIN_POWER) -> None:
    """No statistic at its critical value, and (unless ``min_power`` is ``None``) power at
    least ``min_power`` against both alternatives."""
    assert not check.rejects, f"statistic above its critical value:\n{check}"
    if min_power is not None:
        for alternative in ("variance", "mean"):
            assert check.power(alternative) >= min_power, (
                f"too little ESS: power {check.power(alternative):.3f} < {min_power} against "
                f"the {alternative} error:\n{check}"
            )


def assert_moments_match(result, truth, alpha: float = MOMENT_ALPHA) -> None:
    """Means, sds and, where the target is built in, quantiles and correlations agree with
    ``truth`` (no power requirement: for callers whose runs are not MCMC test cases)."""
    check = moment_check(result, truth, alpha=alpha, **known(result.target))
    assert_moments_pass(check, min_power=None)


# ------------------------------------------------------------------------ iid draws: KS


def ks_test(samples: np.ndarray, cdf):
    """One-sample Kolmogorov–Smirnov test of iid ``samples`` against the exact ``cdf``."""
    return stats.kstest(np.ravel(samples), cdf)


def assert_ks_matches(samples: np.ndarray, cdf, alpha: float = ALPHA) -> None:
    """One-sample Kolmogorov–Smirnov test of iid ``samples`` against the exact ``cdf``."""
    result = ks_test(samples, cdf)
    assert result.pvalue > alpha, f"KS statistic {result.statistic:.4g}, p = {result.pvalue:.3g}"
