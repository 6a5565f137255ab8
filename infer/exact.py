"""The runner of exact samplers (rejection, ARS): independent draws in vectorised batches.

Each device fills its chains one after the other (a flat loop: a ``vmap`` over chains would
batch the buffer's scatter, which XLA runs several times slower), in chunks of at most 2**24
draws (and at most :data:`~infer.progress.PROGRESS_CHUNKS` chunks) so that a progress bar can
follow. The chunking depends only on the sizes, so the draws are the same with or without
progress. An exact sampler sets up on the target's data (a hull, an envelope), which its
program holds: a target with other data values compiles a program of its own.
"""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import jax
import numpy as np

from infer import memory
from infer.base import hook
from infer.caller import INFER_FRAMES
from infer.diagnostics import DiagnosticWarning
from infer.draws_checks import imprecise_run
from infer.flag_rules import rejected_nonfinite_message
from infer.keys import chain_keys
from infer.placement import PROGRAMS, sharding_key, to_host
from infer.process_agreement import on_every_process
from infer.progress import PROGRESS_CHUNKS, progress_bar
from infer.reported_names import reported_shapes
from infer.result import Result
from infer.run_state import data_digest
from infer.target import Target, program_key

IID_CHUNK = 2**24  # draws per device per compiled call of an exact sampler


class ExactRun(NamedTuple):
    """What :func:`run_exact` returns.

    Attributes:
        draws: name -> ``(num_chains, num_samples, *event_shape)`` numpy, constrained.
        info: run facts from the sampler (acceptance rate, envelope, ...).
        num_logdensity_evals, num_grad_evals: the run's cost.
        compile_seconds, sampling_seconds: where the time went.
    """

    draws: dict
    info: dict
    num_logdensity_evals: int
    num_grad_evals: int
    compile_seconds: float
    sampling_seconds: float


def run_exact(keys, target: Target, sampler, num_chains: int, num_samples: int, progress):
    """``num_chains * num_samples`` exact draws.

    Args:
        keys: ``(num_chains,)`` keys, placed like the chains; each device uses its first.
        sampler: follows :class:`infer.base.ExactSampler`.
    """
    setup = sampler.iid_setup(target)
    num_shards = len(keys.sharding.device_set)
    draws_per_shard = num_chains // num_shards * num_samples
    num_chunks = -(-draws_per_shard // max(IID_CHUNK, -(-draws_per_shard // PROGRESS_CHUNKS)))
    chunk = -(-draws_per_shard // num_chunks)
    draw_fn, dynamic, static_key = sampler.iid_program(setup, chunk)
    cache_key = (
        "exact",
        program_key(target),
        data_digest(target.data),  # the sampler sets up on the data's values, held in
        # the program (a hull, an envelope): another target's data must not find it
        hook(sampler, "cache_key")(),
        static_key,
        num_shards,
        chunk,
        tuple(keys.shape),  # the chains: the program's keys are one per chain
        str(keys.dtype),
        sharding_key(keys.sharding),
    )
    index = np.int32(0)

    def build():
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
            return target.constrain(positions), counters

        return jax.jit(run).lower(keys, index, dynamic).compile()

    program, compile_seconds = PROGRAMS.get(cache_key, build)
    pieces, counter_pieces = [], []
    start = time.perf_counter()
    with progress_bar(
        progress, num_chains * num_samples, f"{sampler.name} x{num_chains} chains", unit="draw"
    ) as bar:
        for c in range(num_chunks):
            draws_c, counters_c = program(keys, np.int32(c), dynamic)
            if progress:  # reading the counters waits for the chunk: only for a bar
                bar.set_postfix_str(sampler.iid_progress_text(counters_c), refresh=False)
                bar.update(min(chunk, draws_per_shard - c * chunk) * num_shards)
            pieces.append(draws_c)
            counter_pieces.append(counters_c)
        jax.block_until_ready((pieces, counter_pieces))
    sampling_seconds = time.perf_counter() - start
    draws = {
        name: np.concatenate([to_host(piece[name]) for piece in pieces], axis=1)[
            :, :draws_per_shard
        ].reshape((num_chains, num_samples, *pieces[0][name].shape[2:]))
        for name in pieces[0]
    }
    counters = [to_host(piece) for piece in counter_pieces]
    info, num_logdensity, num_grad = sampler.iid_summary(setup, counters, chunk)
    info["cache_hit"] = compile_seconds == 0.0
    return ExactRun(draws, info, num_logdensity, num_grad, compile_seconds, sampling_seconds)


def sample_exact(
    key_input, seed, target, sampler, num_chains, num_samples, sharding, progress, wall_start
) -> Result:
    """:func:`infer.sample` for an exact sampler: the memory check, then :func:`run_exact`,
    then the :class:`infer.Result` (no warm-up, no per-step statistics)."""
    if target.init is not None:
        draws = memory.nbytes(reported_shapes(target, target.init))
        draws *= num_chains * num_samples
        # the chunks on the device (host memory on a CPU), their copies and the result
        need = memory.Need(2 * draws, draws, {"draws": draws}, draws)
        on_every_process(  # each host's own free memory: a refusal stops every process
            lambda: memory.check(
                need,
                list(sharding.device_set),
                f"{sampler.name} on {target.name} with {num_chains} chains x {num_samples} draws",
                "Use fewer chains (num_chains) or draws (num_samples), or draw in pieces with "
                "different seeds, saving each result (result.save) before the next.",
            )
        )
    keys = chain_keys(key_input, num_chains, sharding)
    out = run_exact(keys, target, sampler, num_chains, num_samples, progress)
    _warn_if_nonfinite(out.info, f"{sampler.name} on {target.name}")
    result = Result(
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
        # a sampler may say its draws are not exact (envelope violations); by default they
        # are; independent they are whatever it says
        info={
            **out.info,
            "exact": bool(out.info.get("exact", True)),
            "independent": True,
            **target.result_info(),
        },
        ground_truth=target.ground_truth,
        groups=target.data_groups(),  # so predictive checks can tell the fit's data
        dims=dict(target.dims or {}),
    )
    imprecise = imprecise_run(result)
    if imprecise:  # float32 rounded the log density: its draws are not exact
        warnings.warn(
            f"{sampler.name} on {target.name}: {imprecise}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
        result.info["exact"] = False
    return result


def _warn_if_nonfinite(info: dict, label: str) -> None:
    """A warning when proposals met a NaN log density (or a ``+inf`` the sampler did not
    already warn of as an envelope violation): rejected, but a sign of a broken density."""
    nonfinite = int(info.get("nonfinite_proposals", 0))
    if nonfinite > int(info.get("envelope_violations", 0)):
        where = f"{nonfinite} of {info.get('num_proposals', '?')}"
        warnings.warn(
            f"{label}: {rejected_nonfinite_message(where)}",
            DiagnosticWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
