"""Annealed importance sampling (Neal 2001) for log normalising constants.

Along the geometric path ``log pi_b(x) = log prior(x) + b * ell(x)``, with
``ell = log target - log prior`` and ``0 = b_0 < b_1 < ... < b_T = 1``, each chain starts
from an exact prior draw, and at every temperature adds ``(b_t - b_{t-1}) ell(x)`` to its log
weight before an HMC transition that leaves ``pi_{b_t}`` invariant (NumPyro's HMC kernel, the
one behind :func:`infer.hmc`). The weights' mean is an unbiased estimate of
``Z = integral of exp(log target)`` (the prior is normalised), so ``log_z`` is a stochastic
lower bound of ``log Z``.

Run backwards from an exact posterior draw (available for data simulated from the model:
the parameters that generated the data are one), the same procedure estimates ``1 / Z``
without bias, which gives a stochastic *upper* bound: bidirectional Monte Carlo (Grosse et
al. 2015). The two bracket the true value, and their gap says how far from exact both are.

Step sizes: a pilot pass on a few chains, not used in the estimate, tunes one step size per
temperature towards an acceptance rate (multiplicative updates carried from one temperature
to the next). The main pass then runs with that fixed schedule, so its weights stay unbiased.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.keys import as_jax_key, as_key
from infer.numpyro_adapter import TemperedHMC, tempered_hmc
from infer.starts import check_scalar_logdensity
from infer.target import Target, check_target

__all__ = ["ais", "AISResult", "temperatures", "anneal", "tune_step_sizes", "log_mean_exp"]

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
        return (states, log_weights, nonfinite + jnp.sum(bad)), jnp.mean(accept)

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


class AISResult(NamedTuple):
    """An AIS estimate of ``log Z``.

    Attributes:
        log_z: ``log mean w`` over the chains (a stochastic lower bound of ``log Z``).
        log_z_se: its standard error, ``sqrt(1 / ess - 1 / num_chains)`` (delta method).
        ess: effective sample size of the normalised weights, ``(sum w)^2 / sum w^2``.
        log_weights: (num_chains,) the final log weights.
        draws: (num_chains, *event_shape) the chains' final positions (approximate
            posterior draws, weighted by the weights).
        temperatures: (num_temperatures + 1,) the inverse temperatures.
        step_sizes: (num_temperatures,) the tuned HMC step sizes.
        acceptance: (num_temperatures,) mean acceptance rate at each temperature.
        num_grad_evals: gradients of the log density, pilot and passes included.
        num_nonfinite: chain-temperature pairs where the log density was NaN or ``+inf``
            (those chains get weight zero).
        seconds: wall time, compilation included.
        log_z_upper, log_z_upper_se, reverse_log_weights: the reverse pass's upper bound
            (``None`` without ``exact_posterior_draws``).
    """

    log_z: float
    log_z_se: float
    ess: float
    log_weights: np.ndarray
    draws: np.ndarray
    temperatures: np.ndarray
    step_sizes: np.ndarray
    acceptance: np.ndarray
    num_grad_evals: int
    num_nonfinite: int
    seconds: float
    log_z_upper: float | None = None
    log_z_upper_se: float | None = None
    reverse_log_weights: np.ndarray | None = None

    @property
    def bracket(self) -> tuple[float, float] | None:
        """``(log_z, log_z_upper)`` when the reverse pass ran."""
        return None if self.log_z_upper is None else (self.log_z, self.log_z_upper)

    def __repr__(self) -> str:
        text = f"AISResult(log_z={self.log_z:.4f} ± {self.log_z_se:.4f}, ess={self.ess:.1f}"
        if self.log_z_upper is not None:
            text += f", log_z_upper={self.log_z_upper:.4f} ± {self.log_z_upper_se:.4f}"
        return text + f", chains={self.log_weights.shape[0]}, temperatures={self.step_sizes.size})"


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


def ais(
    rng_key,
    target: Target,
    prior,
    *,
    num_temperatures: int = 500,
    num_chains: int = 256,
    num_leapfrog: int = 10,
    schedule="sigmoid",
    step_size: float | None = None,
    target_accept: float = 0.8,
    num_tuning_chains: int = 64,
    exact_posterior_draws=None,
) -> AISResult:
    """Estimate ``log Z = log integral of exp(target.logdensity_fn)`` by annealed importance
    sampling from ``prior``.

    Args:
        rng_key: an int seed or a ``jax.random.key``.
        target: an :class:`infer.Target` whose ``logdensity_fn`` is the unnormalised
            posterior, ``log prior + log likelihood``, of one array position.
        prior: a ``numpyro.distributions`` distribution over the same position (its
            ``batch_shape + event_shape`` equal to the position's shape); it must be
            normalised, and ``sample`` and ``log_prob`` must work.
        num_temperatures: transitions ``T`` (the path has ``T + 1`` inverse temperatures).
        num_chains: independent annealing chains (vectorised).
        num_leapfrog: leapfrog steps per HMC transition.
        schedule: ``"sigmoid"``, ``"linear"``, or an increasing array from 0 to 1.
        step_size: one fixed HMC step size for every temperature; ``None`` tunes a schedule
            of them in a pilot pass of ``num_tuning_chains`` chains.
        target_accept: the pilot's acceptance goal.
        num_tuning_chains: chains of the pilot pass.
        exact_posterior_draws: exact draws from the normalised posterior, (num_chains, ...)
            or one position (shared by every reverse chain): e.g. the parameters that
            simulated the data. Runs the reverse pass, giving ``log_z_upper``.

    Returns:
        An :class:`AISResult`.
    """
    wall_start = time.perf_counter()
    key_input, _ = as_key(rng_key)
    check_target(target)
    num_temperatures = validation.positive_int("num_temperatures", num_temperatures)
    num_chains = validation.positive_int("num_chains", num_chains, minimum=2)
    num_leapfrog = validation.positive_int("num_leapfrog", num_leapfrog)
    num_tuning_chains = validation.positive_int("num_tuning_chains", num_tuning_chains)
    step_size = validation.positive_float("step_size", step_size, allow_none=True)
    target_accept = validation.probability("target_accept", target_accept)
    betas = _check_schedule(schedule, num_temperatures)
    shape, logprior_fn = _check_position(target, prior)
    reverse_start = _check_reverse_start(exact_posterior_draws, shape, num_chains)

    kernel = tempered_hmc(logprior_fn, target.logdensity, num_leapfrog)
    keys = jax.random.split(as_jax_key(key_input), 5)
    run = _annealing_program(prior, kernel, keys, num_chains, num_tuning_chains, target_accept)
    fixed = None if step_size is None else jnp.full((num_temperatures,), step_size)
    step_sizes, forward, reverse = jax.block_until_ready(
        run(
            jnp.asarray(betas), fixed, None if reverse_start is None else jnp.asarray(reverse_start)
        )
    )
    grads_per_chain = num_temperatures * (num_leapfrog + 1)
    num_grad = num_chains * grads_per_chain * (1 if reverse is None else 2)
    if step_size is None:
        num_grad += num_tuning_chains * (num_temperatures + 30) * (num_leapfrog + 1)
    result = _assemble_result(forward, reverse, betas, step_sizes, num_grad, wall_start)
    _warn_if_unreliable(result, target.name, num_chains)
    return result


def _check_position(target: Target, prior) -> tuple[tuple[int, ...], Callable]:
    """The shape of the target's position, which must be one array, and ``log prior`` summed
    to a scalar (see :func:`_check_prior`); raises ValueError or TypeError otherwise."""
    leaves = jax.tree.leaves(target.init)
    if len(leaves) != 1:
        raise ValueError(
            f"infer.ais takes a target whose position is one array; {target.name!r} has "
            f"{len(leaves)} leaves. Write its log density over one flat array."
        )
    shape = tuple(np.shape(leaves[0]))
    logprior_fn = _check_prior(prior, shape)
    check_scalar_logdensity(target.logdensity, jnp.asarray(leaves[0], jnp.result_type(float)))
    return shape, logprior_fn


def _check_reverse_start(exact_posterior_draws, shape, num_chains: int) -> np.ndarray | None:
    """The reverse pass's starts, (num_chains, *shape), from one position or one per chain;
    ``None`` without ``exact_posterior_draws``. Raises ValueError for any other shape."""
    if exact_posterior_draws is None:
        return None
    reverse_start = np.asarray(exact_posterior_draws, jnp.result_type(float))
    if reverse_start.shape == shape:
        reverse_start = np.broadcast_to(reverse_start, (num_chains, *shape))
    if reverse_start.shape != (num_chains, *shape):
        raise ValueError(
            f"exact_posterior_draws must be one position shaped {shape} or one per chain, "
            f"shaped {(num_chains, *shape)}; got {reverse_start.shape}."
        )
    return reverse_start


def _annealing_program(prior, kernel, keys, num_chains, num_tuning_chains, target_accept):
    """The jitted AIS run, ``(betas, step_sizes, reverse_start) -> (step_sizes, forward,
    reverse)``: ``betas`` (T + 1,); ``step_sizes`` (T,), or ``None`` to tune them in a pilot
    pass; ``reverse_start`` (num_chains, ...) or ``None``. ``forward`` and ``reverse`` are
    :class:`AnnealTrace`s (``reverse`` is ``None`` without a start). ``keys`` are five keys:
    the pilot's starts, the pilot, the forward starts, the forward and the reverse pass."""
    key_tune_start, key_tune, key_start, key_forward, key_reverse = keys

    @jax.jit
    def run(betas, step_sizes, reverse_start):
        if step_sizes is None:
            pilot = _prior_draws(prior, key_tune_start, num_tuning_chains)
            step_sizes = tune_step_sizes(key_tune, kernel, pilot, betas, 0.1, target_accept)
        starts = _prior_draws(prior, key_start, num_chains)
        forward = anneal(key_forward, kernel, starts, betas, step_sizes)
        reverse = None
        if reverse_start is not None:
            reverse = anneal(key_reverse, kernel, reverse_start, betas[::-1], step_sizes[::-1])
        return step_sizes, forward, reverse

    return run


def _assemble_result(forward, reverse, betas, step_sizes, num_grad, wall_start) -> AISResult:
    """The :class:`AISResult` of the ``forward`` (and ``reverse``, or ``None``)
    :class:`AnnealTrace`, ``betas`` (T + 1,) and ``step_sizes`` (T,); ``seconds`` counts
    from ``wall_start``."""
    log_weights = np.asarray(forward.log_weights, np.float64)
    log_z, log_z_se, ess = weight_summary(log_weights)
    upper = upper_se = reverse_weights = None
    nonfinite = int(forward.num_nonfinite)
    if reverse is not None:
        reverse_weights = np.asarray(reverse.log_weights, np.float64)
        inverse, upper_se, _ = weight_summary(reverse_weights)
        upper = -inverse
        nonfinite += int(reverse.num_nonfinite)
    return AISResult(
        log_z=log_z,
        log_z_se=log_z_se,
        ess=ess,
        log_weights=log_weights,
        draws=np.asarray(forward.positions),
        temperatures=np.asarray(betas),
        step_sizes=np.asarray(step_sizes),
        acceptance=np.asarray(forward.acceptance),
        num_grad_evals=int(num_grad),
        num_nonfinite=nonfinite,
        seconds=time.perf_counter() - wall_start,
        log_z_upper=upper,
        log_z_upper_se=upper_se,
        reverse_log_weights=reverse_weights,
    )


def _warn_if_unreliable(result: AISResult, target_name: str, num_chains: int) -> None:
    """A DiagnosticWarning, pointing at :func:`ais`'s caller, for non-finite log densities
    along the chains and for a weights' ESS too small to trust ``log_z``."""
    from infer.diagnostics import DiagnosticWarning

    nonfinite, ess = result.num_nonfinite, result.ess
    if nonfinite:
        warnings.warn(
            f"ais on {target_name}: the log density was NaN or +inf {nonfinite} times along "
            "the chains; those chains got weight zero. Check the log density's numerics.",
            DiagnosticWarning,
            stacklevel=3,
        )
    if ess < 0.01 * num_chains or ess < 2:
        warnings.warn(
            f"ais on {target_name}: the weights' effective sample size is {ess:.1f} of "
            f"{num_chains} chains, so log_z and its standard error are unreliable. Use more "
            "temperatures (num_temperatures) or more leapfrog steps.",
            DiagnosticWarning,
            stacklevel=3,
        )


def _prior_draws(prior, rng_key, num: int):
    """``num`` prior draws (num, *shape), one per key (no broadcasting of sample shapes)."""
    return jax.vmap(prior.sample)(jax.random.split(rng_key, num))


def _check_schedule(schedule, num_temperatures: int) -> np.ndarray:
    if isinstance(schedule, str):
        validation.one_of("schedule", schedule, SCHEDULES)
        return temperatures(num_temperatures, schedule)
    betas = np.asarray(schedule, np.float64)
    if (
        betas.ndim != 1
        or betas.size != num_temperatures + 1
        or betas[0] != 0.0
        or betas[-1] != 1.0
        or np.any(np.diff(betas) <= 0)
    ):
        raise ValueError(
            "schedule must be 'sigmoid', 'linear' or an increasing array of "
            f"num_temperatures + 1 = {num_temperatures + 1} inverse temperatures from 0 to 1; "
            f"got shape {betas.shape}."
        )
    return betas


def _check_prior(prior, shape: tuple[int, ...]) -> Callable:
    """``log prior`` summed to a scalar, after checking the prior fits the position."""
    if not (hasattr(prior, "sample") and hasattr(prior, "log_prob")):
        raise TypeError(
            f"prior must be a numpyro.distributions distribution; got {type(prior).__name__}."
        )
    prior_shape = tuple(prior.batch_shape) + tuple(prior.event_shape)
    if prior_shape != shape:
        raise ValueError(
            f"prior's batch_shape + event_shape is {prior_shape}, but the target's position is "
            f"shaped {shape}. Use e.g. dist.Normal(0, 1).expand({list(shape)}).to_event() or a "
            "distribution of that shape."
        )
    return lambda x: jnp.sum(prior.log_prob(x))
