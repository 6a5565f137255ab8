"""The pointwise log likelihood of every draw: the ArviZ ``log_likelihood`` group that
``az.loo`` and ``az.compare`` read.

One vectorised pass over the draws on the device, in chunks of draws sized so that a chunk's
draws x observations stay under :data:`CHUNK_BYTES`, whatever the number of observations;
the chunk program is compiled once per shape (data are its arguments).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from infer.base import IdentityKey
from infer.placement import PROGRAMS, abstract, to_host
from infer.target import Target, program_key

#: Bytes of log likelihoods one chunk computes at most (draws x observations x 4).
CHUNK_BYTES = 2**27


def pointwise(target: Target, positions, program_draws: int | None = None) -> dict | None:
    """name -> ``(num_chains, num_draws, *observation_shape)`` log likelihoods, or ``None``
    for a target without a ``loglik_fn``.

    Args:
        positions: the unconstrained draws, leading axes ``(num_chains, num_draws)`` (numpy).
        program_draws: the draws one call of the compiled program takes (padded), at most;
            give the same for pieces of different lengths (a store's chunks) so that they
            share one program. Default: all the draws, within :data:`CHUNK_BYTES`.
    """
    if target.loglik_fn is None:
        return None
    data = target.data
    lead = jax.tree.leaves(positions)[0].shape[:2]
    flat = jax.tree.map(lambda leaf: leaf.reshape((-1, *leaf.shape[2:])), positions)
    total = lead[0] * lead[1]
    example = jax.tree.map(lambda leaf: leaf[0], flat)
    shapes = jax.eval_shape(target.bound_loglik(target.data), example)
    per_draw = sum(math.prod(s.shape) for s in shapes.values()) * 4
    size = int(max(1, min(program_draws or total, CHUNK_BYTES // max(per_draw, 1))))
    program = _program(target, size, flat, data)
    parts = []
    for start in range(0, total, size):
        chunk = jax.tree.map(lambda leaf, s=start: _padded(leaf[s : s + size], size), flat)
        parts.append((to_host(program(chunk, data)), start))
    out = {}
    for name in shapes:
        pieces = [part[name][: min(size, total - start)] for part, start in parts]
        values = np.concatenate(pieces, axis=0)
        out[name] = values.reshape((*lead, *values.shape[1:]))
    return out


def _padded(leaf, size: int):
    """``leaf`` with its first axis padded (by repeating its first row) to ``size``."""
    missing = size - leaf.shape[0]
    if missing <= 0:
        return leaf
    return np.concatenate([leaf, np.repeat(leaf[:1], missing, axis=0)], axis=0)


def _program(target: Target, size: int, flat, data):
    """The compiled ``(chunk of draws, data) -> dict`` for ``size`` draws at a time."""
    example = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct((size, *leaf.shape[1:]), leaf.dtype), flat
    )
    key = (
        "loglik",
        program_key(target),
        IdentityKey(target.loglik_fn),
        abstract(example),
        abstract(data),
    )

    def build():
        def run(chunk, data):
            return jax.vmap(target.bound_loglik(data))(chunk)

        return jax.jit(run).lower(example, data).compile()

    program, _ = PROGRAMS.get(key, build)
    return program
