"""Why a sampler's kernel failed to trace, in the words of its protocol (:class:`infer.Kernel`):
run only after tracing the run's program failed, so a kernel that works pays nothing."""

from __future__ import annotations

import jax

from infer import validation

GUIDE = "See infer.Kernel and docs/writing-a-sampler.md."


def explain_kernel_failure(sampler, logdensity_fn, example) -> None:
    """Raise a ``TypeError`` naming the first way ``sampler``'s kernel breaks the protocol
    at one chain's ``example`` position (shapes only, through ``jax.eval_shape``); return if
    none is found (the failure lies elsewhere: in the log density itself, or its gradient
    for a sampler that uses one, whose own error then stands)."""
    pieces = [logdensity_fn]
    if getattr(sampler, "uses_gradients", False):
        pieces.append(jax.grad(logdensity_fn))
    for piece in pieces:
        try:
            jax.eval_shape(piece, example)
        except Exception:  # the target's fault, not the kernel's: JAX's error says more
            return
    kernel = sampler.build(logdensity_fn, 0)
    owner = type(sampler).__name__

    def fail(problem: str):
        raise TypeError(f"{owner}'s kernel: {problem}. {GUIDE}") from None

    state = _shapes(kernel.init, (example,), fail, "init(position)")
    missing = [name for name in ("position", "logdensity") if not hasattr(state, name)]
    if missing:
        fail(
            f"init(position) returned a {type(state).__name__} without "
            f"{' or '.join(missing)}: a state needs the attributes position and logdensity "
            "(a NamedTuple with those fields works)"
        )
    params = _shapes(kernel.params, (example,), fail, "params(position)")
    key = jax.eval_shape(lambda: jax.random.key(0))
    out = _shapes(kernel.step, (key, state, params), fail, "step(rng_key, state, params)")
    if hasattr(out, "position") and hasattr(out, "logdensity"):
        fail("step(rng_key, state, params) returned the state alone; return (state, info)")
    if not (isinstance(out, tuple) and len(out) == 2):
        fail(
            f"step(rng_key, state, params) must return (state, info); it returned "
            f"{type(out).__name__}"
        )
    new_state, info = out
    before, after = _described(state), _described(new_state)
    if before != after:
        fail(
            f"step changed the state's structure, shapes or dtypes, from {before} to {after}: "
            "it must return a state like init's (the chains run in a loop)"
        )
    cost = _shapes(kernel.cost, (info,), fail, "cost(info)")
    if not (isinstance(cost, tuple | list) and len(cost) == 2):
        fail(
            f"cost(info) must return (num_logdensity_evals, num_grad_evals), two ints or "
            f"scalar int arrays; it returned {cost!r}"
        )


def _shapes(function, arguments, fail, call: str):
    """``jax.eval_shape(function, *arguments)``, or ``fail`` saying how the call failed."""
    try:
        return jax.eval_shape(function, *arguments)
    except Exception as err:  # the user's code: any error is the kernel's
        fail(f"{call} failed: {validation.error_line(err, 300)}")


def _described(tree) -> str:
    """A state's structure with each leaf's shape and dtype, for comparing two."""
    leaves = [f"{leaf.dtype}{list(leaf.shape)}" for leaf in jax.tree.leaves(tree)]
    return f"{jax.tree.structure(tree)} with leaves {leaves}"
