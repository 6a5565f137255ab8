"""Joining runs of the same chains along the draw axis: a run and its resumed continuations,
checked to continue one another."""

from __future__ import annotations

import warnings
from dataclasses import replace

import jax
import numpy as np

from infer.base import settings_json
from infer.caller import INFER_FRAMES
from infer.fit_measures import is_fit
from infer.keys import same_stream
from infer.result import Result
from infer.run_state import differences, host_array


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
    if not same_stream(seed_a, seed_b):  # the seed s and jax.random.key(s) are one stream
        return [f"seed: {seed_a!r} != {seed_b!r}"]
    if start != stop:
        return [
            f"it starts at draw {start} of its chains, and the one before ends at draw "
            f"{stop} (pass the results in order, each resumed from the last)"
        ]
    return []


def _precision_difference(earlier: Result, later: Result, i: int) -> list[str]:
    """The draws of one float width in ``earlier`` and another in ``later``: runs made with
    64-bit floats off and on, said in words (their states' fingerprints show it as tree
    descriptions)."""
    for name in earlier.draws:
        a, b = np.asarray(earlier.draws[name]).dtype, np.asarray(later.draws.get(name, [])).dtype
        if name in later.draws and a != b and a.kind == b.kind == "f":
            return [
                f"draws[{name!r}] are {a} in results[{i - 1}] and {b} in results[{i}]: the "
                "runs were made with 64-bit floats (jax_enable_x64) set otherwise, and a "
                "continuation keeps its run's precision (resume= goes on in it)"
            ]
    return []


def _run_differences(earlier: Result, later: Result, i: int) -> list[str]:
    """How the runs behind two results differ: by their states' fingerprints (sampler
    settings, warm-up, thinning, the target's function and data, the chains' shapes) when
    both have one, else by what every result records (settings, warm-up, thinning)."""
    labels = (f"in results[{i - 1}]", f"in results[{i}]")
    grouping = [r.info.get("superchains") for r in (earlier, later)]
    lines = [] if grouping[0] == grouping[1] else [
        f"superchains: {grouping[0]} {labels[0]}, {grouping[1]} {labels[1]}"
    ]  # fmt: skip
    if earlier.state is not None and later.state is not None:
        return lines + differences(earlier.state.fingerprint, later.state.fingerprint, labels)
    facts = [
        {
            "settings": settings_json(r.settings),
            "num_warmup": str(r.num_warmup),
            "thin": str(r.thin),
        }
        for r in (earlier, later)
    ]
    return lines + differences(*facts, labels)


def _not_resumed_from(earlier: Result, later: Result, i: int) -> list[str]:
    """Why ``later``'s chains did not start where ``earlier``'s stopped, judged by what
    warm-up tuned (:func:`_tuned`): frozen after warm-up, so a resumed run ends with what it
    started with. Empty when they agree, when a result has no state, or when part of a state
    is on another process."""
    if earlier.state is None or later.state is None:
        return []
    tuned = [_tuned(r.state) for r in (earlier, later)]
    if not all(getattr(leaf, "is_fully_addressable", True) for leaf in tuned[0] + tuned[1]):
        return []
    if [_exact(leaf) for leaf in tuned[0]] == [_exact(leaf) for leaf in tuned[1]]:
        return []
    return [
        "its chains' warm-up-tuned values (step size, proposal scale, mass matrix), which a "
        f"resumed run keeps, are not those results[{i - 1}]'s chains ended with, so it was not "
        f"resumed from results[{i - 1}] (was that run made again with another init or "
        "init_jitter?). Pass the result it was resumed from"
    ]


def _tuned(state) -> list:
    """The leaves of what warm-up tuned, frozen after it: the carry's adaptation state and
    parameters, and any ``adapt_state`` within the kernel's states (NumPyro's kernels keep
    their step size and mass matrix there)."""
    carry = state.carry
    inner = [
        leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(carry.kernel_state)[0]
        if any(getattr(key, "name", None) == "adapt_state" for key in path)
    ]
    return jax.tree.leaves((carry.adapt_state, carry.params)) + inner


