"""The advance program's loop over steps ``t_start <= t < t_stop``, in blocks whose trip
count XLA knows.

The bounds are traced, so that one compiled program serves segments of any length. A loop
with traced bounds is a ``while`` whose condition XLA must evaluate every iteration: on a CPU
that is a comparison on the host, free; on a GPU the condition is copied to the host and the
stream waits for it every step, so the host cannot queue the next step's kernels ahead and
every launch's latency shows. In BlackJAX's ``lax.scan`` loop (a trip count known when
compiling) it does not: at one chain on an H200 its random-walk step took 11.4 µs against
infer's 31 µs (``benchmarks/results/sweep_gpu.json`` at ``9015442``). On an accelerator the
steps therefore run in blocks of a fixed length: an outer loop over blocks (one wait a
block) and an inner one of known trip count. A segment whose length is not a multiple of the
block computes the steps past its end and discards them (``active`` is False there): the
same steps as one at a time (bit for bit on a CPU, where the tests force blocks; not yet
checked on a GPU, where XLA may fuse the inner loop's steps differently). The runner makes
segments whole blocks but for the last of each phase (:func:`round_up`, chunk capacities
that are multiples of the block).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax

#: Steps per block on an accelerator, and on CPU devices (1: the plain loop; the tests set
#: more to run the blocked loop here).
STEPS_PER_BLOCK = 16
CPU_STEPS_PER_BLOCK = 1


def steps_per_block(sharding, capacity: int) -> int:
    """The block length for chains placed by ``sharding``: :data:`CPU_STEPS_PER_BLOCK` on
    CPU devices, else :data:`STEPS_PER_BLOCK`; at most ``capacity`` (many chains keep few
    draws a chunk, and a chunk's steps are then a whole number of blocks)."""
    on_cpu = all(device.platform == "cpu" for device in sharding.device_set)
    return max(1, min(CPU_STEPS_PER_BLOCK if on_cpu else STEPS_PER_BLOCK, capacity))


def run_steps(t_start, t_stop, body: Callable, loop, block: int):
    """``body(t, loop, active) -> loop`` for ``t_start <= t < t_stop``. With ``block == 1``
    ``active`` is the Python ``True`` (nothing to mask); else a traced bool, False for the
    steps past ``t_stop`` that fill the last block, whose results ``body`` must discard
    (:func:`masked`)."""
    if block == 1:
        return jax.lax.fori_loop(t_start, t_stop, lambda t, state: body(t, state, True), loop)

    def one_block(i, state):
        first = t_start + i * block
        return jax.lax.fori_loop(
            0, block, lambda j, inner: body(first + j, inner, first + j < t_stop), state
        )

    num_blocks = (t_stop - t_start + block - 1) // block
    return jax.lax.fori_loop(0, num_blocks, one_block, loop)


def masked(active, new, old):
    """``new`` where ``active``, else ``old`` (pytrees of the same structure)."""
    if active is True:
        return new
    return jax.tree.map(lambda n, o: jax.lax.select(active, n, o), new, old)


def write_rows(buffers, row, slot, active):
    """``buffers`` (a pytree of ``(capacity, num_chains, ...)``) with ``row`` (the same tree
    of ``(num_chains, ...)``) at ``[slot]``: one contiguous row a step (chain-major, 1,024
    chains touch a cache line per chain and statistic: ~10% of a random-walk step on the
    logistic regression). A discarded step (``active`` False) writes the slot's row back."""
    if active is not True:
        old = jax.tree.map(lambda b: jax.lax.dynamic_index_in_dim(b, slot, 0, False), buffers)
        row = masked(active, row, old)
    return jax.tree.map(
        lambda b, v: jax.lax.dynamic_update_index_in_dim(b, v, slot, axis=0), buffers, row
    )


def round_up(steps: int | None, block: int, thin: int = 1) -> int | None:
    """``steps`` rounded up to a whole number of blocks that ends at a kept draw (a multiple
    of ``lcm(block, thin)``); unchanged with ``block == 1`` or ``steps`` None."""
    if steps is None or block == 1:
        return steps
    unit = math.lcm(block, thin)
    return -(-steps // unit) * unit
