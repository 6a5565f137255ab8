"""Whether an AIS estimate can be trusted: the warnings :func:`infer.ais` gives after a run."""

from __future__ import annotations

import warnings

import jax
import numpy as np

from infer.caller import INFER_FRAMES

#: Pareto k-hat of a pass's weights above which its estimate is warned about (PSIS's 0.7;
#: the sample-size-dependent limit, 0.53 at 128 chains, flags sound lower bounds too often).
PARETO_K_LIMIT = 0.7
#: Effective sample size of the weights below which ``log_z``'s standard error is no error
#: bar: it is built from that ESS, and from a handful of effective weights it is too noisy
#: itself (runs of 16 to 64 chains with ESS 3 to 8 missed the exact log Z by 5 to 13 of it,
#: with k-hat below 0.7). A floor of 1% of the chains applies too.
MIN_WEIGHTS_ESS = 10.0
#: Mean acceptance below which a temperature's HMC moves count as almost all rejected.
MIN_ACCEPTANCE = 0.05


def too_few_weights(ess: float, num_chains: int) -> bool:
    """Whether an ESS of ``ess`` from ``num_chains`` weights is too small to trust ``log_z``
    or its standard error. Equal weights (``ess == num_chains``: a target equal to its
    prior) have no spread to misjudge, however few."""
    if ess >= num_chains * (1.0 - 1e-6):
        return False
    return not ess >= max(MIN_WEIGHTS_ESS, 0.01 * num_chains)


