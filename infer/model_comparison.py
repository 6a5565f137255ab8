"""Comparing models of the same data: PSIS-LOO (``arviz_stats.loo``) of every result that
carries a ``log_likelihood`` group, for :func:`infer.compare`'s columns ``elpd_loo``,
``elpd_loo_se``, ``p_loo`` and ``pareto_k_above_0.7``, and the warning for a model whose
Pareto k-hat values make its estimate unreliable.
"""

from __future__ import annotations

import warnings

import numpy as np

from infer.result import Result

K_LIMIT = 0.7
COLUMNS = ("elpd_loo", "elpd_loo_se", "p_loo", "pareto_k_above_0.7")


def loo_columns(results: dict[str, Result]) -> tuple[dict, list[str]]:
    """``(name -> {column -> value}, warning messages)``; empty unless every result has a
    ``log_likelihood`` group (models of the same data)."""
    if not results or not all("log_likelihood" in r.groups for r in results.values()):
        return {}, []
    import arviz_stats

    rows, messages = {}, []
    for name, result in results.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ArviZ's own k-hat warning: ours names the model
            loo = arviz_stats.loo(result.to_arviz(), pointwise=True)
        k_hat = np.asarray(loo.pareto_k)
        bad = int(np.sum(k_hat > K_LIMIT))
        rows[name] = {
            "elpd_loo": float(loo.elpd),
            "elpd_loo_se": float(loo.se),
            "p_loo": float(loo.p),
            "pareto_k_above_0.7": bad,
        }
        if bad:
            messages.append(
                f"{name} ({result.target}): {bad} of {k_hat.size} observations have Pareto "
                f"k-hat above {K_LIMIT}, so its elpd_loo is unreliable: those observations "
                "are very influential. Refit without them (exact LOO), or use K-fold "
                "cross-validation, or a model that fits them better."
            )
    return rows, messages
