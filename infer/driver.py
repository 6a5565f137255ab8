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
import numbers
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.algorithms.rejection import Rejection, draw, warn_on_violations
from infer.base import IdentityKey, Kernel, Sampler
from infer.result import Result
from infer.target import Target

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
    if not isinstance(target, Target):
        raise TypeError(
            f"target must be an infer.Target; got {type(target).__name__}. Wrap a log density "
            "as infer.Target(logdensity_fn, init=...), or a NumPyro model as "
            "infer.Target.from_numpyro(model, *args)."
        )
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
            sampling_keys, seed, target, sampler, num_chains, num_samples, wall_start
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
        target, sampler, positions, warmup_keys, num_warmup, num_samples, thin
    )
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
    if "step_size" in stats:
        info["step_size"] = stats["step_size"][:, -1].tolist()
    scale = getattr(params, "scale", None)
    if scale is not None and np.ndim(scale) > 1:
        info["proposal_std"] = _scale_std(np.asarray(scale)).tolist()
    return Result(
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
    warmup: Callable
    sampling: Callable


def _get_runner(target, sampler, positions, keys, num_warmup, num_samples, thin):
    """Compiled warm-up and sampling programs, from the cache when the shapes match."""
    shapes = jax.tree.map(lambda leaf: (leaf.shape, str(leaf.dtype)), positions)
    cache_key = (
        "mcmc",
        IdentityKey(target.logdensity_fn),
        IdentityKey(target.constrain_fn),
        sampler.cache_key(),
        num_warmup,
        num_samples,
        thin,
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
    warmup_fn, sampling_fn = _programs(
        kernel, target, num_warmup, num_samples, thin, sampler.uses_gradients
    )
    warmup_compiled = jax.jit(warmup_fn).lower(keys, positions).compile()
    # The sampling program takes the warm-up's outputs as they are placed on the devices.
    states, params, _ = jax.tree.map(
        lambda info, sharding: jax.ShapeDtypeStruct(info.shape, info.dtype, sharding=sharding),
        warmup_compiled.out_info,
        warmup_compiled.output_shardings,
    )
    sampling_compiled = jax.jit(sampling_fn).lower(keys, states, params).compile()
    runner = _Runner(warmup_compiled, sampling_compiled)
    _remember(cache_key, runner)
    return runner, time.perf_counter() - start


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


def _programs(
    kernel: Kernel,
    target: Target,
    num_warmup: int,
    num_samples: int,
    thin: int,
    uses_gradients: bool,
):
    """The warm-up and sampling functions for all chains (chain axis first)."""
    batched_step = jax.vmap(kernel.step)
    batched_cost = kernel.cost
    fold_in = jax.vmap(jax.random.fold_in, in_axes=(0, None))

    def add_cost(counts, infos):
        num_logdensity, num_grad = batched_cost(infos)
        return counts[0] + num_logdensity, counts[1] + num_grad

    def warmup_fn(chain_keys, positions):
        num_chains = jax.tree.leaves(positions)[0].shape[0]
        states = jax.vmap(kernel.init)(positions)
        params = jax.vmap(kernel.params)(positions)
        grads = 1 if uses_gradients else 0
        counts = (
            jnp.ones((num_chains,), jnp.int32),
            jnp.full((num_chains,), grads, jnp.int32),
        )
        if num_warmup == 0:
            return states, params, counts
        adaptation = kernel.adaptation
        steps = jnp.arange(num_warmup)
        if adaptation is None:

            def body(carry, t):
                states, counts = carry
                states, infos = batched_step(fold_in(chain_keys, t), states, params)
                return (states, add_cost(counts, infos)), None

            (states, counts), _ = jax.lax.scan(body, (states, counts), steps)
            return states, params, counts

        schedule = jax.tree.map(jnp.asarray, adaptation.schedule(num_warmup))
        adapt_states = jax.vmap(adaptation.init)(params, states)
        adapt_update = jax.vmap(adaptation.update, in_axes=(0, None, 0, 0))

        def adaptive_body(carry, xs):
            states, adapt_states, counts = carry
            t, row = xs
            step_params = jax.vmap(adaptation.params)(adapt_states)
            states, infos = batched_step(fold_in(chain_keys, t), states, step_params)
            adapt_states = adapt_update(adapt_states, row, states, infos)
            return (states, adapt_states, add_cost(counts, infos)), None

        (states, adapt_states, counts), _ = jax.lax.scan(
            adaptive_body, (states, adapt_states, counts), (steps, schedule)
        )
        return states, jax.vmap(adaptation.final)(adapt_states), counts

    def sampling_fn(chain_keys, states, params):
        num_chains = jax.tree.leaves(chain_keys)[0].shape[0]
        counts = (jnp.zeros((num_chains,), jnp.int32), jnp.zeros((num_chains,), jnp.int32))

        def one_step(states, counts, t):
            states, infos = batched_step(fold_in(chain_keys, t), states, params)
            return states, infos, add_cost(counts, infos)

        def advance(states, counts, i):
            """One kept draw: ``thin`` steps; flags OR-ed over the skipped ones."""
            states, infos, counts = one_step(states, counts, i * thin)
            if thin > 1:

                def skipped(j, inner):
                    states, kept, counts = inner
                    states, infos, counts = one_step(states, counts, i * thin + j)
                    kept = jax.tree.map(_keep_flag_or_last, kept, infos)
                    return states, kept, counts

                states, infos, counts = jax.lax.fori_loop(1, thin, skipped, (states, infos, counts))
            return states, counts, (states.position, states.logdensity, infos)

        # Draws are written straight into chain-major buffers (num_chains, num_samples, ...),
        # so no transpose of the whole output is needed at the end.
        row_shapes = jax.eval_shape(lambda s, c: advance(s, c, 0)[2], states, counts)
        buffers = jax.tree.map(
            lambda r: jnp.zeros((r.shape[0], num_samples, *r.shape[1:]), r.dtype), row_shapes
        )

        def record(i, carry):
            states, counts, buffers = carry
            states, counts, row = advance(states, counts, i)
            buffers = jax.tree.map(lambda b, value: b.at[:, i].set(value), buffers, row)
            return states, counts, buffers

        states, counts, (positions, logdensity, infos) = jax.lax.fori_loop(
            0, num_samples, record, (states, counts, buffers)
        )
        draws = _constrain_all(target, positions, chain_first=True)
        stats = dict(infos._asdict())
        stats["lp"] = logdensity
        return draws, stats, counts

    return warmup_fn, sampling_fn


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


def _sample_iid(keys, seed, target, sampler: Rejection, num_chains, num_samples, wall_start):
    """Exact independent draws: one vectorised rejection run per device, filling that device's
    chains one after the other (a flat loop: a ``vmap`` over chains would batch the buffer's
    scatter, which XLA runs several times slower).

    ``keys``: (num_chains,) keys, sharded like the chains; each device uses its first.
    """
    logdensity_fn = target.logdensity_fn
    example = jax.eval_shape(sampler.proposal.sample, jax.ShapeDtypeStruct((), keys.dtype))
    if target.init is not None:
        sampler.check(target.init)
    _check_scalar_logdensity(logdensity_fn, example)
    envelope = sampler.envelope(logdensity_fn)
    num_shards = len(keys.sharding.device_set)
    chains_per_shard = num_chains // num_shards
    draws_per_shard = chains_per_shard * num_samples
    batch_size, max_proposals = sampler.plan(envelope, draws_per_shard)
    cache_key = (
        "iid",
        IdentityKey(logdensity_fn),
        IdentityKey(target.constrain_fn),
        sampler.cache_key(),
        num_chains,
        num_samples,
        batch_size,
        max_proposals,
        str(keys.dtype),
        _sharding_key(keys.sharding),
    )
    log_envelope = np.asarray(envelope.log_envelope, jnp.result_type(float))
    compile_seconds = 0.0
    if cache_key not in _compiled:
        start = time.perf_counter()

        def one_shard(keys, log_envelope):
            out = draw(
                keys[0],
                logdensity_fn,
                sampler.proposal,
                log_envelope,
                draws_per_shard,
                batch_size,
                max_proposals,
            )
            positions = jax.tree.map(
                lambda leaf: leaf.reshape((chains_per_shard, num_samples, *leaf.shape[1:])),
                out.positions,
            )
            counters = jax.tree.map(lambda c: c[None], out._replace(positions=None))
            return positions, counters

        if num_shards > 1:
            spec = jax.sharding.PartitionSpec("chain")
            one_shard = jax.shard_map(
                one_shard,
                mesh=keys.sharding.mesh,
                in_specs=(spec, jax.sharding.PartitionSpec()),
                out_specs=(spec, spec),
                check_vma=False,
            )

        def run(keys, log_envelope):
            positions, counters = one_shard(keys, log_envelope)
            return _constrain_all(target, positions, chain_first=True), counters

        _remember(cache_key, jax.jit(run).lower(keys, log_envelope).compile())
        compile_seconds = time.perf_counter() - start
    else:
        _compiled.move_to_end(cache_key)
    start = time.perf_counter()
    draws, counters = _compiled[cache_key](keys, log_envelope)
    jax.block_until_ready((draws, counters))
    sampling_seconds = time.perf_counter() - start

    accepted = np.asarray(counters.num_accepted)
    num_accepted = int(accepted.astype(np.int64).sum())
    num_proposals = _total(counters.num_proposals)
    if np.any(accepted < draws_per_shard):
        chain = int(np.argmin(accepted))
        raise RuntimeError(
            f"rejection sampling used its budget of {max_proposals} proposals on device "
            f"{chain} and accepted only {int(accepted[chain])} of the {draws_per_shard} draws "
            f"asked for (acceptance rate {num_accepted / max(num_proposals, 1):.3g}; log M = "
            f"{envelope.log_envelope:.4g}). Use a proposal closer to the target, or raise "
            "max_proposals."
        )
    num_violations = _total(counters.num_violations)
    max_log_excess = float(np.max(np.asarray(counters.max_log_excess)))
    warn_on_violations(num_violations, num_proposals, max_log_excess)
    info = {
        "acceptance_rate": num_accepted / num_proposals,
        "num_proposals": num_proposals,
        "num_accepted": num_accepted,
        "log_envelope": envelope.log_envelope,
        "envelope_source": envelope.source,
        "envelope_violations": num_violations,
        "max_envelope_ratio": float(np.exp(min(max_log_excess, 700.0))),
        "cache_hit": compile_seconds == 0.0,
    }
    return Result(
        draws={name: np.asarray(value) for name, value in draws.items()},
        stats={},
        timing={
            "compile": compile_seconds,
            "warmup": 0.0,
            "sampling": sampling_seconds,
            "total": time.perf_counter() - wall_start,
        },
        num_logdensity_evals=num_proposals,
        num_grad_evals=0,
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
