"""Chains across processes with JAX's own multi-controller runtime: two local CPU processes
(coordinator on 127.0.0.1, CPU collectives through gloo) run the same ``infer.sample`` call,
the chain axis sharded over both; each chain's draws equal those of a one-process run with the
same total chains, and every process gathers the whole result (R-hat and ESS across all
chains).

``make test`` runs the pair with RWMH: the chain axis, its sharding and the gathering are the
driver's, the same for every sampler. NUTS (NumPyro's kernel, whose while loops run inside the
sharded program) is the ``thorough`` case: its programs take several times longer to compile."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

LENGTHS = {"num_samples": 200, "num_warmup": 200}
#: Each case's sampler, as source the pair and this process both run. NUTS has a fixed step
#: size and mass matrix: XLA may round the sharded program's potential energy another way in
#: its last bit (it does with jax 0.12.1 on normal_10d, not with 0.12.0.1), and warm-up's
#: adaptation turns that into other step sizes, so adapting runs are equal in distribution,
#: not bit for bit (docs/distributed.md).
SAMPLERS = {
    "rwmh": "infer.rwmh()",
    "nuts": "infer.nuts(step_size=0.5, adapt_step_size=False, adapt_mass_matrix=False)",
}
SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    process, port, out, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=process)
    import numpy as np
    import infer
    from models import targets
    target = targets.get("normal_10d")  # its NumPyro proposal's checks compile programs
    before = time.time()  # what compiled before the call is not infer's to keep out of the cache
    # a bar on process 0 only, as one writes it: the processes must still cut the run alike
    # (with a bar's segments timed by each process's clock, they waited on each other forever)
    result = infer.sample(0, target, eval(%(samplers)r[name]),
                          num_chains=4, progress=process == 0, **%(lengths)r)
    rhat = float(infer.compare({name: result}, warn=False).loc[name, "max_rhat"])
    np.save(out, result.draws["x"])
    print(json.dumps({"devices": len(jax.devices()), "local": len(jax.local_devices()),
                      "rhat": rhat, "before": before}))
    """
) % {"lengths": LENGTHS, "samplers": SAMPLERS}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(process: int, port: int, out, name: str, cache) -> subprocess.Popen:
    """Process ``process`` of a pair running SCRIPT, with ``cache`` as infer's persistent
    compilation cache folder."""
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(process), str(port), str(out), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, INFER_COMPILATION_CACHE=str(cache)),
    )


def _pair(script: str, devices: int = 1) -> list[subprocess.Popen]:
    """``script`` started as processes 0 and 1 of a pair (arguments: the process index and
    the coordinator's port), each with ``devices`` CPU devices."""
    port = _free_port()
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    return [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, XLA_FLAGS=flags.strip()),
        )
        for i in range(2)
    ]


def _outputs_of_a_pair(script: str, devices: int = 1) -> list[str]:
    """The standard outputs of ``script`` run as a :func:`_pair`, each of which must exit 0."""
    outputs = []
    for child in _pair(script, devices):
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs


def _reports(pair: list[subprocess.Popen], timeout: float = 600) -> list[tuple[dict, str]]:
    """Each process's ``(report, standard error)``, once both exit 0; a pair that runs past
    ``timeout`` seconds is killed (a process hung in a collective ignores SIGTERM)."""
    reports = []
    try:
        for child in pair:
            try:
                stdout, stderr = child.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the pair still ran after {timeout} s (hung)")
            assert child.returncode == 0, stderr[-3000:]
            reports.append((json.loads(stdout.strip().splitlines()[-1]), stderr))
    finally:
        for child in pair:
            child.kill()
    return reports


def _alone(name: str) -> tuple[np.ndarray, float]:
    """The same run in this process, on its one device: the draws (4, 200, 10) and the
    R-hat that the pair must reproduce."""
    import infer
    from models import targets

    result = infer.sample(
        0, targets.get("normal_10d"), eval(SAMPLERS[name]), num_chains=4, **LENGTHS
    )
    rhat = float(infer.compare({name: result}, warn=False).loc[name, "max_rhat"])
    return result.draws["x"], rhat


