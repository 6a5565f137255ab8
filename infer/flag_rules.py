"""The flags of :func:`infer.compare`: one rule per flag, each taking a run's result, its
row of the table, the ground-truth z-scores by draw name and ``min_ess``, and giving the
message that explains what went wrong and what to try, or None when the flag does not fire.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy import special  # ndtri is norm.ppf; scipy.stats costs 2 s to import

from infer import draw_blocks
from infer.convergence import ess_shown
from infer.draws_checks import imprecise_run
from infer.fit_measures import is_fit, unsettled
from infer.result import Result
from infer.stuck_chains import chain_list, stuck_chains, why_stuck

RHAT_LIMIT = 1.01
GROUND_TRUTH_ALPHA = 0.01
MIN_DRAWS = 4  # per chain, for ESS and R-hat (ArviZ's minimum)


def above_limit(rhat: float, limit: float = RHAT_LIMIT) -> str:
    """An R-hat above ``limit`` with the digits that show it is above (1.010044 as 1.01004,
    not 1.0100), at least four decimals."""
    for decimals in range(4, 10):
        text = f"{rhat:.{decimals}f}"
        if float(text) > limit:
            return text
    return f"{rhat!r}"


def z_limit(num_params: int, alpha: float = GROUND_TRUTH_ALPHA) -> float:
    """Bonferroni-corrected two-sided normal quantile for ``num_params`` means."""
    return float(special.ndtri(1.0 - alpha / (2.0 * max(num_params, 1))))


def _independent(result: Result) -> bool:
    """Whether the draws are independent (an exact sampler's, even where an envelope was
    exceeded; a result saved before ``independent`` was recorded says ``exact``)."""
    return bool(result.info.get("independent", result.info.get("exact")))


def acceptance_problem(result: Result) -> str | None:
    """Why the acceptance rate is far from what the sampler aims for, or None. The band comes
    from the sampler (``info["acceptance_band"]``); exact samplers have none to meet."""
    rate = result.acceptance_rate
    if not np.isfinite(rate) or _independent(result):
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


# The flag rules, in the order of the flags: each takes (result, its row, the ground-truth
# z-scores by name, min_ess) and returns the message of its flag, or None when it does not fire.


def divergence_advice(result: Result) -> str:
    """What to try against divergences: a higher target acceptance where warm-up tuned the
    step size; where nothing was tuned (no warm-up, or a fixed step size), the step size, or
    for a sampler without a ``step_size`` setting its own steps; for draws made elsewhere
    (``from_draws``: no seed), that sampler's settings."""
    if result.seed is None:
        first = (
            "These draws were made elsewhere (Result.from_draws): in the sampler that made "
            "them, try a higher target acceptance (a smaller step size) or more warm-up"
        )
    elif result.num_warmup == 0:
        smaller = "step_size" if "step_size" in result.settings else "step of the sampler's own"
        first = (
            "No warm-up ran (num_warmup=0), so no step size was tuned: give warm-up steps "
            f"(num_warmup), or a smaller {smaller}"
        )
    elif result.info.get("target_accept") is not None:
        used = float(result.info["target_accept"])
        higher = next((t for t in (0.95, 0.99, 0.999) if t > used + 1e-9), None)
        call = f"target_accept={higher}"
        if "target_accept" in result.settings:  # the run's own sampler, not always NUTS
            own = callable(getattr(sys.modules["infer"], result.sampler, None))
            call = f"{'infer.' if own else ''}{result.sampler}({call})"
        first = (
            f"Try a higher target_accept than {used:g} (e.g. {call}), more warm-up"
            if higher is not None
            else f"target_accept is already {used:g}: a smaller step will not help; try more "
            "warm-up"
        )
    elif "step_size" not in result.settings:  # a sampler of its own: its options unknown
        first = (
            f"The sampler {result.sampler!r} has no step_size option infer knows: try its "
            "smaller steps (or a higher target acceptance) and more warm-up"
        )
    else:
        tune = "adapt_step_size=True" if "adapt_step_size" in result.settings else "step_size=None"
        first = (
            "The step size is fixed (not tuned in warm-up): give a smaller step_size, or let "
            f"warm-up tune it ({tune})"
        )
    return (
        f"{first}, or, for a hierarchical model written centred, a non-centred reparameterisation."
        " A NaN or +inf log density met along a trajectory counts as a divergence too: check "
        "that the log density is finite wherever the chains go."
    )


