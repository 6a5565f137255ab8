"""The program that reports a run's draws: positions (two leading axes, chains and draws)
to the target's named, constrained values (:func:`constrain_program`)."""

from __future__ import annotations

from collections.abc import Callable

import jax

from infer.placement import PROGRAMS, abstract, sharding_key
from infer.target import Target, program_key


def constrain_program(target: Target) -> Callable:
    """``(positions, data) -> dict`` for positions with two leading axes: a renaming when the
    target has no ``constrain_fn`` (no program), else one program per shape, cached."""
    if target.constrain_fn is None:
        return lambda positions, data: target.constrain(positions)

    def constrain_all(positions, data):
        leaves = jax.tree.leaves(positions)
        lead = leaves[0].shape[:2]
        flat = jax.tree.map(lambda leaf: leaf.reshape((-1, *leaf.shape[2:])), positions)
        named = jax.lax.map(lambda p: target.constrain(p, data), flat, batch_size=4096)
        return {name: value.reshape((*lead, *value.shape[1:])) for name, value in named.items()}

    compiled = jax.jit(constrain_all)

    def run(positions, data):
        placed = tuple(  # a program compiled for one placement refuses another's arrays
            sharding_key(leaf.sharding) if hasattr(leaf, "sharding") else None
            for leaf in jax.tree.leaves((positions, data))
        )
        key = ("constrain", program_key(target), abstract(positions), abstract(data), placed)
        program, _ = PROGRAMS.get(key, lambda: compiled.lower(positions, data).compile())
        return program(positions, data)

    return run
