"""Results named for a table or a plot: one result, a list of them (named by sampler) or a
dict (as it is)."""

from __future__ import annotations

from infer.result import Result


def by_name(results) -> dict:
    """A dict name -> result of one result (named by its sampler), a list or tuple of them
    (named by sampler; a repeated sampler's later runs ``nuts_2``, ``nuts_3``, ...) or a dict
    (as it is). Anything else is returned as it is, for the caller to refuse."""
    if isinstance(results, Result):
        return {results.sampler: results}
    if hasattr(results, "_fields") and hasattr(results, "log_z"):  # infer.ais's AISResult
        raise TypeError(
            f"results must be an infer.Result, or a list or dict of them; got "
            f"{type(results).__name__}, an estimate of log Z (its .log_z and .log_z_se), "
            "whose final positions are weighted draws, not a run's chains."
        )
    if not isinstance(results, list | tuple):
        return results
    named, seen = {}, {}
    for i, result in enumerate(results):
        if not isinstance(result, Result):
            raise TypeError(
                f"results[{i}] must be an infer.Result; got {type(result).__name__}. "
                "Wrap draws made elsewhere with infer.Result.from_draws(draws)."
            )
        base = result.sampler
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}_{seen[base]}"
        while name in named:  # a run named "nuts_2" by its sampler
            seen[base] += 1
            name = f"{base}_{seen[base]}"
        named[name] = result
    return named
