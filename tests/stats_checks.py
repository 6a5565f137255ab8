"""Monte Carlo checks with tolerances from the MCSE (ArviZ), not hand-tuned.

For each parameter, ``z = |estimate - truth| / se`` where ``se`` is ArviZ's Monte Carlo
standard error of the estimate (of the mean, or of the standard deviation), combined with
the ground truth's own error when that comes from a reference run. A run passes when every
``z`` is below the normal quantile at family-wise level ``ALPHA`` with a Bonferroni
correction for the number of checks.
"""

from __future__ import annotations

import arviz_stats
import numpy as np
from scipy import stats

ALPHA = 1e-3  # family-wise false-alarm rate of one run's checks


def threshold(num_checks: int, alpha: float = ALPHA) -> float:
    """Two-sided normal quantile at level ``alpha / num_checks``."""
    return float(stats.norm.ppf(1.0 - alpha / (2.0 * num_checks)))


def moment_z_scores(result, truth) -> dict[str, np.ndarray]:
    """``{"mean:<name>": z, "std:<name>": z}`` arrays for every name the truth covers."""
    tree = result.to_arviz()
    names = [name for name in truth.mean if name in result.draws]
    assert names, f"ground truth covers none of the draws {list(result.draws)}"
    mcse_mean = arviz_stats.mcse(tree, method="mean", var_names=names)
    mcse_sd = arviz_stats.mcse(tree, method="sd", var_names=names)
    scores = {}
    for name in names:
        draws = np.asarray(result.draws[name], np.float64)
        for kind, estimate, mcse, truth_value, truth_se in (
            (
                "mean",
                draws.mean(axis=(0, 1)),
                mcse_mean[name].values,
                truth.mean[name],
                None if truth.mean_se is None else truth.mean_se.get(name),
            ),
            (
                "std",
                draws.std(axis=(0, 1), ddof=1),
                mcse_sd[name].values,
                truth.std[name],
                None if truth.std_se is None else truth.std_se.get(name),
            ),
        ):
            se_sq = np.asarray(mcse, np.float64) ** 2
            if truth_se is not None:
                se_sq = se_sq + np.asarray(truth_se, np.float64) ** 2
            scores[f"{kind}:{name}"] = np.abs(estimate - np.asarray(truth_value)) / np.sqrt(se_sq)
    return scores


def assert_moments_match(result, truth, alpha: float = ALPHA) -> None:
    """Means and standard deviations agree with ``truth`` within MCSE-based tolerances."""
    scores = moment_z_scores(result, truth)
    num_checks = sum(np.size(z) for z in scores.values())
    limit = threshold(num_checks, alpha)
    worst = {key: float(np.max(z)) for key, z in scores.items()}
    failing = {key: z for key, z in worst.items() if not z < limit}
    assert not failing, (
        f"{result.sampler} on {result.target} (seed {result.seed}): |z| above {limit:.2f} "
        f"({num_checks} checks): {failing}"
    )


def assert_ks_matches(samples: np.ndarray, cdf, alpha: float = ALPHA) -> None:
    """One-sample Kolmogorov–Smirnov test of iid ``samples`` against the exact ``cdf``."""
    result = stats.kstest(np.ravel(samples), cdf)
    assert result.pvalue > alpha, f"KS statistic {result.statistic:.4g}, p = {result.pvalue:.3g}"
