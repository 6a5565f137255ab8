"""The runner's order of work: segments are dispatched ahead of their read-back, except at the
end of warm-up, so that each phase's time is its own on a device that serves a read-back only
after the program queued behind it (seen on an H200: sampling's time came out near zero)."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import infer
from infer import blocked_loop, driver, progress, run_loop, runner
from infer.markov import Chunk
from infer.placement import in_host_memory
from infer.progress import Pace
from infer.runner import RunRecord, advance


def _fake_programs(events, num_chains=2, capacity=100):
    """Programs whose ``advance`` logs its dispatch and returns a chunk of zeros."""

    def empty():
        return (
            np.zeros((capacity, num_chains, 1), np.float32),
            np.zeros((capacity, num_chains), np.float32),
            {"accepted": np.zeros((capacity, num_chains), np.float32)},
        )

    def run(carry, keys, data, t_start, t_stop, draw_start, buffers):
        events.append(("dispatch", t_start, t_stop))
        positions, logdensity, infos = buffers
        counts = tuple(np.full(num_chains, t_stop - t_start) for _ in range(3))
        return Chunk(carry, positions, logdensity, infos, counts, np.float32(0.0))

    return SimpleNamespace(capacity=capacity, empty=empty, advance=run)


def _run(num_warmup, stop, every=None):
    events = []
    record = RunRecord(carry=None, step=0, num_warmup=num_warmup, thin=1)
    advance(
        record,
        _fake_programs(events),
        np.zeros(2),
        None,
        stop,
        every=every,
        on_segment=lambda r: events.append(("read", r.step)),
    )
    return events, record


def test_warmup_is_read_back_before_sampling_is_dispatched():
    events, record = _run(num_warmup=10, stop=30)
    assert events == [("dispatch", 0, 10), ("read", 10), ("dispatch", 10, 30), ("read", 30)]
    assert record.num_draws == 20


def test_segments_within_a_phase_stay_pipelined():
    # warm-up in two pieces, sampling in two: each next piece of a phase is dispatched
    # before the previous one is read back; only the phase boundary waits
    events, _ = _run(num_warmup=10, stop=30, every=5)
    assert events == [
        ("dispatch", 0, 5),
        ("dispatch", 5, 10),
        ("read", 5),
        ("read", 10),
        ("dispatch", 10, 15),
        ("dispatch", 15, 20),
        ("read", 15),
        ("dispatch", 20, 25),
        ("read", 20),
        ("dispatch", 25, 30),
        ("read", 25),
        ("read", 30),
    ]


def test_in_host_memory_tells_cpu_arrays_from_numpy_and_is_true_on_a_cpu():
    assert in_host_memory(np.zeros(3))
    assert in_host_memory(jnp.zeros(3)) == (jax.default_backend() == "cpu")


def test_a_partial_chunk_read_back_from_a_device_is_sliced_there(monkeypatch):
    # on an accelerator only a partial chunk's used draws are copied to the host: the same
    # path, taken here on the CPU, gives the same run (and each phase has its own time)
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    kwargs = dict(num_chains=3, num_samples=7, num_warmup=5)
    plain = infer.sample(0, target, infer.rwmh(), **kwargs)
    sliced = []
    monkeypatch.setattr(runner, "in_host_memory", lambda leaf: sliced.append(leaf) or False)
    on_device = infer.sample(0, target, infer.rwmh(), **kwargs)
    assert sliced and on_device.draws["x"].shape == (3, 7, 2)
    _same_run(plain, on_device)
    assert on_device.timing["warmup"] > 0 and on_device.timing["sampling"] > 0


# ----------------------------------------------------------------- blocked loop (accelerators)


def _host(leaf):
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def _same_run(a, b):
    for name in a.draws:
        np.testing.assert_array_equal(np.asarray(a.draws[name]), np.asarray(b.draws[name]))
    for name in a.stats:
        np.testing.assert_array_equal(np.asarray(a.stats[name]), np.asarray(b.stats[name]))
    assert (a.num_grad_evals, a.num_logdensity_evals) == (b.num_grad_evals, b.num_logdensity_evals)
    assert (a.state.step, a.state.num_draws) == (b.state.step, b.state.num_draws)
    for x, y in zip(jax.tree.leaves(a.state.carry), jax.tree.leaves(b.state.carry), strict=True):
        np.testing.assert_array_equal(_host(x), _host(y))  # adaptation's state too


def check_blocked_steps(sampler: str) -> None:
    """An accelerator runs the steps in blocks of a known trip count and discards a block's
    steps past the segment's end. Forced here on the CPU with blocks that divide none of the
    lengths: warm-up (adapted), thinning, progress segments, and chunks of 5 draws (10 steps)
    whose last block's discarded step falls on the chunk's last slot. Each run must equal
    the plain loop's bit for bit."""
    target = infer.Target(lambda x: -0.5 * jnp.sum((x - 1.0) ** 2), init=jnp.zeros(3))
    kwargs = dict(num_chains=3, num_samples=23, num_warmup=17, thin=2)
    make = getattr(infer, sampler)
    plain = infer.sample(1, target, make(), **kwargs)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(blocked_loop, "CPU_STEPS_PER_BLOCK", 3)
        blocked = infer.sample(1, target, make(), **kwargs)
        assert blocked.info["cache_hit"] is False  # a program of its own: the blocked loop ran
        _same_run(plain, blocked)
        monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # the bar's pieces: 1% each
        with_bar = infer.sample(1, target, make(), progress=True, **kwargs)
        _same_run(plain, with_bar)
        # segments off the block grid (a resume from a checkpoint made elsewhere): discarded
        # steps inside warm-up too, where the adaptation's state must be left as it was
        # (the bar's pieces are 1 step, in blocks of 4)
        monkeypatch.setattr(run_loop, "round_up", lambda steps, block, thin=1: steps)
        monkeypatch.setattr(blocked_loop, "CPU_STEPS_PER_BLOCK", 4)
        off_grid = infer.sample(1, target, make(), progress=True, **kwargs)
        _same_run(plain, off_grid)
        monkeypatch.setattr(blocked_loop, "CPU_STEPS_PER_BLOCK", 3)
        monkeypatch.setattr(driver, "CHUNK_BYTES", 5 * 3 * (3 * 4 + 64))  # 5 draws a chunk
        chunked = infer.sample(1, target, make(), **kwargs)
        _same_run(plain, chunked)


