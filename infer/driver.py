"""One driver for every sampler: ``infer.sample``.

It checks the arguments on the host, places the chains on the devices, takes the compiled
programs from the cache (:mod:`infer.markov`), and lets the host loop (:mod:`infer.runner`)
advance the chains in segments: with or without a progress bar, checkpoints
(:mod:`infer.checkpoint`) or a stopping rule (:mod:`infer.convergence`), the same program
runs with the same keys, so the draws are the same. Exact samplers go to
:mod:`infer.exact`.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from infer import checkpoint as checkpoints
from infer import memory
from infer.arguments import DEFAULT_JITTER, Arguments, check_arguments
from infer.base import checked_kernel, hook, is_exact
from infer.compilation_cache import off_across_cpu_processes
from infer.exact import sample_exact
from infer.kernel_checks import KernelProtocolError, explain_kernel_failure
from infer.keywords import refusing_unknown_keywords
from infer.loglik import check_loglik, loglik_shapes
from infer.markov import Carry, Plan
from infer.numpyro_data import warn_of_unobserved
from infer.outside_values import held
from infer.placement import replicated, to_host
from infer.process_agreement import on_every_process
from infer.progress import check_progress
from infer.reported_names import reported_shapes
from infer.result import Result
from infer.resume_source import Saved
from infer.run_loop import run_loop
from infer.run_state import (
    ChainState,
    check_compatible,
    check_same_logdensity,
    check_same_precision,
    fingerprint,
)
from infer.runner import Run, RunRecord
from infer.starts import check_initial_logdensity, starting_point
from infer.target import Target

#: Bytes of draws one call of the advance program keeps at most (more make more calls).
CHUNK_BYTES = 2**28
#: Draws one call keeps at most. The capacity depends only on the chains' shapes, never on
#: ``num_samples``, so runs of any length (and their continuations) share one program.
MAX_CHUNK_DRAWS = 4096


def chunk_capacity(num_chains: int, example) -> int:
    """Draws per chain one call of the advance program can keep: at most
    :data:`MAX_CHUNK_DRAWS`, and at most :data:`CHUNK_BYTES` of positions and statistics."""
    position_bytes = sum(
        int(np.size(leaf)) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(example)
    )
    row_bytes = num_chains * (position_bytes + 64)  # 64: the per-step statistics
    return max(1, min(MAX_CHUNK_DRAWS, CHUNK_BYTES // row_bytes))


@refusing_unknown_keywords
def sample(
    rng_key,
    target: Target,
    sampler,
    *,
    num_chains: int | None = None,
    num_samples: int | None = None,
    num_warmup: int | None = None,
    thin: int | None = None,
    init=None,
    init_jitter: float | None = None,
    devices=None,
    progress=False,
    resume=None,
    checkpoint=None,
    checkpoint_every: int | None = None,
    until=None,
    store=None,
    keep=None,
    superchains: int | None = None,
) -> Result:
    """Run ``sampler`` on ``target`` over ``num_chains`` chains.

    Args:
        rng_key: an int seed or a ``jax.random.key``. The same seed gives bit-identical draws.
        target: an :class:`infer.Target`.
        sampler: e.g. ``infer.rwmh()``, ``infer.nuts()``, ``infer.rejection(proposal)``, or
            your own (see ``docs/writing-a-sampler.md``).
        num_chains: independent chains, vectorised with ``vmap``. Default 4, or the resumed
            run's.
        num_samples: draws kept per chain (after thinning); default 1000. With ``until``, the
            draws per chain between two convergence checks. With ``resume=result``, the draws
            to add. A checkpoint folder's run keeps its own (a different one is warned about).
        num_warmup: warm-up steps per chain, discarded; adaptation happens here. Default
            1000, or the resumed run's. Ignored by exact samplers (rejection), whose draws
            need none.
        thin: keep every ``thin``-th step. Divergences in skipped steps still count.
            Default 1, or the resumed run's. Exact samplers refuse a ``thin`` above 1.
        init: one point (each chain starts at its own seeded jitter around it) or one point
            per chain (leading axis ``num_chains``, used as given), or ``result.state``: each
            chain where that run's chain stopped (``num_chains`` defaults to its). Default:
            ``target.init``. A NumPyro target's point is unconstrained (``log sigma``):
            ``target.unconstrain({"sigma": 2.0, ...})`` maps the sites' own values.
        init_jitter: half-width of the uniform jitter added to a single starting point
            (default 1.0); refused with ``resume``.
        devices: the devices to run on; default all of ``jax.devices()`` (every process's, in
            a multi-process run, whose processes must make the same call). When there are
            several and ``num_chains`` is a multiple of their number, the chains are split
            among them (sharded on the chain axis); otherwise everything runs on the first.
            Each chain's keys depend only on the seed and the chain's index, and so do its
            draws for a given number of chains (another number, or of chains per device, may
            round differently).
        progress: ``True`` shows a progress bar (tqdm) with the running acceptance rate, or
            pass a ``tqdm`` class/partial to customise it. The draws are bit-identical with
            and without it: the same compiled program runs, only called in more pieces.
        resume: continue earlier chains without warm-up: a :class:`infer.Result` of a Markov
            sampler (``num_samples`` more draws; join them with :func:`infer.concat`), or a
            checkpoint folder (or file) written with ``checkpoint=`` (finish that run: the
            result holds all its draws and equals an uninterrupted run bit for bit). The
            target, sampler, its options and the shapes must be those of the saved run,
            whose ``superchains`` and ``checkpoint_every`` (unless given) it keeps.
        checkpoint: a folder to write checkpoints to, atomically, at chunk boundaries: the
            draws so far and the chains' state. Resuming from a folder keeps writing to it.
        checkpoint_every: steps per chain between checkpoints (warm-up steps count; with
            ``thin``, a checkpoint after warm-up waits for the next kept draw; on an
            accelerator, for the end of a block of 16 steps); default about a tenth of the
            run.
        until: a stopping rule, ``infer.converged(rhat=1.01, ess=400, max_samples=...)``:
            draw ``num_samples`` per chain at a time until every parameter meets it or the
            budget is spent (then a warning names the parameters that fell short).
        store: ``None`` (default): the draws are gathered in memory. A path (or
            ``infer.ZarrStore(path)``): each chunk of draws is written to a Zarr store on disk
            and dropped, so memory holds one chunk whatever ``num_samples`` is; the result's
            draws are then read from the store lazily (see :mod:`infer.store`).
        keep: the names of the draws to keep (e.g. ``["mu", "tau"]``); default all.
        superchains: split the chains into this many superchains of consecutive chains that
            share a starting point (the many-short-chains regime); ``infer.compare`` then
            reports nested R-hat (Margossian et al. 2024). ``num_chains`` must be a multiple.

    Returns:
        A :class:`infer.Result`: ``draws`` ``name -> (num_chains, num_samples, *event_shape)``
        in constrained space, per-step ``stats`` ``(num_chains, num_samples)``, ``timing``,
        evaluation counts, and ``state`` to resume from. ``result.to_arviz()`` gives an ArviZ
        ``DataTree``.

    Raises:
        TypeError, ValueError: for bad arguments, before anything is compiled; a log density
            that is not finite at a chain's starting point names the chain; a resume whose
            target, sampler or shapes differ from the saved run's says what differs.
    """
    with held():  # each function's outside values read once per call
        wall_start = time.perf_counter()
        check_progress(progress)
        off_across_cpu_processes(devices)  # before anything compiles, the seed's key included
        args = check_arguments(
            rng_key,
            target,
            sampler,
            num_chains=num_chains,
            num_samples=num_samples,
            num_warmup=num_warmup,
            thin=thin,
            init=init,
            init_jitter=init_jitter,
            devices=devices,
            resume=resume,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            until=until,
            store=store,
            keep=keep,
            superchains=superchains,
            exact=is_exact(sampler),
        )
        if unobserved := target.notes.get("unobserved"):  # a NumPyro model's outcome left out
            warn_of_unobserved(*unobserved)
        if is_exact(sampler):
            return sample_exact(
                args.key_input,
                args.seed,
                target,
                sampler,
                args.num_chains,
                args.num_samples,
                args.sharding,
                progress,
                wall_start,
            )
        run = _start(args)
        return run_loop(run, args.num_samples, until, args.outputs, progress, wall_start)


def _start(args: Arguments) -> Run:
    """Trace, check the memory, place and compile; returns the run with its record at its
    first (or resumed) step."""
    target, sampler, sharding, source = args.target, args.sampler, args.sharding, args.source
    positions, per_chain = _positions(args)
    example = jax.tree.map(lambda leaf: leaf[0], positions) if per_chain else positions
    hook(sampler, "check")(example)
    hook(sampler, "check_data")(target.data)
    bound = target.bound(target.data)
    hook(sampler, "check_target")(bound, example)
    checked_kernel(sampler.build(bound, args.num_warmup), sampler)  # host
    data = None if target.data is None else jax.device_put(target.data, replicated(sharding))
    structs = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(
            (args.num_chains, *np.shape(leaf)), leaf.dtype, sharding=sharding
        ),
        example,
    )
    current = fingerprint(target, sampler, structs, args.num_warmup, args.thin)
    if isinstance(source, ChainState | Saved):  # before anything traces the log density
        where = "the given result" if isinstance(source, ChainState) else str(source.saved.path)
        check_same_precision(source.fingerprint, where, isinstance(source, ChainState))
        check_compatible(source.fingerprint, current, where)
    try:
        plan = Plan(
            target,
            sampler,
            args.key_input,
            structs,
            data,
            sharding,
            args.num_warmup,
            args.thin,
            chunk_capacity(args.num_chains, example),
            args.superchain_size,
        )
    except (AttributeError, TypeError, ValueError) as err:  # a kernel that breaks the protocol
        _explain_plan_failure(err, sampler, bound, example, source)
        raise
    need = _check_memory(plan, args, example, sharding)
    if isinstance(source, ChainState):
        chain_keys = jax.device_put(source.chain_keys, sharding)
        carry = jax.device_put(source.carry, sharding)
        record = RunRecord(carry, source.step, args.num_warmup, args.thin)
    elif isinstance(source, Saved):
        chain_keys, record = checkpoints.restore(
            source.saved, plan.carry_structs, args.num_warmup, args.thin, sharding
        )
    else:
        chain_keys, record = _first_record(args, plan, positions, per_chain, data)
    record.moves_by_logdensity = bool(getattr(sampler, "logdensity_is_exact", True))
    if isinstance(source, ChainState):  # the draws go on from the earlier run's last: a
        # chain whose first new draw differs from it moved (10 new draws all alike after one
        # accepted step were said to be a chain that never moved)
        state = record.carry.kernel_state
        start = jax.tree.map(lambda leaf: to_host(leaf)[:, None], state.position)
        record.note_moves(start, to_host(state.logdensity)[:, None])
    for positions, logdensity in zip(record.positions, record.logdensity, strict=True):
        record.note_moves(positions, logdensity)  # a checkpoint's draws: did its chains move
    if isinstance(source, ChainState | Saved) and record.moves_by_logdensity:
        where = "the given result" if isinstance(source, ChainState) else str(source.saved.path)
        check_same_logdensity(target, data, record.carry.kernel_state, where)
    return Run(
        target=target,
        sampler=sampler,
        seed=args.seed,
        programs=plan.compile(),
        record=record,
        chain_keys=chain_keys,
        data=data,
        fingerprint=current,
        resumed_from=source.saved if isinstance(source, Saved) else None,
        memory=need,
        superchain_size=args.superchain_size,
    )


def _positions(args: Arguments):
    """``(positions, per_chain)``: the resumed chains' positions, or the starting point(s)."""
    source = args.source
    if isinstance(source, ChainState):
        check_loglik(args.target, jax.tree.map(lambda leaf: leaf[0], source.position))
        return source.position, True
    positions, per_chain = starting_point(args.target, args.init, args.num_chains)
    one = jax.tree.map(lambda leaf: leaf[0], positions) if per_chain else positions
    check_loglik(args.target, one)
    if per_chain and args.init_jitter is not None:  # before anything compiles
        raise ValueError(
            f"init_jitter={args.init_jitter!r} jitters one starting point, but init gives one "
            "per chain, used as given: leave init_jitter out, or give one point."
        )
    if per_chain and args.superchain_size > 1:
        _check_superchain_starts(positions, args.superchain_size)
    return positions, per_chain


