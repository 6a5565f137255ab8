"""One driver for every sampler: ``infer.sample``.

Layout: every per-chain array has the chain axis first. Each step ``vmap``s one chain's kernel
over the chains, and ``lax.scan`` runs the steps; warm-up and sampling are two compiled
programs, so their times are measured apart. Step ``t`` of chain ``c`` uses the key
``fold_in(chain_key[c], t)``: draws depend only on the seed, never on timing.

Compiled programs are cached on the identity of the log density, the sampler's structural
options and the shapes, so a second call with the same shapes does not compile again.
"""

from __future__ import annotations

import collections
import contextlib
import numbers
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.base import Adaptation, IdentityKey, Kernel, Sampler
from infer.result import Result
from infer.target import Target, check_target

_CACHE_SIZE = 64
_compiled: collections.OrderedDict = collections.OrderedDict()


def sample(
    rng_key,
    target: Target,
    sampler: Sampler,
    *,
    num_chains: int = 4,
    num_samples: int = 1000,
    num_warmup: int = 1000,
    thin: int = 1,
    init=None,
    init_jitter: float = 1.0,
    devices=None,
    progress=False,
) -> Result:
    """Run ``sampler`` on ``target`` over ``num_chains`` chains.

    Args:
        rng_key: an int seed or a ``jax.random.key``. The same seed gives bit-identical draws.
        target: an :class:`infer.Target`.
        sampler: e.g. ``infer.rwmh()``, ``infer.nuts()``, ``infer.rejection(proposal)``.
        num_chains: independent chains, vectorised with ``vmap``.
        num_samples: draws kept per chain (after thinning).
        num_warmup: warm-up steps per chain, discarded; adaptation happens here. Ignored by
            exact samplers (rejection), whose draws need none.
        thin: keep every ``thin``-th step. Divergences in skipped steps still count.
        init: one point (each chain starts at its own seeded jitter around it) or one point
            per chain (leading axis ``num_chains``, used as given). Default: ``target.init``.
        init_jitter: half-width of the uniform jitter added to a single starting point.
        devices: the devices to run on; default all of ``jax.local_devices()``. When there are
            several and ``num_chains`` is a multiple of their number, the chains are split
            among them (sharded on the chain axis); otherwise everything runs on the first.
            Each chain's draws depend only on the seed and the chain's index, not on the
            number of devices (up to floating-point reassociation).
        progress: ``True`` shows one progress bar (tqdm) for all chains, updated at most
            every 1% of the steps with the running acceptance rate; or pass a ``tqdm``
            class/partial to customise it. The run is then split into about 25 compiled
            chunks (4% of all steps each) called from the host, so it works for vectorised
            and sharded chains alike (no callbacks inside ``vmap``). The chains use the same
            keys either way, but the chunked program is compiled separately and may round
            differently, so draws can differ in the last bits, and after that diverge.

    Returns:
        A :class:`infer.Result`: ``draws`` ``name -> (num_chains, num_samples, *event_shape)``
        in constrained space, per-step ``stats`` ``(num_chains, num_samples)``, ``timing``, and
        evaluation counts. ``result.to_arviz()`` gives an ArviZ ``DataTree``.

    Raises:
        TypeError, ValueError: for bad arguments, before anything is compiled; a log density
            that is not finite at a chain's starting point names the chain.
    """
    wall_start = time.perf_counter()
    key_input, seed = _as_key(rng_key)
    check_target(target)
    if not isinstance(sampler, Sampler):
        raise TypeError(
            f"sampler must be an infer sampler such as infer.rwmh() or infer.nuts(); got "
            f"{type(sampler).__name__}. Did you forget the parentheses (infer.rwmh())?"
            if callable(sampler)
            else f"sampler must be an infer sampler such as infer.rwmh(); got {sampler!r}."
        )
    num_chains = validation.positive_int("num_chains", num_chains)
    num_samples = validation.positive_int("num_samples", num_samples)
    num_warmup = validation.positive_int("num_warmup", num_warmup, minimum=0)
    thin = validation.positive_int("thin", thin)
    init_jitter = float(init_jitter)
    if not (np.isfinite(init_jitter) and init_jitter >= 0):
        raise ValueError(f"init_jitter must be a finite number >= 0; got {init_jitter}.")

    chain_sharding = _chain_sharding(devices, num_chains)
    if sampler.is_iid:
        _, sampling_keys, _ = _prepare(key_input, num_chains, ())
        sampling_keys = jax.device_put(sampling_keys, chain_sharding)
        return _sample_iid(
            sampling_keys, seed, target, sampler, num_chains, num_samples, wall_start, progress
        )

    point, per_chain = _starting_point(target, init, num_chains)
    example = jax.tree.map(lambda leaf: leaf[0], point) if per_chain else point
    leaf_specs = tuple((leaf.shape, leaf.dtype) for leaf in jax.tree.leaves(example))
    warmup_keys, sampling_keys, noise = _prepare(key_input, num_chains, leaf_specs)
    if per_chain:
        positions, jittered = point, False
    else:
        positions = _jittered_positions(target, point, noise, init_jitter)
        jittered = init_jitter > 0
    sampler.check(example)
    _check_initial_logdensity(target, positions, jittered)
    warmup_keys, sampling_keys, positions = jax.device_put(
        (warmup_keys, sampling_keys, positions), chain_sharding
    )

    runner, compile_seconds = _get_runner(
        target, sampler, positions, warmup_keys, num_warmup, num_samples, thin, progress
    )
    if progress:
        with _progress_bar(progress, num_warmup + num_samples, sampler.name, num_chains) as bar:
            (
                draws,
                stats,
                params,
                warmup_counts,
                sampling_counts,
                warmup_seconds,
                sampling_seconds,
            ) = _run_chunks(
                runner.chunks,
                warmup_keys,
                sampling_keys,
                positions,
                num_warmup,
                num_samples,
                bar,
            )
    else:
        start = time.perf_counter()
        states, params, warmup_counts = runner.warmup(warmup_keys, positions)
        jax.block_until_ready((states, params, warmup_counts))
        warmup_seconds = time.perf_counter() - start
        start = time.perf_counter()
        draws, stats, sampling_counts = runner.sampling(sampling_keys, states, params)
        jax.block_until_ready((draws, stats, sampling_counts))
        sampling_seconds = time.perf_counter() - start

    draws = {name: np.asarray(value) for name, value in draws.items()}
    stats = {name: np.asarray(value) for name, value in stats.items()}
    num_logdensity = _total(warmup_counts[0]) + _total(sampling_counts[0])
    num_grad = _total(warmup_counts[1]) + _total(sampling_counts[1])
    info = {"cache_hit": compile_seconds == 0.0}
    dim = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(example))
    target_accept = sampler.target_acceptance(dim)
    if target_accept is not None:
        info["target_accept"] = target_accept
    if "step_size" in stats:
        info["step_size"] = stats["step_size"][:, -1].tolist()
    scale = getattr(params, "scale", None)
    if scale is not None and np.ndim(scale) > 1:
        info["proposal_std"] = _scale_std(np.asarray(scale)).tolist()
    result = Result(
        draws=draws,
        stats=stats,
        timing={
            "compile": compile_seconds,
            "warmup": warmup_seconds,
            "sampling": sampling_seconds,
            "total": time.perf_counter() - wall_start,
        },
        num_logdensity_evals=num_logdensity,
        num_grad_evals=num_grad,
        sampler=sampler.name,
        settings=sampler.settings(),
        seed=seed,
        target=target.name,
        num_warmup=num_warmup,
        thin=thin,
        info=info,
        ground_truth=target.ground_truth,
    )
    _warn_if_unhealthy(result)
    return result


