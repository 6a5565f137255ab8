"""Side-by-side diagnostics of runs, computed with ArviZ (``arviz_stats``), and the checks that
make sure a problem is never silent.

Tail ESS uses the 5% and 95% quantiles, as Stan and the literature do (ArviZ 1.x defaults to
11%/89% unless ``prob`` is passed). R-hat is ArviZ's rank-normalised split R-hat.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special  # ndtri is norm.ppf; scipy.stats costs 2 s to import

from infer import chain_stats
from infer.model_comparison import COLUMNS as LOO_COLUMNS
from infer.model_comparison import loo_columns
from infer.result import Result
from infer.statistics import TAIL_PROB, compute
from infer.target import GroundTruth

DEFAULT_MIN_ESS = 400
RHAT_LIMIT = 1.01
GROUND_TRUTH_ALPHA = 0.01

COLUMNS = (
    "min_ess_bulk",
    "median_ess_bulk",
    "min_ess_tail",
    "median_ess_tail",
    "max_rhat",
    "max_nested_rhat",
    "max_mcse_mean",
    "ess_bulk_per_second",
    "ess_bulk_per_1000_logdensity_evals",
    "ess_bulk_per_grad_eval",
    "acceptance_rate",
    "divergences",
    "compile_seconds",
    "warmup_seconds",
    "sampling_seconds",
    "max_abs_z",
    "flags",
)


class DiagnosticWarning(UserWarning):
    """A run whose diagnostics say its estimates should not be trusted as they are."""


def _flat(values: dict, names) -> np.ndarray:
    """All scalar values of the named variables (name -> array), concatenated."""
    return np.concatenate([np.ravel(np.asarray(values[name])) for name in names])


def ground_truth_z(result: Result, truth: GroundTruth, mcse=None) -> dict[str, np.ndarray]:
    """``|posterior mean - truth| / standard error`` per parameter, by draw name.

    The standard error combines the run's MCSE of the mean (name -> array; pass it as
    ``mcse`` if already computed, else :mod:`infer.chain_stats` computes it) with the ground
    truth's own Monte Carlo error when it comes from a reference run.
    """
    names = [name for name in truth.mean if name in result.draws]
    if not names:
        return {}
    if mcse is None:
        mcse = chain_stats.mcse({name: np.asarray(result.draws[name]) for name in names})
    z = {}
    for name in names:
        estimate = np.asarray(result.draws[name], np.float64).mean(axis=(0, 1))
        se_sq = np.asarray(mcse[name], np.float64) ** 2
        if truth.mean_se is not None and name in truth.mean_se:
            se_sq = se_sq + np.asarray(truth.mean_se[name], np.float64) ** 2
        z[name] = np.abs(estimate - np.asarray(truth.mean[name])) / np.sqrt(se_sq)
    return z


def z_limit(num_params: int, alpha: float = GROUND_TRUTH_ALPHA) -> float:
    """Bonferroni-corrected two-sided normal quantile for ``num_params`` means."""
    return float(special.ndtri(1.0 - alpha / (2.0 * max(num_params, 1))))


def stuck_chains(result: Result) -> list[int]:
    """Chains whose draws never changed, in any variable (as the run recorded it in
    ``info["stuck_chains"]``, else from the draws)."""
    if "stuck_chains" in result.info:
        return list(result.info["stuck_chains"])
    moved = np.zeros(result.num_chains, bool)
    for values in result.draws.values():
        values = np.asarray(values).reshape(result.num_chains, result.num_samples, -1)
        moved |= np.any(values != values[:, :1], axis=(1, 2))
    return [int(c) for c in np.flatnonzero(~moved)] if result.num_samples > 1 else []


def _acceptance_problem(result: Result) -> str | None:
    """Why the acceptance rate is far from what the sampler aims for, or None. The band comes
    from the sampler (``info["acceptance_band"]``); exact samplers have none to meet."""
    rate = result.acceptance_rate
    if not np.isfinite(rate) or result.info.get("exact"):
        return None
    target = result.info.get("target_accept")
    if target is None:
        if rate < 0.05:
            return (
                f"acceptance rate {rate:.3f}: the chain hardly moves. Try a proposal closer to "
                "the target (or, for a random walk, a smaller step)."
            )
        return None
    default = (target / 2.0, target + (1.0 - target) / 2.0)  # Sampler.acceptance_band's
    low, high = result.info.get("acceptance_band", default)
    if rate < low:
        return (
            f"acceptance rate {rate:.3f} is far below the target {target:.3f}: the step size "
            "did not settle. Try more warm-up, or a smaller fixed step_size."
        )
    if high is not None and rate > high:
        return (
            f"acceptance rate {rate:.3f} is far above the target {target:.3f}: steps are too "
            "small and the chain crawls. Try more warm-up, or a larger fixed step_size."
        )
    return None


def run_row(
    result: Result,
    ground_truth: GroundTruth | None = None,
    min_ess: float = DEFAULT_MIN_ESS,
    statistics: dict | None = None,
) -> tuple[dict, list[str]]:
    """One row of :func:`compare` for ``result``, and the warning messages of its flags.

    ``statistics``: this run's entry of :func:`infer.statistics.compute`, if already
    computed.
    """
    if statistics is None:
        statistics = compute({"run": result})["run"]
    truth = ground_truth if ground_truth is not None else result.ground_truth
    row, z = _row_values(result, truth, statistics)
    flags, messages = [], []
    for name, rule in _FLAG_RULES:
        message = rule(result, row, z, min_ess)
        if message:
            flags.append(name)
            messages.append(f"{result.sampler} on {result.target}: {message}")
    row["flags"] = ",".join(flags)
    return row, messages


def _row_values(result: Result, truth: GroundTruth | None, statistics: dict):
    """The numbers of ``result``'s row (every column of :data:`COLUMNS` but ``flags``, after
    ``sampler``), and the ground-truth z-scores by draw name (:func:`ground_truth_z`; empty
    without a ground truth)."""
    names = list(result.draws)
    ess_bulk = _flat(statistics["ess_bulk"], names)
    ess_tail = _flat(statistics["ess_tail"], names)
    rhat = _flat(statistics["rhat"], names)
    mcse_mean = _flat(statistics["mcse_mean"], names)
    sampling = result.timing.get("sampling", float("nan"))
    min_bulk = float(np.nanmin(ess_bulk))

    def per(count) -> float:
        return min_bulk / count if count else float("nan")

    max_z = float("nan")
    z = ground_truth_z(result, truth, statistics["mcse_mean"]) if truth is not None else {}
    if z:
        z_all = np.concatenate([np.ravel(v) for v in z.values()])
        max_z = float(np.max(z_all))
    row = {
        "sampler": result.sampler,
        "min_ess_bulk": min_bulk,
        "median_ess_bulk": float(np.nanmedian(ess_bulk)),
        "min_ess_tail": float(np.nanmin(ess_tail)),
        "median_ess_tail": float(np.nanmedian(ess_tail)),
        "max_rhat": float(np.nanmax(rhat)) if np.any(np.isfinite(rhat)) else float("nan"),
        "max_nested_rhat": _max_nested(statistics, names),
        "max_mcse_mean": float(np.nanmax(mcse_mean)),
        "ess_bulk_per_second": min_bulk / sampling if sampling > 0 else float("nan"),
        "ess_bulk_per_1000_logdensity_evals": 1000.0 * per(result.num_logdensity_evals),
        "ess_bulk_per_grad_eval": per(result.num_grad_evals),
        "acceptance_rate": result.acceptance_rate,
        "divergences": result.num_divergent,
        "compile_seconds": result.timing.get("compile", float("nan")),
        "warmup_seconds": result.timing.get("warmup", float("nan")),
        "sampling_seconds": sampling,
        "max_abs_z": max_z,
        "nan_parameters": _nan_parameters(statistics, names),
    }
    return row, z


def _max_nested(statistics: dict, names: list[str]) -> float:
    """The largest nested R-hat, or NaN for a run without superchains."""
    if "rhat_nested" not in statistics:
        return float("nan")
    values = _flat(statistics["rhat_nested"], names)
    return float(np.nanmax(values)) if np.any(np.isfinite(values)) else float("nan")


def _nan_parameters(statistics: dict, names: list[str]) -> list[str]:
    """Labels (``"x[3]"``) of the parameters whose R-hat or bulk ESS is NaN: a parameter that
    never changed in any chain (or draws that are NaN)."""
    labels = []
    for name in names:
        rhat = np.ravel(np.asarray(statistics["rhat"][name], float))
        ess = np.ravel(np.asarray(statistics["ess_bulk"][name], float))
        for i in np.flatnonzero(np.isnan(rhat) | np.isnan(ess)):
            labels.append(name if rhat.size == 1 else f"{name}[{i}]")
    return labels


# The flag rules, in the order of the flags: each takes (result, its row, the ground-truth
# z-scores by name, min_ess) and returns the message of its flag, or None when it does not fire.


def _divergences_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on divergent transitions after warm-up."""
    if row["divergences"] > 0:
        return (
            f"{row['divergences']} divergent transitions after warm-up: the step size cannot "
            "follow the posterior's curvature there, so estimates may be biased. Try a higher "
            "target_accept (e.g. infer.nuts(target_accept=0.95)), more warm-up, or a "
            "non-centred reparameterisation."
        )
    return None


