"""Stochastic-gradient Langevin dynamics (SGLD; Welling and Teh 2011), on minibatches.

Each step moves ``x' = x + (eps_t / 2) * g(x) + sqrt(eps_t) * z`` with ``z ~ N(0, I)``, where
``g`` is an unbiased estimate of the gradient of the log density from ``B`` of the ``N``
examples, drawn uniformly with replacement:

    g(x) = grad log p(x) + (N / B) * grad log p(batch | x).

A step touches ``B`` examples instead of ``N``: for data too large for full-batch gradients.
**SGLD is approximate.** There is no Metropolis correction, so the draws follow the posterior
only as the step size goes to zero: a fixed step size leaves a bias of order ``eps`` (for a
Gaussian posterior of precision ``a`` the variance is ``1 / (a (1 - eps a / 4))`` instead of
``1 / a``, before the minibatch noise adds its own), and a decaying one
(``eps_t = step_size * (1 + t / decay_steps) ** -decay_power``, ``decay_power`` in
``(0.5, 1]`` as Welling and Teh require) removes the bias in the limit but mixes ever more
slowly. Nothing is adapted during warm-up: warm-up steps are burn-in.

Why the sampler holds the data. The driver gives a kernel the log density of the position
alone, bound to all the data; a minibatch needs the likelihood of a batch and the data to
draw it from, which that function hides. So :func:`as_top_level_api` takes the likelihood of
a batch, the log prior and the data themselves (a target made by
:meth:`infer.Target.from_flax` declares all three in ``notes["minibatch"]``:
``infer.sgld(**target.notes["minibatch"], step_size=...)``). They must be the target's data
(checked), and inside ``infer.sample`` the minibatches are drawn from the target's data as
the program holds them, its arguments, so the compiled program (and the compilation cache)
holds no copy of them; a target without data leaves them constants of the program. The
sampler's cache key holds their identity, so a new data set compiles a new program. The
target's full-data log density is used only to check the sampler against the target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from infer import validation
from infer.algorithms.sgld_checks import (
    as_arrays,
    check_data,
    check_same_posterior,
    held_examples,
    jittered,
    same_leaves,
)
from infer.base import IdentityKey, Kernel, Sampler, default_cache_key, public_name
from infer.per_example import check_sum_over_examples
from infer.proposal import describe_callable

__all__ = ["SGLDState", "SGLDInfo", "init", "build_kernel", "as_top_level_api", "for_target"]


class SGLDState(NamedTuple):
    """One chain's state.

    Attributes:
        position: the current point (array or pytree).
        logdensity: the minibatch estimate of the log density at ``position`` (prior plus
            ``N / B`` times the batch's log likelihood), scalar: noisy, not the exact value.
        logdensity_grad: its gradient, same structure as ``position``, the next move's drift.
        step: steps taken so far (warm-up included), scalar int32; the schedule reads it.
    """

    position: object
    logdensity: jax.Array
    logdensity_grad: object
    step: jax.Array


class SGLDInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
        step_size: ``eps_t``, the step size used, scalar float.
        nonfinite: the new point's estimate or its gradient was NaN or infinite, so the chain
            stayed where it was, scalar bool.
    """

    step_size: jax.Array
    nonfinite: jax.Array


class SGLDParams(NamedTuple):
    """The tunable value: ``step_size``, ``eps`` at step 0 (scalar float)."""

    step_size: jax.Array


class Minibatch(NamedTuple):
    """The minibatch estimate of the log density: ``estimate(position, batch)``, and how to
    draw a batch: ``draw(rng_key) -> batch``."""

    estimate: Callable
    draw: Callable


def minibatch(loglik_fn, logprior_fn, data, num_data: int, batch_size: int) -> Minibatch:
    """The estimator ``log p(x) + (N / B) log p(batch | x)`` and the batch draws (``B``
    indices uniform with replacement, taken along every data leaf's first axis)."""
    scale = num_data / batch_size

    def estimate(position, batch):
        return logprior_fn(position) + scale * loglik_fn(position, batch)

    def draw(rng_key):
        index = jax.random.randint(rng_key, (batch_size,), 0, num_data)
        return jax.tree.map(lambda leaf: jnp.take(leaf, index, axis=0), data)

    return Minibatch(estimate, draw)


def init(position, batch: Minibatch) -> SGLDState:
    """State at ``position``: the estimate and its gradient on a batch drawn with a fixed key
    (one minibatch evaluation, never a full-data one)."""
    value, grad = jax.value_and_grad(batch.estimate)(position, batch.draw(jax.random.key(0)))
    return SGLDState(position, value, grad, jnp.zeros((), jnp.int32))


def build_kernel(batch: Minibatch, decay_power: float = 0.0, decay_steps: int = 1000) -> Callable:
    """``kernel(rng_key, state, params) -> (state, info)`` for one chain."""
    value_and_grad = jax.value_and_grad(batch.estimate)

    def kernel(rng_key, state: SGLDState, params: SGLDParams):
        key_noise, key_batch = jax.random.split(rng_key)
        x, unravel = ravel_pytree(state.position)
        grad_x, _ = ravel_pytree(state.logdensity_grad)
        decay = (1.0 + state.step.astype(x.dtype) / decay_steps) ** (-decay_power)
        eps = (params.step_size * decay).astype(x.dtype)
        noise = jax.random.normal(key_noise, x.shape, x.dtype)
        x_new = x + 0.5 * eps * grad_x + jnp.sqrt(eps) * noise
        position_new = unravel(x_new)
        value, grad = value_and_grad(position_new, batch.draw(key_batch))
        grad_flat, _ = ravel_pytree(grad)
        finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad_flat))
        moved = SGLDState(position_new, value, grad, state.step + 1)
        stayed = state._replace(step=state.step + 1)
        new_state = jax.tree.map(lambda a, b: jnp.where(finite, a, b), moved, stayed)
        return new_state, SGLDInfo(eps, ~finite)

    return kernel


