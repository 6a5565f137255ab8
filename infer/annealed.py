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
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import memory, validation
from infer.ais_checks import (
    PARETO_K_LIMIT,
    too_few_weights,
    warn_if_target_outside_prior,
    warn_if_unreliable,
)
from infer.annealing import (
    SCHEDULES,
    AnnealTrace,
    anneal,
    log_mean_exp,
    temperatures,
    tune_step_sizes,
    weight_summary,
)
from infer.base import IdentityKey
from infer.fit_checks import MIN_KHAT_DRAWS, pareto_k
from infer.keys import as_jax_key, as_key
from infer.keywords import refusing_unknown_keywords
from infer.outside_values import held
from infer.placement import PROGRAMS
from infer.starts import check_scalar_logdensity
from infer.target import Target, check_target, program_key
from infer.tempered_hmc import tempered_hmc

__all__ = [
    "ais",
    "AISResult",
    "AnnealTrace",
    "temperatures",
    "anneal",
    "tune_step_sizes",
    "log_mean_exp",
    "weight_summary",
]


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
        pareto_k, upper_pareto_k: Pareto k-hat of each pass's weights (ArviZ's PSIS): above
            0.7 their tail is too heavy for their mean, and its standard error, to be
            trusted (a warning says so); ``None`` for fewer than 20 chains.
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
    pareto_k: float | None = None
    upper_pareto_k: float | None = None

    @property
    def bracket(self) -> tuple[float, float] | None:
        """``(log_z, log_z_upper)`` when the reverse pass ran."""
        return None if self.log_z_upper is None else (self.log_z, self.log_z_upper)

    def __repr__(self) -> str:
        chains = self.log_weights.shape[0]
        heavy = self.pareto_k is not None and not self.pareto_k <= PARETO_K_LIMIT
        untrusted = too_few_weights(self.ess, chains) or heavy  # as the warnings say
        note = " (unreliable: see the warnings)"
        text = f"AISResult(log_z={self.log_z:.4f} ± {self.log_z_se:.4f}{note * untrusted}"
        text += f", ess={self.ess:.1f}"
        if self.log_z_upper is not None:
            heavy = self.upper_pareto_k is not None and not self.upper_pareto_k <= PARETO_K_LIMIT
            text += f", log_z_upper={self.log_z_upper:.4f} ± {self.log_z_upper_se:.4f}"
            text += note * heavy
        return text + f", chains={chains}, temperatures={self.step_sizes.size})"


#: Transitions of the annealing path when neither num_temperatures nor a schedule array says.
DEFAULT_TEMPERATURES = 500