def _rhat_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a max R-hat above :data:`RHAT_LIMIT` (nested R-hat for superchains, whose
    short chains cannot each mix: what must agree are the superchains)."""
    if np.isfinite(row["max_nested_rhat"]):
        if row["max_nested_rhat"] > RHAT_LIMIT:
            return (
                f"max nested R-hat {row['max_nested_rhat']:.3f} > {RHAT_LIMIT}: the "
                "superchains disagree. Run longer or with more warm-up."
            )
        return None
    if row["max_rhat"] > RHAT_LIMIT:
        return (
            f"max R-hat {row['max_rhat']:.3f} > {RHAT_LIMIT}: the chains disagree. Run longer "
            "with more warm-up, and look at the trace and rank plots (several modes?)."
        )
    return None


def _low_ess_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a min bulk or tail ESS below ``min_ess``."""
    if row["min_ess_bulk"] < min_ess or row["min_ess_tail"] < min_ess:
        return (
            f"min ESS bulk {row['min_ess_bulk']:.0f}, tail {row['min_ess_tail']:.0f} < "
            f"{min_ess:g}: estimates (tails especially) are noisy. Draw more samples or use a "
            "sampler that mixes faster (NUTS for smooth targets)."
        )
    return None


def _acceptance_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on an acceptance rate far from the sampler's aim."""
    return _acceptance_problem(result)


