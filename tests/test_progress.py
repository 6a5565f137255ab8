"""Progress bars: one bar for all chains, a few updates, the acceptance rate in its text."""

import functools
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tqdm import tqdm

import infer
from infer import progress
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out


class RecordingBar(tqdm):
    """A tqdm that keeps its updates and texts."""

    updates: list = []
    texts: list = []

    def update(self, n=1):
        RecordingBar.updates.append(n)
        return super().update(n)

    def set_postfix_str(self, s="", refresh=True):
        RecordingBar.texts.append(s)
        return super().set_postfix_str(s, refresh)


def _bar():
    RecordingBar.updates, RecordingBar.texts = [], []
    return functools.partial(RecordingBar, file=io.StringIO())


def test_one_bar_for_all_vectorised_chains():
    target = targets.get("normal_10d")
    result = infer.sample(
        0, target, infer.rwmh(), num_chains=16, num_samples=500, num_warmup=1000, progress=_bar()
    )
    assert sum(RecordingBar.updates) == 1500  # warm-up and kept draws, all chains at once
    assert len(RecordingBar.updates) <= 100  # at most every 1% of the steps
    assert any(t.startswith("warm-up, acceptance") for t in RecordingBar.texts)
    assert any(t.startswith("sampling, acceptance 0.") for t in RecordingBar.texts)
    assert result.draws["x"].shape == (16, 500, 10)


def test_same_chain_with_and_without_progress(monkeypatch):
    """The same compiled program runs, in more pieces: the draws are bit-identical."""
    target = targets.get("normal_10d")
    sampler = infer.rwmh()
    off = infer.sample(3, target, sampler, num_chains=4, num_samples=300)
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # every piece 1% of the steps
    on = infer.sample(3, target, sampler, num_chains=4, num_samples=300, progress=_bar())
    assert len(RecordingBar.updates) == 101  # in pieces of 1% (13 steps; 1,000 are warm-up)
    for name in off.draws:
        np.testing.assert_array_equal(off.draws[name], on.draws[name])
    for name in off.stats:
        np.testing.assert_array_equal(off.stats[name], on.stats[name])
    assert off.num_logdensity_evals == on.num_logdensity_evals


@pytest.mark.thorough
def test_nuts_and_thinning_with_progress():
    result = infer.sample(
        0,
        targets.get("conjugate"),
        infer.nuts(),
        num_chains=4,
        num_samples=103,
        num_warmup=97,
        thin=2,
        progress=_bar(),
    )
    assert sum(RecordingBar.updates) == 97 + 2 * 103  # steps: warm-up, then thinned draws
    assert result.draws["p"].shape == (4, 103)
    assert np.all(np.isfinite(result.draws["p"]))


def test_rejection_with_progress():
    target = targets.get("normal_1d")
    sampler = infer.rejection(target.rejection_proposal)
    result = infer.sample(0, target, sampler, num_chains=2, num_samples=1000, progress=_bar())
    assert sum(RecordingBar.updates) == 2000
    assert any("acceptance" in t for t in RecordingBar.texts)
    assert result.draws["x"].shape == (2, 1000)


@pytest.mark.thorough
def test_progress_with_chains_sharded_over_devices():
    script = textwrap.dedent(
        """
        import io, functools, jax, infer
        from tqdm import tqdm
        from models import targets
        assert len(jax.devices()) == 2
        bar = functools.partial(tqdm, file=io.StringIO())
        result = infer.sample(0, targets.get("normal_10d"), infer.nuts(), num_chains=4,
                              num_samples=100, num_warmup=100, progress=bar)
        print(result.draws["x"].shape)
        """
    )
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags)
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("(4, 100, 10)")


def test_a_fast_run_is_cut_into_few_pieces():
    # each piece costs a host round trip (a few percent of a short NUTS run in 26 pieces):
    # the bar's pieces grow to about PROGRESS_SECONDS of steps, from 1% of the run's steps
    target = targets.get("normal_10d")
    result = infer.sample(
        0, target, infer.rwmh(), num_chains=4, num_samples=2000, num_warmup=1000, progress=_bar()
    )
    assert sum(RecordingBar.updates) == 3000
    assert RecordingBar.updates[:2] == [30, 30]  # 1% each, the second sent before the first's
    assert 3 <= len(RecordingBar.updates) <= 8  # time is known: then far larger ones
    assert result.draws["x"].shape == (4, 2000, 10)
