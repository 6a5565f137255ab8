"""What an exact sampler (rejection, ARS) refuses of :func:`infer.sample`'s arguments: those
of Markov-chain runs (thinning, outputs, resuming, rules, superchains) and starting points."""

from __future__ import annotations

from infer import validation


def refuse_for_exact(
    sampler, resume, checkpoint, until, store=None, keep=None, thin=None, superchains=None
) -> None:
    """A ``ValueError`` for the arguments of Markov-chain runs an exact sampler was given."""
    if thin is not None and validation.positive_int("thin", thin) != 1:
        raise ValueError(
            f"{sampler.name} makes exact independent draws: thin={thin!r} would only "
            "discard some of them. Leave thin out, and draw num_samples as many."
        )
    stored = [name for name, value in (("store", store), ("keep", keep)) if value is not None]
    if stored:
        raise ValueError(
            f"{sampler.name} makes all its draws in memory at once, so {' and '.join(stored)} "
            f"{'does' if len(stored) == 1 else 'do'} not apply (they cut what Markov-chain "
            "runs store as they go): pick draws from result.draws, or save the result with "
            "result.save(path)."
        )
    used = [
        name
        for name, value in (
            ("resume", resume),
            ("checkpoint", checkpoint),
            ("until", until),
            ("superchains", superchains),
        )
        if value is not None
    ]
    if used:
        verb = "does" if len(used) == 1 else "do"
        raise ValueError(
            f"{sampler.name} makes exact independent draws, so {', '.join(used)} {verb} not "
            "apply: "
            "for more draws, call infer.sample again with another seed and join the results."
        )


def refuse_starts_for_exact(sampler, init, init_jitter) -> None:
    """A ``ValueError`` for a starting point given to an exact sampler."""
    given = [
        name for name, value in (("init", init), ("init_jitter", init_jitter)) if value is not None
    ]
    if given:
        verb = "does" if len(given) == 1 else "do"
        raise ValueError(
            f"{sampler.name} makes exact independent draws, which start from no point, so "
            f"{' and '.join(given)} {verb} not apply: leave {' and '.join(given)} out."
        )
