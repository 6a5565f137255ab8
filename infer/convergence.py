"""Run until converged: ``infer.sample(..., until=infer.converged(rhat=1.01, ess=400))``.

The driver draws ``num_samples`` per chain at a time and, after each batch, computes
rank-normalised split R-hat and bulk and tail ESS (tail at the 5%/95% quantiles) of every
parameter over all draws so far (in JAX, :mod:`infer.chain_stats`, equal to ArviZ within
1e-5; padded, so that the checks compile one program for the whole run, or one per doubling
of the draws for large runs, not one per check). With superchains (``superchains=``, many
short chains), nested R-hat stands in for R-hat, as in ``infer.compare``. It stops when every
parameter meets both limits, or when ``max_samples`` draws per chain are spent, then with a
warning naming the parameters that fell short. ``result.info["until"]`` records why it
stopped.

The checks read the sampler's parameters as the chains move them, in unconstrained space
(``log tau`` for a scale ``tau``), not the draws the result reports: the ESS are the same
(ranks do not change under the elementwise monotone maps to constrained space), but R-hat's
folded half (of ``|x - median|``) and the quantities a model derives from several parameters
(eight schools' ``theta``) can come out a little above the rule's limit in ``infer.compare``
after a run that stopped as converged. Leave a margin (``rhat=1.005``) where that matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from infer import chain_stats, validation
from infer.reported_names import element_label
from infer.reported_values import default_names

TAIL_PROB = (0.05, 0.95)
ONE_PROGRAM_VALUES = 2**22  # draws x parameters, all chains: pad to max_samples up to here


@dataclass(frozen=True)
class Converged:
    """A stopping rule; see :func:`converged`."""

    rhat: float
    ess: float
    max_samples: int

    def as_dict(self) -> dict:
        return {"rhat": self.rhat, "ess": self.ess, "max_samples": self.max_samples}


def converged(rhat: float = 1.01, ess: float = 400, max_samples: int = 10_000) -> Converged:
    """Stop sampling once every parameter has R-hat at most ``rhat`` and bulk and tail ESS at
    least ``ess``, or after ``max_samples`` draws per chain.

    Args:
        rhat: the largest acceptable rank-normalised split R-hat (> 1).
        ess: the smallest acceptable bulk and tail effective sample size, over all chains.
        max_samples: the budget of kept draws per chain (at least 4, the fewest draws R-hat
            and ESS are computed from).

    Raises:
        ValueError, TypeError: for a limit out of range.
    """
    rhat = validation.positive_float("rhat", rhat, "It is the largest acceptable R-hat.")
    if rhat <= 1.0:
        raise ValueError(f"rhat must be above 1 (R-hat is never below 1); got {rhat}.")
    ess = validation.positive_float("ess", ess, "It is the smallest acceptable ESS.")
    max_samples = validation.positive_int(
        "max_samples", max_samples, "R-hat and ESS need at least 4 draws per chain.", minimum=4
    )
    return Converged(rhat, ess, max_samples)


def shortfalls(positions, rule: Converged, superchain_size: int = 1) -> dict[str, dict]:
    """The parameters that do not meet ``rule``: ``"name[i, j]" -> {"rhat", "ess_bulk",
    "ess_tail"}``, empty when all do; ``"rhat"`` is nested R-hat for superchains.

    Args:
        positions: per-chain positions, leading axes ``(num_chains, num_draws)``.
        superchain_size: chains per superchain (consecutive chains); 1 for none.
    """
    named = default_names(positions)
    rhat = "rhat" if superchain_size == 1 else "rhat_nested"
    num_chains = np.shape(next(iter(named.values())))[0]
    stats = chain_stats.summary_stats(
        named,
        prob=TAIL_PROB,
        statistics=(rhat, "ess_bulk", "ess_tail"),
        padded=_padding(named, rule.max_samples),
        superchain_ids=None if rhat == "rhat" else np.arange(num_chains) // superchain_size,
    )
    failing = {}
    for name in named:
        r = np.atleast_1d(np.asarray(stats[name][rhat], float)).ravel()
        b = np.atleast_1d(np.asarray(stats[name]["ess_bulk"], float)).ravel()
        t = np.atleast_1d(np.asarray(stats[name]["ess_tail"], float)).ravel()
        bad = ~((r <= rule.rhat) & (b >= rule.ess) & (t >= rule.ess))
        event_shape = np.shape(named[name])[2:]
        for i in np.flatnonzero(bad):
            label = element_label(name, event_shape, int(i))
            failing[label] = {"rhat": float(r[i]), "ess_bulk": float(b[i]), "ess_tail": float(t[i])}
    return failing


def _padding(named, max_samples) -> int | bool:
    """How the checks pad the draws: to ``max_samples`` (one program for the whole run) when
    that many draws of every parameter are at most :data:`ONE_PROGRAM_VALUES` values, cheap to
    go through at every check; else to the next power of two (one program per doubling, at
    most twice the work of the real draws)."""
    first = next(iter(named.values()))
    per_draw = sum(math.prod(np.shape(x)[2:]) for x in named.values())
    total = np.shape(first)[0] * max(max_samples, np.shape(first)[1]) * per_draw
    return max(max_samples, np.shape(first)[1]) if total <= ONE_PROGRAM_VALUES else True


def describe(failing: dict[str, dict], min_ess: float, limit: int = 5) -> str:
    """``failing`` in a sentence, the worst ``limit`` first (ESS as :func:`ess_shown` shows
    it against ``min_ess``)."""
    worst = sorted(failing.items(), key=lambda item: min(item[1]["ess_bulk"], item[1]["ess_tail"]))
    parts = [
        f"{name} (R-hat {v['rhat']:.4f}, ESS bulk {ess_shown(v['ess_bulk'], min_ess)}, "
        f"tail {ess_shown(v['ess_tail'], min_ess)})"
        for name, v in worst[:limit]
    ]
    more = f" and {len(failing) - limit} more" if len(failing) > limit else ""
    return ", ".join(parts) + more


def ess_shown(ess: float, min_ess: float) -> str:
    """An ESS as messages show it: rounded as the tables round it (30.7 reads 31), but one
    short of ``min_ess`` by less than the rounding reads with a decimal, rounded down (399.7
    reads 399.7 where rounding read "400 < 400"); NaN as it is."""
    if not math.isfinite(ess):
        return str(ess)
    if round(ess) < min_ess or ess >= min_ess:
        return str(round(ess))
    return f"{math.floor(ess * 10) / 10:.1f}"
