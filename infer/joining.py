"""Joining runs of the same chains along the draw axis: a run and its resumed continuations,
checked to continue one another."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from infer.result import Result


def _gap(earlier: Result, later: Result) -> list[str]:
    """Why ``later`` is not the continuation of ``earlier`` by their chains' states (seed and
    draws so far), or nothing when either has no state to tell."""
    if earlier.state is None or later.state is None:
        return []
    if not np.array_equal(np.asarray(earlier.state.seed), np.asarray(later.state.seed)):
        return [f"seed: {earlier.state.seed!r} != {later.state.seed!r}"]
    start = later.state.num_draws - later.num_samples
    if start != earlier.state.num_draws:
        return [
            f"it starts after draw {start} of its chains, and the one before ends at draw "
            f"{earlier.state.num_draws} (pass the results in order, each resumed from the last)"
        ]
    return []


def concat(*results: Result) -> Result:
    """Join runs of the same chains along the draw axis: a run and its resumed continuations
    (``infer.sample(..., resume=first)``), in order.

    The draws and stats are concatenated, costs and timings added, and the state is the last
    one, so the joined result can be resumed again.

    Raises:
        ValueError: when the results do not continue one another (other chains, sampler or
            target, or draw shapes).
    """
    if len(results) == 1 and isinstance(results[0], (list, tuple)):
        results = tuple(results[0])
    if not results:
        raise ValueError("concat needs at least one result.")
    for i, result in enumerate(results):
        if not isinstance(result, Result):
            raise TypeError(f"results[{i}] must be an infer.Result; got {type(result).__name__}.")
    first = results[0]
    for i, later in enumerate(results[1:], start=1):
        mismatch = [
            f"{what}: {a!r} != {b!r}"
            for what, a, b in (
                ("sampler", first.sampler, later.sampler),
                ("target", first.target, later.target),
                ("num_chains", first.num_chains, later.num_chains),
                ("draw names", sorted(first.draws), sorted(later.draws)),
                ("stat names", sorted(first.stats), sorted(later.stats)),
            )
            if a != b
        ]
        mismatch += [
            f"shape of {name!r}: {first.draws[name].shape[2:]} != {later.draws[name].shape[2:]}"
            for name in first.draws
            if name in later.draws and first.draws[name].shape[2:] != later.draws[name].shape[2:]
        ]
        mismatch += _gap(results[i - 1], later)
        if mismatch:
            raise ValueError(
                f"results[{i}] does not continue the results before it: "
                + "; ".join(mismatch)
                + "."
            )

    def joined(group: str) -> dict:
        return {
            name: np.concatenate([getattr(r, group)[name] for r in results], axis=1)
            for name in getattr(first, group)
        }

    timing = {
        name: float(sum(r.timing.get(name, float("nan")) for r in results)) for name in first.timing
    }
    groups = dict(first.groups)
    for name in ("log_likelihood", "posterior_predictive"):
        if all(name in r.groups for r in results):
            groups[name] = {
                k: np.concatenate([r.groups[name][k] for r in results], axis=1)
                for k in first.groups[name]
            }
        else:
            groups.pop(name, None)
    return replace(
        results[-1],
        groups=groups,
        draws=joined("draws"),
        stats=joined("stats"),
        timing=timing,
        num_logdensity_evals=sum(r.num_logdensity_evals for r in results),
        num_grad_evals=sum(r.num_grad_evals for r in results),
        num_warmup=first.num_warmup,
        info={**first.info, **results[-1].info},
    )
