"""A chain's step over every chain: ``vmap``, and at one chain the step run unbatched."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import infer
from infer.over_chains import over_chains
from models import targets


def _step(key, state, params):
    """A step with a data-dependent loop, as NUTS's tree has: halve until below 1."""
    noise = jax.random.normal(key, state["x"].shape)
    x = jax.lax.while_loop(
        lambda x: jnp.max(jnp.abs(x)) > 1.0, lambda x: x / 2.0, state["x"] + noise
    )
    return {"x": x, "count": state["count"] + 1}, {"moved": jnp.sum(jnp.abs(x - state["x"]))}


@pytest.mark.parametrize("num_chains", [1, 3])
def test_every_chain_gets_the_step_of_vmap_and_keeps_its_axis(num_chains):
    keys = jax.random.split(jax.random.key(0), num_chains)
    states = {"x": jnp.full((num_chains, 2), 5.0), "count": jnp.zeros((num_chains,), jnp.int32)}
    got = over_chains(_step)(keys, states, None)
    expected = jax.vmap(_step)(keys, states, None)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert a.shape == b.shape and a.shape[0] == num_chains
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


@pytest.mark.thorough  # one chain, 6.5 s;
# NUTS's moments are checked on many chains in test_samplers
def test_a_one_chain_nuts_run_samples_the_target():
    """One chain of NUTS (the unbatched path) on the 10-D standard normal: the mean of every
    coordinate within 5 MCSE of 0, and the draws keep their chain axis."""
    target = targets.get("normal_10d")
    result = infer.sample(3, target, infer.nuts(), num_chains=1, num_samples=2000, progress=False)
    draws = np.concatenate([np.asarray(v).reshape(1, 2000, -1) for v in result.draws.values()], -1)
    assert draws.shape[:2] == (1, 2000)
    table = infer.summary(result)
    mcse = table["mcse_mean"].to_numpy()
    assert np.all(np.abs(draws[0].mean(axis=0)) < 5 * mcse)


def test_arguments_without_arrays_are_passed_as_they_are_and_a_missing_chain_axis_refused():
    """A kernel without tunable parameters has ``params=None``: no chain axis to map."""
    assert over_chains(lambda params: "no parameters")(None) == "no parameters"
    one_chain = jnp.zeros((1, 2))
    with pytest.raises(ValueError, match="leading chain axis of 1"):
        over_chains(lambda a, b: a)(one_chain, jnp.zeros((3,)))