def _divergences_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on divergent transitions after warm-up."""
    if row["divergences"] > 0:
        return (
            f"{row['divergences']} divergent transitions after warm-up: the step size cannot "
            "follow the posterior's curvature there, so estimates may be biased. "
            + divergence_advice(result)
        )
    return None


def _rhat_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a max R-hat above :data:`RHAT_LIMIT` (nested R-hat for superchains, whose
    short chains cannot each mix: what must agree are the superchains). Independent draws (an
    exact sampler's, an ADVI fit's) have nothing to converge: their R-hat above it is chance,
    and the ESS rule speaks for too few of them."""
    if _independent(result) or _is_variational(result):  # nothing to converge: chance
        return None
    named = _named(row.get("worst_rhat"), lambda value: value > RHAT_LIMIT, above_limit)
    if np.isfinite(row["max_nested_rhat"]):
        if row["max_nested_rhat"] > RHAT_LIMIT:
            return (
                f"max nested R-hat {above_limit(row['max_nested_rhat'])} > {RHAT_LIMIT}{named}: "
                "the superchains disagree. Run longer or with more warm-up."
            )
        return None
    if row["max_rhat"] > RHAT_LIMIT:
        return (
            f"max R-hat {above_limit(row['max_rhat'])} > {RHAT_LIMIT}{named}: the chains "
            "disagree. Run longer with more warm-up, and look at the trace and rank plots "
            "(several modes?)." + resonance_note(result)
        )
    return None


def _named(worst, fails, shown_as, shown: int = 5) -> str:
    """`` (in x[3] 1.24, mu 1.02 and 4 more)``: the parameters for which ``fails(value)``,
    of ``worst`` (``([(label, value)], values)``, the worst first, and all values), each
    value as ``shown_as`` writes it; ``""`` for none."""
    if worst is None:
        return ""
    top, values = worst
    failing = [(label, value) for label, value in top if fails(value)]
    if not failing:
        return ""
    parts = [f"{label} {shown_as(value)}" for label, value in failing[:shown]]
    more = int(np.sum(fails(np.asarray(values)))) - len(parts)
    return f" (in {', '.join(parts)}{f' and {more} more' if more > 0 else ''})"


def _precision_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a float32 log density too large in magnitude for its rounding."""
    return imprecise_run(result)


def resonance_note(result: Result) -> str:
    """For HMC with a fixed trajectory length, what the length can do to its mixing."""
    length = result.settings.get("trajectory_length")
    if result.sampler != "hmc" or not isinstance(length, int | float):
        return ""
    # about π/2, a quarter turn of a whitened Gaussian: not suggested to a run that used it
    other = "" if abs(length - 1.5) < 0.05 else " (infer.hmc(trajectory_length=1.5))"
    return (
        f" HMC's fixed trajectory_length {length:.3g} can resonate with a near-Gaussian "
        "posterior (after warm-up whitens it, 2π, NumPyro's default, brings every chain back "
        f"near its start, whatever the run's length): give another one{other}, or use NUTS."
    )


def _low_ess_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a min bulk or tail ESS below ``min_ess``."""
    low = [
        f"{kind} {ess_shown(row[f'min_ess_{kind}'], min_ess)}"
        for kind in ("bulk", "tail")
        if row[f"min_ess_{kind}"] < min_ess
    ]
    if low:
        named = _named(
            row.get("worst_ess"), lambda value: value < min_ess, lambda v: ess_shown(v, min_ess)
        )
        return (
            f"min ESS {' and '.join(low)} < {min_ess:g}{named}: estimates (tails especially) are "
            "noisy. Draw more samples or use a sampler that mixes faster (NUTS for smooth "
            "targets)." + resonance_note(result)
        )
    return None