class SGLD(Sampler):
    """Stochastic-gradient Langevin dynamics; see :func:`as_top_level_api`."""

    name = "sgld"
    uses_gradients = True
    logdensity_is_exact = False  # a minibatch estimate
    rejects_nonfinite = False  # no accept/reject: a NaN step is skipped
    takes_target_data = True  # minibatches drawn from the program's data, not constants

    def __init__(
        self, loglik_fn, logprior_fn, data, num_data, step_size, batch_size, decay_power, steps
    ):
        if not callable(loglik_fn) or not callable(logprior_fn):
            raise TypeError(
                "loglik_fn(position, batch) -> scalar and logprior_fn(position) -> scalar must "
                f"be callables; got {type(loglik_fn).__name__} and {type(logprior_fn).__name__}."
            )
        self.loglik_fn, self.logprior_fn = loglik_fn, logprior_fn
        self.data = as_arrays(data)
        self.num_data = check_data(self.data, num_data)
        self.batch_size = validation.positive_int("batch_size", batch_size)
        if self.batch_size > self.num_data:
            raise ValueError(
                f"batch_size must be at most the number of examples, {self.num_data}; got "
                f"{self.batch_size}."
            )
        if callable(step_size):
            raise TypeError(
                f"step_size must be a positive number, the step size at step 0; got "
                f"{step_size!r}. For one that decays, give decay_power (in (0.5, 1]) and "
                "decay_steps: step t is step_size * (1 + t / decay_steps) ** -decay_power."
            )
        self.step_size = validation.positive_float("step_size", step_size)
        if not validation.is_real_scalar(decay_power):
            raise TypeError(f"decay_power must be a number; got {decay_power!r}.")
        if decay_power != 0.0 and not 0.5 < decay_power <= 1.0:
            raise ValueError(
                "decay_power must be 0 (a fixed step size) or in (0.5, 1] (Welling and Teh's "
                f"condition for the decaying schedule); got {decay_power}."
            )
        self.decay_power = float(decay_power)
        self.decay_steps = validation.positive_int("decay_steps", steps)
        self.evaluation_fraction = self.batch_size / self.num_data  # a minibatch's share

    def settings(self) -> dict:
        return {
            "step_size": self.step_size,
            "batch_size": self.batch_size,
            "num_data": self.num_data,
            "decay_power": self.decay_power,
            "decay_steps": self.decay_steps,
            "loglik_fn": describe_callable(self.loglik_fn),
        }

    def cache_key(self) -> tuple:
        """The settings and the identity of the functions and the data (the data are
        constants of the program)."""
        identities = (self.loglik_fn, self.logprior_fn, *jax.tree.leaves(self.data))
        return (*default_cache_key(self), *(IdentityKey(obj) for obj in identities))

    def _examples(self, data):
        """The examples within the target's ``data`` (they are, or they are the first of a
        pair), as structured and shaped as this sampler's; else this sampler's own."""
        ours = jax.tree.map(lambda leaf: (leaf.shape, leaf.dtype), self.data)
        for held in held_examples(data) if data is not None else []:
            try:
                if jax.tree.map(lambda leaf: (leaf.shape, leaf.dtype), held) == ours:
                    return held
            except (AttributeError, TypeError, ValueError):
                continue
        return self.data

    def minibatch(self, examples=None) -> Minibatch:
        """The estimator, drawing batches from ``examples`` (default this sampler's data)."""
        examples = self.data if examples is None else examples
        return minibatch(self.loglik_fn, self.logprior_fn, examples, self.num_data, self.batch_size)

    def check(self, position) -> None:
        """The estimate at ``position`` must be a scalar (traced abstractly)."""
        batch = self.minibatch()
        example = jax.eval_shape(batch.draw, jax.random.key(0))
        try:
            out = jax.eval_shape(batch.estimate, position, example)
        except Exception as err:  # JAX's shape errors, a pytree of other structure, ...
            shapes = jax.tree.map(lambda leaf: tuple(np.shape(leaf)), position)
            raise ValueError(
                f"sgld's loglik_fn(position, batch) + logprior_fn(position) failed at the "
                f"target's starting point (shapes {shapes}): {type(err).__name__}: "
                f"{str(err).rstrip('.')}. The "
                "sampler carries its own log likelihood, prior and data: make it for this "
                "target (for a Flax target, infer.sgld(**target.notes['minibatch']))."
            ) from err
        if getattr(out, "shape", None) != ():
            raise ValueError(
                "loglik_fn(position, batch) + logprior_fn(position) must be a scalar (the log "
                f"likelihood summed over the batch); got shape {getattr(out, 'shape', None)}."
            )

    def check_data(self, data) -> None:
        """A target with data must hold this sampler's (SGLD draws its minibatches from its
        own copy, so another target's data would be sampled silently): as they are, or as the
        first of a pair (a Flax target's data are its examples and the module's fixed
        state)."""
        if data is None:  # a plain target whose log density closes over what it needs
            return
        ours = jax.tree.leaves(self.data)
        if not any(same_leaves(ours, jax.tree.leaves(held)) for held in held_examples(data)):
            raise ValueError(
                "sgld was made with other data than the target's: it draws its minibatches "
                "from its own, so it would sample another posterior. Make it from this "
                "target: infer.sgld(**target.notes['minibatch'], ...) for a Flax target."
            )

    def check_target(self, logdensity_fn: Callable, position) -> None:
        """The target's log density must be this sampler's prior plus its likelihood of all
        its data, up to a constant (the same posterior), at ``position`` and at two points
        jittered around it as the chains' starts are: it steps on its own, so a target of
        another prior, fixed state or likelihood would be sampled silently as this
        sampler's posterior. The target's density must be finite, not NaN or ``+inf``, at
        ``position`` (the chains' own start check reads a minibatch's estimate). And the
        likelihood must be a sum over the examples, which the minibatch estimate scales."""
        points = [position, *jittered(position)]
        theirs = [float(logdensity_fn(point)) for point in points]  # op by op, once each
        if np.isnan(theirs[0]) or theirs[0] == np.inf:
            raise ValueError(
                f"the target's log density is {theirs[0]} at the starting point: numerical "
                "trouble in the log density (a log of a negative value, a division by 0), in "
                "the model or in one example of the data. SGLD's own steps estimate it from "
                "minibatches and would skip every batch that holds the example, silently."
            )
        # evaluated op by op: compiling two programs for three values would cost more
        likelihoods = [self.loglik_fn(point, self.data) for point in points]
        values = [
            (float(self.logprior_fn(point) + likelihood), target)
            for point, likelihood, target in zip(points, likelihoods, theirs, strict=True)
        ]
        check_same_posterior(values, ravel_pytree(position)[0].dtype)
        for point, likelihood in zip(points[:2], likelihoods, strict=False):  # a prior term
            # folded into the likelihood may vanish at the start (0 at 0)
            check_sum_over_examples(
                self.loglik_fn, point, self.data, "sgld's loglik_fn", likelihood
            )

    def build(self, logdensity_fn: Callable, num_warmup: int = 0, data=None) -> Kernel:
        """The kernel; ``data``: the target's data as the program holds them (arguments),
        which :meth:`check_data` found equal to this sampler's: minibatches are drawn from
        them, not from copies built into the program (a large data set was then written
        into every compiled program, and into the compilation cache)."""
        batch = self.minibatch(self._examples(data))
        one = np.ones((), np.int32)

        def params(position):
            dtype = ravel_pytree(position)[0].dtype
            return SGLDParams(jnp.asarray(self.step_size, dtype))

        return Kernel(
            init=lambda position: init(position, batch),
            step=build_kernel(batch, self.decay_power, self.decay_steps),
            params=params,
            adaptation=None,
            cost=lambda info: (one, one),
        )