def _exact(leaf) -> tuple:
    """A leaf's shape, dtype and bytes: equal only when bit for bit equal (NaNs too)."""
    array = host_array(leaf)
    return array.shape, array.dtype, array.tobytes()


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
                skip_file_prefixes=INFER_FRAMES,
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
        ValueError: when the results do not continue one another: other chains, sampler,
            sampler settings, target or data, warm-up, thinning or draw shapes; out of order;
            or, for results with a state, chains that did not start where the ones before
            stopped (another init or init_jitter, judged by the values warm-up tuned).
    """
    if len(results) == 1 and isinstance(results[0], (list, tuple)):
        results = tuple(results[0])
    if not results:
        raise ValueError("concat needs at least one result.")
    for i, result in enumerate(results):
        if not isinstance(result, Result):
            raise TypeError(f"results[{i}] must be an infer.Result; got {type(result).__name__}.")
    first = results[0]
    fits = [i for i, r in enumerate(results) if is_fit(r.info)]
    if fits and len(results) > 1:
        raise ValueError(
            f"results{fits} are variational fits' draws (ADVI): each fit is an approximation "
            "of its own, and concat joins a run and its continuations. Draw more from one "
            "fit (infer.advi(..., num_draws=...))."
        )
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
        precision = _precision_difference(results[i - 1], later, i)
        differences = _run_differences(results[i - 1], later, i)
        if precision:  # said in words: the positions' tree descriptions say it again
            differences = [line for line in differences if not line.startswith("positions:")]
        mismatch += precision + differences
        gap = _gap(results[i - 1], later)
        seeds = [line for line in gap if line.startswith("seed")]  # said beside the rest
        mismatch = mismatch + seeds if mismatch else gap
        mismatch = mismatch or _not_resumed_from(results[i - 1], later, i)
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
        versions=_joined_versions(results),
    )


def _joined_versions(results) -> dict | None:
    """The versions the joined runs were made with: theirs where they agree (``None``: this
    process's), else each package's distinct versions in order, ``"0.11.2 + 0.12.1"``."""
    recorded = [result.versions for result in results]
    if all(one == recorded[0] for one in recorded):
        return recorded[0]
    from infer.version import versions

    now = versions()
    filled = [now if one is None else one for one in recorded]
    names = dict.fromkeys(name for one in filled for name in one)
    return {
        name: " + ".join(dict.fromkeys(str(one.get(name, "?")) for one in filled)) for name in names
    }


#: Counts in a run's ``info``, added up over the joined runs (chain by chain where a list).
_COUNTS = ("num_proposals", "num_accepted", "nonfinite_proposals", "envelope_violations")
#: Means per draw in a run's ``info``, weighted by the joined runs' accepted draws.
_PER_DRAW_MEANS = ("density_evaluations_per_draw", "density_evaluations_needed_per_draw")


def _joined_info(results) -> dict:
    """The last run's facts, with the draw range of the whole join, its counts added up (an
    exact sampler's proposals and acceptances, with the acceptance rate they give; the
    proposals whose log density was not finite; envelope violations), the largest envelope
    ratio, and the chains that never moved left to be read from the joined draws."""
    info = {**results[0].info, **results[-1].info}
    for key in _COUNTS:
        if all(key in r.info for r in results):
            info[key] = np.sum([np.asarray(r.info[key]) for r in results], axis=0).tolist()
    if all("acceptance_rate" in r.info for r in results) and info.get("num_proposals"):
        info["acceptance_rate"] = info["num_accepted"] / info["num_proposals"]
    if all("max_envelope_ratio" in r.info for r in results):
        info["max_envelope_ratio"] = max(r.info["max_envelope_ratio"] for r in results)
    weights = [  # per accepted draw (ARS's), which may run past the draws kept
        r.info.get("num_accepted", r.num_chains * r.num_samples) for r in results
    ]
    for key in _PER_DRAW_MEANS:
        if all(key in r.info for r in results):
            info[key] = float(np.average([r.info[key] for r in results], weights=weights))
    info.pop("stuck_chains", None)  # a chain stuck in one part may have moved in another
    if all("draw_range" in r.info for r in results):
        info["draw_range"] = [results[0].info["draw_range"][0], results[-1].info["draw_range"][1]]
    else:  # one part's own range would misstate the join's
        info.pop("draw_range", None)
    if "until" not in results[-1].info:  # an earlier part's stop is not the join's
        info.pop("until", None)
    return info
