"""The programs of a Markov-chain run: one to start the chains, one to advance them.

``advance`` runs every chain over a range of global steps ``[t_start, t_stop)``, warm-up and
sampling alike: the phase is data (step ``t`` is a warm-up step when ``t < num_warmup``), so one
compiled program serves both phases, any chunking, a progress bar or none, checkpoints, resumed
runs and runs that continue until converged. ``num_warmup`` itself is part of the program (the
adaptation windows are laid out from it, as NumPyro's HMC kernel does in Python), so the program
cache keys on it. Its loop has a traced trip count, so the same program runs chunks of any
length, and the kernel is traced once.

Layout: every per-chain array has the chain axis first. Step ``t`` of chain ``c`` uses the
key ``fold_in(chain_keys[c], t)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer.base import Kernel, hook
from infer.blocked_loop import masked, run_steps, steps_per_block, write_rows
from infer.constrained_draws import constrain_program
from infer.kernel_checks import (
    DIVERGENCE_FIELDS,
    check_init_states,
    checked_cost,
    checked_final_params,
    checked_schedule,
    info_fields,
)
from infer.keys import as_jax_key
from infer.memory import Need, markov_need, nbytes
from infer.over_chains import fold_in, over_chains
from infer.placement import PROGRAMS, SHAPES, abstract, draw_major, sharding_key
from infer.step_counts import add_count
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
        positions: unconstrained kept draws, draw-major ``(capacity, num_chains, ...)``.
        logdensity: their log densities, ``(capacity, num_chains)``.
        infos: name -> ``(capacity, num_chains)``: the kernel's per-step diagnostics.
        counts: ``(num_logdensity_evals, num_grad_evals, num_nonfinite)``, each
            ``(2, num_chains)`` int32, a count's low 30 bits and the rest (so a chain's count
            passes 2**31; :func:`infer.step_counts.total` reads it): the cost, and the
            proposals whose log density was NaN or ``+inf`` (from the kernel's
            ``info.nonfinite``, when it has one).
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
        start: the :class:`Starter` (chain keys, starting points, states; see :class:`Plan`).
        advance: ``(carry, chain_keys, data, t_start, t_stop, draw_start, buffers) ->
            Chunk``; it keeps the draws of steps ``t >= num_warmup`` whose index after
            warm-up is a multiple of ``thin``, draw ``d`` into slot ``d - draw_start``. It
            writes them in place into ``buffers`` (a chunk's ``(positions, logdensity,
            infos)``, donated; XLA copies them if a numpy view holds them) when a step's
            draws are large (:data:`DONATE_FROM_STEP_BYTES`), else into new ones.
        empty: ``() -> buffers`` for ``advance``, zeros (``None`` if it makes its own).
        constrain: ``(positions, data) -> dict`` of named constrained draws, for positions
            with leading axes ``(num_chains, num_draws)``.
        capacity: draws one call of ``advance`` can keep.
        seconds: what compiling them took (0.0 when they came from the cache).
        block: steps the advance program runs at a time (:mod:`infer.blocked_loop`): a
            segment of a multiple of it computes no step it discards.
    """

    start: Callable
    advance: Callable
    empty: Callable
    constrain: Callable
    capacity: int
    seconds: float
    block: int = 1


class Starter(NamedTuple):
    """The compiled start of the chains (see :class:`Plan`)."""

    program: Callable

    def __call__(self, key_input, positions, jitter, data):
        return self.program(key_input, positions, np.asarray(jitter, np.float32), data)


MAX_HALVINGS = 20
#: Advance writes into given (donated) buffers from this many bytes a step over all chains,
#: else into new ones. Donated, XLA's CPU loop ran ~1.6 us a step slower (1 chain, 31
#: parameters: 44 vs 37 ms per 4,096 steps); new buffers for 1,024 chains took ~0.1 s.
DONATE_FROM_STEP_BYTES = 2**14