def warn_if_unreliable(result, target_name: str, num_chains: int, step_size=None) -> None:
    """A DiagnosticWarning, pointing at :func:`infer.ais`'s caller, for non-finite log
    densities along the chains, HMC moves that were almost all rejected at some temperatures,
    crossed bounds, heavy-tailed weights and a weights' ESS too small to trust ``log_z``.
    ``result``: an :class:`infer.annealed.AISResult`; ``step_size``: the one fixed step size,
    or ``None`` when they were tuned."""
    from infer.diagnostics import DiagnosticWarning

    nonfinite, ess = result.num_nonfinite, result.ess
    if nonfinite:
        warnings.warn(
            f"ais on {target_name}: the log density was NaN or +inf {nonfinite} times along "
            "the chains; those chains got weight zero. Check the log density's numerics, and "
            "that the prior's support covers the target's (the path's densities mix both).",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    stuck = np.flatnonzero(np.asarray(result.acceptance) < MIN_ACCEPTANCE)
    if stuck.size:
        betas = np.asarray(result.temperatures)[1:][stuck]
        shown = np.array2string(betas, precision=3, threshold=6)
        warnings.warn(
            f"ais on {target_name}: the HMC moves were almost all rejected (acceptance below "
            f"{MIN_ACCEPTANCE}) at {stuck.size} of {result.acceptance.size} temperatures, "
            f"inverse temperatures {shown}: the chains stood still there. "
            + _why_stuck(step_size, nonfinite, result.acceptance.size),
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    if result.log_z_upper is not None and result.log_z > result.log_z_upper:
        warnings.warn(
            f"ais on {target_name}: the bounds cross (log_z {result.log_z:.4f} above "
            f"log_z_upper {result.log_z_upper:.4f}): they bound log Z only on average, and "
            "here their noise is larger than their gap, so neither is within the gap of the "
            "truth. Use more temperatures (num_temperatures) or more chains.",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    threshold = PARETO_K_LIMIT
    for k_hat, estimate in ((result.pareto_k, "log_z"), (result.upper_pareto_k, "log_z_upper")):
        if k_hat is not None and not k_hat <= threshold:
            warnings.warn(
                f"ais on {target_name}: the weights behind {estimate} are heavy-tailed (Pareto "
                f"k-hat {k_hat:.2f} > {threshold:.2f}), so {estimate} and its standard error "
                "are unreliable: its error can be several times that standard error. Use more "
                "temperatures (num_temperatures), more leapfrog steps or more chains"
                + (
                    "; and one exact posterior draw per reverse chain rather than one shared."
                    if estimate == "log_z_upper"
                    else "."
                ),
                DiagnosticWarning,
                skip_file_prefixes=INFER_FRAMES,
            )
    if too_few_weights(ess, num_chains):
        warnings.warn(
            f"ais on {target_name}: the weights' effective sample size is {ess:.1f} of "
            f"{num_chains} chains, so log_z and its standard error are unreliable (from fewer "
            f"than {MIN_WEIGHTS_ESS:g} effective weights the standard error is too noisy to be "
            "an error bar). "
            + (
                f"Use {MIN_WEIGHTS_ESS:g} chains at least (num_chains): the ESS is at most "
                "their number."
                if num_chains < MIN_WEIGHTS_ESS
                else "Use more temperatures (num_temperatures), more leapfrog steps or more chains."
            ),
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def _why_stuck(step_size, nonfinite: int, num_temperatures: int) -> str:
    """Why HMC moves were rejected at some temperatures, from what the run tells apart."""
    if nonfinite:
        return (
            "The log density was NaN or +inf along the chains (above), which rejects every "
            "move that reaches it: fix the log density (or the prior's support) first."
        )
    if step_size is not None:
        return (
            f"step_size={step_size:g} is too large there: lower it, or leave it out to tune "
            "one per temperature."
        )
    if num_temperatures == 1:
        return (
            "With one temperature the step size had no earlier temperature to be tuned at: "
            "use more temperatures (num_temperatures), or give a step_size that suits it."
        )
    return (
        "The step sizes tuned at one temperature did not suit the next: use more "
        "temperatures (num_temperatures), or a step_size that suits every one."
    )


#: Prior draws mirrored across the support's bounds to look for target mass outside it.
NUM_MIRRORED = 64


def warn_if_target_outside_prior(target, prior, shape: tuple[int, ...], key) -> None:
    """A DiagnosticWarning when ``target``'s log density is finite at points outside
    ``prior``'s support: annealing moves only where the prior has mass, so ``log_z`` would
    count the target's mass there alone, with no other sign. The points are
    :data:`NUM_MIRRORED` prior draws mirrored across the support's lower and upper bounds
    (a support without bounds, the real line, has nothing to check); ``shape`` is the
    position's."""
    from infer.diagnostics import DiagnosticWarning

    support = prior.support
    while hasattr(support, "base_constraint"):  # .to_event(...) wraps the elementwise one
        support = support.base_constraint
    bounds = [getattr(support, name, None) for name in ("lower_bound", "upper_bound")]
    if all(bound is None for bound in bounds):
        return
    draws = np.asarray(prior.sample(key, (NUM_MIRRORED,)), np.float64).reshape(-1, *shape)
    for bound in bounds:
        if bound is None:
            continue
        mirrored = 2.0 * np.asarray(bound, np.float64) - draws
        outside = ~np.asarray(support(mirrored)).reshape(len(draws), -1).all(axis=1)
        points = mirrored[outside].astype(jax.numpy.result_type(float))  # as ais traces it
        if not len(points):
            continue
        values = np.asarray(jax.vmap(target.logdensity)(points))
        finite = np.isfinite(values)
        if finite.any():
            example = np.array2string(points[np.argmax(finite)].ravel()[:4], precision=3)
            warnings.warn(
                f"ais on {target.name}: the target's log density is finite outside the "
                f"prior's support (at {int(finite.sum())} of {len(points)} points mirrored "
                f"across its bound {np.asarray(bound).ravel()[:4]}, e.g. {example}), where "
                "annealing never goes: log_z would count only the target's mass inside the "
                "prior's support. Give a prior whose support covers the target's (e.g. a "
                "Normal for a HalfNormal), or write the target over the prior's support.",
                DiagnosticWarning,
                skip_file_prefixes=INFER_FRAMES,
            )
            return