@refusing_unknown_keywords
def ais(
    rng_key,
    target: Target,
    prior,
    *,
    num_temperatures: int | None = None,
    num_chains: int = 256,
    num_leapfrog: int = 10,
    schedule="sigmoid",
    step_size: float | None = None,
    target_accept: float | None = None,
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
        num_temperatures: transitions ``T`` (the path has ``T + 1`` inverse temperatures);
            default 500, or one fewer than a ``schedule`` array's length.
        num_chains: independent annealing chains (vectorised).
        num_leapfrog: leapfrog steps per HMC transition.
        schedule: ``"sigmoid"``, ``"linear"``, or an increasing array from 0 to 1.
        step_size: one fixed HMC step size for every temperature; ``None`` tunes a schedule
            of them in a pilot pass of ``num_tuning_chains`` chains.
        target_accept: the pilot's acceptance goal; default 0.8. Not with ``step_size``.
        num_tuning_chains: chains of the pilot pass.
        exact_posterior_draws: exact draws from the normalised posterior, (num_chains, ...)
            or one position (shared by every reverse chain): e.g. the parameters that
            simulated the data. Runs the reverse pass, giving ``log_z_upper``, an upper
            bound on average: ``log_z_upper_se`` is its noise, not its gap above ``log Z``
            (the bracket's width says more; ``docs/ais.md``).

    Returns:
        An :class:`AISResult`.
    """
    with held():  # each function's outside values read once per call
        wall_start = time.perf_counter()
        key_input, _ = as_key(rng_key)
        check_target(target)
        if num_temperatures is None:
            if not isinstance(schedule, str) and np.size(schedule) < 2:
                raise ValueError(
                    "schedule must hold at least the inverse temperatures 0 and 1; got "
                    f"{np.asarray(schedule).tolist()}."
                )
            named = isinstance(schedule, str)
            num_temperatures = DEFAULT_TEMPERATURES if named else np.size(schedule) - 1
        num_temperatures = validation.positive_int("num_temperatures", num_temperatures)
        num_chains = validation.positive_int("num_chains", num_chains, minimum=2)
        num_leapfrog = validation.positive_int("num_leapfrog", num_leapfrog)
        num_tuning_chains = validation.positive_int("num_tuning_chains", num_tuning_chains)
        step_size = validation.positive_float("step_size", step_size, allow_none=True)
        if step_size is not None and target_accept is not None:
            raise ValueError(
                f"target_accept={target_accept!r} tunes the step sizes, but step_size={step_size} "
                "fixes them: give one of the two."
            )
        accept = 0.8 if target_accept is None else target_accept
        target_accept = validation.probability("target_accept", accept)
        betas = _check_schedule(schedule, num_temperatures)
        keyed_prior, prior = prior, validation.fresh_numpy_leaves(prior)  # see its docstring
        shape, logprior_fn = _check_position(target, prior)
        reverse_start = _check_reverse_start(exact_posterior_draws, shape, num_chains)

        _check_memory(target.name, shape, num_chains, reverse_start is not None)
        keys = jax.random.split(as_jax_key(key_input), 5)
        warn_if_target_outside_prior(target, prior, shape, jax.random.fold_in(keys[0], 1))
        run = _annealing_program(
            target,
            (keyed_prior, prior),
            logprior_fn,
            num_chains,
            num_tuning_chains,
            target_accept,
            num_leapfrog,
        )
        fixed = None if step_size is None else jnp.full((num_temperatures,), step_size)
        reverse_start = None if reverse_start is None else jnp.asarray(reverse_start)
        step_sizes, forward, reverse = jax.block_until_ready(
            run(keys, target.data, jnp.asarray(betas), fixed, reverse_start)
        )
        # each chain's HMC state computes one gradient at its start, then every temperature
        # re-evaluates it and runs num_leapfrog steps
        grads_per_chain = 1 + num_temperatures * (num_leapfrog + 1)
        num_grad = num_chains * grads_per_chain * (1 if reverse is None else 2)
        if step_size is None:
            num_grad += num_tuning_chains * (1 + (num_temperatures + 30) * (num_leapfrog + 1))
        result = _assemble_result(forward, reverse, betas, step_sizes, num_grad, wall_start)
        warn_if_unreliable(result, target.name, num_chains, step_size)
        return result


def _check_memory(name: str, shape, num_chains: int, reverse: bool) -> None:
    """Refuse a number of chains that cannot fit in memory before anything is compiled: each
    chain holds an HMC state (position, momentum, gradient and their copies, about eight
    positions) and its weight, per pass."""
    position = math.prod(shape) * 4
    chains = num_chains * (8 * position + 16) * (2 if reverse else 1)
    need = memory.Need(chains, chains, {"annealing chains": chains}, num_chains * 8)
    memory.check(
        need,
        jax.devices()[:1],
        f"ais on {name} with {num_chains} chains",
        "Use fewer chains (num_chains).",
    )


def _check_position(target: Target, prior) -> tuple[tuple[int, ...], Callable]:
    """The shape of the target's position, which must be one array, and ``log prior`` summed
    to a scalar (see :func:`_check_prior`); raises ValueError or TypeError otherwise."""
    if target.init is None:
        raise ValueError(
            f"target {target.name!r} has no init: infer.ais needs one to know the position's "
            "shape. Pass infer.Target(logdensity_fn, init=...)."
        )
    leaves = jax.tree.leaves(target.init)
    if len(leaves) != 1 or jax.tree.structure(target.init).num_nodes != 1:
        raise ValueError(
            f"infer.ais takes a target whose position is one array; {target.name!r} has a "
            f"{type(target.init).__name__} of {len(leaves)} leaves (a NumPyro model's sites or "
            "a dict). Write its log density over one flat array (jax.flatten_util."
            "ravel_pytree(position) gives one and the function back)"
            + (
                "; for a Flax target, Target.from_flax(..., position='flat') does it."
                if "flax" in getattr(target, "notes", {})
                else "."
            )
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
    try:
        reverse_start = np.asarray(exact_posterior_draws, jnp.result_type(float))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"exact_posterior_draws must be an array: one position shaped {shape} or one per "
            f"chain, shaped {(num_chains, *shape)}; got {type(exact_posterior_draws).__name__} "
            f"({validation.error_line(err)}). AIS runs on one array position: ravel a pytree "
            "with jax.flatten_util.ravel_pytree."
        ) from None
    if reverse_start.shape == shape:
        reverse_start = np.broadcast_to(reverse_start, (num_chains, *shape))
    if reverse_start.shape != (num_chains, *shape):
        raise ValueError(
            f"exact_posterior_draws must be one position shaped {shape} or one per chain, "
            f"shaped {(num_chains, *shape)}; got {reverse_start.shape}."
        )
    if not np.isfinite(reverse_start).all():
        bad = np.flatnonzero(~np.isfinite(reverse_start.reshape(num_chains, -1)).all(axis=1))
        raise ValueError(
            f"exact_posterior_draws must be finite; the draws of chain(s) {bad[:10].tolist()} "
            "hold NaN or inf. Pass exact draws from the posterior (one per chain, or one for "
            "all)."
        )
    return reverse_start


def _annealing_program(
    target, priors, logprior_fn, num_chains, num_tuning_chains, target_accept, num_leapfrog
):
    r"""The jitted AIS run, ``(keys, data, betas, step_sizes, reverse_start) -> (step_sizes,
    forward, reverse)``: ``keys`` five keys (the pilot's starts, the pilot, the forward starts,
    the forward and the reverse pass); ``data`` the target's; ``betas`` (T + 1,);
    ``step_sizes`` (T,), or ``None`` to tune them in a pilot pass; ``reverse_start``
    (num_chains, ...) or ``None``. ``forward`` and ``reverse`` are :class:`AnnealTrace`\ s
    (``reverse`` is ``None`` without a start). Kept in the program cache, so a second call
    with the same target, prior and shapes compiles nothing. ``priors``: the prior given,
    which keys the program, and the one traced (its NumPy arrays copied)."""
    keyed_prior, prior = priors
    cache_key = (
        "ais",
        program_key(target),
        IdentityKey(keyed_prior),
        num_chains,
        num_tuning_chains,
        target_accept,
        num_leapfrog,
    )

    def build():
        @jax.jit
        def run(keys, data, betas, step_sizes, reverse_start):
            key_tune_start, key_tune, key_start, key_forward, key_reverse = keys
            kernel = tempered_hmc(logprior_fn, target.bound(data), num_leapfrog)
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

    program, _ = PROGRAMS.get(cache_key, build)
    return program


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
        pareto_k=_k_hat(log_weights),
        upper_pareto_k=None if reverse_weights is None else _k_hat(reverse_weights),
    )


def _k_hat(log_weights: np.ndarray) -> float | None:
    """Pareto k-hat of the weights, or ``None`` for fewer chains than it needs."""
    return pareto_k(log_weights) if log_weights.size >= MIN_KHAT_DRAWS else None


def _prior_draws(prior, rng_key, num: int):
    """``num`` prior draws (num, *shape), one per key (no broadcasting of sample shapes)."""
    return jax.vmap(prior.sample)(jax.random.split(rng_key, num))


def _check_schedule(schedule, num_temperatures: int) -> np.ndarray:
    if isinstance(schedule, str):
        validation.one_of("schedule", schedule, SCHEDULES)
        return temperatures(num_temperatures, schedule)
    if schedule is None or isinstance(schedule, dict | set) or not np.size(schedule):
        raise TypeError(  # np.asarray(None, float) is nan: name what was given
            "schedule must be 'sigmoid', 'linear' or an increasing array of inverse "
            f"temperatures from 0 to 1; got {schedule!r}."
        )
    betas = np.asarray(schedule, np.float64)
    if (
        betas.ndim != 1
        or betas.size != num_temperatures + 1
        or betas[0] != 0.0
        or betas[-1] != 1.0
        or not np.all(np.diff(betas) > 0)  # NaN fails too
    ):
        shown = np.array2string(betas, precision=3, threshold=8)
        raise ValueError(
            "schedule must be 'sigmoid', 'linear' or an increasing array of "
            f"num_temperatures + 1 = {num_temperatures + 1} inverse temperatures from 0 to 1; "
            f"got {shown} (shape {betas.shape})."
        )
    return betas


def _check_prior(prior, shape: tuple[int, ...]) -> Callable:
    """``log prior`` summed to a scalar, after checking the prior fits the position."""
    validation.not_a_class("prior", prior)
    if not (hasattr(prior, "sample") and hasattr(prior, "log_prob")):
        raise TypeError(
            f"prior must be a numpyro.distributions distribution; got {type(prior).__name__}."
        )
    validation.refuse_discrete("prior", prior, "the chains move through real positions by HMC")
    prior_shape = tuple(prior.batch_shape) + tuple(prior.event_shape)
    if prior_shape != shape:
        raise ValueError(
            f"prior's batch_shape + event_shape is {prior_shape}, but the target's position is "
            f"shaped {shape}. Use e.g. dist.Normal(0, 1).expand({list(shape)}).to_event() or a "
            "distribution of that shape."
        )
    try:
        jax.eval_shape(prior.sample, jax.random.key(0))
    except NotImplementedError:
        raise TypeError(
            f"prior must be a distribution that can draw samples (the chains start from "
            f"exact prior draws); {type(prior).__name__} cannot. Use a proper distribution "
            "of the same support."
        ) from None
    return lambda x: jnp.sum(prior.log_prob(x))
