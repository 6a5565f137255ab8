"""Whether an ADVI fit can be trusted: the Pareto k-hat of its importance ratios (Yao,
Vehtari, Simpson, Gelman 2018, "Yes, but did it work?"), its threshold, and the warnings;
and the check of the optimizer it is given."""

from __future__ import annotations

import warnings

import numpy as np

from infer.caller import INFER_FRAMES
from infer.fit_measures import unsettled
from infer.flag_rules import outside_support, what_to_try

MIN_KHAT_DRAWS = 20  # fewer importance ratios than this give no Pareto k-hat
SLIGHT_KL_GAP = 0.05  # nats: a k-hat warning over weights this even says so


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
    why = unsettled(info)
    if why:
        warnings.warn(
            f"{label} on {target_name}: {why}", DiagnosticWarning, skip_file_prefixes=INFER_FRAMES
        )
    if total_draws < MIN_KHAT_DRAWS:
        warnings.warn(
            f"{label} on {target_name}: the fit is unchecked: Pareto k-hat needs at least "
            f"{MIN_KHAT_DRAWS} draws and there are {total_draws} (num_chains x num_draws). "
            "Draw more to check it.",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    elif not np.isfinite(k_hat) or k_hat > threshold:
        if skipped:
            cause = (
                "the fit broke down (steps skipped, below), or the Gaussian approximation misses"
            )
        elif why:
            cause = "the fit had not settled (above), or the Gaussian approximation misses"
        else:
            cause = (
                f"the fit stopped short of its optimum (num_steps={num_steps} too few, or a "
                "learning_rate too small to get there or too large to settle, where the "
                "ELBO's trend cannot show it), or the Gaussian approximation misses"
            )
        gap = info.get("kl_gap", float("nan"))
        slight = (
            f" (Its weights vary little: KL(q || p) is about {gap:.2g} nats by importance "
            "sampling, so the tail k-hat fits may rest on a few draws; MCMC tells whether "
            "the fit is off.)"
            if gap < SLIGHT_KL_GAP
            else ""
        )
        warnings.warn(
            f"{label} on {target_name}: Pareto k-hat {k_hat:.2f} > {threshold:.2f}: {cause} "
            "the posterior's shape (heavier tails, a funnel, several modes), so its draws "
            f"and moments cannot be trusted. Try {what_to_try(label.endswith('fullrank'))}, "
            f"or MCMC (infer.nuts()).{slight}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    if outside := info.get("num_nonfinite_draws"):  # zero weights to PSIS: k-hat misses them
        warnings.warn(
            f"{label} on {target_name}: {outside_support(outside, total_draws)}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    if skipped:
        warnings.warn(
            f"{label} on {target_name}: {skipped} of {num_steps} steps were skipped "
            "because the ELBO or its gradient was not finite (draws outside the support?). "
            "Try a smaller init_scale or learning_rate.",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def pareto_k(log_weight: np.ndarray) -> float:
    """Pareto k-hat of the importance ratios ``exp(log_weight)`` (ArviZ's PSIS, whose
    ``psislw`` takes log-likelihoods, hence the sign): ``inf`` for NaN, ``+inf`` or too few
    weights, ``-inf`` when the largest weights are all equal (bounded weights, as when the
    proposal is the target on its support), which ArviZ cannot fit a tail to (it raises, or,
    for weights equal up to float32 round-off, returns NaN: a NaN otherwise is ``inf``)."""
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
    if np.isnan(k_hat):  # no tail fitted: weights equal up to round-off, or a failed fit
        tail = np.sort(log_weight[finite])[-max(3, int(np.ceil(3 * np.sqrt(finite.sum())))) :]
        return float("-inf") if np.ptp(tail) <= 1e-5 * (1.0 + abs(tail[-1])) else float("inf")
    return float(k_hat)


def check_optimizer(optimizer, learning_rate) -> None:
    """A TypeError unless ``optimizer`` is ``None`` or an Optax ``GradientTransformation``,
    a ValueError where ``learning_rate`` is given beside one."""
    if optimizer is None:
        return
    methods = (getattr(optimizer, "init", None), getattr(optimizer, "update", None))
    if not all(callable(method) for method in methods):
        got = type(optimizer).__name__
        if callable(optimizer):  # optax.adam itself, not called
            name = getattr(optimizer, "__name__", got)
            got = f"the function {name}: call it with its settings, e.g. optax.{name}(0.01)"
        raise TypeError(
            f"optimizer must be an Optax GradientTransformation (e.g. optax.adam(0.01), "
            f"optax.chain(...)); got {got}. Leave it out for Adam at learning_rate."
        )
    if learning_rate is not None:
        raise ValueError(
            f"learning_rate={learning_rate!r} was given with optimizer=: the optimizer "
            "sets its own step size. Give one of them (e.g. optimizer=optax.adam(0.05))."
        )
