"""The pieces of annealed importance sampling: the path's inverse temperatures, one annealing
pass of many chains with NumPyro's HMC transitions, the pilot that tunes a step size per
temperature, and the summary of the log weights. :func:`infer.ais` and the generative models'
AIS scoring (``models/generative/annealed_evaluation.py``) are built from them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer.tempered_hmc import TemperedHMC

SCHEDULES = ("sigmoid", "linear")


def temperatures(num_temperatures: int, schedule: str = "sigmoid", sharpness: float = 4.0):
    """Inverse temperatures ``b_0 = 0 < ... < b_T = 1``, (num_temperatures + 1,) float64.

    ``"sigmoid"`` (Grosse et al. 2015): a logistic curve in ``t / T`` rescaled to ``[0, 1]``,
    dense near both ends, where the distributions change fastest; ``"linear"``: even steps.
    """
    t = np.linspace(0.0, 1.0, num_temperatures + 1)
    if schedule == "linear":
        return t
    curve = 1.0 / (1.0 + np.exp(-sharpness * (2.0 * t - 1.0)))
    return (curve - curve[0]) / (curve[-1] - curve[0])


def log_mean_exp(log_weights, axis=-1):
    """``log mean exp`` along ``axis``, stable (``-inf`` entries are zero weights)."""
    count = log_weights.shape[axis]
    return jax.scipy.special.logsumexp(log_weights, axis=axis) - math.log(count)


class AnnealTrace(NamedTuple):
    """What one annealing pass returns.

    Attributes:
        log_weights: (num_chains,) final log weights.
        positions: final positions, (num_chains, *event_shape).
        acceptance: (num_steps,) mean acceptance rate over chains at each temperature.
        num_nonfinite: scalar, chain-temperature pairs where ``ell`` was NaN or ``+inf``.
    """

    log_weights: jax.Array
    positions: jax.Array
    acceptance: jax.Array
    num_nonfinite: jax.Array


def anneal(rng_key, kernel: TemperedHMC, positions, betas, step_sizes) -> AnnealTrace:
    """One annealing pass of every chain through ``betas`` (n + 1,), starting at ``betas[0]``
    from ``positions`` (num_chains, ...) distributed as ``pi_{betas[0]}``; ``step_sizes``
    (n,) are those of the transitions at ``betas[1:]``. Traceable; a decreasing ``betas`` is
    the reverse pass. Costs ``n * (num_leapfrog + 1)`` gradients per chain."""
    states = jax.vmap(kernel.init)(positions)
    num_chains = jax.tree.leaves(positions)[0].shape[0]
    dtype = jnp.result_type(float)

    def one_temperature(carry, inputs):
        states, log_weights, nonfinite = carry
        beta_previous, beta, step_size, key = inputs
        states, ell = jax.vmap(kernel.prepare, in_axes=(0, None))(states, beta)
        bad = jnp.isnan(ell) | (ell == jnp.inf)
        ell = jnp.where(bad, -jnp.inf, ell)
        increment = (beta - beta_previous) * ell
        # A zero increment of a chain with ell = -inf is 0 (not NaN): nothing was annealed.
        log_weights = log_weights + jnp.where(beta == beta_previous, 0.0, increment)
        keys = jax.random.split(key, num_chains)
        states, accept = jax.vmap(kernel.step, in_axes=(0, 0, None, None))(
            keys, states, beta, step_size
        )
        return (states, log_weights, nonfinite + jnp.sum(bad, dtype=jnp.int32)), jnp.mean(accept)

    betas = jnp.asarray(betas, dtype)
    keys = jax.random.split(rng_key, betas.shape[0] - 1)
    inputs = (betas[:-1], betas[1:], jnp.asarray(step_sizes, dtype), keys)
    carry = (states, jnp.zeros((num_chains,), dtype), jnp.zeros((), jnp.int32))
    (states, log_weights, nonfinite), acceptance = jax.lax.scan(one_temperature, carry, inputs)
    return AnnealTrace(log_weights, states.z, acceptance, nonfinite)


def tune_step_sizes(
    rng_key,
    kernel: TemperedHMC,
    positions,
    betas,
    initial_step_size: float = 0.1,
    target_accept: float = 0.8,
    num_initial: int = 30,
):
    """A pilot pass that sets one step size per transition, (len(betas) - 1,).

    ``num_initial`` transitions at ``betas[0]`` first find a step size for the start; then,
    at every temperature, the chains' mean acceptance ``a`` moves the step size by the factor
    ``exp(a - target_accept)`` for the next one, and a moving average smooths the result. The
    pilot's chains and weights are discarded, so the schedule it returns does not bias the
    main pass."""
    states = jax.vmap(kernel.init)(positions)
    num_chains = jax.tree.leaves(positions)[0].shape[0]
    dtype = jnp.result_type(float)
    betas = jnp.asarray(betas, dtype)
    schedule = jnp.concatenate([jnp.full((num_initial,), betas[0], dtype), betas[1:]])

    def one(carry, inputs):
        states, log_step = carry
        beta, key = inputs
        states, _ = jax.vmap(kernel.prepare, in_axes=(0, None))(states, beta)
        step_size = jnp.exp(log_step)
        keys = jax.random.split(key, num_chains)
        states, accept = jax.vmap(kernel.step, in_axes=(0, 0, None, None))(
            keys, states, beta, step_size
        )
        rate = jnp.mean(jnp.where(jnp.isfinite(accept), accept, 0.0))
        new_log_step = jnp.clip(log_step + (rate - target_accept), -12.0, 3.0)
        return (states, new_log_step), step_size

    keys = jax.random.split(rng_key, schedule.shape[0])
    start = (states, jnp.log(jnp.asarray(initial_step_size, dtype)))
    _, used = jax.lax.scan(one, start, (schedule, keys))
    # The updates are noisy (few chains): a moving average of the log step sizes over about
    # 2% of the path keeps one unlucky temperature from getting a step size that fails.
    log_steps = jnp.log(used[num_initial:])
    width = max(1, log_steps.shape[0] // 50) | 1
    padded = jnp.pad(log_steps, width // 2, mode="edge")
    return jnp.exp(jnp.convolve(padded, jnp.full((width,), 1.0 / width, dtype), mode="valid"))


def weight_summary(log_weights: np.ndarray) -> tuple[float, float, float]:
    """``(log mean w, its standard error, ESS)`` for log weights (n,)."""
    log_weights = np.asarray(log_weights, np.float64)
    count = log_weights.size
    if not np.any(np.isfinite(log_weights)):
        return -math.inf, math.inf, 0.0
    top = np.max(log_weights)
    scaled = np.exp(log_weights - top)
    log_mean = top + math.log(np.mean(scaled))
    ess = float(np.sum(scaled) ** 2 / np.sum(scaled**2))
    se = math.sqrt(max(1.0 / ess - 1.0 / count, 0.0))
    return float(log_mean), se, ess