def _envelope_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on proposals that exceeded a rejection envelope."""
    violations = int(result.info.get("envelope_violations", 0) or 0)
    if violations:
        return (
            f"{violations} proposals exceeded the rejection envelope (largest ratio "
            f"{result.info.get('max_envelope_ratio', float('nan')):.3g}): the draws are not "
            "exact. Raise log_envelope, or let infer find it (log_envelope=None)."
        )
    return None


def _pareto_k_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a Pareto k-hat (ADVI) above its threshold."""
    k_hat = result.info.get("pareto_k")
    k_limit = result.info.get("pareto_k_threshold", 0.7)
    if k_hat is not None and not (float(k_hat) <= float(k_limit)):
        return (
            f"Pareto k-hat {float(k_hat):.2f} > {float(k_limit):.2f}: the variational "
            "approximation misses the posterior's shape, so its draws cannot be trusted. Try "
            "family='fullrank', a reparameterisation, or MCMC."
        )
    return None


def _stuck_chains_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on chains whose draws never changed."""
    stuck = stuck_chains(result)
    if stuck:
        return (
            f"chain(s) {stuck} never moved: every proposal was rejected (a start in a region "
            "where the log density is NaN or -inf, or a step size that collapsed). Check the "
            "log density there, start elsewhere (init=) or give a smaller step_size."
        )
    return None


def _ground_truth_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a posterior mean too many standard errors from the truth."""
    if not z:
        return None
    limit = z_limit(sum(np.size(v) for v in z.values()))
    max_z = row["max_abs_z"]
    if max_z > limit:
        worst = max(z, key=lambda name: float(np.max(z[name])))
        return (
            f"the posterior mean of {worst!r} is {max_z:.1f} standard errors from the known "
            f"answer (limit {limit:.2f}): the draws are biased. Look for divergences and "
            "stuck or unconverged chains; run longer, with more warm-up."
        )
    return None


def _nonfinite_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on proposals whose log density was NaN or +inf (rejected, but a sign that the
    log density breaks where the chains go)."""
    total = result.info.get("nonfinite_proposals", 0)
    total = int(np.sum(total)) if total is not None else 0
    kept = int(np.sum(result.stats["nonfinite"])) if "nonfinite" in result.stats else total
    if total or kept:
        where = f"{kept} after warm-up, {total} in all" if kept != total else f"{total}"
        return (
            f"{where} proposals had a NaN or +inf log density. They were rejected, so the "
            "draws are still valid, but the log density breaks where the chains go: check its "
            "support and constraints (a parameter that must be positive, the log of a "
            "negative number, an overflow), or reparameterise."
        )
    return None


def _nan_stats_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on parameters whose R-hat or ESS is NaN (frozen in every chain): they are never
    dropped from the check."""
    labels = row.get("nan_parameters") or []
    if labels:
        shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
        return (
            f"R-hat or ESS is NaN for {shown}: the parameter never changed in any chain (or its "
            "draws are NaN), so nothing was learned about it. Check that the log density "
            "depends on it, and its starting point and scale."
        )
    return None