def _acceptance_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on an acceptance rate far from the sampler's aim."""
    return acceptance_problem(result)


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


def what_to_try(fullrank: bool) -> str:
    """The changes to suggest for an ADVI fit whose k-hat is too high: a full-rank fit has
    no richer family to move to."""
    return "a reparameterisation" if fullrank else "family='fullrank', a reparameterisation"


def _pareto_k_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a Pareto k-hat (ADVI) above its threshold, or on draws of the fit where the
    target's log density is not finite (PSIS reads them as zero weights: k-hat misses them)."""
    k_hat = result.info.get("pareto_k")
    k_limit = result.info.get("pareto_k_threshold", 0.7)
    if k_hat is not None and not (float(k_hat) <= float(k_limit)):
        return (
            f"Pareto k-hat {float(k_hat):.2f} > {float(k_limit):.2f}: the variational "
            "approximation misses the posterior's shape, so its draws cannot be trusted. Try "
            f"{what_to_try(result.info.get('family') == 'fullrank')}, or MCMC."
        )
    if outside := result.info.get("num_nonfinite_draws"):
        return outside_support(int(outside), result.num_chains * result.num_samples)
    return None


def _is_variational(result: Result) -> bool:
    """Whether ``result`` is a variational fit's (ADVI records its Pareto k-hat)."""
    return is_fit(result.info)


def _unsettled_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on an ADVI fit that had not settled at its optimum (:func:`unsettled`)."""
    return unsettled(result.info) if _is_variational(result) else None


def outside_support(count: int, total: int) -> str:
    """What ``count`` of an ADVI fit's ``total`` draws at a NaN or infinite log density mean."""
    return (
        f"{count} of {total} draws lie where the target's log density is NaN or infinite "
        "(-inf outside its support; NaN or +inf where it breaks): the fitted Gaussian puts "
        "mass where the posterior has none, and those draws are returned as posterior "
        "draws. Check the model there, "
        "constrain the parameter (a NumPyro site's support is handled for you), or use MCMC."
    )


