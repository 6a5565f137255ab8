"""The host loop of a Markov-chain run: it calls the advance program over segments of steps
and gathers what comes back.

The segments only decide how often the host sees the chains (a progress bar, a checkpoint,
a convergence check); the compiled program and the keys are the same however the steps are
cut, so the draws are bit-identical with or without any of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import jax
import numpy as np

from infer.markov import Carry, Chunk, Programs
from infer.placement import in_host_memory, to_host
from infer.step_counts import total as count_total


@dataclass
class RunRecord:
    """Everything a run has produced so far, on the host.

    Attributes:
        carry: the chains' state after ``step`` steps (device arrays).
        step: the next global step index (warm-up steps count from 0).
        num_warmup, thin: as the run was started.
        positions, logdensity, infos: one entry per segment that kept draws: the
            unconstrained positions ``(num_chains, k, ...)``, ``(num_chains, k)`` log
            densities and name -> ``(num_chains, k)`` diagnostics, numpy.
        num_logdensity_evals, num_grad_evals: totals over all chains, warm-up included.
        nonfinite: ``(num_chains,)`` proposals whose log density was NaN or ``+inf``, warm-up
            included (``None`` before the first segment).
        warmup_seconds, sampling_seconds: wall time of each phase.
    """

    carry: Carry
    step: int
    num_warmup: int
    thin: int
    positions: list = field(default_factory=list)
    logdensity: list = field(default_factory=list)
    infos: list = field(default_factory=list)
    num_logdensity_evals: int = 0
    num_grad_evals: int = 0
    nonfinite: object = None
    warmup_seconds: float = 0.0
    sampling_seconds: float = 0.0

    #: ``(num_chains,)`` whether each chain's kept draws ever changed (None before any)
    moved: object = None
    #: whether a changed log density shows a chain moved (the sampler's
    #: ``logdensity_is_exact``); else positions alone are compared
    moves_by_logdensity: bool = True
    _first: object = None

    def note_moves(self, positions, logdensity) -> None:
        """Update :attr:`moved` with a part of kept draws ``(num_chains, k, ...)`` and their
        log densities ``(num_chains, k)``: a chain moved if any draw differs from its first
        (kept as the run goes, so that no check needs all the draws at once).

        A log density is a function of the position, so a chain whose log density changed
        has moved (unless :attr:`moves_by_logdensity` is False: an estimated log density);
        only the chains whose log density never changed (a flat target, a stuck chain) are
        compared position by position, which is most of the cost otherwise
        (~3% of a random-walk step on the logistic regression at 1,024 chains)."""
        logdensity = np.asarray(logdensity)
        leaves = [
            np.reshape(leaf, (leaf.shape[0], leaf.shape[1], -1))
            for leaf in jax.tree.leaves(positions)
        ]
        if self._first is None:
            self._first = ([leaf[:, :1].copy() for leaf in leaves], logdensity[:, :1].copy())
            self.moved = np.zeros(logdensity.shape[0], bool)
        first_positions, first_logdensity = self._first
        if self.moves_by_logdensity:
            same = (logdensity == first_logdensity) | (
                np.isnan(logdensity) & np.isnan(first_logdensity)
            )
            self.moved |= ~np.all(same, axis=1)
        for leaf, first in zip(leaves, first_positions, strict=True):
            unsure = np.flatnonzero(~self.moved)
            if unsure.size:
                self.moved[unsure] |= np.any(leaf[unsure] != first[unsure], axis=(1, 2))

    def carry_chains(self) -> int:
        """The number of chains."""
        return int(jax.tree.leaves(self.carry.kernel_state)[0].shape[0])

    def draws_before(self, step: int) -> int:
        """Draws kept by the steps before global step ``step``."""
        return max(0, step - self.num_warmup) // self.thin

    @property
    def num_draws(self) -> int:
        return self.draws_before(self.step)

    def stacked(self) -> tuple:
        """``(positions, logdensity, infos)`` of every kept draw, concatenated on the draw
        axis (numpy)."""
        if not self.positions:
            return None, None, {}
        if len(self.positions) == 1:
            return self.positions[0], self.logdensity[0], self.infos[0]
        positions = jax.tree.map(lambda *parts: np.concatenate(parts, axis=1), *self.positions)
        logdensity = np.concatenate(self.logdensity, axis=1)
        infos = {
            name: np.concatenate([part[name] for part in self.infos], axis=1)
            for name in self.infos[0]
        }
        return positions, logdensity, infos


@dataclass
class Run:
    """A Markov-chain run on the host: what it runs and where it stands.

    Attributes:
        target, sampler: what is run.
        seed: what the chains' keys were made from.
        programs: the compiled programs (:class:`infer.markov.Programs`).
        record: the draws and state so far.
        chain_keys: ``(num_chains,)`` keys, placed like the chains.
        data: the target's data on the devices, or ``None``.
        fingerprint: what the run's state depends on (see :mod:`infer.run_state`).
        resumed_from: the checkpoint it resumed from, or ``None``.
        memory: the run's memory estimate (:class:`infer.memory.Need`), or ``None``.
        superchain_size: chains per superchain (1: independent starts).
    """

    target: object
    sampler: object
    seed: object
    programs: Programs
    record: RunRecord
    chain_keys: object
    data: object
    fingerprint: dict
    resumed_from: object = None
    memory: object = None
    superchain_size: int = 1

    @property
    def compile_seconds(self) -> float:
        return self.programs.seconds


def next_cut(step: int, warmup: int, every: int) -> int:
    """The first step after ``step`` on the grid of every ``every`` steps, counted from 0 in
    warm-up and from its end after it (where :func:`segments` cuts, before it rounds a cut up
    to a kept draw)."""
    origin = 0 if step < warmup else warmup
    return origin + ((step - origin) // every + 1) * every


def segments(
    record: RunRecord, stop: int, capacity: int, every: int | None, pace=None
) -> Iterator[tuple[int, int]]:
    """``(t_start, t_stop)`` pieces from ``record.step`` to ``stop``: split at the end of
    warm-up, every ``every`` steps of each phase (``None``: only where needed), after
    ``pace.every`` steps (a :class:`~infer.progress.Pace`, read as each piece is made), and so
    that no piece keeps more than ``capacity`` draws. After warm-up every piece ends at a kept
    draw: the flags of thinned-out steps (divergences) are carried within a piece to the next
    kept draw. With ``every``, the pace's lengths and ``capacity * thin`` multiples of a
    block, every piece but the last of each phase (and the first after a resume off the grid)
    is whole blocks."""
    start, warmup, thin = record.step, record.num_warmup, record.thin
    while start < stop:
        end = stop
        if start < warmup:
            end = min(end, warmup)
        else:
            end = min(end, warmup + (record.draws_before(start) + capacity) * thin)
        cuts = [next_cut(start, warmup, every)] if every else []
        if pace is not None:
            cuts.append(start + pace.every)
        for cut in cuts:
            if cut > warmup:  # at a kept draw
                cut = warmup + -(-(cut - warmup) // thin) * thin
            end = min(end, cut)
        yield start, end
        start = end


def advance(
    record: RunRecord,
    programs: Programs,
    chain_keys,
    data,
    stop: int,
    *,
    every: int | None = None,
    pace=None,
    bar=None,
    on_segment: Callable[[RunRecord], None] | None = None,
) -> RunRecord:
    """Run the chains of ``record`` up to global step ``stop``, in place.

    Each segment is dispatched before the previous one is read back (but the first after
    warm-up, so that each phase's time is its own), so the device works while the host
    copies draws, updates ``bar`` (a tqdm bar or ``None``) and calls
    ``on_segment(record)`` (checkpoints, convergence checks); ``pace`` (a
    :class:`~infer.progress.Pace` or ``None``) sizes the bar's segments. A segment writes
    its draws into the buffers of the segment before the last, once read back, rather than
    into new ones: a short segment (a progress bar's, a checkpoint's) then costs its steps,
    not the filling of a whole chunk's buffers.
    """
    num_chains = chain_keys.shape[0]
    previous: tuple | None = None
    spare = None
    clock = time.perf_counter()
    carry = record.carry
    for t_start, t_stop in segments(record, stop, programs.capacity, every, pace):
        if previous is not None and previous[1] < record.num_warmup <= t_start:
            # Warm-up is read back before sampling is dispatched. An accelerator runs the two
            # programs in order and can serve the read-back only after the second, which then
            # put all the time into warm-up: sampling's share, which rates are taken from,
            # came out near zero (an H200, jax 0.11.2). A warm-up segment keeps no draws, so
            # its buffers are the next segment's.
            clock = _finish(record, *previous, clock, num_chains, bar, on_segment, pace, True)
            spare = (previous[0].positions, previous[0].logdensity, previous[0].infos)
            previous = None
        draw_start = max(0, t_start - record.num_warmup) // record.thin
        buffers = programs.empty() if spare is None else spare
        chunk = programs.advance(carry, chain_keys, data, t_start, t_stop, draw_start, buffers)
        del buffers
        carry = chunk.carry
        spare = None
        if previous is not None:
            clock = _finish(record, *previous, clock, num_chains, bar, on_segment, pace, True)
            spare = (previous[0].positions, previous[0].logdensity, previous[0].infos)
        previous = (chunk, t_start, t_stop)
    if previous is not None:
        _finish(record, *previous, clock, num_chains, bar, on_segment, pace, False)
    return record


def _finish(
    record, chunk: Chunk, t_start, t_stop, clock, num_chains, bar, on_segment, pace, reused: bool
) -> float:
    """Read one segment back into ``record``; returns the time it was done. ``reused``: its
    buffers will be written again (by the next segment). ``pace`` (or ``None``) is told how
    long the segment took."""
    kept = record.draws_before(t_stop) - record.draws_before(t_start)
    counts = to_host(chunk.counts)
    accepted = float(to_host(chunk.acceptance_sum))
    if kept:

        def used(buffer):  # on a CPU sliced on the host (no program to compile per length),
            # on an accelerator on the device (only the used draws cross; one small slice
            # program per length). A full buffer is kept as it is (on a CPU, a view of the
            # device's memory); of a partial one the used part is copied if the buffer will
            # be written again, else viewed. The device writes draw-major; the record holds
            # chain-major views of that.
            if kept < buffer.shape[0] and not in_host_memory(buffer):
                buffer = buffer[:kept]  # only the used draws cross to the host
            on_host = to_host(buffer)
            if kept < on_host.shape[0]:
                on_host = on_host[:kept].copy() if reused else on_host[:kept]
            return np.swapaxes(on_host, 0, 1)

        record.positions.append(jax.tree.map(used, chunk.positions))
        record.logdensity.append(used(chunk.logdensity))
        record.infos.append({name: used(value) for name, value in chunk.infos.items()})
        record.note_moves(record.positions[-1], record.logdensity[-1])
    record.num_logdensity_evals += int(count_total(counts[0]).sum())
    record.num_grad_evals += int(count_total(counts[1]).sum())
    nonfinite = count_total(counts[2])
    record.nonfinite = nonfinite if record.nonfinite is None else record.nonfinite + nonfinite
    done = time.perf_counter()
    if pace is not None:
        pace.observe(t_stop - t_start, done - clock)
    if t_start < record.num_warmup:
        record.warmup_seconds += done - clock
    else:
        record.sampling_seconds += done - clock
    record.step = t_stop
    record.carry = chunk.carry
    if bar is not None:
        steps = t_stop - t_start
        phase = "warm-up" if t_start < record.num_warmup else "sampling"
        rate = accepted / max(steps * num_chains, 1)  # NaN: the sampler reports none
        shown = f"{phase}, acceptance {rate:.2f}" if np.isfinite(rate) else phase
        bar.set_postfix_str(shown, refresh=False)
        bar.update(steps)
    if on_segment is not None:
        on_segment(record)
    return time.perf_counter()
