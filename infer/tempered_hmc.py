"""The HMC transitions of annealed importance sampling: NumPyro's HMC kernel on the
geometric path between a prior and a target (:func:`tempered_hmc`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from infer.numpyro_adapter import computed_once


class TemperedHMC(NamedTuple):
    """NumPyro's HMC kernel on the geometric path ``log pi_beta = log prior + beta * ell``,
    ``ell = log target - log prior``, with ``beta`` and the step size given at every step.

    ``init(position) -> state``; ``step(rng_key, state, beta, step_size) -> (state,
    acceptance_rate)``; ``prepare(state, beta) -> (state, ell)`` re-evaluates the potential
    and its gradient at the state's position for a new ``beta`` (one gradient) and returns
    ``ell`` there (for the annealing weights; NaN or ``+inf`` passed on as computed, so the
    caller can count them; the potential treats them as ``ell = -inf``). States hold
    NumPyro's ``HMCState``.
    """

    init: Callable
    step: Callable
    prepare: Callable


def tempered_hmc(logprior_fn: Callable, logtarget_fn: Callable, num_leapfrog: int) -> TemperedHMC:
    """The HMC transitions of annealed importance sampling (see :class:`TemperedHMC`).

    A NaN or ``+inf`` log density is numerical trouble: the potential is then infinite, so
    NumPyro rejects the proposal (a divergence) and the chain stays where it was.
    """
    from numpyro.infer.hmc import hmc as numpyro_hmc

    def potential_and_ell(position, beta):
        """The potential at ``beta`` and ``ell`` as computed (NaN or ``+inf`` kept)."""
        log_prior, log_target = computed_once((logprior_fn(position), logtarget_fn(position)))
        raw = log_target - log_prior
        ell = jnp.where(jnp.isnan(raw) | (raw == jnp.inf), -jnp.inf, raw)
        value = log_prior + jnp.where(beta > 0, beta * ell, 0.0)
        return -jnp.where(value < jnp.inf, value, -jnp.inf), raw

    def potential_at(beta):
        return lambda position: potential_and_ell(position, beta)[0]

    init_kernel, sample_kernel = numpyro_hmc(potential_fn_gen=potential_at, algo="HMC")

    def init(position):
        state = init_kernel(
            position,
            0,
            step_size=1.0,
            adapt_step_size=False,
            adapt_mass_matrix=False,
            num_steps=num_leapfrog,
            trajectory_length=None,
            model_kwargs={"beta": jnp.zeros(())},
            rng_key=jax.random.key(0),
        )
        return state._replace(rng_key=None)

    def prepare(state, beta):
        at_beta = partial(potential_and_ell, beta=beta)
        (potential, ell), grad = jax.value_and_grad(at_beta, has_aux=True)(state.z)
        return state._replace(potential_energy=potential, z_grad=grad), ell

    initialised = []

    def step(rng_key, state, beta, step_size):
        if not initialised:
            jax.eval_shape(init, state.z)  # sets up the closure sample_kernel relies on
            initialised.append(True)
        kept = state.adapt_state.step_size.dtype  # float64 under jax_enable_x64
        adapt_state = state.adapt_state._replace(step_size=jnp.asarray(step_size, kept))
        state = state._replace(rng_key=rng_key, adapt_state=adapt_state)
        new = sample_kernel(state, model_kwargs={"beta": beta})
        return new._replace(rng_key=None), new.accept_prob

    return TemperedHMC(init, step, prepare)
