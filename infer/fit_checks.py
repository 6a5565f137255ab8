"""Whether an ADVI fit can be trusted: the Pareto k-hat of its importance ratios (Yao,
Vehtari, Simpson, Gelman 2018, "Yes, but did it work?"), its threshold, and the warnings."""

from __future__ import annotations

import warnings

import numpy as np

from infer.flag_rules import outside_support, what_to_try

MIN_KHAT_DRAWS = 20  # fewer importance ratios than this give no Pareto k-hat
#: An ELBO whose trend over the last half of the steps (the averaged ones) rises by more
#: than this many standard errors, and by more than :data:`MIN_ELBO_RISE` nats, had not
#: settled.
ELBO_RISE_SE = 3.0
MIN_ELBO_RISE = 0.1


def elbo_rise(elbo_trace) -> tuple[float, int] | None:
    """``(rise, window)`` when the ELBO rose over the second half of the fit, the steps whose
    iterates are averaged into the fitted ``q``, else None.

    A least-squares line through the finite values of the last half of ``elbo_trace``
    (num_steps,) (at least 20 steps) against their step numbers; ``rise`` is its slope times
    the window. Rising: a slope above :data:`ELBO_RISE_SE` standard errors (the steps'
    estimates taken as independent noise around the line) and a rise above
    :data:`MIN_ELBO_RISE`."""
    trace = np.asarray(elbo_trace, float)
    window = trace.size // 2
    last = trace[trace.size - window :]
    steps = np.flatnonzero(np.isfinite(last)).astype(float)
    last = last[np.isfinite(last)]
    if last.size < 20:
        return None
    steps -= steps.mean()
    slope = float(np.dot(steps, last - last.mean()) / np.dot(steps, steps))
    residual = last - last.mean() - slope * steps
    se = float(np.sqrt(np.dot(residual, residual) / (last.size - 2) / np.dot(steps, steps)))
    rise = slope * window
    return (rise, window) if slope > ELBO_RISE_SE * se and rise > MIN_ELBO_RISE else None


def pareto_k_threshold(num_draws: int) -> float:
    """The k-hat above which importance sampling with ``num_draws`` draws is unreliable:
    ``min(1 - 1 / log10(S), 0.7)`` (Vehtari et al. 2024, "Pareto smoothed importance
    sampling")."""
    return float(min(1.0 - 1.0 / np.log10(max(num_draws, 11)), 0.7))


def warn_if_untrustworthy(
    info: dict, label: str, target_name: str, num_steps: int, total_draws: int
) -> None:
    """A DiagnosticWarning, pointing at :func:`advi`'s caller, for a Pareto k-hat above its
    threshold (or one too few draws to estimate) and for skipped steps, read from ``info``."""
    from infer.diagnostics import DiagnosticWarning

    k_hat, threshold = info["pareto_k"], info["pareto_k_threshold"]
    skipped = info["num_nonfinite_steps"]
    rising = elbo_rise(info.get("elbo_trace", ()))
    if rising:
        warnings.warn(
            f"{label} on {target_name}: the ELBO rose by {rising[0]:.3g} over the last "
            f"{rising[1]} of {num_steps} steps (beyond its noise), the steps whose iterates "
            "are averaged into the fitted q: the fit had not settled when they began, so q "
            "carries earlier, worse iterates and its draws and moments are not yet what the "
            "family can reach. Raise num_steps (or learning_rate).",
            DiagnosticWarning,
            stacklevel=3,
        )
    if total_draws < MIN_KHAT_DRAWS:
        warnings.warn(
            f"{label} on {target_name}: the fit is unchecked: Pareto k-hat needs at least "
            f"{MIN_KHAT_DRAWS} draws and there are {total_draws} (num_chains x num_draws). "
            "Draw more to check it.",
            DiagnosticWarning,
            stacklevel=3,
        )
    elif not np.isfinite(k_hat) or k_hat > threshold:
        if skipped:
            cause = (
                "the fit broke down (steps skipped, below), or the Gaussian approximation misses"
            )
        elif rising:
            cause = "the fit had not settled (above), or the Gaussian approximation misses"
        else:
            cause = (
                f"the fit stopped short of its optimum (num_steps={num_steps} too few, or "
                "learning_rate too small, where the ELBO's trend cannot show it), or the "
                "Gaussian approximation misses"
            )
        warnings.warn(
            f"{label} on {target_name}: Pareto k-hat {k_hat:.2f} > {threshold:.2f}: {cause} "
            "the posterior's shape (heavier tails, a funnel, several modes), so its draws "
            f"and moments cannot be trusted. Try {what_to_try(label.endswith('fullrank'))}, "
            "or MCMC (infer.nuts()).",
            DiagnosticWarning,
            stacklevel=3,
        )
    if outside := info.get("num_nonfinite_draws"):  # zero weights to PSIS: k-hat misses them
        warnings.warn(
            f"{label} on {target_name}: {outside_support(outside, total_draws)}",
            DiagnosticWarning,
            stacklevel=3,
        )
    if skipped:
        warnings.warn(
            f"{label} on {target_name}: {skipped} of {num_steps} steps were skipped "
            "because the ELBO or its gradient was not finite (draws outside the support?). "
            "Try a smaller init_scale or learning_rate.",
            DiagnosticWarning,
            stacklevel=3,
        )


def pareto_k(log_weight: np.ndarray) -> float:
    """Pareto k-hat of the importance ratios ``exp(log_weight)`` (ArviZ's PSIS, whose
    ``psislw`` takes log-likelihoods, hence the sign): ``inf`` for NaN, ``+inf`` or too few
    weights, ``-inf`` when the largest weights are all equal (bounded weights, as when the
    proposal is the target on its support), which ArviZ cannot fit a tail to."""
    from arviz_stats.base import array_stats

    if np.any(np.isnan(log_weight) | (log_weight == np.inf)) or log_weight.size < MIN_KHAT_DRAWS:
        return float("inf")
    finite = np.isfinite(log_weight)
    if not finite.any():
        return float("inf")
    # Zero weights (draws where p vanishes) stay in, as the smallest weights there are.
    floor = np.min(log_weight[finite]) - 50.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            _, k_hat = array_stats.psislw(-np.where(finite, log_weight, floor))
        except ValueError as err:  # the largest weights all equal: bounded, no tail to fit
            if "tail values are the same" not in str(err):
                raise
            return float("-inf")
    return float(k_hat)