class Plan:
    """The two programs of a Markov-chain run, traced but not yet compiled (or found compiled
    in :data:`infer.placement.PROGRAMS`), so that their shapes are known before anything is
    compiled or allocated: the memory check reads them.

    * start: ``(key_input, positions, jitter, data) -> (chain_keys, positions, carry,
      logdensity)``: one key per chain, each chain's start (its position plus ``jitter``
      times its own U(-1, 1) noise, the jitter halved up to :data:`MAX_HALVINGS` times for a
      chain whose log density is not finite there), and every chain's state, adaptation
      state and parameters there, with the log density ``(num_chains,)``.
    * advance: see :class:`Programs`.

    Args:
        key_input: a key's data (uint32) or a typed key (see :func:`infer.keys.as_key`).
        positions: one position per chain (chain axis first), placed with ``sharding``.
        data: the target's data, placed on the devices, or ``None``.
        sharding: the placement of every per-chain array.
        superchain_size: chains per superchain: consecutive chains that share a start
            (for nested R-hat); 1 for independent starts.
    """

    def __init__(
        self,
        target: Target,
        sampler,
        key_input,
        positions,
        data,
        sharding,
        num_warmup: int,
        thin: int,
        capacity: int,
        superchain_size: int = 1,
    ):
        self.target, self.sampler, self.capacity = target, sampler, capacity
        self.num_warmup, self.thin = num_warmup, thin
        base = (
            program_key(target),
            hook(sampler, "cache_key")(),
            num_warmup,
            abstract(key_input),  # a key's data (uint32), or a key<rbg> of its own
            abstract(positions),
            abstract(data),
            sharding_key(sharding),
        )
        self.sharding = sharding
        self.block = steps_per_block(sharding, capacity)
        capacity -= capacity % self.block  # a chunk's steps are whole blocks
        self.capacity = capacity
        self.start_key = ("markov-start", *base, superchain_size)
        self.advance_key = ("markov-advance", *base, thin, capacity, self.block)
        start, advance = PROGRAMS.peek(self.start_key), PROGRAMS.peek(self.advance_key)
        self.cached = start is not None and advance is not None
        began = time.perf_counter()
        jitter = np.float32(0.0)
        if start is None:
            parts = _Parts(target, sampler, num_warmup, 1, 1, superchain_size)
            start = jax.jit(parts.start, out_shardings=sharding).lower(
                key_input, positions, jitter, data
            )
        self.start = start
        keys, _, carry, _ = SHAPES.get(("outputs", self.start_key), lambda: start.out_info)[0]
        self.carry_structs = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), carry
        )
        self.keys_struct = jax.ShapeDtypeStruct(keys.shape, keys.dtype, sharding=sharding)
        if advance is None:
            parts = _Parts(target, sampler, num_warmup, thin, capacity, block=self.block)
            index = jax.ShapeDtypeStruct((), jnp.int32)
            rows = draw_major(sharding)
            buffers = parts.buffer_structs(self.carry_structs, self.keys_struct, data, rows)
            draws = (rows, rows, rows, None, None)
            given = (buffers,) if _donates(buffers, capacity) else ()
            advance = jax.jit(
                parts.advance, out_shardings=(sharding, draws), donate_argnums=(6,) * len(given)
            ).lower(self.carry_structs, self.keys_struct, data, index, index, index, *given)
        self.advance = advance
        self.trace_seconds = 0.0 if self.cached else time.perf_counter() - began
        self.start_seconds = 0.0  # compiling the start program (compile_start), when it did

    def chunk_structs(self):
        """The abstract outputs of one advance call but the carry: ``(positions,
        logdensity, infos, counts, acceptance_sum)``, draws ``(capacity, num_chains,
        ...)``."""
        return SHAPES.get(("outputs", self.advance_key), lambda: self.advance.out_info)[0][1]

    def need(
        self, num_draws: int, draw_bytes: int, num_devices: int, stored=False, checked=False
    ) -> Need:
        """The run's peak memory (:func:`infer.memory.markov_need`, whose arguments these
        are) for ``num_draws`` kept draws per chain of ``draw_bytes`` per chain and draw."""
        positions, logdensity, infos, _, _ = self.chunk_structs()
        return markov_need(
            (positions, logdensity, infos),
            self.carry_structs,
            self.capacity,
            self.keys_struct.shape[0],
            num_draws,
            draw_bytes,
            num_devices,
            stored,
            checked,
        )

    def compile_start(self) -> tuple[Starter, float]:
        """The compiled start program, and the seconds compiling took (0 from the cache)."""
        program, seconds = PROGRAMS.get(self.start_key, lambda: _compiled(self.start))
        self.start_seconds += seconds
        return Starter(program), seconds

    def compile(self) -> Programs:
        """Every compiled program of the run (its seconds count the start's, compiled
        earlier by :meth:`compile_start` to start the chains, too)."""
        start, _ = self.compile_start()
        start_seconds = self.start_seconds
        advance, seconds = PROGRAMS.get(self.advance_key, lambda: _compiled(self.advance))
        structs = self.chunk_structs()[:3]
        donates = _donates(structs, self.capacity)

        def run_advance(carry, chain_keys, data, t_start, t_stop, draw_start, buffers):
            steps = (np.int32(t_start), np.int32(t_stop), np.int32(draw_start))
            given = (buffers,) if donates else ()
            carry, rest = advance(carry, chain_keys, data, *steps, *given)
            return Chunk(carry, *rest)

        empty, empty_seconds = (lambda: None), 0.0
        if donates:  # a program that makes zero buffers placed like the chains
            zeros = jax.jit(lambda: _zeros(structs), out_shardings=draw_major(self.sharding))
            key = ("markov-empty", *self.advance_key)
            empty, empty_seconds = PROGRAMS.get(key, lambda: zeros.lower().compile())
        constrain = constrain_program(self.target)
        seconds = self.trace_seconds + start_seconds + seconds + empty_seconds
        return Programs(start, run_advance, empty, constrain, self.capacity, seconds, self.block)