_FLAG_RULES = (
    ("divergences", _divergences_rule),
    ("rhat", _rhat_rule),
    ("low_ess", _low_ess_rule),
    ("acceptance", _acceptance_rule),
    ("envelope", _envelope_rule),
    ("pareto_k", _pareto_k_rule),
    ("stuck_chains", _stuck_chains_rule),
    ("nonfinite", _nonfinite_rule),
    ("nan_stats", _nan_stats_rule),
    ("ground_truth", _ground_truth_rule),
)


def compare(
    results: dict[str, Result] | list[Result],
    target=None,
    *,
    min_ess: float = DEFAULT_MIN_ESS,
    warn: bool = True,
    statistics: str = "jax",
):
    """One row per run, with convergence diagnostics, efficiency, timings and flags.

    Args:
        results: name -> :class:`infer.Result` (or a list, named by sampler).
        target: an :class:`infer.Target` whose ground truth to use; by default each result's.
        min_ess: ESS below which a run is flagged ``low_ess``.
        warn: also emit a :class:`DiagnosticWarning` for each flag, saying what to try.
        statistics: ``"jax"`` (default): ESS, R-hat and MCSE computed in JAX on the device
            (:mod:`infer.chain_stats`); ``"arviz"``: with ``arviz_stats``, the reference
            (the two agree within 1e-5).

    Returns:
        A pandas ``DataFrame`` indexed by run name with the columns in :data:`COLUMNS`:
        minimum and median bulk and tail ESS (tail at the 5%/95% quantiles), max R-hat (and
        max nested R-hat for runs with superchains, which its ``rhat`` flag then uses), max
        MCSE of the mean, bulk ESS per second of sampling (compilation excluded), per 1,000
        log-density evaluations and per gradient evaluation (warm-up included in the cost),
        acceptance rate, divergences, compile / warm-up / sampling seconds, the largest
        ``|mean - truth| / MCSE`` and the flags: ``divergences``, ``rhat`` (> 1.01),
        ``low_ess``, ``acceptance``, ``envelope``, ``pareto_k`` (an ADVI fit whose
        importance ratios have k-hat above the threshold), ``stuck_chains``, ``nonfinite``
        (proposals with a NaN or +inf log density), ``nan_stats`` (a parameter whose R-hat
        or ESS is NaN: frozen in every chain), ``ground_truth``
        (beyond the Bonferroni-corrected 1% normal quantile). When every result carries a
        ``log_likelihood`` group (models of the same data, e.g. NumPyro targets), also
        ``elpd_loo``, ``elpd_loo_se``, ``p_loo`` and ``pareto_k_above_0.7`` (PSIS-LOO,
        ``arviz_stats.loo``), with a warning naming each model that has observations above
        0.7. ``DataFrame.attrs["notes"]`` says how each column was computed.
    """
    import pandas as pd

    if isinstance(results, Result):
        results = {results.sampler: results}
    if isinstance(results, (list, tuple)):
        results = {r.sampler if i == 0 else f"{r.sampler}_{i}": r for i, r in enumerate(results)}
    if not results:
        raise ValueError("results is empty: pass a dict of name -> infer.Result.")
    for name, result in results.items():
        if not isinstance(result, Result):
            raise TypeError(
                f"results[{name!r}] must be an infer.Result; got {type(result).__name__}. "
                "Wrap draws made elsewhere with infer.Result.from_draws(draws)."
            )
    truth = target.ground_truth if target is not None else None
    computed = compute(results, statistics)
    rows, all_messages = {}, []
    for name, result in results.items():
        rows[name], messages = run_row(result, truth, min_ess, computed[name])
        all_messages += messages
    if warn:
        for message in all_messages:
            warnings.warn(message, DiagnosticWarning, stacklevel=2)
    loo, loo_messages = loo_columns(results)
    if warn:
        for message in loo_messages:
            warnings.warn(message, DiagnosticWarning, stacklevel=2)
    table = pd.DataFrame.from_dict(rows, orient="index")[["sampler", *COLUMNS]]
    for column in LOO_COLUMNS if loo else ():
        table[column] = [loo[name][column] for name in table.index]
    table.attrs["notes"] = (
        f"ESS and R-hat from {'JAX (infer.chain_stats)' if statistics == 'jax' else 'arviz_stats'}"
        f"; tail ESS at the {TAIL_PROB[0]:.0%} and "
        f"{TAIL_PROB[1]:.0%} quantiles; R-hat rank-normalised split; ESS per second of "
        "sampling, compilation excluded; ESS per evaluation counts warm-up too; max_abs_z is "
        "the largest |posterior mean - truth| / MCSE."
    )
    table.attrs["min_ess"] = min_ess
    return table
