"""The loop of a Markov-chain run: advance the chains segment by segment up to the stop,
with the hooks that write checkpoints and the store, and the convergence check of
``until=`` between batches; then the result."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from infer import checkpoint as checkpoints
from infer import convergence
from infer.blocked_loop import round_up
from infer.loglik import pointwise
from infer.placement import to_host
from infer.progress import PROGRESS_CHUNKS, Pace, progress_bar
from infer.reported_values import default_names
from infer.result import arviz_stat_names
from infer.run_result import markov_result
from infer.runner import Run, RunRecord, advance
from infer.store import UNCONSTRAINED, StoreWriter
from infer.writer_lock import writing


class Outputs(NamedTuple):
    """Where a run's draws go besides the result: a checkpoint folder (and how often), a
    store on disk, and the draw names to keep."""

    folder: Path | None
    checkpoint_every: int | None
    store: object
    keep: list | None


def run_loop(run: Run, num_samples: int, until, outputs: Outputs, progress, wall_start: float):
    """Advance ``run`` until it stops (``num_samples`` draws, the checkpoint's stop, or the
    ``until`` rule) and return its :class:`infer.Result`, holding the locks of its checkpoint
    folder and store while it writes there (:mod:`infer.writer_lock`)."""
    with contextlib.ExitStack() as locks:
        if outputs.folder is not None and _writable(outputs.folder):
            locks.enter_context(writing(outputs.folder, "checkpoint"))
        if outputs.store is not None:
            locks.enter_context(writing(outputs.store.path, "store"))
        try:
            return _run_loop(run, num_samples, until, outputs, progress, wall_start)
        except (KeyboardInterrupt, OSError) as err:  # Ctrl-C, a full disk: say what is kept
            for note in _what_is_kept(outputs, err):
                err.add_note(note)
            raise


def _writable(folder: Path) -> bool:
    """Whether this run may write ``folder``: one it cannot holds a finished run, which it
    only reads (``arguments`` refused an unfinished one), so it takes no lock there (a
    read-only archive failed on the lock file)."""
    return not folder.is_dir() or os.access(folder, os.W_OK)


def _what_is_kept(outputs: Outputs, err: BaseException) -> list[str]:
    """Notes for an interrupted run's error: what its checkpoint folder or store holds, and
    how to go on from it."""
    notes = []
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        notes.append("The disk is full: free space (or choose another folder) first.")
    if outputs.folder is not None:
        folder = str(outputs.folder)
        notes.append(
            f"The checkpoints in {folder!r} keep the run up to the last one written: "
            f"continue it with infer.sample(..., resume={folder!r})."
            if checkpoints.checkpoints(outputs.folder)
            else f"No checkpoint was written in {folder!r}: the run stopped before its "
            "first, so start it again (the empty folder may be given again)."
        )
    if outputs.store is not None:
        store, written = str(outputs.store.path), int(outputs.store.written)
        notes.append(
            f"The store {store!r} keeps the {written:,} draws per chain written (every "
            f"whole chunk): infer.open_store({store!r}) opens them."
            if written
            else f"No draws were written to the store {store!r}: the run stopped before its "
            "first chunk."
        )
    return notes


def _run_loop(run: Run, num_samples: int, until, outputs: Outputs, progress, wall_start: float):
    record = run.record
    step_draws = num_samples * record.thin
    if run.resumed_from is not None:
        stop = max(record.step, int(run.resumed_from.meta["stop"]))
    else:
        stop = max(record.step, record.num_warmup) + step_draws
    budget = None if until is None else record.num_warmup + until.max_samples * record.thin
    stop = stop if budget is None else min(stop, budget)
    total = budget or stop
    every, writer, hooks = None, None, []
    if jax.process_count() > 1:  # each segment ends in a read all processes make together:
        # every process cuts its run alike, bar or not (a bar's clock-paced segments differ)
        every = max(1, -(-(total - record.step) // PROGRESS_CHUNKS))
    if outputs.folder is not None:
        every_checkpoint = outputs.checkpoint_every or max(1, -(-(total - record.step) // 10))
        every = min(every or every_checkpoint, every_checkpoint)
        facts = {
            "fingerprint": run.fingerprint,
            "seed": run.seed,
            "until": None if until is None else until.as_dict(),
            "superchain_size": run.superchain_size,
            # what a resume from this folder keeps: the draws between two checks of until=
            # (where the run stops depends on it) and how often it checkpoints
            "check_every": None if until is None else num_samples,
            "checkpoint_every": every_checkpoint,
            "keep": outputs.keep,
        }
        writer = checkpoints.Writer(
            outputs.folder, facts, run.chain_keys, every_checkpoint, record, run.resumed_from
        )
        hooks.append(writer.maybe_write)
    # On an accelerator, segments of whole blocks compute no step they discard: a checkpoint
    # then comes at least checkpoint_every steps after the last (less thin - 1, a cut
    # waiting for a kept draw), at the end of a block.
    every = round_up(every, run.programs.block, record.thin)
    pace = None
    if progress and jax.process_count() == 1:  # the bar's segments: about half a second each
        pace = Pace(total - record.step, lambda n: round_up(n, run.programs.block, record.thin))
    if outputs.store is not None:
        hooks.append(_store_writer(run, outputs, total, until))
    description = f"{run.sampler.name} x{run.chain_keys.shape[0]} chains"
    stopped, failing = None, {}
    with progress_bar(progress, total - record.step, description) as bar:
        while True:
            if writer is not None:
                writer.stop = stop
            advance(
                record,
                run.programs,
                run.chain_keys,
                run.data,
                stop,
                every=every,
                pace=pace,
                bar=bar if progress else None,
                on_segment=(lambda r: [hook(r) for hook in hooks]) if hooks else None,
            )
            if until is None:
                break
            draws = _draws_so_far(record, outputs.store)
            failing = convergence.shortfalls(draws, until, run.superchain_size)
            if not failing:
                stopped = "converged"
                break
            if record.num_draws >= until.max_samples:
                stopped = "max_samples"
                break
            stop = min(stop + step_draws, budget)
    if writer is not None:
        writer.write(record, final=True)
    return markov_result(run, until, stopped, failing, wall_start, outputs.store, outputs.keep)


def _store_writer(run: Run, outputs: Outputs, total: int, until) -> StoreWriter:
    """The hook that writes each segment's draws into the run's store."""
    record = run.record
    max_draws = max(0, total - record.num_warmup) // record.thin
    attrs = {  # what a killed run's store says of it (a finished one gets every fact)
        "sampler": run.sampler.name,
        "target": run.target.name,
        "seed": str(run.seed),
        "num_warmup": int(record.num_warmup),
        "thin": int(record.thin),
    }
    sharding = run.chain_keys.sharding

    def constrain(positions):
        return to_host(dict(run.programs.constrain(jax.device_put(positions, sharding), run.data)))

    return StoreWriter(
        outputs.store,
        constrain,
        arviz_stat_names,
        outputs.keep,
        max_draws,
        run.programs.capacity,
        attrs,
        unconstrained=None if until is None else default_names,
        dims=run.target.dims,
        loglik=_store_loglik(run),
        data_groups=run.target.data_groups(),
    )


def _store_loglik(run: Run):
    """``positions -> dict`` of pointwise log likelihoods for the store, or ``None``: one
    program for every chunk (padded to a full one)."""
    if run.target.loglik_fn is None:
        return None
    program_draws = run.chain_keys.shape[0] * run.programs.capacity
    return lambda positions: pointwise(run.target, positions, program_draws) or None


def _draws_so_far(record: RunRecord, store):
    """What the convergence check reads: the unconstrained positions of every parameter, in
    memory or in the store's group of them (whatever ``keep`` stores of the constrained
    draws), so that a run stops at the same draw with a store as without."""
    if store is None:
        return record.stacked()[0]
    positions = store.arrays_of(UNCONSTRAINED)
    return {name: np.asarray(array[:, : store.written]) for name, array in positions.items()}
