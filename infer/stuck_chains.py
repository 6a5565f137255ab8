"""Chains that never moved: which they are, and why, as far as a run's statistics tell (for
the ``stuck_chains`` flag of :func:`infer.compare` and the warnings after sampling)."""

from __future__ import annotations

import numpy as np

from infer import draw_blocks
from infer.result import Result


def chain_list(chains: list[int], most: int = 10) -> str:
    """Chain indices as a message shows them: all of up to ``most``, else the first ``most``
    and how many more (a run of thousands of chains must not print them all)."""
    chains = list(chains)
    if len(chains) <= most:
        return str(chains)
    return f"{chains[:most]} and {len(chains) - most:,} more ({len(chains):,} in all)"


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


#: A chain that never moved, whose own acceptance probabilities made that likelier than this,
#: and under which it would still have expected to move (at least :data:`SOME_MOVES` times),
#: is read as a run too short to tell, not a broken chain.
STILL_BY_CHANCE = 1e-3
SOME_MOVES = 0.05


def _acceptance_of(result: Result, stuck: list[int]) -> np.ndarray | None:
    """``(len(stuck), draws)``: the acceptance probabilities the run recorded for the chains
    of ``stuck`` (``stats["acceptance_rate"]``, one per kept draw, clipped to [0, 1]), or None
    when it recorded none (or non-finite ones)."""
    rates = result.stats.get("acceptance_rate")
    if rates is None or not stuck:
        return None
    rows = [block[stuck] for block in draw_blocks.blocks(rates)]  # a store's in blocks
    rates = np.clip(np.concatenate(rows, axis=1).astype(float), 0.0, 1.0)[:, 1:]  # see why_stuck
    return rates if rates.ndim == 2 and np.isfinite(rates).all() else None


def why_stuck(result: Result, stuck: list[int]) -> str:
    """Why chains never moved, as far as the run's statistics tell: from the steps after the
    first kept draw (a chain that moved into its first draw and never left it did not move in
    its draws; that first step's acceptance made a short run's chance read as broken)."""
    rates = _acceptance_of(result, stuck)
    thin = max(int(result.thin), 1)  # a kept draw stands for thin steps
    expected = None if rates is None else thin * rates.sum(axis=1)  # moves expected
    if expected is not None and (expected >= SOME_MOVES).all():
        with np.errstate(divide="ignore"):  # the chance that no step moved: prod(1 - a)
            chance = np.exp(thin * np.log1p(-rates).sum(axis=1))
        if (chance > STILL_BY_CHANCE).all():
            steps = rates.shape[1] * thin
            return (
                f"their acceptance probabilities expected {expected.min():.2g} to "
                f"{expected.max():.2g} moves in {steps} steps, so standing still had a chance "
                f"of {chance.min():.2g} or more per chain: the run is too short to tell a stuck "
                "chain from an unlucky one, and each of these chains' draws is one point. Run "
                "more draws (num_samples)."
            )
    accepted = result.stats.get("is_accepted")  # the decisions, where the sampler gives them
    accepted = None if accepted is None else np.asarray(accepted)[stuck][:, 1:]
    if accepted is not None and accepted.size and np.mean(accepted) > 0.5:
        return (
            f"{np.mean(accepted):.0%} of its proposals were accepted, yet "
            "none moved it: the proposal is the current point (a step size of zero, or a step "
            "that does not use its noise). Check how the sampler builds its proposal."
        )
    rejected = "every proposal was rejected"
    if accepted is None and rates is None:  # neither decisions nor their probabilities
        rejected = (
            "its statistics do not say whether its proposals were accepted: either the "
            "proposal is the current point (check how the sampler builds it), or " + rejected
        )
    nonfinite = result.stats.get("nonfinite")
    every_one_nonfinite = nonfinite is not None and np.asarray(nonfinite)[stuck].all()
    if not every_one_nonfinite and "proposal" in result.settings:  # a fixed proposal (IMH)
        return (
            f"{rejected} (a start in a region where the log density is NaN "
            "or -inf, or one where the proposal has no density, from which no proposal is "
            "ever accepted). Check the log density near the start, start elsewhere (init=) or "
            "use a proposal whose support holds the start."
        )
    if not every_one_nonfinite:
        return (
            f"{rejected} (a start in a region where the log density is NaN "
            "or -inf, a step size that collapsed, or one far too large for the target's "
            "curvature: num_warmup=0 on a narrow or correlated target). Check the log density "
            "near the start, start elsewhere (init=), or give a smaller step_size or warm-up."
        )
    return (
        "every proposal had a NaN or +inf log density. For a sampler that follows the "
        "gradient (MALA, HMC, NUTS) the likely cause is a NaN or infinite gradient where the "
        "chains start, which makes every proposal NaN (a kink such as abs(x) or sqrt(x**2) "
        "at 0); for others, a log density that is NaN all around the start; or a step size "
        "so large that the chain diverged in warm-up (its draws then show huge values). "
        "Start elsewhere (init=, or init_jitter > 0), fix the log density there, or give a "
        "smaller step_size."
    )
