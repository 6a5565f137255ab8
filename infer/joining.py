"""Joining runs of the same chains along the draw axis: a run and its resumed continuations,
checked to continue one another."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from infer.result import Result


def _span(result: Result):
    """``(seed, start, stop)``: which of its chains' draws ``result`` holds (from its state,
    or from ``info["draw_range"]``, which a saved run keeps), or ``None`` when unknown."""
    if result.state is not None:
        stop = result.state.num_draws
        return result.state.seed, stop - result.num_samples, stop
    span = result.info.get("draw_range")
    return None if span is None else (result.seed, int(span[0]), int(span[1]))


def _gap(earlier: Result, later: Result) -> list[str]:
    """Why ``later`` is not the continuation of ``earlier`` by their seeds and where their
    draws sit; for results that do not record it (``from_draws``, ADVI), only draws equal
    to the earlier ones are refused."""
    spans = _span(earlier), _span(later)
    if None in spans:
        return ["it holds the same draws as the one before"] if _same_draws(earlier, later) else []
    (seed_a, _, stop), (seed_b, start, _) = spans
    if not np.array_equal(np.asarray(seed_a), np.asarray(seed_b)):
        return [f"seed: {seed_a!r} != {seed_b!r}"]
    if start != stop:
        return [
            f"it starts after draw {start} of its chains, and the one before ends at draw "
            f"{stop} (pass the results in order, each resumed from the last)"
        ]
    return []


def _same_draws(earlier: Result, later: Result) -> bool:
    """Whether ``later`` starts with ``earlier``'s first draws (up to 10 per chain), judged on
    real-valued draws only (discrete ones repeat by chance)."""
    compared = [
        (np.asarray(earlier.draws[name]), np.asarray(value))
        for name, value in later.draws.items()
        if name in earlier.draws and np.issubdtype(np.asarray(value).dtype, np.floating)
    ]
    count = min([earlier.num_samples, later.num_samples, 10])
    return bool(compared) and all(np.array_equal(a[:, :count], b[:, :count]) for a, b in compared)


#: Groups with a value per draw: joined along the draws when every result has them.
_PER_DRAW = ("log_likelihood", "posterior_predictive", "predictions")


def _joined_groups(results) -> dict:
    """The first result's groups, with those of :data:`_PER_DRAW` joined along the draws, or
    left out (with a warning naming the results without them) when some result lacks one;
    ``predictions_constant_data`` goes with ``predictions``."""
    groups = dict(results[0].groups)
    for name in _PER_DRAW:
        lacking = [i for i, r in enumerate(results) if name not in r.groups]
        if not lacking:
            groups[name] = {
                k: np.concatenate([r.groups[name][k] for r in results], axis=1)
                for k in results[0].groups[name]
            }
            continue
        if len(lacking) < len(results):
            warnings.warn(
                f"concat leaves the group {name} out: results {lacking} have none, and it "
                "holds a value per draw. Compute it on the joined result (infer.predictive).",
                UserWarning,
                stacklevel=3,
            )
        groups.pop(name, None)
        if name == "predictions":
            groups.pop("predictions_constant_data", None)
    return groups


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
        mismatch = mismatch or _gap(results[i - 1], later)
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
    return replace(
        results[-1],
        groups=_joined_groups(results),
        draws=joined("draws"),
        stats=joined("stats"),
        timing=timing,
        num_logdensity_evals=sum(r.num_logdensity_evals for r in results),
        num_grad_evals=sum(r.num_grad_evals for r in results),
        num_warmup=first.num_warmup,
        info=_joined_info(results),
    )


def _joined_info(results) -> dict:
    """The last run's facts, with the draw range of the whole join."""
    info = {**results[0].info, **results[-1].info}
    if all("draw_range" in r.info for r in results):
        info["draw_range"] = [results[0].info["draw_range"][0], results[-1].info["draw_range"][1]]
    else:  # one part's own range would misstate the join's
        info.pop("draw_range", None)
    return info