def _prepare(key_input, num_chains: int, leaf_specs: tuple):
    """``(warmup_keys (num_chains,), sampling_keys (num_chains,), noise)``: per-chain keys and
    U(-1, 1) jitter noise shaped ``(num_chains, *leaf_shape)`` per leaf of the starting point.

    One ahead-of-time compiled call, held in our own cache, so a repeated run does no eager
    JAX work (JAX's own cache of small eager programs can be flushed by a large compilation).
    """
    is_seed = isinstance(key_input, np.ndarray)
    cache_key = ("prepare", is_seed, str(key_input.dtype), num_chains, leaf_specs)
    if cache_key not in _compiled:

        def prepare(key_input):
            key = jax.random.key(key_input) if is_seed else key_input
            key_noise, key_warmup, key_sampling = jax.random.split(key, 3)
            noise_keys = jax.random.split(key_noise, max(len(leaf_specs), 1))
            noise = [
                jax.random.uniform(noise_keys[i], (num_chains, *shape), dtype, -1.0, 1.0)
                for i, (shape, dtype) in enumerate(leaf_specs)
            ]
            return (
                jax.random.split(key_warmup, num_chains),
                jax.random.split(key_sampling, num_chains),
                noise,
            )

        _remember(cache_key, jax.jit(prepare).lower(key_input).compile())
    _compiled.move_to_end(cache_key)
    return _compiled[cache_key](key_input)


def _scale_std(scale: np.ndarray) -> np.ndarray:
    """Per-coordinate standard deviation of a proposal scale (before the step size):
    ``(num_chains, dim)`` from diagonal ``(num_chains, dim)`` or Cholesky ``(num_chains, dim,
    dim)`` scales."""
    if scale.ndim == 3:
        return np.sqrt(np.sum(scale**2, axis=-1))
    return np.abs(scale)