def test_checkpoints_keep_their_spacing_among_an_accelerators_bar_segments(tmp_path):
    """On an accelerator (blocks of 16 forced here) the progress bar's segments end every
    block, off the checkpoints' grid: a checkpoint came at each one past the grid's cut, 16
    steps after the last where checkpoint_every asked for 20."""
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(blocked_loop, "CPU_STEPS_PER_BLOCK", 16)
        monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # the bar's pieces: 1% each
        infer.sample(
            0,
            target,
            infer.rwmh(),
            num_chains=2,
            num_warmup=0,
            num_samples=160,
            progress=True,
            checkpoint=tmp_path / "run",
            checkpoint_every=20,
        )
    chunks = sorted((tmp_path / "run").glob("chunk-*.npz"))
    kept = [np.load(chunk)["logdensity"].shape[1] for chunk in chunks]
    assert sum(kept) == 160 and min(kept[:-1]) >= 20, kept


# The loop of accelerators (CPU runs take the plain one, a block of 1 step, in every other
# test), in a Python of its own at the default level, 9-12 s a sampler.
@pytest.mark.thorough
@pytest.mark.parametrize("sampler", ["rwmh", "mala", "nuts"])
def test_blocked_steps_give_the_same_run_bit_for_bit(sampler):
    """:func:`check_blocked_steps`, in a Python of its own compiling at XLA's default
    optimisation level, as users' programs do: ``make test`` lowers the level to 0 (see the
    Makefile), where the blocked and plain loops' draws differ in their last bits."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    env = dict(
        os.environ,
        XLA_FLAGS=" ".join(f for f in flags if not f.startswith("--xla_backend_optimization")),
    )
    code = "import sys, test_runner_phases as t; t.check_blocked_steps(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-c", code, sampler],
        env=env,
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]


def test_blocks_fit_the_chunk_and_cpu_runs_the_plain_loop():
    sharding = jax.sharding.make_single_device_sharding(jax.devices()[0])
    assert blocked_loop.steps_per_block(sharding, capacity=4096) == 1
    assert blocked_loop.round_up(10, 4) == 12 and blocked_loop.round_up(None, 4) is None
    assert blocked_loop.round_up(10, 1, thin=3) == 10  # the CPU's segments as they were
    assert blocked_loop.round_up(10, 4, thin=6) == 12 and blocked_loop.round_up(13, 4, 6) == 24


def test_pace_grows_pieces_to_about_half_a_second_never_under_one_percent():
    pace = Pace(10_000)
    assert pace.every == 100  # 1% of the steps
    pace.observe(100, 0.001)  # 100,000 steps/s: half a second is 50,000, capped at 8x
    assert pace.every == 800
    pace.observe(800, 0.008)
    assert pace.every == 6_400
    pace.observe(6_400, 3.2)  # 2,000 steps/s
    assert pace.every == 1_000
    pace.observe(1_000, 100.0)  # slow: still at least 1%
    assert pace.every == 100
    blocks = Pace(1_000, round_up=lambda n: -(-n // 16) * 16)
    assert blocks.every == 16
    blocks.observe(16, 0.5 * 16 / 100)  # 100 steps per half second: whole blocks
    assert blocks.every == 112


def test_pace_and_checkpoints_both_cut_the_pieces():
    record = RunRecord(carry=None, step=0, num_warmup=10, thin=1)
    pace = SimpleNamespace(every=4)
    pieces = list(runner.segments(record, 30, capacity=100, every=6, pace=pace))
    # warm-up: 4 (pace), then 6 (checkpoint grid), 10 (its end); sampling likewise from 10
    assert pieces == [
        (0, 4),
        (4, 6),
        (6, 10),
        (10, 14),
        (14, 16),
        (16, 20),
        (20, 22),
        (22, 26),
        (26, 28),
        (28, 30),
    ]
