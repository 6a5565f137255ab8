"""A run that cannot fit in memory is refused before anything is compiled, with a message
that says what it needs, what there is and what to change; one that nearly fills the memory
warns; the estimate matches the size of what comes back."""

import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import infer
from infer import memory
from infer.placement import PROGRAMS
from models import targets


def measured_bytes(result: infer.Result) -> int:
    """The result's arrays: draws, stats, and a NumPyro target's pointwise log likelihood."""
    loglik = result.groups.get("log_likelihood", {})
    arrays = [*result.draws.values(), *result.stats.values(), *loglik.values()]
    return int(sum(np.asarray(a).nbytes for a in arrays))


@pytest.mark.parametrize(
    "case",
    [
        ("normal_10d", "rwmh", dict(num_chains=4, num_samples=500)),
        pytest.param(  # 8 s: NUTS's default warm-up; `make test-thorough` runs it
            ("eight_schools", "nuts", dict(num_chains=2, num_samples=300)),
            marks=pytest.mark.thorough,
        ),
        pytest.param(  # a second sampler, thinned: `make test-thorough`
            ("correlated_2d", "mala", dict(num_chains=8, num_samples=200, thin=2)),
            marks=pytest.mark.thorough,
        ),
    ],
    ids=lambda case: f"{case[1]}-{case[0]}",
)
def test_the_estimate_is_within_ten_percent_of_the_result(case):
    name, sampler, options = case
    # The default warm-up: the same programs as other files' runs of these targets.
    result = infer.sample(0, targets.get(name), getattr(infer, sampler)(), **options)
    estimate = result.info["memory_estimate"]["result_bytes"]
    assert abs(estimate - measured_bytes(result)) <= 0.1 * measured_bytes(result)
    assert result.info["memory_estimate"]["host_bytes"] >= estimate


def test_a_run_larger_than_memory_is_refused_before_compiling():
    before = set(PROGRAMS.keys())
    with pytest.raises(
        MemoryError,
        match=(
            r"rwmh on normal_10d with 4096 chains x 200000 draws needs about .* GiB of host "
            r"memory \(.*\) but .* is available, so it was not started\. Use fewer chains "
            r"\(num_chains\) or draws \(num_samples\), keep every k-th draw \(thin=k\), write "
            r"the draws to disk as they come \(store='run.zarr'\), or draw in pieces"
        ),
    ):
        infer.sample(
            0, targets.get("normal_10d"), infer.rwmh(), num_chains=4096, num_samples=200_000
        )
    compiled = [key for key in PROGRAMS.keys() if key not in before]
    assert not [key for key in compiled if key[0].startswith("markov")]


@pytest.mark.slow  # 2 x 800,000 draws to disk, 10 s: `make test` runs it, `make test-fast` not
def test_a_stored_run_needs_one_chunk_of_host_memory_not_all_its_draws(monkeypatch, tmp_path):
    target = targets.get("normal_10d")
    options = dict(num_chains=4, num_samples=200_000)
    stored = infer.sample(0, target, infer.rwmh(), store=tmp_path / "a.zarr", **options)
    estimate = stored.info["memory_estimate"]
    need = estimate["host_bytes"] + estimate["device_bytes"]  # one CPU device: host memory
    draws_bytes = 4 * 200_000 * 10 * 4  # the float32 draws alone, which stay on disk
    assert need < draws_bytes / 4
    monkeypatch.setattr(memory, "host_available", lambda: 3 * need)
    with pytest.raises(MemoryError, match="so it was not started"):  # in memory: refused
        infer.sample(0, target, infer.rwmh(), **options)
    again = infer.sample(0, target, infer.rwmh(), store=tmp_path / "b.zarr", **options)
    assert again.draws["x"].shape == (4, 200_000, 10)


HUGE = textwrap.dedent(
    """
    import infer
    from models import targets
    try:
        infer.sample(0, targets.get("normal_10d"), infer.rwmh(), num_chains=10**9,
                     num_samples=10**6)
    except MemoryError as err:
        print("REFUSED:", err)
    """
)


@pytest.mark.thorough  # a refusal, 2 s
def test_a_billion_chains_get_an_error_not_an_abort_of_the_interpreter():
    run = subprocess.run([sys.executable, "-c", HUGE], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "REFUSED: rwmh on normal_10d with 1000000000 chains x 1000000 draws needs about" in (
        run.stdout
    )
    assert "chain states" in run.stdout and "Use fewer chains" in run.stdout


def test_a_run_that_nearly_fills_the_memory_warns(monkeypatch):
    target = targets.get("normal_10d")
    first = infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=300)
    estimate = first.info["memory_estimate"]
    need = estimate["host_bytes"] + estimate["device_bytes"]  # one CPU device: host memory
    monkeypatch.setattr(memory, "host_available", lambda: int(need / 0.7))
    with pytest.warns(memory.MemoryWarning, match=r"70% of the .* available"):
        infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=300)
    monkeypatch.setattr(memory, "host_available", lambda: int(need / 2))
    with pytest.raises(MemoryError, match="so it was not started"):
        infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=300)


def test_advi_ais_and_exact_samplers_check_too(monkeypatch):
    monkeypatch.setattr(memory, "host_available", lambda: 1000)
    target = targets.get("normal_10d")
    with pytest.raises(MemoryError, match=r"advi on normal_10d with 4 x 1000 draws needs"):
        infer.advi(0, target, num_steps=10)
    conjugate = targets.get("normal_1d")
    with pytest.raises(MemoryError, match=r"rejection on normal_1d with 4 chains x 1000 draws"):
        infer.sample(0, conjugate, infer.rejection(conjugate.rejection_proposal))
    normal = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2), name="n2")
    with pytest.raises(MemoryError, match=r"ais on n2 with 100 chains needs"):
        infer.ais(0, normal, dist.Normal(jnp.zeros(2), 1.0), num_chains=100)


@pytest.mark.thorough  # a refusal, 3 s
def test_sbc_refuses_simulations_whose_draws_cannot_fit_before_any_run(monkeypatch):
    """10**6 simulations of 4 x 1000 draws of eight schools' 10 parameters hold 320 GB."""
    from models.targets import EIGHT_SCHOOLS_SIGMA, eight_schools_model

    runs = []
    monkeypatch.setattr(infer.driver, "sample", lambda *a, **k: runs.append(a))
    with pytest.raises(MemoryError, match=r"sbc of eight_schools_model with 1000000 simulations"):
        infer.sbc(
            0,
            eight_schools_model,
            infer.rwmh(),
            observed="y",
            model_args=(EIGHT_SCHOOLS_SIGMA,),
            num_simulations=10**6,
            num_samples=1000,
        )
    assert runs == []
