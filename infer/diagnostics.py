"""Side-by-side diagnostics of runs, computed with ArviZ (``arviz_stats``).

Tail ESS uses the 5% and 95% quantiles, as Stan and the literature do (ArviZ 1.x defaults to
11%/89% unless ``prob`` is passed).
"""

from __future__ import annotations

import numpy as np

from infer.result import Result
from infer.target import GroundTruth

TAIL_PROB = (0.05, 0.95)


def _flat(tree, names) -> np.ndarray:
    """All scalar values of the named variables of an xarray tree/dataset, concatenated."""
    return np.concatenate([np.ravel(np.asarray(tree[name].values)) for name in names])


def ground_truth_z(result: Result, truth: GroundTruth, tree=None) -> dict[str, np.ndarray]:
    """``|posterior mean - truth| / standard error`` per parameter, by draw name.

    The standard error combines the run's MCSE of the mean (ArviZ) with the ground truth's
    own Monte Carlo error when it comes from a reference run.
    """
    import arviz_stats

    names = [name for name in truth.mean if name in result.draws]
    if not names:
        return {}
    tree = tree if tree is not None else result.to_arviz()
    mcse = arviz_stats.mcse(tree, method="mean", var_names=names)
    z = {}
    for name in names:
        estimate = result.draws[name].mean(axis=(0, 1))
        se_sq = np.asarray(mcse[name].values) ** 2
        if truth.mean_se is not None and name in truth.mean_se:
            se_sq = se_sq + np.asarray(truth.mean_se[name]) ** 2
        z[name] = np.abs(estimate - np.asarray(truth.mean[name])) / np.sqrt(se_sq)
    return z


def run_row(result: Result, ground_truth: GroundTruth | None = None) -> dict:
    """One row of :func:`compare` for ``result``."""
    import arviz_stats

    tree = result.to_arviz()
    names = list(result.draws)
    ess_bulk = _flat(arviz_stats.ess(tree, method="bulk"), names)
    ess_tail = _flat(arviz_stats.ess(tree, method="tail", prob=TAIL_PROB), names)
    rhat = _flat(arviz_stats.rhat(tree), names)
    sampling = result.timing.get("sampling", float("nan"))
    truth = ground_truth if ground_truth is not None else result.ground_truth
    max_z = float("nan")
    if truth is not None:
        z = ground_truth_z(result, truth, tree)
        if z:
            max_z = float(np.max(np.concatenate([np.ravel(v) for v in z.values()])))
    min_bulk = float(np.min(ess_bulk))
    return {
        "sampler": result.sampler,
        "min_ess_bulk": min_bulk,
        "min_ess_tail": float(np.min(ess_tail)),
        "max_rhat": float(np.max(rhat)),
        "ess_bulk_per_second": min_bulk / sampling if sampling > 0 else float("nan"),
        "acceptance_rate": result.acceptance_rate,
        "divergences": result.num_divergent,
        "compile_seconds": result.timing.get("compile", float("nan")),
        "warmup_seconds": result.timing.get("warmup", float("nan")),
        "sampling_seconds": sampling,
        "max_abs_z": max_z,
    }


def compare(results: dict[str, Result], target=None):
    """A pandas DataFrame, one row per run, indexed by the dict's keys.

    Columns: ``min_ess_bulk``, ``min_ess_tail`` (5%/95% quantiles), ``max_rhat``
    (rank-normalised split R-hat), ``ess_bulk_per_second`` (of sampling, compilation
    excluded), ``acceptance_rate``, ``divergences``, ``compile_seconds``, ``warmup_seconds``,
    ``sampling_seconds`` and ``max_abs_z`` (largest ``|mean - truth| / MCSE`` when the target
    carries ground truth, else NaN).

    Args:
        results: name -> :class:`infer.Result`.
        target: an :class:`infer.Target` whose ground truth to use; by default each result's.
    """
    import pandas as pd

    truth = target.ground_truth if target is not None else None
    rows = {name: run_row(result, truth) for name, result in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index")
