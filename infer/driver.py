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
from pathlib import Path

import jax
import numpy as np

from infer import checkpoint as checkpoints
from infer import convergence, memory, validation
from infer.base import check_sampler, hook, is_exact
from infer.exact import run_exact
from infer.keys import as_key, chain_keys
from infer.markov import Carry, Plan
from infer.placement import chain_sharding, replicated, to_host
from infer.result import Result
from infer.run_loop import Outputs, run_loop
from infer.run_state import ChainState, check_compatible, fingerprint
from infer.runner import Run, RunRecord
from infer.starts import check_initial_logdensity, starting_point
from infer.store import as_store
from infer.target import Target, check_target

DEFAULT_WARMUP = 1000
DEFAULT_CHAINS = 4
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


def sample(
    rng_key,
    target: Target,
    sampler,
    *,
    num_chains: int | None = None,
    num_samples: int = 1000,
    num_warmup: int | None = None,
    thin: int = 1,
    init=None,
    init_jitter: float = 1.0,
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
        num_samples: draws kept per chain (after thinning). With ``until``, the draws per
            chain between two convergence checks. With ``resume=result``, the draws to add.
        num_warmup: warm-up steps per chain, discarded; adaptation happens here. Default
            1000, or the resumed run's. Ignored by exact samplers (rejection), whose draws
            need none.
        thin: keep every ``thin``-th step. Divergences in skipped steps still count.
        init: one point (each chain starts at its own seeded jitter around it) or one point
            per chain (leading axis ``num_chains``, used as given). Default: ``target.init``.
        init_jitter: half-width of the uniform jitter added to a single starting point.
        devices: the devices to run on; default all of ``jax.local_devices()``. When there are
            several and ``num_chains`` is a multiple of their number, the chains are split
            among them (sharded on the chain axis); otherwise everything runs on the first.
            Each chain's draws depend only on the seed and the chain's index.
        progress: ``True`` shows a progress bar (tqdm) with the running acceptance rate, or
            pass a ``tqdm`` class/partial to customise it. The draws are bit-identical with
            and without it: the same compiled program runs, only called in more pieces.
        resume: continue earlier chains without warm-up: a :class:`infer.Result` of a Markov
            sampler (``num_samples`` more draws; join them with :func:`infer.concat`), or a
            checkpoint folder (or file) written with ``checkpoint=`` (finish that run: the
            result holds all its draws and equals an uninterrupted run bit for bit). The
            target, sampler, its options and the shapes must be those of the saved run.
        checkpoint: a folder to write checkpoints to, atomically, at chunk boundaries: the
            draws so far and the chains' state. Resuming from a folder keeps writing to it.
        checkpoint_every: steps per chain between checkpoints (warm-up steps count); default
            about a tenth of the run.
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
    wall_start = time.perf_counter()
    key_input, seed = as_key(rng_key)
    check_target(target)
    check_sampler(sampler)
    if num_chains is None:
        num_chains = resume.state.num_chains if _has_state(resume) else DEFAULT_CHAINS
    num_chains = validation.positive_int("num_chains", num_chains)
    num_samples = validation.positive_int("num_samples", num_samples)
    thin = validation.positive_int("thin", thin)
    init_jitter = float(init_jitter)
    if not (np.isfinite(init_jitter) and init_jitter >= 0):
        raise ValueError(f"init_jitter must be a finite number >= 0; got {init_jitter}.")
    if until is not None and not isinstance(until, convergence.Converged):
        raise TypeError(
            f"until must be infer.converged(rhat=..., ess=..., max_samples=...); got {until!r}."
        )
    sharding = chain_sharding(devices, num_chains)
    if is_exact(sampler):
        _refuse_for_exact(sampler, resume, checkpoint, until)
        return _sample_exact(
            key_input,
            seed,
            target,
            sampler,
            num_chains,
            num_samples,
            sharding,
            progress,
            wall_start,
        )
    source = _resume_source(resume, init)
    if num_warmup is None:
        num_warmup = DEFAULT_WARMUP if source is None else source.num_warmup
    num_warmup = validation.positive_int("num_warmup", num_warmup, minimum=0)
    if checkpoint_every is not None:
        checkpoint_every = validation.positive_int("checkpoint_every", checkpoint_every)
    folder = _checkpoint_folder(checkpoint, resume)
    store = as_store(store)
    if store is not None and (folder is not None or resume is not None):
        raise ValueError(
            "store= writes the draws to disk as they come; it cannot be combined with "
            "checkpoint= or resume= yet. Use one or the other."
        )
    keep = _check_keep(keep, target, init)
    if jax.process_count() > 1 and (store is not None or folder is not None):
        raise ValueError(
            f"with {jax.process_count()} processes every process gathers the whole result; "
            "checkpoint= and store= are not supported across processes yet: save the result "
            "from process 0 (result.save) instead."
        )
    superchain_size = _superchain_size(superchains, num_chains, init, source)
    num_draws = until.max_samples if until is not None else num_samples
    if isinstance(source, _Saved):
        num_draws = max(0, int(source.saved.meta["stop"]) - num_warmup) // thin
    run = _start(
        key_input,
        seed,
        target,
        sampler,
        num_chains,
        num_warmup,
        thin,
        init,
        init_jitter,
        sharding,
        source,
        num_draws,
        superchain_size,
    )
    outputs = Outputs(folder, checkpoint_every, store, keep)
    return run_loop(run, num_samples, until, outputs, progress, wall_start)


def _superchain_size(superchains, num_chains: int, init, source) -> int:
    """Chains per superchain (1 without superchains), checked against ``num_chains``."""
    if superchains is None:
        return getattr(source, "superchain_size", 1) or 1
    superchains = validation.positive_int("superchains", superchains)
    if num_chains % superchains:
        raise ValueError(
            f"superchains={superchains} must divide num_chains={num_chains}: each superchain "
            "holds the same number of chains."
        )
    return num_chains // superchains


def _check_keep(keep, target, init) -> list | None:
    """``keep`` as a list of draw names the target reports, or a ``ValueError``."""
    if keep is None:
        return None
    if isinstance(keep, str) or not all(isinstance(name, str) for name in keep):
        raise TypeError(f"keep must be a list of draw names, e.g. ['mu', 'tau']; got {keep!r}.")
    point = init if init is not None else target.init
    names = list(jax.eval_shape(target.constrain, point)) if point is not None else None
    unknown = [name for name in keep if names is not None and name not in names]
    if unknown or not keep:
        raise ValueError(
            f"keep names {unknown or keep} that the target does not report; its draws are {names}."
        )
    return list(keep)


def _has_state(resume) -> bool:
    return isinstance(resume, Result) and resume.state is not None


def _refuse_for_exact(sampler, resume, checkpoint, until) -> None:
    used = [
        name
        for name, value in (("resume", resume), ("checkpoint", checkpoint), ("until", until))
        if value is not None
    ]
    if used:
        raise ValueError(
            f"{sampler.name} makes exact independent draws, so {', '.join(used)} do not apply: "
            "for more draws, call infer.sample again with another seed and join the results."
        )


def _sample_exact(
    key_input, seed, target, sampler, num_chains, num_samples, sharding, progress, wall_start
) -> Result:
    if target.init is not None:
        draws = memory.nbytes(jax.eval_shape(target.constrain, target.init))
        draws *= num_chains * num_samples
        # the chunks on the device (host memory on a CPU), their copies and the result
        need = memory.Need(2 * draws, draws, {"draws": draws}, draws)
        memory.check(
            need,
            list(sharding.device_set),
            f"{sampler.name} on {target.name} with {num_chains} chains x {num_samples} draws",
            "Use fewer chains (num_chains) or draws (num_samples), or draw in pieces with "
            "different seeds, saving each result (result.save) before the next.",
        )
    keys = chain_keys(key_input, num_chains)
    out = run_exact(
        jax.device_put(keys, sharding), target, sampler, num_chains, num_samples, progress
    )
    return Result(
        draws=out.draws,
        stats={},
        timing={
            "compile": out.compile_seconds,
            "warmup": 0.0,
            "sampling": out.sampling_seconds,
            "total": time.perf_counter() - wall_start,
        },
        num_logdensity_evals=out.num_logdensity_evals,
        num_grad_evals=out.num_grad_evals,
        sampler=sampler.name,
        settings=sampler.settings(),
        seed=seed,
        target=target.name,
        num_warmup=0,
        thin=1,
        info={**out.info, "exact": True},
        ground_truth=target.ground_truth,
    )


def _resume_source(resume, init):
    """``None``, the :class:`ChainState` of a result, or a checkpoint read from disk."""
    if resume is None:
        return None
    if init is not None:
        raise ValueError(
            "init and resume cannot both be given: resumed chains start where they stopped."
        )
    if isinstance(resume, Result):
        if resume.state is None:
            raise ValueError(
                f"resume=result needs the chains' state, and this {resume.sampler} result has "
                "none (results of exact samplers and ADVI, loaded from a file or made by "
                "Result.from_draws carry none). Resume from a checkpoint folder instead."
            )
        return resume.state
    if isinstance(resume, ChainState):
        return resume
    if isinstance(resume, (str, Path)):
        return _Saved(checkpoints.load(resume))
    raise TypeError(
        f"resume must be an infer.Result or a checkpoint folder; got {type(resume).__name__}."
    )


class _Saved:
    """A checkpoint read from disk, seen like a :class:`ChainState`."""

    def __init__(self, saved: checkpoints.Checkpoint):
        self.saved = saved
        meta = saved.meta
        self.step = int(meta["step"])
        self.num_warmup = int(meta["num_warmup"])
        self.thin = int(meta["thin"])
        self.fingerprint = meta["fingerprint"]


def _start(
    key_input,
    seed,
    target,
    sampler,
    num_chains,
    num_warmup,
    thin,
    init,
    init_jitter,
    sharding,
    source,
    num_draws,
    superchain_size=1,
) -> Run:
    """Check, trace, check the memory, place and compile; returns the run with its record at
    its first (or resumed) step. ``num_draws``: the draws per chain the run may keep."""
    if isinstance(source, ChainState):
        if source.seed != seed:
            raise ValueError(
                f"resume continues the chains' own random streams, made from seed "
                f"{source.seed!r}; pass that seed (got {seed!r}). For new randomness, start a "
                "run with init=result.state.position."
            )
        positions, per_chain = source.position, True
    else:
        positions, per_chain = starting_point(target, init, num_chains)
    example = jax.tree.map(lambda leaf: leaf[0], positions) if per_chain else positions
    hook(sampler, "check")(example)
    data = None if target.data is None else jax.device_put(target.data, replicated(sharding))
    structs = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(
            (num_chains, *np.shape(leaf)), leaf.dtype, sharding=sharding
        ),
        example,
    )
    capacity = chunk_capacity(num_chains, example)
    plan = Plan(
        target,
        sampler,
        key_input,
        structs,
        data,
        sharding,
        num_warmup,
        thin,
        capacity,
        superchain_size,
    )
    need = _check_memory(plan, target, sampler, example, num_draws, sharding)
    current = fingerprint(target, sampler, structs, num_warmup, thin)
    if isinstance(source, ChainState):
        check_compatible(source.fingerprint, current, "the given result")
        chain_keys = jax.device_put(source.chain_keys, sharding)
        record = RunRecord(jax.device_put(source.carry, sharding), source.step, num_warmup, thin)
    elif isinstance(source, _Saved):
        check_compatible(source.fingerprint, current, str(source.saved.path))
        chain_keys, record = checkpoints.restore(
            source.saved, plan.carry_structs, num_warmup, thin, sharding
        )
    else:
        start, _ = plan.compile_start()  # bad starts are reported before the long compile
        if not per_chain:
            positions = jax.tree.map(
                lambda leaf: np.broadcast_to(leaf, (num_chains, *np.shape(leaf))), positions
            )
        positions = jax.device_put(positions, sharding)
        jitter = 0.0 if per_chain else init_jitter
        chain_keys, starts, carry, values = start(key_input, positions, jitter, data)
        check_initial_logdensity(to_host(values), to_host(starts))
        record = RunRecord(carry, 0, num_warmup, thin)
        record.num_logdensity_evals = num_chains
        record.num_grad_evals = num_chains * int(bool(sampler.uses_gradients))
    return Run(
        target=target,
        sampler=sampler,
        seed=seed,
        programs=plan.compile(),
        record=record,
        chain_keys=chain_keys,
        data=data,
        fingerprint=current,
        resumed_from=source.saved if isinstance(source, _Saved) else None,
        memory=need,
        superchain_size=superchain_size,
    )


