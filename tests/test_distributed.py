"""Chains across processes with JAX's own multi-controller runtime: two local CPU processes
(coordinator on 127.0.0.1, CPU collectives through gloo) run the same ``infer.sample`` call,
the chain axis sharded over both; each chain's draws equal those of a one-process run with the
same total chains, and every process gathers the whole result (R-hat and ESS across all
chains).

``make test`` runs the pair with RWMH: the chain axis, its sharding and the gathering are the
driver's, the same for every sampler. NUTS (NumPyro's kernel, whose while loops run inside the
sharded program) is the ``thorough`` case: its programs take several times longer to compile."""

import json
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

LENGTHS = {"num_samples": 200, "num_warmup": 200}
SCRIPT = textwrap.dedent(
    """
    import json, sys
    process, port, out, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=2, process_id=process)
    import numpy as np
    import infer
    from models import targets
    result = infer.sample(0, targets.get("normal_10d"), getattr(infer, name)(),
                          num_chains=4, **%(lengths)r)
    rhat = float(infer.compare({name: result}, warn=False).loc[name, "max_rhat"])
    np.save(out, result.draws["x"])
    print(json.dumps({"devices": len(jax.devices()), "local": len(jax.local_devices()),
                      "rhat": rhat}))
    """
) % {"lengths": LENGTHS}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(process: int, port: int, out, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(process), str(port), str(out), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(child: subprocess.Popen) -> dict:
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _alone(name: str) -> tuple[np.ndarray, float]:
    """The same run in this process, on its one device: the draws (4, 200, 10) and the
    R-hat that the pair must reproduce."""
    import infer
    from models import targets

    result = infer.sample(
        0, targets.get("normal_10d"), getattr(infer, name)(), num_chains=4, **LENGTHS
    )
    rhat = float(infer.compare({name: result}, warn=False).loc[name, "max_rhat"])
    return result.draws["x"], rhat


@pytest.mark.parametrize("name", ["rwmh", pytest.param("nuts", marks=pytest.mark.thorough)])
def test_two_processes_give_each_chain_the_draws_of_one_process(tmp_path, name):
    port = _free_port()
    pair = [_launch(i, port, tmp_path / f"process{i}.npy", name) for i in range(2)]
    one, rhat = _alone(name)  # while the pair runs (they wait on each other now and then)
    reports = [_report(child) for child in pair]
    assert all(r["devices"] == 2 and r["local"] == 1 for r in reports)
    assert reports[0]["rhat"] == reports[1]["rhat"] == rhat  # over all four chains
    for i in range(2):
        both = np.load(tmp_path / f"process{i}.npy")  # every process gathers every chain
        assert both.shape == (4, 200, 10)
        np.testing.assert_array_equal(both, one)


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
    """
)


@pytest.mark.thorough  # refusals, 3 s
def test_processes_that_call_sample_differently_are_refused_by_name():
    """Seeds from the process index mixed two runs' chains into one result without a word;
    different chain counts aborted inside gloo with a C++ trace. Superchains on one process,
    or a log density that differs between them under one name, mixed two runs too."""
    port = _free_port()
    pair = [
        subprocess.Popen(
            [sys.executable, "-c", MISMATCH, str(i), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for child in pair:
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr[-3000:]
        assert "called infer.sample with different rng_key, num_chains" in stdout, stdout
        differ = "different superchains, the log density at the start (-1.5, -0.015 by process"
        assert differ in stdout, stdout