def _total(per_chain_counts) -> int:
    return int(np.asarray(per_chain_counts).astype(np.int64).sum())


class _Runner(NamedTuple):
    """Compiled programs of one run's shapes.

    Without progress, ``warmup(keys, positions) -> (states, params, counts)`` and
    ``sampling(keys, states, params) -> (draws, stats, counts)`` are one program each. With
    progress, ``chunks`` holds the pieces, which the host calls in at most 100 chunks a phase.
    """

    warmup: Callable | None
    sampling: Callable | None
    chunks: dict | None = None


PROGRESS_CHUNKS = 25  # progress is updated about this often: every 4% of all steps


def _chunk_length(phase_steps: int, all_steps: int) -> int:
    """Steps per compiled chunk: about ``all_steps / PROGRESS_CHUNKS``, preferring a divisor
    of ``phase_steps`` (then no step of the last chunk is masked, which would cost a
    ``cond`` at every step). Each chunk costs one host round trip, so fewer is cheaper."""
    if phase_steps == 0:
        return 0
    target = max(1, -(-all_steps // PROGRESS_CHUNKS))
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if phase_steps % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


@contextlib.contextmanager
def _progress_bar(progress, total: int, name: str, num_chains: int):
    """A tqdm bar for ``total`` steps of all chains together."""
    from tqdm.auto import tqdm

    factory = tqdm if progress is True else progress
    bar = factory(total=total, desc=f"{name} x{num_chains} chains", unit="step")
    try:
        yield bar
    finally:
        bar.close()


def _shardings(structs):
    return jax.tree.map(lambda struct: struct.sharding, structs)


def _output_structs(compiled):
    """Abstract outputs of a compiled program, with their placement on the devices."""
    return jax.tree.map(
        lambda info, sharding: jax.ShapeDtypeStruct(info.shape, info.dtype, sharding=sharding),
        compiled.out_info,
        compiled.output_shardings,
    )


def _get_runner(target, sampler, positions, keys, num_warmup, num_samples, thin, progress):
    """Compiled programs, from the cache when the shapes match."""
    shapes = jax.tree.map(lambda leaf: (leaf.shape, str(leaf.dtype)), positions)
    cache_key = (
        "mcmc",
        IdentityKey(target.logdensity_fn),
        IdentityKey(target.constrain_fn),
        sampler.cache_key(),
        num_warmup,
        num_samples,
        thin,
        bool(progress),
        jax.tree.structure(positions),
        str(jax.tree.leaves(shapes)),
        str(keys.dtype),
        keys.shape,
        _sharding_key(keys.sharding),
    )
    if cache_key in _compiled:
        _compiled.move_to_end(cache_key)
        return _compiled[cache_key], 0.0
    start = time.perf_counter()
    kernel = sampler.build(target.logdensity_fn, num_warmup)
    phases = _phases(kernel, target, num_warmup, num_samples, thin, sampler.uses_gradients)
    if progress:
        runner = _Runner(
            None, None, _compile_chunks(phases, keys, positions, num_warmup, num_samples)
        )
    else:

        def warmup_fn(keys, positions):
            carry = phases.warmup_start(keys, positions)
            carry, _ = phases.warmup_steps(keys, carry, 0, num_warmup)
            return phases.warmup_finish(carry)

        def sampling_fn(keys, states, params):
            carry = phases.sampling_start(keys, params, states)
            carry, _ = phases.sampling_steps(keys, params, carry, 0, num_samples)
            return phases.sampling_finish(carry)

        warmup_compiled = jax.jit(warmup_fn).lower(keys, positions).compile()
        # The sampling program takes the warm-up's outputs as they are placed on the devices.
        states, params, _ = _output_structs(warmup_compiled)
        sampling_compiled = jax.jit(sampling_fn).lower(keys, states, params).compile()
        runner = _Runner(warmup_compiled, sampling_compiled)
    _remember(cache_key, runner)
    return runner, time.perf_counter() - start


def _compile_chunks(phases: _Phases, keys, positions, num_warmup, num_samples) -> dict:
    """The six programs of a chunked run; the chunk programs update their carry in place."""
    index = jax.ShapeDtypeStruct((), jnp.int32)
    warmup_length = _chunk_length(num_warmup, num_warmup + num_samples)
    sampling_length = _chunk_length(num_samples, num_warmup + num_samples)
    warmup_start = jax.jit(phases.warmup_start).lower(keys, positions).compile()
    warmup_carry = _output_structs(warmup_start)
    warmup_chunk = (
        jax.jit(
            lambda k, c, i: phases.warmup_steps(k, c, i, warmup_length),
            donate_argnums=(1,),
            out_shardings=(_shardings(warmup_carry), None),  # the carry goes round unchanged
        )
        .lower(keys, warmup_carry, index)
        .compile()
    )
    warmup_finish = jax.jit(phases.warmup_finish).lower(warmup_carry).compile()
    states, params, _ = _output_structs(warmup_finish)
    sampling_start = jax.jit(phases.sampling_start).lower(keys, params, states).compile()
    sampling_carry = _output_structs(sampling_start)
    sampling_chunk = (
        jax.jit(
            lambda k, p, c, i: phases.sampling_steps(k, p, c, i, sampling_length),
            donate_argnums=(2,),
            out_shardings=(_shardings(sampling_carry), None),
        )
        .lower(keys, params, sampling_carry, index)
        .compile()
    )
    sampling_finish = jax.jit(phases.sampling_finish).lower(sampling_carry).compile()
    return {
        "warmup_start": warmup_start,
        "warmup_chunk": warmup_chunk,
        "warmup_finish": warmup_finish,
        "sampling_start": sampling_start,
        "sampling_chunk": sampling_chunk,
        "sampling_finish": sampling_finish,
        "warmup_length": warmup_length,
        "sampling_length": sampling_length,
    }


def _run_chunks(chunks, warmup_keys, sampling_keys, positions, num_warmup, num_samples, bar):
    """Run a chunked program, updating ``bar`` after each chunk with the acceptance rate.

    Returns ``(draws, stats, params, warmup_counts, sampling_counts, warmup_s, sampling_s)``.
    """
    num_chains = warmup_keys.shape[0]

    def phase(start_fn, chunk_fn, finish_fn, length, total, label, *args):
        begin = time.perf_counter()
        carry = start_fn(*args)
        pending = None  # the previous chunk's (acceptance sum, steps): read one chunk late,
        # so the device already works on the next chunk while the host updates the bar

        def report(accepted, done):
            rate = float(accepted) / (done * num_chains)
            bar.set_postfix_str(f"{label}, acceptance {rate:.2f}", refresh=False)
            bar.update(done)

        for first in range(0, total, max(length, 1)):
            carry, accepted = chunk_fn(*args[:-1], carry, np.int32(first))
            if pending is not None:
                report(*pending)
            pending = (accepted, min(length, total - first))
        if pending is not None:
            report(*pending)
        out = finish_fn(carry)
        jax.block_until_ready(out)
        return out, time.perf_counter() - begin

    bar.set_postfix_str("warm-up", refresh=False)
    (states, params, warmup_counts), warmup_seconds = phase(
        chunks["warmup_start"],
        chunks["warmup_chunk"],
        chunks["warmup_finish"],
        chunks["warmup_length"],
        num_warmup,
        "warm-up",
        warmup_keys,
        positions,
    )
    (draws, stats, sampling_counts), sampling_seconds = phase(
        lambda keys, params, carry_states: chunks["sampling_start"](keys, params, carry_states),
        chunks["sampling_chunk"],
        chunks["sampling_finish"],
        chunks["sampling_length"],
        num_samples,
        "sampling",
        sampling_keys,
        params,
        states,
    )
    return draws, stats, params, warmup_counts, sampling_counts, warmup_seconds, sampling_seconds


def _chain_sharding(devices, num_chains: int):
    """How per-chain arrays are placed: split over ``devices`` along the chain axis when the
    chains divide evenly among them, else all on the first device."""
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device; got an empty list.")
    if len(devices) > 1 and num_chains % len(devices) == 0:
        mesh = jax.sharding.Mesh(np.array(devices), ("chain",))
        return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("chain"))
    return jax.sharding.SingleDeviceSharding(devices[0])


def _sharding_key(sharding) -> tuple:
    return (type(sharding).__name__, tuple(device.id for device in sharding.device_set))


def _remember(cache_key, value) -> None:
    _compiled[cache_key] = value
    while len(_compiled) > _CACHE_SIZE:
        _compiled.popitem(last=False)


def clear_cache() -> None:
    """Forget every compiled program (the next call of each shape compiles again)."""
    _compiled.clear()


class _Phases(NamedTuple):
    """The pieces of a run, each for all chains (chain axis first).

    ``warmup_steps(keys, carry, start, length)`` and ``sampling_steps(keys, params, carry,
    start, length)`` advance ``length`` (static) steps or kept draws from ``start`` (traced),
    returning the new carry and the sum of the acceptance rates seen (for progress bars).
    """

    warmup_start: Callable
    warmup_steps: Callable
    warmup_finish: Callable
    sampling_start: Callable
    sampling_steps: Callable
    sampling_finish: Callable


def _fixed_parameters() -> Adaptation:
    """The adaptation of a kernel that tunes nothing: its parameters pass through."""
    return Adaptation(
        init=lambda params, state: params,
        update=lambda params, row, state, info: params,
        params=lambda params: params,
        final=lambda params: params,
        schedule=lambda num_warmup: {},
    )


def _phases(
    kernel: Kernel,
    target: Target,
    num_warmup: int,
    num_samples: int,
    thin: int,
    uses_gradients: bool,
) -> _Phases:
    batched_step = jax.vmap(kernel.step)
    fold_in = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    adaptation = kernel.adaptation or _fixed_parameters()
    schedule = jax.tree.map(np.asarray, adaptation.schedule(num_warmup))
    adapt_update = jax.vmap(adaptation.update, in_axes=(0, None, 0, 0))

    def add_cost(counts, infos):
        num_logdensity, num_grad = kernel.cost(infos)
        return counts[0] + num_logdensity, counts[1] + num_grad

    def acceptance_sum(infos):
        rate = getattr(infos, "acceptance_rate", None)
        return jnp.zeros(()) if rate is None else jnp.sum(rate, dtype=jnp.float32)

    def steps_from(carry, start, length, total, one, write=None):
        """Run ``one(carry, t) -> (carry, row, accepted)`` for t = start .. start + length - 1,
        skipping t >= total, and ``write(buffers, row, t)`` each row into ``buffers`` when
        given (the last element of ``carry``).

        The skip is a ``cond`` over the small state only: the draw buffers stay out of it
        (a ``cond`` carrying them makes XLA copy them at every step), and a skipped step
        writes back the row already there.
        """
        if length == 0:
            return carry, jnp.zeros(())
        tiles = total % length == 0  # chunks tile the run: no step is ever out of range
        small, buffers = (carry[:-1], carry[-1]) if write else (carry, None)
        row_shape = jax.eval_shape(lambda c: one(c, jnp.zeros((), jnp.int32))[1], small)

        def body(carry, offset):
            small, buffers = carry
            t = start + offset
            if tiles:
                small, row, accepted = one(small, t)
            else:

                def skip(c):
                    zeros = jax.tree.map(lambda r: jnp.zeros(r.shape, r.dtype), row_shape)
                    return c, zeros, jnp.zeros(())

                small, row, accepted = jax.lax.cond(t < total, lambda c: one(c, t), skip, small)
            if write:
                buffers = write(buffers, row, t, tiles or t < total)
            return (small, buffers), accepted

        (small, buffers), accepted = jax.lax.scan(body, (small, buffers), jnp.arange(length))
        return ((*small, buffers) if write else small), jnp.sum(accepted)

    def warmup_start(chain_keys, positions):
        num_chains = jax.tree.leaves(positions)[0].shape[0]
        states = jax.vmap(kernel.init)(positions)
        params = jax.vmap(kernel.params)(positions)
        counts = (
            jnp.ones((num_chains,), jnp.int32),
            jnp.full((num_chains,), int(uses_gradients), jnp.int32),
        )
        return states, jax.vmap(adaptation.init)(params, states), counts

    def warmup_steps(chain_keys, carry, start, length):
        def one(carry, t):
            states, adapt_states, counts = carry
            row = jax.tree.map(lambda column: jnp.asarray(column)[t], schedule)
            step_params = _per_chain(adaptation.params)(adapt_states)
            states, infos = batched_step(fold_in(chain_keys, t), states, step_params)
            adapt_states = adapt_update(adapt_states, row, states, infos)
            carry = (states, adapt_states, add_cost(counts, infos))
            return carry, None, acceptance_sum(infos)

        return steps_from(carry, start, length, num_warmup, one)

    def warmup_finish(carry):
        states, adapt_states, counts = carry
        return states, _per_chain(adaptation.final)(adapt_states), counts

    def advance(chain_keys, params, states, counts, i):
        """One kept draw: ``thin`` steps; boolean flags OR-ed over the skipped ones."""

        def one_step(states, counts, t):
            states, infos = batched_step(fold_in(chain_keys, t), states, params)
            return states, infos, add_cost(counts, infos)

        states, infos, counts = one_step(states, counts, i * thin)
        if thin > 1:

            def skipped(j, inner):
                states, kept, counts = inner
                states, infos, counts = one_step(states, counts, i * thin + j)
                kept = jax.tree.map(_keep_flag_or_last, kept, infos)
                return states, kept, counts

            states, infos, counts = jax.lax.fori_loop(1, thin, skipped, (states, infos, counts))
        return states, counts, (states.position, states.logdensity, infos)

    def sampling_start(chain_keys, params, states):
        num_chains = jax.tree.leaves(chain_keys)[0].shape[0]
        counts = (jnp.zeros((num_chains,), jnp.int32), jnp.zeros((num_chains,), jnp.int32))
        # Draws go straight into chain-major buffers (num_chains, num_samples, ...): no
        # transpose of the whole output at the end.
        row = jax.eval_shape(lambda s, c: advance(chain_keys, params, s, c, 0)[2], states, counts)
        buffers = jax.tree.map(
            lambda r: jnp.zeros((r.shape[0], num_samples, *r.shape[1:]), r.dtype), row
        )
        return states, counts, buffers

    def sampling_steps(chain_keys, params, carry, start, length):
        def one(carry, i):
            states, counts = carry
            states, counts, row = advance(chain_keys, params, states, counts, i)
            return (states, counts), row, acceptance_sum(row[2])

        def write(buffers, row, i, valid):
            i = jnp.minimum(i, num_samples - 1)
            return jax.tree.map(
                lambda b, value: b.at[:, i].set(jnp.where(valid, value, b[:, i])), buffers, row
            )

        return steps_from(carry, start, length, num_samples, one, write)

    def sampling_finish(carry):
        _, counts, (positions, logdensity, infos) = carry
        draws = _constrain_all(target, positions, chain_first=True)
        stats = dict(infos._asdict())
        stats["lp"] = logdensity
        return draws, stats, counts

    return _Phases(
        warmup_start, warmup_steps, warmup_finish, sampling_start, sampling_steps, sampling_finish
    )


def _warn_if_unhealthy(result: Result) -> None:
    """The checks cheap enough to run after every sampling: divergences and stuck chains."""
    from infer.diagnostics import DiagnosticWarning, stuck_chains

    if result.num_divergent:
        warnings.warn(
            f"{result.sampler} on {result.target}: {result.num_divergent} divergent transitions "
            "after warm-up; estimates may be biased. Try a higher target_accept, more warm-up, "
            "or a non-centred reparameterisation.",
            DiagnosticWarning,
            stacklevel=3,
        )
    stuck = stuck_chains(result)
    if stuck:
        warnings.warn(
            f"{result.sampler} on {result.target}: chain(s) {stuck} never moved; every proposal "
            "was rejected. Check the log density near the start, or give a smaller step_size.",
            DiagnosticWarning,
            stacklevel=3,
        )


def _per_chain(fn):
    """``vmap(fn)``, or ``fn`` itself for an argument with no arrays (a kernel without
    tunable parameters has ``None``)."""
    batched = jax.vmap(fn)
    return lambda tree: fn(tree) if not jax.tree.leaves(tree) else batched(tree)


def _keep_flag_or_last(kept, new):
    """Across thinned-out steps: boolean flags (divergences) are OR-ed, the rest is the last."""
    return kept | new if kept.dtype == jnp.bool_ else new


def _chain_first(value):
    """(num_samples, num_chains, ...) -> (num_chains, num_samples, ...)."""
    return jnp.swapaxes(value, 0, 1)


def _constrain_all(target: Target, positions, chain_first: bool = False):
    """Named constrained draws ``(num_chains, num_samples, *event)``.

    ``positions`` has leading axes (num_samples, num_chains), or (num_chains, num_samples)
    when ``chain_first``.
    """
    reorder = (lambda value: value) if chain_first else _chain_first
    if target.constrain_fn is None:
        named = target.constrain(positions)  # a renaming only: the sample axes pass through
        return {name: reorder(value) for name, value in named.items()}
    leaves = jax.tree.leaves(positions)
    lead = leaves[0].shape[:2]
    flat = jax.tree.map(lambda leaf: leaf.reshape((-1, *leaf.shape[2:])), positions)
    named = jax.lax.map(target.constrain, flat, batch_size=4096)
    return {
        name: reorder(value.reshape((*lead, *value.shape[1:]))) for name, value in named.items()
    }


IID_CHUNK = 2**24  # draws per device per compiled call of an exact sampler


def _sample_iid(keys, seed, target, sampler, num_chains, num_samples, wall_start, progress):
    """Exact independent draws: a vectorised run per device, filling that device's chains one
    after the other (a flat loop: a ``vmap`` over chains would batch the buffer's scatter,
    which XLA runs several times slower), in chunks of at most 2**24 draws (and at most 100
    chunks) so that a progress bar can follow. The chunking depends only on the sizes, so the
    draws are the same with or without progress.

    ``sampler`` follows the exact-sampler protocol (:class:`infer.base.Sampler` with
    ``is_iid``): ``iid_setup(target)`` on the host, ``iid_program(setup, num_draws)`` for one
    chunk, ``iid_summary(setup, counters, num_draws)`` for the run's facts.
    ``keys``: (num_chains,) keys, sharded like the chains; each device uses its first.
    """
    setup = sampler.iid_setup(target)
    num_shards = len(keys.sharding.device_set)
    chains_per_shard = num_chains // num_shards
    draws_per_shard = chains_per_shard * num_samples
    num_chunks = -(-draws_per_shard // max(IID_CHUNK, -(-draws_per_shard // PROGRESS_CHUNKS)))
    chunk = -(-draws_per_shard // num_chunks)
    draw_fn, dynamic, static_key = sampler.iid_program(setup, chunk)
    cache_key = (
        "iid",
        IdentityKey(target.logdensity_fn),
        IdentityKey(target.constrain_fn),
        sampler.cache_key(),
        static_key,
        num_shards,
        chunk,
        str(keys.dtype),
        _sharding_key(keys.sharding),
    )
    index = np.int32(0)
    compile_seconds = 0.0
    if cache_key not in _compiled:
        start = time.perf_counter()

        def one_shard(keys, chunk_index, dynamic):
            positions, counters = draw_fn(jax.random.fold_in(keys[0], chunk_index), dynamic)
            positions = jax.tree.map(lambda leaf: leaf[None], positions)
            return positions, jax.tree.map(lambda c: c[None], counters)

        if num_shards > 1:
            spec = jax.sharding.PartitionSpec("chain")
            one_shard = jax.shard_map(
                one_shard,
                mesh=keys.sharding.mesh,
                in_specs=(spec, jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec()),
                out_specs=(spec, spec),
                check_vma=False,
            )

        def run(keys, chunk_index, dynamic):
            positions, counters = one_shard(keys, chunk_index, dynamic)
            return _constrain_all(target, positions, chain_first=True), counters

        _remember(cache_key, jax.jit(run).lower(keys, index, dynamic).compile())
        compile_seconds = time.perf_counter() - start
    else:
        _compiled.move_to_end(cache_key)
    program = _compiled[cache_key]
    pieces, counter_pieces = [], []
    bar = (
        _progress_bar(progress, num_chains * num_samples, sampler.name, num_chains)
        if progress
        else contextlib.nullcontext()
    )
    start = time.perf_counter()
    with bar as shown:
        for c in range(num_chunks):
            draws_c, counters_c = program(keys, np.int32(c), dynamic)
            if progress:
                done = min(chunk, draws_per_shard - c * chunk) * num_shards
                shown.set_postfix_str(sampler.iid_progress_text(counters_c), refresh=False)
                shown.update(done)
            pieces.append(draws_c)
            counter_pieces.append(counters_c)
        jax.block_until_ready((pieces, counter_pieces))
    sampling_seconds = time.perf_counter() - start
    draws = {
        name: np.concatenate([np.asarray(piece[name]) for piece in pieces], axis=1)[
            :, :draws_per_shard
        ].reshape((num_chains, num_samples, *pieces[0][name].shape[2:]))
        for name in pieces[0]
    }
    counters = [jax.tree.map(np.asarray, piece) for piece in counter_pieces]
    info, num_logdensity, num_grad = sampler.iid_summary(setup, counters, chunk)
    info["cache_hit"] = compile_seconds == 0.0
    return Result(
        draws=draws,
        stats={},
        timing={
            "compile": compile_seconds,
            "warmup": 0.0,
            "sampling": sampling_seconds,
            "total": time.perf_counter() - wall_start,
        },
        num_logdensity_evals=num_logdensity,
        num_grad_evals=num_grad,
        sampler=sampler.name,
        settings=sampler.settings(),
        seed=seed,
        target=target.name,
        num_warmup=0,
        thin=1,
        info=info,
        ground_truth=target.ground_truth,
    )


def _as_key(rng_key):
    """``(key_input, seed_record)``: a uint32 seed array (turned into a key inside a compiled
    call) or a typed key, and what to record as the seed."""
    if isinstance(rng_key, numbers.Integral) and not isinstance(rng_key, bool):
        if not 0 <= int(rng_key) < 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32); got {rng_key}.")
        return np.asarray(int(rng_key), np.uint32), int(rng_key)
    if isinstance(rng_key, jax.Array) and jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key):
        if rng_key.shape != ():
            raise ValueError(
                f"rng_key must be a single key; got a key array of shape {rng_key.shape}."
            )
        return rng_key, np.asarray(jax.random.key_data(rng_key)).tolist()
    if isinstance(rng_key, (jax.Array, np.ndarray)) and rng_key.dtype == np.uint32:
        if rng_key.shape == (2,):
            return jax.random.wrap_key_data(rng_key), np.asarray(rng_key).tolist()
    raise TypeError(
        f"rng_key must be an int seed or a jax.random.key(...); got {type(rng_key).__name__}."
    )


def _starting_point(target: Target, init, num_chains: int):
    """``(point, per_chain)``: the starting point as float numpy arrays, and whether it holds
    one point per chain (leading axis ``num_chains``) rather than one point."""
    point = init if init is not None else target.init
    if point is None:
        raise ValueError(
            f"target {target.name!r} has no starting point: pass init=... to infer.Target or "
            "to infer.sample (one point, or one per chain with a leading num_chains axis)."
        )
    point = jax.tree.map(_as_float_array, point)
    reference = target.init
    if reference is None:
        reference = point if _returns_scalar(target.logdensity_fn, point) else None
        if reference is None:
            reference = jax.tree.map(lambda leaf: leaf[0], point)
    reference_shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(reference)]
    point_shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(point)]
    same_structure = jax.tree.structure(point) == jax.tree.structure(reference)
    per_chain = [(num_chains, *shape) for shape in reference_shapes]
    if same_structure and point_shapes == per_chain:
        return point, True
    if same_structure and point_shapes == reference_shapes:
        _check_scalar_logdensity(target.logdensity_fn, point)
        return point, False
    raise ValueError(
        f"init has shape {_describe(point_shapes)}; expected one point shaped "
        f"{_describe(reference_shapes)} or one per chain shaped {_describe(per_chain)} "
        f"(num_chains={num_chains})."
    )


