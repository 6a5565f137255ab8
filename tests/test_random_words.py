"""The random numbers of one random-walk or Langevin step (``infer.proposal``): ``size``
standard normals and one U[0, 1) from a single stream of words, for threefry keys (the
driver's, through the threefry hash directly) and other keys (through ``jax.random.bits``).

Power: 20,000 steps per check, so a correlation between two of a step's numbers has standard
error 0.007 and the checks below see any above ~0.04; a stream that repeated or echoed a word
(the second half of a step's words equal to, or a function of, the first) gives correlation
near 1 (tried: 9 of the threefry float32 cases fail). With 31 normals a step, the KS test
sees a normal whose sd is 2% off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from stats_checks import ALPHA

from infer import random_bits
from infer.proposal import normal_and_uniform

NUM_STEPS = 20_000
SIZES = (1, 30, 31)  # the words of a step: size + 1, even and odd


def step_numbers(seed: int, impl: str, dtype, size: int):
    """``(noise (NUM_STEPS, size), uniform (NUM_STEPS,))`` from NUM_STEPS keys."""
    keys = jax.random.split(jax.random.key(seed, impl=impl), NUM_STEPS)
    with jax.enable_x64(dtype == jnp.float64):
        noise, uniform = jax.jit(jax.vmap(lambda key: normal_and_uniform(key, size, dtype)))(keys)
        assert noise.dtype == dtype and uniform.dtype == dtype
        return np.asarray(noise, np.float64), np.asarray(uniform, np.float64)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_noise_is_standard_normal_and_the_uniform_uniform(seed, impl, dtype, size):
    noise, uniform = step_numbers(seed, impl, dtype, size)
    checks = 3  # the normals, the uniform, the correlations
    assert stats.kstest(noise.ravel(), "norm").pvalue > ALPHA / checks
    assert stats.kstest(uniform, "uniform").pvalue > ALPHA / checks
    assert np.all((uniform >= 0.0) & (uniform < 1.0))
    # Every pair of the step's numbers uncorrelated (ranks: the uniform enters as it is).
    numbers = np.column_stack([noise, stats.norm.ppf(np.clip(uniform, 1e-12, 1 - 1e-12))])
    correlation = np.corrcoef(numbers, rowvar=False)
    pairs = correlation[np.triu_indices(size + 1, k=1)]
    # Fisher: each sample correlation is ~N(0, 1/(n - 3)); Bonferroni over the pairs.
    bound = stats.norm.isf(ALPHA / checks / 2 / max(pairs.size, 1)) / np.sqrt(NUM_STEPS - 3)
    assert np.max(np.abs(pairs), initial=0.0) < bound


def test_steps_of_one_chain_and_chains_of_one_step_get_different_numbers():
    keys = jax.random.split(jax.random.key(0), 4)
    per_step = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(keys[0], jnp.arange(4))
    for batch in (keys, per_step):
        noise, uniform = jax.vmap(lambda key: normal_and_uniform(key, 31, jnp.float32))(batch)
        rows = np.column_stack([np.asarray(noise), np.asarray(uniform)])
        assert len({row.tobytes() for row in rows}) == len(rows)


@pytest.mark.parametrize("shape", [(2, 3), (5,)], ids=["2x3", "odd"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_the_exact_samplers_uniforms_are_uniform_and_uncorrelated(seed, impl, dtype, shape):
    """``random_bits.uniform``, which the rejection sampler and ARS draw from (a pair of
    uniforms per proposal comes from one threefry hash): each of a call's numbers U[0, 1),
    every pair uncorrelated. Power: a call whose second half echoed its first (tried) fails
    both shapes."""
    keys = jax.random.split(jax.random.key(seed, impl=impl), NUM_STEPS)
    with jax.enable_x64(dtype == jnp.float64):
        draws = jax.jit(jax.vmap(lambda key: random_bits.uniform(key, shape, dtype)))(keys)
        assert draws.shape == (NUM_STEPS, *shape) and draws.dtype == dtype
    columns = np.asarray(draws, np.float64).reshape(NUM_STEPS, -1)
    assert np.all((columns >= 0.0) & (columns < 1.0))
    size = columns.shape[1]
    checks = size + 1  # each number, then the correlations
    for column in columns.T:
        assert stats.kstest(column, "uniform").pvalue > ALPHA / checks
    pairs = np.corrcoef(columns, rowvar=False)[np.triu_indices(size, k=1)]
    bound = stats.norm.isf(ALPHA / checks / 2 / pairs.size) / np.sqrt(NUM_STEPS - 3)
    assert np.max(np.abs(pairs)) < bound