@pytest.mark.parametrize("name", ["rwmh", pytest.param("nuts", marks=pytest.mark.thorough)])
def test_two_processes_give_each_chain_the_draws_of_one_process(tmp_path, name):
    port = _free_port()
    caches = [tmp_path / f"cache{i}" for i in range(2)]  # one a process: each its own check
    pair = [_launch(i, port, tmp_path / f"process{i}.npy", name, caches[i]) for i in range(2)]
    one, rhat = _alone(name)  # while the pair runs (they wait on each other now and then)
    reports, stderrs = zip(*_reports(pair), strict=True)
    assert all(r["devices"] == 2 and r["local"] == 1 for r in reports)
    # programs loaded from the persistent cache hang a pair (the next test): none of the run's
    # is written (a program compiled before the call, as the target's checks of its NumPyro
    # proposal are, may be: on a loaded machine one took the 0.1 s JAX caches from). Each
    # process has a folder of its own: in a shared one, the other process's checks, later
    # than this one's call, were counted as the run's.
    assert all("compilation cache (" in stderr and "is off" in stderr for stderr in stderrs)
    for cache, report in zip(caches, reports, strict=True):
        written = [p.name for p in cache.iterdir() if p.stat().st_mtime >= report["before"]]
        assert not written, written
    assert reports[0]["rhat"] == reports[1]["rhat"] == rhat  # over all four chains
    for i in range(2):
        both = np.load(tmp_path / f"process{i}.npy")  # every process gathers every chain
        assert both.shape == (4, 200, 10)
        np.testing.assert_array_equal(both, one)


@pytest.mark.thorough  # two pairs, 20 s
def test_a_pair_run_again_with_the_compilation_cache_on_finishes(tmp_path):
    """The same script run a second time, its programs in JAX's persistent compilation cache
    from the first, hung both processes in the start program's collective (a while loop over
    the chain axis) until killed: with gloo, programs loaded from the cache hang there."""
    cache, draws = tmp_path / "cache", []
    for round in range(2):
        port, outs = _free_port(), [tmp_path / f"round{round}_{i}.npy" for i in range(2)]
        _reports([_launch(i, port, outs[i], "rwmh", cache) for i in range(2)], timeout=120)
        draws.append(np.load(outs[0]))
    np.testing.assert_array_equal(*draws)


MISMATCH = textwrap.dedent(
    """
    import sys
    process, port = int(sys.argv[1]), sys.argv[2]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=process)
    import infer
    from models import targets
    try:  # a seed and a chain count taken from the process index
        infer.sample(process, targets.get("normal_10d"), infer.rwmh(),
                     num_chains=4 + 2 * process, num_samples=20, num_warmup=20)
    except ValueError as err:
        print(err)
    import jax.numpy as jnp
    scale = 1.0 + 9.0 * process  # data read per process, captured by the log density
    target = infer.Target(lambda x: -0.5 * jnp.sum((x / scale) ** 2), init=jnp.ones(3))
    try:  # and superchains on one process only
        infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20,
                     superchains=2 if process else None)
    except ValueError as err:
        print(err)
    try:  # 64-bit floats on process 1 only: both waited in a collective forever
        with jax.enable_x64(process == 1):
            infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20)
    except ValueError as err:
        print(err)
    import numpy as np
    mean = np.eye(3)[process]  # data per process that give the start the same log density
    target = infer.Target(lambda x: -0.5 * jnp.sum((x - mean) ** 2), init=jnp.zeros(3))
    try:  # chains of two posteriors were mixed into one result; a smaller array hung both
        infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20)
    except ValueError as err:
        print("closure:", err)
    """
)


@pytest.mark.thorough  # refusals, 3 s
def test_processes_that_call_sample_differently_are_refused_by_name():
    """Seeds from the process index mixed two runs' chains into one result without a word;
    different chain counts aborted inside gloo with a C++ trace. Superchains on one process,
    or a log density that differs between them under one name, mixed two runs too."""
    for stdout in _outputs_of_a_pair(MISMATCH):
        # the values too, by process (the names alone were said)
        differ = "different rng_key (0, 1 by process), num_chains (4, 6 by process) (process"
        assert differ in stdout, stdout
        outside = "values the log density reads from outside its arguments (globals, closure cells)"
        differ = f"superchains (None, 2 by process), {outside}, the log density at the start "
        assert f"{differ}(-1.5, -0.015 by" in stdout, stdout
        assert "different 64-bit floats (jax_enable_x64, JAX_ENABLE_X64) (False, True by" in stdout
        assert f"closure: the 2 processes called infer.sample with different {outside} (" in stdout


