"""The programs of a Markov-chain run: one to start the chains, one to advance them.

``advance`` runs every chain over a range of global steps ``[t_start, t_stop)``, warm-up and
sampling alike: the phase is data (step ``t`` is a warm-up step when ``t < num_warmup``),
so one compiled program serves both phases, any chunking, a progress bar or none,
checkpoints, resumed runs and runs that continue until converged. Its loop has a traced trip
count, so the same program runs chunks of any length, and the kernel is traced once.

Layout: every per-chain array has the chain axis first. Step ``t`` of chain ``c`` uses the
key ``fold_in(chain_keys[c], t)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer.base import Kernel, hook
from infer.placement import PROGRAMS, abstract, sharding_key
from infer.target import Target, program_key


class Carry(NamedTuple):
    """What the chains carry from one step to the next, chain axis first.

    Attributes:
        kernel_state: the sampler's states.
        adapt_state: the warm-up adaptation's states, or ``None`` when nothing adapts.
        params: the tunable values the next step uses (step size, proposal scale), frozen
            after warm-up; ``None`` for kernels that keep them in their own state.
    """

    kernel_state: Any
    adapt_state: Any
    params: Any


class Chunk(NamedTuple):
    """What one call of the advance program returns.

    Attributes:
        carry: the chains after the last step.
        positions: unconstrained positions of the kept draws, ``(num_chains, capacity, ...)``.
        logdensity: their log densities, ``(num_chains, capacity)``.
        infos: name -> ``(num_chains, capacity)``: the kernel's per-step diagnostics.
        counts: ``(num_logdensity_evals, num_grad_evals)``, each ``(num_chains,)``.
        acceptance_sum: the sum over steps and chains of the acceptance rate (for progress).
    """

    carry: Carry
    positions: Any
    logdensity: jax.Array
    infos: dict
    counts: tuple
    acceptance_sum: jax.Array


class Programs(NamedTuple):
    """The compiled programs of one run's shapes.

    Attributes:
        start: the :class:`Starter` (chain keys, starting points, states).
        advance: ``(carry, chain_keys, data, t_start, t_stop, draw_start) -> Chunk``; it
            keeps the draws of steps ``t >= num_warmup`` whose index after warm-up is a
            multiple of ``thin``, draw ``d`` into slot ``d - draw_start``.
        constrain: ``(positions, data) -> dict`` of named constrained draws, for positions
            with leading axes ``(num_chains, num_draws)``.
        capacity: draws one call of ``advance`` can keep.
        seconds: what compiling them took (0.0 when they came from the cache).
    """

    start: Callable
    advance: Callable
    constrain: Callable
    capacity: int
    seconds: float


class Starter(NamedTuple):
    """The compiled start of the chains (see :func:`starter`)."""

    program: Callable
    cache_key: tuple
    seconds: float

    def __call__(self, key_input, positions, jitter, data):
        return self.program(key_input, positions, np.asarray(jitter, np.float32), data)

    def carry_structs(self):
        """The abstract carry, with its placement on the devices."""
        return _output_structs(self.program)[2]


MAX_HALVINGS = 20


def starter(target: Target, sampler, key_input, positions, data, num_warmup: int) -> Starter:
    """The compiled ``(key_input, positions, jitter, data) -> (chain_keys, positions, carry,
    logdensity)``: one key per chain, each chain's start (its position plus ``jitter`` times
    its own U(-1, 1) noise, the jitter halved up to :data:`MAX_HALVINGS` times for a chain
    whose log density is not finite there), and every chain's state, adaptation state and
    parameters there, with the log density ``(num_chains,)``. Compiled before the main
    program, so that bad starting points are reported before the long compilation.

    Args:
        key_input: a uint32 seed or a typed key (see :func:`infer.keys.as_key`).
        positions: one position per chain (chain axis first), placed on the devices.
        data: the target's data, placed on the devices, or ``None``.
    """
    cache_key = (
        "markov-start",
        program_key(target),
        hook(sampler, "cache_key")(),
        num_warmup,
        str(np.asarray(key_input).dtype) if isinstance(key_input, np.ndarray) else "key",
        abstract(positions),
        abstract(data),
        sharding_key(jax.tree.leaves(positions)[0].sharding),
    )
    parts = _Parts(target, sampler, num_warmup, 1, 1)
    jitter = np.float32(0.0)
    program, seconds = PROGRAMS.get(
        cache_key, lambda: jax.jit(parts.start).lower(key_input, positions, jitter, data).compile()
    )
    return Starter(program, cache_key, seconds)


def programs(
    target: Target,
    sampler,
    start: Starter,
    chain_keys,
    data,
    num_warmup: int,
    thin: int,
    capacity: int,
) -> Programs:
    """The compiled programs for these shapes, from :data:`infer.placement.PROGRAMS` when the
    same log density, sampler options, shapes and placement were compiled before.

    Args:
        start: from :func:`starter` for the same target, sampler and warm-up.
        chain_keys: ``(num_chains,)`` keys, placed like the chains.
        data: the target's data, placed on the devices, or ``None``.
    """
    cache_key = (
        "markov-advance",
        start.cache_key,
        thin,
        capacity,
        str(chain_keys.dtype),
        sharding_key(chain_keys.sharding),
    )

    def build() -> tuple:
        parts = _Parts(target, sampler, num_warmup, thin, capacity)
        carry_structs = start.carry_structs()
        carry_shardings = jax.tree.map(lambda struct: struct.sharding, carry_structs)
        index = jax.ShapeDtypeStruct((), jnp.int32)
        advance = (
            jax.jit(parts.advance, out_shardings=(carry_shardings, None))
            .lower(carry_structs, chain_keys, data, index, index, index)
            .compile()
        )

        def run_advance(carry, chain_keys, data, t_start, t_stop, draw_start) -> Chunk:
            carry, rest = advance(
                carry, chain_keys, data, np.int32(t_start), np.int32(t_stop), np.int32(draw_start)
            )
            return Chunk(carry, *rest)

        return run_advance, _constrain_program(target)

    (advance, constrain), seconds = PROGRAMS.get(cache_key, build)
    return Programs(start, advance, constrain, capacity, start.seconds + seconds)


def _output_structs(compiled):
    """Abstract outputs of a compiled program, with their placement on the devices."""
    return jax.tree.map(
        lambda info, sharding: jax.ShapeDtypeStruct(info.shape, info.dtype, sharding=sharding),
        compiled.out_info,
        compiled.output_shardings,
    )


def _constrain_program(target: Target) -> Callable:
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
        key = ("constrain", program_key(target), abstract(positions), abstract(data))
        program, _ = PROGRAMS.get(key, lambda: compiled.lower(positions, data).compile())
        return program(positions, data)

    return run


class _Parts:
    """The traced functions of :func:`programs`: the kernel is built inside each trace, so
    its log density may read the traced data."""

    def __init__(self, target: Target, sampler, num_warmup: int, thin: int, capacity: int):
        self.target = target
        self.sampler = sampler
        self.num_warmup = num_warmup
        self.thin = thin
        self.capacity = capacity

    def kernel(self, data) -> Kernel:
        return self.sampler.build(self.target.bound(data), self.num_warmup)

    def adaptation(self, kernel: Kernel):
        return kernel.adaptation if self.num_warmup > 0 else None

    def start(self, key_input, positions, jitter, data):
        num_chains = jax.tree.leaves(positions)[0].shape[0]
        key = jax.random.key(key_input) if key_input.dtype == jnp.uint32 else key_input
        key_noise, key_chains = jax.random.split(key)
        leaves, structure = jax.tree.flatten(positions)
        noise_keys = jax.random.split(key_noise, len(leaves))
        noise = [
            jax.random.uniform(k, leaf.shape, leaf.dtype, -1.0, 1.0)
            for k, leaf in zip(noise_keys, leaves, strict=True)
        ]
        logdensity = jax.vmap(self.target.bound(data))

        def moved(scale):
            return jax.tree.unflatten(
                structure,
                [
                    leaf + scale.reshape((-1,) + (1,) * (leaf.ndim - 1)).astype(leaf.dtype) * n
                    for leaf, n in zip(leaves, noise, strict=True)
                ],
            )

        def bad_at(scale):
            return ~jnp.isfinite(logdensity(moved(scale)))

        def halve(loop):
            count, scale, bad = loop
            scale = jnp.where(bad, scale / 2.0, scale)
            return count + 1, scale, bad_at(scale)

        def keep_halving(loop):
            count, scale, bad = loop
            return (count < MAX_HALVINGS) & jnp.any(bad & (scale > 0))

        scale = jnp.full((num_chains,), jitter, jnp.float32)
        _, scale, _ = jax.lax.while_loop(keep_halving, halve, (0, scale, bad_at(scale)))
        starts = moved(scale)
        carry, values = self.initialise(starts, data)
        return jax.random.split(key_chains, num_chains), starts, carry, values

    def initialise(self, positions, data):
        kernel = self.kernel(data)
        states = jax.vmap(kernel.init)(positions)
        params = _per_chain(kernel.params)(positions)
        adaptation = self.adaptation(kernel)
        adapt_states = None
        if adaptation is not None:
            adapt_states = jax.vmap(adaptation.init)(params, states)
            params = _per_chain(adaptation.params)(adapt_states)
        return Carry(states, adapt_states, params), states.logdensity

    def advance(self, carry: Carry, chain_keys, data, t_start, t_stop, draw_start):
        kernel = self.kernel(data)
        adaptation = self.adaptation(kernel)
        num_warmup, thin, capacity = self.num_warmup, self.thin, self.capacity
        num_chains = chain_keys.shape[0]
        fold_in = jax.vmap(jax.random.fold_in, in_axes=(0, None))
        # A jitted step is traced once: the shape query below and the loop body share it.
        step = jax.jit(jax.vmap(kernel.step))

        def step_row(keys, states, params):
            states, infos = step(keys, states, params)
            return states.position, states.logdensity, _as_dict(infos)

        keys_shape = jax.eval_shape(fold_in, chain_keys, t_start)
        row_shape = jax.eval_shape(step_row, keys_shape, carry.kernel_state, carry.params)
        buffers = jax.tree.map(
            lambda r: jnp.zeros((r.shape[0], capacity, *r.shape[1:]), r.dtype), row_shape
        )
        flags = [name for name, s in row_shape[2].items() if s.dtype == jnp.bool_]
        pending = {name: jnp.zeros((num_chains,), bool) for name in flags if thin > 1}
        schedule = {} if adaptation is None else adaptation.schedule(num_warmup)
        schedule = jax.tree.map(np.asarray, schedule)
        zeros = jnp.zeros((num_chains,), jnp.int32)

        def adapt(t, operand, states, infos):
            adapt_states, params = operand
            row = jax.tree.map(lambda column: jnp.asarray(column)[t], schedule)
            update = jax.vmap(adaptation.update, in_axes=(0, None, 0, 0))
            adapt_states = update(adapt_states, row, states, infos)
            current = _per_chain(adaptation.params)(adapt_states)
            final = _per_chain(adaptation.final)(adapt_states)
            last = t == num_warmup - 1
            params = jax.tree.map(lambda f, c: jnp.where(last, f, c), final, current)
            return adapt_states, params

        def body(t, loop):
            carry, buffers, pending, counts, accepted = loop
            states, infos = step(fold_in(chain_keys, t), carry.kernel_state, carry.params)
            adapt_states, params = carry.adapt_state, carry.params
            if adaptation is not None:
                adapt_states, params = jax.lax.cond(
                    t < num_warmup,
                    lambda op: adapt(jnp.minimum(t, num_warmup - 1), op, states, infos),
                    lambda op: op,
                    (adapt_states, params),
                )
            info_row = _as_dict(infos)
            after = t - num_warmup + 1
            kept = (t >= num_warmup) & (after % thin == 0)
            if pending:  # divergences in thinned-out steps still count
                merged = {name: pending[name] | info_row[name] for name in pending}
                info_row.update(merged)
                pending = {name: jnp.where(kept, False, merged[name]) for name in pending}
            slot = jnp.clip(after // thin - 1 - draw_start, 0, capacity - 1)
            row = (states.position, states.logdensity, info_row)
            buffers = jax.tree.map(
                lambda b, value: b.at[:, slot].set(jnp.where(kept, value, b[:, slot])),
                buffers,
                row,
            )
            cost = kernel.cost(infos)
            counts = tuple(
                c + jnp.broadcast_to(jnp.asarray(n, jnp.int32), c.shape)
                for c, n in zip(counts, cost, strict=True)
            )
            rate = getattr(infos, "acceptance_rate", None)
            if rate is not None:  # per chain: no reduction across chains inside the loop
                accepted = accepted + rate.astype(jnp.float32)
            return Carry(states, adapt_states, params), buffers, pending, counts, accepted

        loop = (carry, buffers, pending, (zeros, zeros), jnp.zeros((num_chains,), jnp.float32))
        carry, buffers, _, counts, accepted = jax.lax.fori_loop(t_start, t_stop, body, loop)
        positions, logdensity, infos = buffers
        return carry, (positions, logdensity, infos, counts, jnp.sum(accepted))


def _as_dict(infos) -> dict:
    """A kernel's Info (a NamedTuple or a dict) as a dict of name -> array."""
    if isinstance(infos, dict):
        return dict(infos)
    return dict(infos._asdict())


def _per_chain(fn):
    """``vmap(fn)``, or ``fn`` itself for an argument with no arrays (a kernel without
    tunable parameters has ``None``)."""
    batched = jax.vmap(fn)
    return lambda tree: fn(tree) if not jax.tree.leaves(tree) else batched(tree)