def _jittered_positions(target: Target, point, noise, init_jitter: float):
    """Each chain's start: ``point`` plus ``init_jitter`` times its U(-1, 1) noise.

    A chain whose start has a non-finite log density has its jitter halved, up to 20 times,
    so bounded supports (a Beta's (0, 1)) still get dispersed starts.
    """
    structure = jax.tree.structure(point)
    leaves = jax.tree.leaves(point)
    noise = [np.asarray(n) for n in noise]
    jitter = np.full(noise[0].shape[0], init_jitter)
    for _ in range(21):
        positions = jax.tree.unflatten(
            structure,
            [
                (leaf[None] + jitter.reshape((-1,) + (1,) * leaf.ndim) * n).astype(leaf.dtype)
                for leaf, n in zip(leaves, noise, strict=True)
            ],
        )
        bad = ~np.isfinite(_logdensity_per_chain(target, positions))
        if not bad.any() or not jitter[bad].any():
            break
        jitter[bad] /= 2.0
    return positions


def _describe(shapes) -> str:
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _as_float_array(leaf) -> np.ndarray:
    leaf = np.asarray(leaf)
    if not np.issubdtype(leaf.dtype, np.floating):
        leaf = leaf.astype(jnp.result_type(float))
    return leaf


def _returns_scalar(logdensity_fn: Callable, point) -> bool:
    try:
        out = jax.eval_shape(logdensity_fn, point)
    except Exception:  # noqa: BLE001 - any failure means "not a single point"
        return False
    return getattr(out, "shape", None) == ()