def _check_memory(plan: Plan, target, sampler, example, num_draws: int, sharding):
    """Refuse a run that cannot fit in memory before it is compiled (see
    :mod:`infer.memory`)."""
    draw_bytes = memory.nbytes(jax.eval_shape(target.constrain, example))
    devices = list(sharding.device_set)
    need = plan.need(num_draws, draw_bytes, len(devices))
    num_chains = plan.keys_struct.shape[0]
    memory.check(
        need,
        devices,
        f"{sampler.name} on {target.name} with {num_chains} chains x {num_draws} draws",
        "Use fewer chains (num_chains) or draws (num_samples), keep every k-th draw "
        "(thin=k), or draw in pieces: run num_samples=n, then resume=result for n more, "
        "saving each result (result.save) before the next.",
    )
    return need


def _checkpoint_folder(checkpoint, resume) -> Path | None:
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, Path)):
            raise TypeError(f"checkpoint must be a folder path; got {type(checkpoint).__name__}.")
        folder = Path(checkpoint)
        resuming_it = isinstance(resume, (str, Path)) and Path(resume) in (
            folder,
            *checkpoints.checkpoints(folder),
        )
        if checkpoints.checkpoints(folder) and not resuming_it:
            raise ValueError(
                f"checkpoint={str(folder)!r} already holds a run's checkpoints: pass "
                f"resume={str(folder)!r} to continue that run, or choose an empty folder."
            )
        return folder
    if isinstance(resume, (str, Path)):
        path = Path(resume)
        return path if path.is_dir() else path.parent
    return None


__all__ = ["sample", "Carry"]