def default_step_size(num_data: int) -> float:
    """``0.1 / num_data``: a cautious start for a posterior whose curvature grows with the
    data (tune it: see the module docstring)."""
    return 0.1 / num_data


@public_name("sgld")
def as_top_level_api(
    loglik_fn: Callable,
    logprior_fn: Callable,
    data,
    num_data: int | None = None,
    *,
    step_size: float | None = None,
    batch_size: int | None = None,
    decay_power: float = 0.0,
    decay_steps: int = 1000,
) -> SGLD:
    """Stochastic-gradient Langevin dynamics on minibatches (approximate: no Metropolis
    correction; see the module docstring).

    Args:
        loglik_fn: ``loglik_fn(position, batch) -> scalar``: the log likelihood of a batch,
            a sum over its examples.
        logprior_fn: ``logprior_fn(position) -> scalar``.
        data: a pytree of arrays whose first axis indexes the examples.
        num_data: the number of examples (checked against the data); default: read from them.
        step_size: ``eps`` at step 0; default :func:`default_step_size` (``0.1 / N``).
        batch_size: examples per step; default ``min(N, 100)``.
        decay_power: 0 (default) keeps the step size fixed; in ``(0.5, 1]`` it decays as
            ``(1 + t / decay_steps) ** -decay_power``.
        decay_steps: the decay's time scale, in steps.

    Returns:
        A :class:`~infer.base.Sampler`. Its cost counts minibatch evaluations: one value and
        gradient on ``batch_size`` examples per step (``batch_size / N`` of a full one).

    Example:
        >>> target = infer.Target.from_flax(model, log_likelihood_fn, (x, y))
        >>> sampler = infer.sgld(**target.notes["minibatch"], step_size=1e-4, batch_size=64)
        >>> result = infer.sample(0, target, sampler, num_chains=4)
    """
    size = check_data(as_arrays(data), num_data)
    return SGLD(
        loglik_fn,
        logprior_fn,
        data,
        size,
        default_step_size(size) if step_size is None else step_size,
        min(size, 100) if batch_size is None else batch_size,
        decay_power,
        decay_steps,
    )


def for_target(target, **options) -> SGLD | None:
    """SGLD with ``options`` for a target that declares a minibatch log likelihood
    (``target.notes["minibatch"]``, as :meth:`infer.Target.from_flax` does), else ``None``."""
    declared = getattr(target, "notes", {}).get("minibatch")
    if declared is None:
        return None
    return as_top_level_api(**declared, **options)