def _check_scalar_logdensity(logdensity_fn: Callable, point) -> None:
    shape_of = jax.tree.map(lambda leaf: tuple(leaf.shape), point)
    try:
        out = jax.eval_shape(logdensity_fn, point)
    except Exception as err:
        raise ValueError(
            f"logdensity_fn failed on a point shaped {shape_of}: {type(err).__name__}: {err}"
        ) from err
    if not hasattr(out, "shape") or out.shape != ():
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"logdensity_fn must return a scalar log density; it returned shape {got} for a "
            f"point shaped {shape_of}. Sum the per-coordinate terms (e.g. jnp.sum(...))."
        )


def _logdensity_per_chain(target: Target, positions) -> np.ndarray:
    """The log density at each chain's position, (num_chains,), compiled once per shape."""
    specs = tuple(
        (np.shape(leaf), str(np.asarray(leaf).dtype)) for leaf in jax.tree.leaves(positions)
    )
    cache_key = (
        "logdensity",
        IdentityKey(target.logdensity_fn),
        jax.tree.structure(positions),
        specs,
    )
    if cache_key not in _compiled:
        compiled = jax.jit(jax.vmap(target.logdensity_fn)).lower(positions).compile()
        _remember(cache_key, compiled)
    _compiled.move_to_end(cache_key)
    return np.asarray(_compiled[cache_key](positions))


def _check_initial_logdensity(target: Target, positions, jittered: bool) -> None:
    """Every chain's log density at its start must be a finite scalar."""
    values = _logdensity_per_chain(target, positions)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        chain = int(bad[0])
        point = jax.tree.map(lambda leaf: np.asarray(leaf[chain]).round(4).tolist(), positions)
        fix = "Start inside the support: pass init= a point where the log density is finite."
        raise ValueError(
            f"the log density is {values[chain]} at the initial point of chain {chain} "
            f"({bad.size} of {values.size} chains affected), position {point}. {fix}"
        )