def _stuck_chains_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on chains whose draws never changed."""
    stuck = stuck_chains(result)
    if stuck:
        return f"chain(s) {chain_list(stuck)} never moved: {why_stuck(result, stuck)}"
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
            f"answer (limit {limit:.2f}): the draws are biased. "
            + (
                "A variational fit is biased where its family cannot take the posterior's "
                f"shape: try {what_to_try(result.info.get('family') == 'fullrank')}, more "
                "num_steps, or MCMC."
                if _is_variational(result)
                else "Look for divergences and stuck or unconverged chains; run longer, with "
                "more warm-up."
            )
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
        if skips_steps(result):
            return skipped_steps_message(where)
        return rejected_nonfinite_message(where, kept_nan_draws(result))
    return None


def rejected_nonfinite_message(where: str, kept_some: bool = False) -> str:
    """What rejected proposals at a NaN or +inf log density mean (``where``: how many).
    ``kept_some``: the sampler kept draws at a NaN log density (it did not reject them all)."""
    if kept_some:
        fate = (
            "A sampler should reject them, but this one kept some (see the warning of kept "
            "draws with a NaN log density), and "
        )
    else:
        fate = (
            "They were rejected, so the draws are valid if the density is zero there (not "
            "where log q is NaN but q positive: fix log q), but "
        )
    return (
        f"{where} proposals had a NaN or +inf log density (or gradient, for a sampler that "
        "follows one), or a NaN proposal log density log q (mh, independent_mh). "
        f"{fate}the log density breaks where the chains "
        "go: check its support and constraints (a parameter that must be positive, the log "
        "of a negative number, an overflow), or reparameterise."
    )


def kept_nan_draws(result: Result) -> bool:
    """Whether a sampler that should reject proposals at a NaN log density kept draws at
    one (its ``lp``)."""
    lp = result.stats.get("lp")
    return not skips_steps(result) and lp is not None and draw_blocks.count(lp, np.isnan) > 0


def skips_steps(result: Result) -> bool:
    """Whether the sampler has no accept/reject step (SGLD, ``rejects_nonfinite=False``): a
    step at a log density or gradient that is not finite is skipped, not rejected."""
    return bool(result.info.get("skips_nonfinite", False))


def skipped_steps_message(where: str) -> str:
    """What skipped non-finite steps of a sampler without accept/reject mean."""
    return (
        f"{where} steps had a log density or gradient that was not finite (NaN, +inf, or "
        "-inf: outside the support) and were skipped: with no accept/reject step, the chain "
        "stood still there, which biases the draws. Many such steps mean the chain diverged "
        "(a step size too large for the posterior's curvature: the draws are then invalid; "
        "lower step_size, or let it decay), or that it steps across the edge of a bounded "
        "parameter's support (sample it in unconstrained space: the log of a scale)."
    )


#: How :func:`infer.diagnostics` marks finite draws whose squares overflow.
OVERFLOW = "(too large: squares overflow)"
#: ... and draws that change by so little that the squares of their deviations underflow.
UNDERFLOW = "(too small a spread: squares underflow)"


def _listed(labels: list[str]) -> str:
    return ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")


def _nan_stats_rule(result: Result, row: dict, z: dict, min_ess: float) -> str | None:
    """Fires on a run too short (under 4 draws per chain) or too narrow (one chain) for ESS or
    R-hat, and on parameters whose R-hat, ESS or MCSE is NaN (NaN or inf draws) or whose
    draws never changed: they are never dropped from the check."""
    if result.num_samples < MIN_DRAWS:
        return (
            f"ESS and R-hat need at least {MIN_DRAWS} draws per chain; this run has "
            f"{result.num_samples}, so every one of them is NaN. Draw more (num_samples)."
        )
    messages = []
    independent = _independent(result) or _is_variational(result)  # exact or ADVI draws
    if result.num_chains < 2 and not independent:
        messages.append(
            "R-hat needs at least 2 chains and this run has 1, so nothing checks that the "
            "chain has converged. Run num_chains >= 2 (4 is usual)."
        )
    labels = row.get("nan_parameters") or []
    huge = [label for label in labels if label.endswith(OVERFLOW)]
    tiny = [label for label in labels if label.endswith(UNDERFLOW)]
    labels = [label for label in labels if not label.endswith((OVERFLOW, UNDERFLOW))]
    if labels:
        messages.append(
            f"R-hat, ESS or MCSE is NaN, or the draws never changed, for {_listed(labels)}: the "
            "parameter never changed in any chain, or its draws hold NaN or inf values, so "
            "nothing was learned about it. Check that the log density depends on it, that it "
            "is proper (integrable) in it, and its starting point and scale."
            + (
                " An entry that its parameter's transform fixes (the zeros and first diagonal "
                "entry of a Cholesky factor drawn from LKJCholesky) never changes, as expected: "
                "those are no fault."
                if any(label.endswith("(never changed)") for label in labels)
                else ""
            )
        )
    if huge:
        messages.append(
            f"MCSE is NaN for {_listed(huge)}: the draws are finite, but their squares "
            "overflow the floating type, so their variance is inf. Report the parameter in "
            "other units (divide it by a scale)."
        )
    if tiny:
        messages.append(
            f"MCSE is 0 or NaN for {_listed(tiny)}: the draws change, but by so little that "
            "the squares of their deviations underflow the floating type, so their variance "
            "reads 0 (an exact mean, which it is not). Report the parameter in other units "
            "(multiply it by a scale)."
        )
    return " ".join(messages) or None


FLAG_RULES = (
    ("divergences", _divergences_rule),
    ("rhat", _rhat_rule),
    ("low_ess", _low_ess_rule),
    ("acceptance", _acceptance_rule),
    ("envelope", _envelope_rule),
    ("pareto_k", _pareto_k_rule),
    ("unsettled", _unsettled_rule),
    ("stuck_chains", _stuck_chains_rule),
    ("nonfinite", _nonfinite_rule),
    ("nan_stats", _nan_stats_rule),
    ("imprecise", _precision_rule),
    ("ground_truth", _ground_truth_rule),
)