def _check_superchain_starts(positions, size: int) -> None:
    """Per-chain starts must agree within each superchain of ``size`` consecutive chains:
    they share one start (nested R-hat assumes it)."""
    for leaf in jax.tree.leaves(positions):
        leaf = np.asarray(leaf)
        grouped = leaf.reshape(-1, size, *leaf.shape[1:])
        differ = np.flatnonzero(
            ~np.all(grouped == grouped[:, :1], axis=tuple(range(1, leaf.ndim + 1)))
        )
        if differ.size:
            first = int(differ[0]) * size
            raise ValueError(
                f"superchains: the {size} chains of a superchain share one start, but init "
                f"gives chains {first} to {first + size - 1} different ones. Give one point "
                "(each superchain starts at its own jitter around it), or repeat each "
                "superchain's start for its chains."
            )


def _explain_plan_failure(err: Exception, sampler, bound, example, source) -> None:
    """Raise what made building a run's programs fail, where it can be said: a 32-bit state
    in memory whose kernel cannot go on in 32-bit floats with ``jax_enable_x64`` on, or a
    kernel that breaks the protocol (in its words); else return: ``err`` stands."""
    if isinstance(source, ChainState):
        why = f" ({sampler.name}'s kernel cannot go on in 32-bit floats with it on)"
        check_same_precision(source.fingerprint, "the given result", False, why)
    try:
        explain_kernel_failure(sampler, bound, example)
    except KernelProtocolError as explained:
        raise explained from err
    except Exception:  # the explanation itself failed: the original error stands
        pass


