"""NumPyro's HMC and NUTS move the position as one flat vector (``infer.flat_position``):
the round trip is exact, the target's pytree comes back in every result, and the kernel's
state does not grow with the number of sites (what kept the compile time of a model of many
scalar sites down: ``benchmarks/latency.py``'s ``many_sites``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import infer
from infer.flat_position import Layout


def _position():
    return {
        "scale": jnp.asarray(0.5, jnp.float32),
        "vector": jnp.arange(3, dtype=jnp.float32),
        "matrix": jnp.arange(4, dtype=jnp.float32).reshape(2, 2) + 10.0,
    }


def test_a_position_goes_to_one_vector_and_back_exactly_with_its_leading_axes():
    position = _position()
    layout = Layout.of(position)
    flat = layout.ravel(position)
    assert flat.shape == (8,) and flat.dtype == jnp.float32
    back = layout.unravel(flat)
    assert jax.tree.structure(back) == jax.tree.structure(position)
    for name in position:
        np.testing.assert_array_equal(back[name], position[name])
    # leading axes (chains, draws) are kept, and NumPy arrays stay on the host
    many = np.stack([np.asarray(flat) + i for i in range(6)]).reshape(2, 3, 8)
    leaves = layout.unravel(many)
    assert leaves["matrix"].shape == (2, 3, 2, 2) and isinstance(leaves["matrix"], np.ndarray)
    np.testing.assert_array_equal(leaves["vector"][1, 2], np.arange(3) + 5.0)
    # the layout is the same for abstract shapes: states traced apart share a structure
    structs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), position)
    assert Layout.of(structs) == layout and hash(Layout.of(structs)) == hash(layout)


def test_leaves_of_two_precisions_share_the_wider_and_come_back_in_their_own():
    with jax.enable_x64(True):
        position = {"narrow": jnp.ones(2, jnp.float32) / 3, "wide": jnp.ones(1) / 3}
        layout = Layout.of(position)
        flat = layout.ravel(position)
        assert flat.dtype == jnp.float64
        back = layout.unravel(flat)
        assert back["narrow"].dtype == jnp.float32 and back["wide"].dtype == jnp.float64
        np.testing.assert_array_equal(back["narrow"], position["narrow"])


def _sites_model(num_sites):
    import numpyro
    import numpyro.distributions as dist

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        for i in range(num_sites):
            mean = numpyro.sample(f"m_{i}", dist.Normal(mu, 1.0))
            numpyro.sample(f"y_{i}", dist.Normal(mean, 1.0), obs=y[i])

    return model


# A guard of compile time, 6-24 s a sampler: `make test-thorough`. Every NUTS and HMC run of
# `make test` moves the flat vector, and its checks of draws by site and of resumed states
# read it back.
@pytest.mark.thorough
@pytest.mark.parametrize("sampler", [infer.nuts, infer.hmc], ids=["nuts", "hmc"])
def test_the_kernel_state_holds_one_vector_whatever_the_number_of_sites(sampler):
    """A model of 9 scalar sites: the draws come back by site, and NUTS's state holds as
    many arrays as a one-site model's (one position vector, one gradient, one momentum)."""
    y = np.linspace(-1.0, 1.0, 8).astype(np.float32)
    runs = {}
    for num_sites in (0, 8):
        target = infer.Target.from_numpyro(_sites_model(num_sites), y)
        runs[num_sites] = infer.sample(
            0, target, sampler(), num_chains=2, num_samples=20, num_warmup=200
        )
    many = runs[8]
    assert sorted(many.draws) == sorted(["mu", *(f"m_{i}" for i in range(8))])
    assert all(many.draws[name].shape == (2, 20) for name in many.draws)
    leaves = [jax.tree.leaves(run.state.carry.kernel_state) for run in runs.values()]
    assert len(leaves[0]) == len(leaves[1])
    # the state's position is the model's pytree at each chain's last draw (these sites
    # are unconstrained: their draws are the positions)
    position = many.state.carry.kernel_state.position
    for name in ("mu", "m_3"):
        np.testing.assert_array_equal(np.asarray(position[name]), many.draws[name][:, -1])
