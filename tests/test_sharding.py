"""Chains split over several devices: here the CPU is cut into two XLA devices, which must be
configured before JAX starts, so the check runs in a fresh interpreter.

``make test`` checks RWMH, the rejection sampler and an odd chain count; NUTS (NumPyro's
kernel, its while loops inside the sharded program) is the ``thorough`` case, whose programs
take several times longer to compile. NUTS runs with a fixed step size and mass matrix: XLA
may round the sharded program's potential energy another way in its last bit (it does with
jax 0.12.1 on ``normal_10d``, not with 0.12.0.1), and warm-up's adaptation turns that into
other step sizes, so adapting runs are equal in distribution, not bit for bit
(docs/distributed.md)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

TWO_DEVICES = "--xla_force_host_platform_device_count=2"  # added to the flags in effect

pytestmark = pytest.mark.slow  # a subprocess: a module `make test-fast` leaves out

SCRIPT = textwrap.dedent(
    """
    import json, sys, jax, numpy as np, infer
    from models import targets
    assert len(jax.devices()) == 2
    target = targets.get("normal_10d")
    name = sys.argv[1]
    sampler = getattr(infer, name)()
    if name == "nuts":  # a fixed step size and mass matrix: see the docstring
        sampler = infer.nuts(step_size=0.5, adapt_step_size=False, adapt_mass_matrix=False)
    split = infer.sample(0, target, sampler, num_chains=4, num_samples=100, num_warmup=100)
    one = infer.sample(0, target, sampler, num_chains=4, num_samples=100, num_warmup=100,
                       devices=jax.devices()[:1])
    out = {"same": bool(np.array_equal(split.draws["x"], one.draws["x"]))}
    if name == "nuts":
        print(json.dumps(out))
        sys.exit()
    # a NumPyro target's constrain program, compiled for two devices, then one (it was
    # cached without its placement and refused the one-device arrays after the run)
    schools = targets.get("eight_schools")
    runs = [
        infer.sample(0, schools, infer.rwmh(), num_chains=4, num_samples=20, num_warmup=20,
                     devices=devices)
        for devices in (jax.devices(), jax.devices()[:1])
    ]
    out["numpyro_same"] = bool(np.array_equal(runs[0].draws["theta"], runs[1].draws["theta"]))
    beta = targets.get("beta_2_5")
    sampler = infer.rejection(beta.rejection_proposal, log_envelope=beta.notes["log_envelope"])
    result = infer.sample(0, beta, sampler, num_chains=4, num_samples=1000)
    out["rejection_shape"] = list(result.draws["x"].shape)
    out["rejection_distinct_chains"] = bool(
        not np.array_equal(result.draws["x"][0], result.draws["x"][2])
    )
    odd = infer.sample(0, target, infer.rwmh(), num_chains=3, num_samples=10, num_warmup=10)
    out["odd_chain_count_shape"] = list(odd.draws["x"].shape)
    import warnings
    with warnings.catch_warnings(record=True) as caught:  # devices given, chains not split
        warnings.simplefilter("always")
        infer.sample(0, target, infer.rwmh(), num_chains=3, num_samples=10, num_warmup=10,
                     devices=jax.devices())
    out["odd_warned"] = any("does not divide among the 2 devices" in str(w.message)
                            for w in caught)
    # the same devices in another order: the cache keyed a placement by its device set, and
    # a program compiled for one order refused the other's arguments (JAX's "compiled for
    # input shardings that disagree"), now and then, as the set's order fell
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    from infer.placement import sharding_key
    keys = [sharding_key(NamedSharding(Mesh(np.array(d), ("chain",)), PartitionSpec("chain")))
            for d in (jax.devices(), jax.devices()[::-1])]
    out["orders_keyed_apart"] = keys[0] != keys[1]
    reversed_run = infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=100,
                                num_warmup=100, devices=jax.devices()[::-1])
    out["reversed_same"] = bool(np.array_equal(reversed_run.draws["x"], split.draws["x"]))
    print(json.dumps(out))
    """
)


# 13 s in a Python of its own: `make test-thorough`. `make test` shards chains over the devices
# of two processes in test_distributed.py.
@pytest.mark.thorough
@pytest.mark.parametrize("name", ["rwmh", "nuts"])
def test_chains_split_over_two_devices_give_the_same_draws(name):
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {TWO_DEVICES}")
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, name], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["same"]
    if name == "nuts":
        return
    assert out["numpyro_same"]
    assert out["rejection_shape"] == [4, 1000] and out["rejection_distinct_chains"]
    assert out["odd_chain_count_shape"] == [3, 10, 10] and out["odd_warned"]
    assert out["orders_keyed_apart"] and out["reversed_same"]