def _first_record(args: Arguments, plan: Plan, positions, per_chain: bool, data):
    """``(chain_keys, record)`` of a new run: the start program's keys and states, after the
    check that every chain's start has a finite log density (before the long compile)."""
    start, _ = plan.compile_start()
    if not per_chain:
        positions = jax.tree.map(
            lambda leaf: np.broadcast_to(leaf, (args.num_chains, *np.shape(leaf))), positions
        )
    positions = jax.device_put(positions, args.sharding)
    jitter = 0.0 if per_chain else DEFAULT_JITTER if args.init_jitter is None else args.init_jitter
    chain_keys, starts, carry, values = start(args.key_input, positions, jitter, data)
    check_initial_logdensity(to_host(values), to_host(starts), args.target, jitter)
    record = RunRecord(carry, 0, args.num_warmup, args.thin)
    record.num_logdensity_evals = args.num_chains
    record.num_grad_evals = args.num_chains * int(bool(args.sampler.uses_gradients))
    return chain_keys, record


def _check_memory(plan: Plan, args: Arguments, example, sharding):
    """Refuse a run that cannot fit in memory before it is compiled (see
    :mod:`infer.memory`): its draws in memory or, with a store, one chunk at a time, and the
    pointwise log likelihood of each (a target with ``loglik_fn``). Every parameter counts,
    ``keep`` or not: the draws are constrained all together before ``keep`` picks them."""
    target, outputs, num_draws = args.target, args.outputs, args.num_draws
    draw_bytes = memory.nbytes(reported_shapes(target, example))
    if target.loglik_fn is not None:  # the log_likelihood group: each observation, each draw
        draw_bytes += memory.nbytes(loglik_shapes(target, example))
    devices = list(sharding.device_set)
    stored = outputs.store is not None
    need = plan.need(num_draws, draw_bytes, len(devices), stored, args.until is not None)
    num_chains = plan.keys_struct.shape[0]
    on_every_process(  # each host's own free memory: a refusal stops every process
        lambda: memory.check(
            need,
            devices,
            f"{args.sampler.name} on {target.name} with {num_chains} chains x {num_draws} draws",
            "Use fewer chains (num_chains) or draws (num_samples), keep every k-th draw "
            "(thin=k), write the draws to disk as they come (store='run.zarr'), or draw in "
            "pieces: run num_samples=n, then resume=result for n more, saving each result "
            "(result.save) before the next.",
        )
    )
    return need


__all__ = ["sample", "Carry"]
