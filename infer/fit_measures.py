"""Measures of whether an ADVI fit had settled at its optimum, read from its ``info``: the
ELBO's trend over the averaged steps, and the gap between the importance-sampling estimate
of log Z and the ELBO (Yao, Vehtari, Simpson, Gelman 2018)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp  # not scipy.stats: 2 s to import

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


def kl_gap(log_weight: np.ndarray) -> float:
    """``log mean exp(log_weight) - mean(log_weight)`` of the (num_draws,) importance log
    weights ``log p(z) - log q(z)``: the importance-sampling estimate of log Z minus the
    ELBO, which estimates KL(q || p) where the weights are reliable (a low Pareto k-hat);
    NaN unless every weight is finite."""
    log_weight = np.asarray(log_weight, np.float64).ravel()
    if log_weight.size == 0 or not np.isfinite(log_weight).all():
        return float("nan")
    return float(logsumexp(log_weight) - np.log(log_weight.size) - np.mean(log_weight))


def max_kl_gap(dimension: int) -> float:
    """The KL(q || p) in nats, ``max(1, 0.1 * dimension)``, above which a fit whose weights are
    reliable is taken to have stopped short: at an optimum of the ELBO, q is narrower than
    the posterior (its weights then have a heavy tail and a high k-hat), while a q wider
    than the posterior, its weights bounded, has not reached it."""
    return max(1.0, 0.1 * dimension)


def is_fit(info: dict) -> bool:
    """Whether a run's ``info`` is a variational fit's (ADVI records its Pareto k-hat)."""
    return "pareto_k" in info


def unsettled(info: dict) -> str | None:
    """Why a fit (its ``info``: ``elbo_trace``, ``num_steps`` by the trace's length,
    ``kl_gap``, ``pareto_k`` and its threshold, ``mean``) had not settled, or None."""
    trace = info.get("elbo_trace", ())
    if collapsed := _collapsed_scales(info):
        return collapsed
    if rising := elbo_rise(trace):
        return (
            f"the ELBO rose by {rising[0]:.3g} over the last {rising[1]} of {len(trace)} "
            "steps (beyond its noise), the steps whose iterates are averaged into the fitted "
            "q: the fit had not settled when they began, so q carries earlier, worse iterates "
            "and its draws and moments are not yet what the family can reach. Raise num_steps "
            "(or learning_rate)."
        )
    gap, k_hat = info.get("kl_gap", np.nan), info.get("pareto_k", np.inf)
    limit = max_kl_gap(len(info.get("mean", ())))
    if k_hat <= info.get("pareto_k_threshold", 0.7) and gap > limit:
        return (
            f"q is about {gap:.3g} nats (KL) from the posterior, past {limit:.3g}: log Z by "
            "importance sampling exceeds the ELBO by that much, and with k-hat "
            f"{k_hat:.2f} the weights are reliable. A q wider than the posterior is no "
            "optimum of the ELBO, so the fit stopped short of it: raise num_steps or "
            "learning_rate (its draws and moments are not yet what the family can reach)."
        )
    return None


def _collapsed_scales(info: dict) -> str | None:
    """Why q's scales collapsed (a marginal sd below 1e-6 of its mean's size: no posterior
    with a density looks so, and float32 draws cannot resolve it), or None: an optimizer
    whose learning rate overshoots drives them there, and more steps do not undo it."""
    if info.get("scale_tril") is None or info.get("mean") is None:
        return None
    mean, scale = np.asarray(info["mean"], float), np.asarray(info["scale_tril"], float)
    sd = np.sqrt(np.sum(np.square(scale), axis=-1)) if scale.ndim == 2 else np.abs(scale)
    tiny = sd < 1e-6 * (1.0 + np.abs(mean))
    if not np.any(tiny):
        return None
    rate = info.get("learning_rate")
    lower = f" (e.g. learning_rate={rate / 10:g}, a tenth)" if isinstance(rate, int | float) else ""
    return (
        f"q's scale collapsed: {int(tiny.sum())} of its {tiny.size} coordinates have a "
        f"standard deviation below 1e-6 of their mean's size (the smallest {sd.min():.2g}), "
        "which no posterior with a density has: the optimizer overshoots, with a learning "
        f"rate too large for this target, and more steps do not undo it. Lower the learning "
        f"rate{lower}."
    )