def _donates(buffers, capacity: int) -> bool:
    """Whether the advance program is given (and donates) a chunk's ``buffers``."""
    return nbytes(buffers) >= DONATE_FROM_STEP_BYTES * capacity


def _zeros(structs):  # zero arrays shaped like a pytree of ShapeDtypeStructs
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), structs)


def _compiled(program):
    """``program`` compiled, if it is only lowered."""
    return program.compile() if hasattr(program, "compile") else program


class _Parts:
    """The traced functions of :func:`programs`: the kernel is built inside each trace, so
    its log density may read the traced data."""

    def __init__(
        self,
        target: Target,
        sampler,
        num_warmup: int,
        thin: int,
        capacity: int,
        superchain_size: int = 1,
        block: int = 1,
    ):
        self.target = target
        self.sampler = sampler
        self.num_warmup = num_warmup
        self.thin = thin
        self.capacity = capacity
        self.superchain_size = superchain_size
        self.block = block

        # One jitted step, so that buffer_structs and advance's loop share one trace.
        self.step = jax.jit(
            lambda keys, states, params, data: over_chains(self.kernel(data).step)(
                keys, states, params
            )
        )

    def kernel(self, data) -> Kernel:
        bound = self.target.bound(data)
        if getattr(self.sampler, "takes_target_data", False) and data is not None:
            return self.sampler.build(bound, self.num_warmup, data=data)
        return self.sampler.build(bound, self.num_warmup)

    def buffer_structs(self, carry: Carry, chain_keys, data, sharding):
        """``(positions, logdensity, infos)`` of one chunk, draw-major ``(capacity,
        num_chains, ...)``, as ``ShapeDtypeStruct``s placed with ``sharding``."""
        keys = jax.eval_shape(fold_in, chain_keys, jnp.int32(0))

        def step_row(keys, states, params, data):
            states, infos = self.step(keys, states, params, data)
            return states.position, states.logdensity, info_fields(infos)

        row = jax.eval_shape(step_row, keys, carry.kernel_state, carry.params, data)
        return jax.tree.map(
            lambda r: jax.ShapeDtypeStruct((self.capacity, *r.shape), r.dtype, sharding=sharding),
            row,
        )

    def adaptation(self, kernel: Kernel):
        return kernel.adaptation if self.num_warmup > 0 else None

    def start(self, key_input, positions, jitter, data):
        num_chains = jax.tree.leaves(positions)[0].shape[0]
        key = as_jax_key(key_input)
        key_noise, key_chains = jax.random.split(key)
        leaves, structure = jax.tree.flatten(positions)
        noise_keys = jax.random.split(key_noise, len(leaves))
        noise = [
            jax.random.uniform(k, leaf.shape, leaf.dtype, -1.0, 1.0)
            for k, leaf in zip(noise_keys, leaves, strict=True)
        ]
        size = self.superchain_size
        if size > 1:  # the chains of a superchain share its first chain's start
            noise = [jnp.repeat(n[::size], size, axis=0) for n in noise]
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

        # Pass 0 evaluates the full jitter, pass k > 0 halves it where the last was bad: the
        # log density appears once in the program (each copy costs compilation time).
        def halve(loop):
            count, scale, bad = loop
            scale = jnp.where(bad & (count > 0), scale / 2.0, scale)
            return count + 1, scale, bad_at(scale)

        def keep_halving(loop):
            count, scale, bad = loop
            return (count <= MAX_HALVINGS) & jnp.any(bad & (scale > 0))

        scale = jnp.full((num_chains,), jitter, jnp.float32)
        everywhere = jnp.ones((num_chains,), bool)
        _, scale, _ = jax.lax.while_loop(keep_halving, halve, (0, scale, everywhere))
        starts = moved(scale)
        carry, values = self.initialise(starts, data)
        return jax.random.split(key_chains, num_chains), starts, carry, values

    def initialise(self, positions, data):
        kernel = self.kernel(data)
        states = jax.vmap(kernel.init)(positions)
        check_init_states(self.sampler, states, positions)
        params = over_chains(kernel.params)(positions)
        adaptation = self.adaptation(kernel)
        adapt_states = None
        if adaptation is not None:
            adapt_states = jax.vmap(adaptation.init)(params, states)
            params = over_chains(adaptation.params)(adapt_states)
        return Carry(states, adapt_states, params), states.logdensity

    def advance(self, carry: Carry, chain_keys, data, t_start, t_stop, draw_start, buffers=None):
        if buffers is None:  # not given (see DONATE_FROM_STEP_BYTES): new ones
            buffers = _zeros(self.buffer_structs(carry, chain_keys, data, None))
        kernel = self.kernel(data)
        adaptation = self.adaptation(kernel)
        num_warmup, thin, capacity = self.num_warmup, self.thin, self.capacity
        num_chains = chain_keys.shape[0]
        flags = [name for name in DIVERGENCE_FIELDS if name in buffers[2]]
        pending = {name: jnp.zeros((num_chains,), bool) for name in flags if thin > 1}
        schedule = {} if adaptation is None else checked_schedule(adaptation, num_warmup)

        def adapt(t, operand, states, infos):
            adapt_states, params = operand
            row = jax.tree.map(lambda column: jnp.asarray(column)[t], schedule)
            update = jax.vmap(adaptation.update, in_axes=(0, None, 0, 0))
            adapt_states = update(adapt_states, row, states, infos)
            current = over_chains(adaptation.params)(adapt_states)
            final = checked_final_params(over_chains(adaptation.final)(adapt_states), current)
            last = t == num_warmup - 1
            params = jax.tree.map(lambda f, c: jnp.where(last, f, c), final, current)
            return adapt_states, params

        def body(t, loop, active):  # active: False for a block's steps past t_stop
            carry, buffers, pending, counts, accepted = loop
            keys = fold_in(chain_keys, t)
            states, infos = self.step(keys, carry.kernel_state, carry.params, data)
            adapt_states, params = carry.adapt_state, carry.params
            if adaptation is not None:
                adapt_states, params = jax.lax.cond(
                    t < num_warmup,
                    lambda op: adapt(jnp.minimum(t, num_warmup - 1), op, states, infos),
                    lambda op: op,
                    (adapt_states, params),
                )
            info_row = info_fields(infos)  # the protocol allows a NamedTuple or a dict
            after = t - num_warmup + 1
            kept = (t >= num_warmup) & (after % thin == 0)
            if pending:  # divergences in thinned-out steps still count
                merged = {name: pending[name] | info_row[name] for name in pending}
                info_row.update(merged)
                pending = {name: jnp.where(kept, False, merged[name]) for name in pending}
            # Every step writes: a thinned-out one the next kept draw's slot (overwritten), a
            # warm-up one slot 0 of a segment that keeps nothing (none straddles warm-up's end).
            slot = jnp.clip((after + thin - 1) // thin - 1 - draw_start, 0, capacity - 1)
            row = (states.position, states.logdensity, info_row)
            buffers = write_rows(buffers, row, slot, active)
            nonfinite = info_row.get("nonfinite", False)  # the protocol's optional field
            step_counts = (*checked_cost(kernel.cost(infos)), nonfinite)
            counts = tuple(add_count(c, n) for c, n in zip(counts, step_counts, strict=True))
            rate = info_row.get("acceptance_rate")  # per chain: no reduction inside the loop
            # without the field, NaN: the progress bar then shows no acceptance rate
            accepted = accepted + (jnp.nan if rate is None else rate.astype(jnp.float32))
            new = (Carry(states, adapt_states, params), pending, counts, accepted)
            carry, pending, counts, accepted = masked(active, new, loop[:1] + loop[2:])
            return carry, buffers, pending, counts, accepted

        counts = (jnp.zeros((2, num_chains), jnp.int32),) * 3
        loop = (carry, buffers, pending, counts, jnp.zeros((num_chains,), jnp.float32))
        carry, buffers, _, counts, accepted = run_steps(t_start, t_stop, body, loop, self.block)
        positions, logdensity, infos = buffers
        return carry, (positions, logdensity, infos, counts, jnp.sum(accepted))