REFUSED = textwrap.dedent(
    """
    import sys
    process, port = int(sys.argv[1]), sys.argv[2]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=process)
    import infer
    import infer.memory
    from models import targets
    target = targets.get("normal_10d")
    try:  # an argument process 1 alone refuses, before the processes compare them
        infer.sample(0, target, infer.rwmh(), num_chains=4, num_warmup=20,
                     num_samples=[20, -1][process])
    except ValueError as err:
        print(type(err).__name__, err)
    if process == 1:  # a host with little free memory: process 1 alone refuses the run
        available = infer.memory.host_available
        infer.memory.host_available = lambda: 2**16
    try:
        infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20)
    except (ValueError, MemoryError) as err:
        print(type(err).__name__, err)
    if process == 1:
        infer.memory.host_available = available
    result = infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20)
    print("then ran", result.draws["x"].shape)
    """
)


@pytest.mark.thorough  # refusals over two processes, 6 s
def test_a_call_one_process_refuses_stops_every_process():
    """A check each process makes alone (an argument before they compare them, a host's own
    free memory) refused on process 1, and process 0 waited in a collective for 5 minutes,
    then died with a C++ trace."""
    first, second = _outputs_of_a_pair(REFUSED)
    assert "ValueError num_samples must be an integer >= 1; got -1" in second, second
    told = "ValueError process 1 of 2 refused this infer.sample call, so process 0 stops too"
    told += " (every process must make the same call, and each checks it): "
    assert f"{told}ValueError: num_samples must" in first, first
    assert "MemoryError rwmh on normal_10d" in second, second
    assert f"{told}MemoryError: rwmh on normal_10d" in first, first
    assert first.count("then ran (4, 20, 10)") == second.count("then ran (4, 20, 10)") == 1


PAIR = textwrap.dedent(
    """
    import sys
    process, port = int(sys.argv[1]), sys.argv[2]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=process)
    import numpy as np
    import numpyro.distributions as dist
    import infer
    normal = infer.Target(lambda x: -0.5 * x**2, name="normal")
    result = infer.sample(0, normal, infer.rejection(dist.Cauchy(0.0, 1.0)), num_chains=4,
                          num_samples=500)
    x = np.asarray(result.draws["x"])
    print("rejection", *x.shape, float(x.mean()), float(x.std()))
    try:  # devices left out on one process, its own on the other: both would wait forever
        infer.sample(0, normal, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20,
                     devices=jax.local_devices() if process else None)
    except ValueError as err:
        print(err)
    try:  # process 1's device on both: its own on one, another's on the other
        infer.sample(0, normal, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20,
                     devices=[jax.devices()[1]])
    except ValueError as err:
        print(err)
    """
)


@pytest.mark.thorough  # an exact sampler and two refusals over two processes, 8 s
def test_exact_samplers_run_over_processes_and_devices_must_agree():
    """Rejection sampling failed in any two-process run (device_put of keys made in one
    process onto a placement across both); devices given on one process only hung both, and
    one process's device given to both gave the other XLA's "Array has no addressable
    shards" while the first ran alone. (An exact
    sampler's draws are a stream per device: a one-process run on one device differs.)"""
    drawn = []
    for stdout in _outputs_of_a_pair(PAIR):
        drawn += [line for line in stdout.splitlines() if line.startswith("rejection")]
        chains, draws, mean, sd = map(float, drawn[-1].split()[1:])
        # 2,000 independent standard normal draws: mean and sd within 4 standard errors
        se = 1 / np.sqrt(2000)
        assert (chains, draws) == (4, 500) and abs(mean) < 4 * se and abs(sd - 1) < 4 * se / 1.4
        refused = "called infer.sample with different devices"
        assert stdout.count(refused) == 2, stdout
        assert "leave devices out, or give each process its own" in stdout, stdout
    assert drawn[0] == drawn[1]  # every process gathers the same result


DEVICES = textwrap.dedent(
    """
    import sys
    process, port = int(sys.argv[1]), sys.argv[2]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=process)
    import infer
    from models import targets
    target, mine = targets.get("normal_10d"), jax.local_devices()
    options = dict(num_chains=4, num_samples=20, num_warmup=20)
    try:  # a device twice on process 0 only: process 1 waited for it forever
        infer.sample(0, target, infer.rwmh(), **options,
                     devices=[mine[0], mine[0]] if process == 0 else mine)
    except ValueError as err:
        print("twice:", err)
    try:  # every device, in another order on process 1: gloo's error after 30 s
        infer.sample(0, target, infer.rwmh(), **options,
                     devices=jax.devices()[::-1] if process else jax.devices())
    except ValueError as err:
        print("order:", err)
    import functools
    import jax.numpy as jnp
    def prior(x):
        return -0.5 * jnp.sum(x**2)
    def logdensity(prior_fn, x):  # a bound function: keyed by its identity, not its address
        return prior_fn(x) - 0.5 * jnp.sum((x - 1.0) ** 2)
    bound = infer.Target(functools.partial(logdensity, prior), init=jnp.zeros(3))
    print("then ran", infer.sample(0, bound, infer.rwmh(), **options).draws["x"].shape)
    """
)


@pytest.mark.thorough  # two refusals over two processes of two devices, 6 s
def test_devices_that_differ_in_order_or_repeat_on_one_process_are_refused():
    """A device twice on one process was refused there, and the other waited forever; the
    same devices in another order passed the comparison and failed in gloo after 30 s. (A
    log density binding a function, the same in both, was refused: its address differed.)"""
    first, second = _outputs_of_a_pair(DEVICES, devices=2)
    assert "twice: devices lists a device more than once" in first, first
    assert "twice: process 0 of 2 refused this infer.sample call, so process 1" in second
    for stdout in (first, second):
        assert "order: the 2 processes called infer.sample with different devices" in stdout
        assert stdout.count("then ran (4, 20, 3)") == 1, stdout


ONE_FAILS_FIRST = textwrap.dedent(
    """
    import sys
    process, port = int(sys.argv[1]), sys.argv[2]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=process)
    import infer
    from models import targets
    jax.devices()  # both have started JAX's backend (which waits for every process)
    if process == 1:
        sys.exit("data.csv is missing on this host")  # the user's own error, before sampling
    try:
        infer.sample(0, targets.get("normal_10d"), infer.rwmh(), num_chains=4, num_samples=20)
    except RuntimeError as err:
        print(err)
    """
)


@pytest.mark.thorough  # JAX's exchange waits 30 s before it gives up
def test_a_process_that_fails_before_its_call_is_said_to_have_not_come():
    """Process 0 died with gloo's DEADLINE_EXCEEDED from JAX, naming neither the other
    process nor infer.sample."""
    pair = _pair(ONE_FAILS_FIRST)
    (first, _), (_, second_error) = (child.communicate(timeout=300) for child in pair)
    assert "data.csv is missing" in second_error
    assert "process 0 of 2 waited in infer.sample for the other processes, which did not" in first
    assert "DEADLINE_EXCEEDED" in first  # JAX's words, at the end


def test_a_refusal_the_other_processes_never_hear_of_is_raised_as_it_is(monkeypatch):
    """(Seen as process 0 of two whose partner never came.) Its own error was replaced by
    the RuntimeError saying the others did not come."""
    import jax
    from jax.experimental import multihost_utils

    from infer import process_agreement

    def timed_out(_):
        raise jax.errors.JaxRuntimeError("DEADLINE_EXCEEDED: GetKeyValue() timed out")

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(multihost_utils, "process_allgather", timed_out)

    def refused():
        raise ValueError("num_samples must be an integer >= 1; got -1")

    with pytest.raises(ValueError, match=r"got -1") as caught:
        process_agreement.on_every_process(refused)
    assert "did not come to hear of it" in caught.value.__notes__[0]
    with pytest.raises(RuntimeError, match=r"waited in infer.sample for the other processes"):
        process_agreement.on_every_process(lambda: None)


def test_devices_of_other_processes_only_are_refused_by_name(monkeypatch):
    """(Seen as process 1 of two: this process's one device belongs to process 0.)"""
    import jax

    from infer.placement import chain_sharding

    monkeypatch.setattr(jax, "process_index", lambda: 1)
    with pytest.raises(ValueError, match=r"belong to process\(es\) \[0\], and this process \(1\)"):
        chain_sharding(jax.devices()[:1], 4)
