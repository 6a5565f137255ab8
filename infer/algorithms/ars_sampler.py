"""The adaptive rejection sampler for :func:`infer.sample`: ``infer.ars(domain, ...)`` checks
its settings on the host, finds starting hull points, and draws ``num_chains * num_samples``
independent draws with :func:`infer.algorithms.ars.sample` (the algorithm itself)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.algorithms.ars import check_domain, sample
from infer.algorithms.ars_starts import check_start_points, default_start_points
from infer.base import Kernel, Sampler, public_name
from infer.starts import check_scalar_logdensity

__all__ = ["ARS", "as_top_level_api"]


class ARS(Sampler):
    """Adaptive rejection sampling; see :func:`as_top_level_api`."""

    name = "ars"

    def __init__(
        self,
        domain,
        *,
        start_points=None,
        max_points: int = 32,
        derivative_free: bool = False,
        batch_size: int = 4096,
        max_rounds: int = 100_000,
    ):
        self.domain = check_domain(domain)
        self.max_points = validation.positive_int("max_points", max_points, minimum=3)
        self.start_points = None
        if start_points is not None:
            check_start_points(start_points, self.domain, self.max_points)
            self.start_points = np.sort(np.asarray(start_points, float))
        self.derivative_free = validation.flag("derivative_free", derivative_free)
        self.batch_size = validation.positive_int("batch_size", batch_size)
        self.max_rounds = validation.positive_int("max_rounds", max_rounds)

    def settings(self) -> dict:
        return {
            "domain": list(self.domain),
            "start_points": None if self.start_points is None else self.start_points.tolist(),
            "max_points": self.max_points,
            "derivative_free": self.derivative_free,
            "batch_size": self.batch_size,
        }

    def iid_setup(self, target):
        logdensity_fn = target.logdensity
        leaves = jax.tree.leaves(target.init)
        if target.init is None:
            raise ValueError(
                f"infer.ars needs the target's init to know its position is one scalar, and "
                f"target {target.name!r} has none: make it with init=jnp.asarray(0.0) (any "
                "scalar; ARS starts from its own hull points)."
            )
        if len(leaves) != 1 or np.shape(leaves[0]) != ():
            shapes = jax.tree.map(np.shape, target.init)
            raise ValueError(
                f"infer.ars samples one scalar, but target {target.name!r} has position shaped "
                f"{shapes}. Use it on a one-dimensional density (e.g. each full conditional of "
                "a Gibbs sweep, with infer.algorithms.ars.sample_many), or an MCMC sampler."
            )
        if not jax.tree_util.treedef_is_leaf(jax.tree.structure(target.init)):
            shapes = jax.tree.map(np.shape, target.init)
            raise ValueError(
                f"infer.ars samples one bare scalar, but target {target.name!r} has its scalar "
                f"inside a pytree, {shapes} (a NumPyro model of one site has such a position). "
                "Write its log density as a function of the scalar itself: "
                "infer.Target(lambda x: ..., init=jnp.asarray(1.0))."
            )
        check_scalar_logdensity(logdensity_fn, jax.ShapeDtypeStruct((), jnp.result_type(float)))
        points = self.start_points
        if points is None:
            points = default_start_points(logdensity_fn, *self.domain, self.derivative_free)
        values = np.asarray(jax.vmap(logdensity_fn)(jnp.asarray(points, jnp.result_type(float))))
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"the log density is not finite at the starting hull points {points.tolist()}; "
                "give start_points= inside the density's support."
            )
        return logdensity_fn, np.asarray(points, jnp.result_type(float))

    def iid_program(self, setup, num_draws: int):
        logdensity_fn, points = setup

        def draw_fn(rng_key, points):
            draws, counters, hull = sample(
                rng_key,
                logdensity_fn,
                num_draws,
                self.domain,
                points,
                max_points=self.max_points,
                derivative_free=self.derivative_free,
                batch_size=self.batch_size,
                max_rounds=self.max_rounds,
            )
            # the log density's largest size on the hull: float32 rounds it (see info)
            largest = jnp.max(jnp.where(jnp.isfinite(hull.h), jnp.abs(hull.h), 0.0))
            return draws, (counters, largest)

        return draw_fn, points, (points.shape[0],)

    @staticmethod
    def iid_progress_text(counters) -> str:
        counters, _ = counters
        rate = int(np.sum(counters.num_accepted)) / max(int(np.sum(counters.num_proposals)), 1)
        return f"acceptance {rate:.2f}"

    def _unbounded_message(self, points) -> str:
        if not self.derivative_free:
            return (
                "the adaptive rejection hull is unbounded: on an infinite side of the domain "
                "the outermost starting point's log density does not fall away. Give "
                "start_points= on both sides of the mode (or a finite domain)."
            )
        return (
            "the adaptive rejection hull is unbounded: with derivative_free=True its outer "
            "pieces are secants through the two outermost hull points on each infinite side, "
            f"and from start_points {np.asarray(points).tolist()} one of them does not fall "
            "away outwards. Give two start_points on each side of the mode, or use tangents "
            "(derivative_free=False)."
        )

    def iid_summary(self, setup, counters: list, num_draws: int):
        largest = max(float(np.max(size)) for _, size in counters)
        counters = [each for each, _ in counters]

        def total(name):
            return int(sum(np.asarray(getattr(c, name), np.int64).sum() for c in counters))

        if total("unbounded_hull") and not total("not_log_concave"):
            raise ValueError(self._unbounded_message(setup[1]))
        if total("not_log_concave"):
            where = [float(x) for c in counters for x in np.ravel(c.bad_x) if np.isfinite(x)]
            points = ", ".join(f"{x:.6g}" for x in np.ravel(setup[1]))
            at = f" near x = {where[0]:.6g}" if where else f" between the starting points {points}"
            raise ValueError(
                f"the density is not log-concave{at}: a value of log f lies above the upper "
                "hull or below the chord between the hull points either side of it (or is "
                "NaN or +inf there, or the tangent slopes rise), so adaptive rejection "
                "sampling would not be exact. "
                "Use infer.rejection with a proposal that covers the target, or MCMC."
            )
        if any(np.any(np.asarray(c.num_accepted) < num_draws) for c in counters):
            points = ", ".join(f"{x:.6g}" for x in np.ravel(setup[1]))
            raise RuntimeError(
                f"adaptive rejection sampling ran out of its {self.max_rounds} rounds before "
                f"filling {num_draws} draws; raise max_rounds or batch_size. If that does not "
                f"help, the hull is a poor fit: its starting points {points} may be far wider "
                "than the density (default -1, 0, 1), so give start_points= near the mode, "
                "spread over about the density's scale."
            )
        accepted, proposals = total("num_accepted"), total("num_proposals")
        evaluations = total("num_evaluations")
        info = {
            "acceptance_rate": accepted / max(proposals, 1),
            "num_proposals": proposals,
            "num_accepted": accepted,
            "density_evaluations_per_draw": evaluations / max(accepted, 1),
            "density_evaluations_needed_per_draw": total("num_needed") / max(accepted, 1),
            "nonfinite_proposals": total("num_nonfinite"),
            "hull_points": int(max(np.max(np.asarray(c.num_points)) for c in counters)),
            "start_points": setup[1].tolist(),
            "largest_abs_logdensity": largest,
        }
        if self.derivative_free:  # secants extend the values' rounding: biased from 2**18
            info["float32_logdensity_limit"] = 2.0**16
        return info, evaluations, total("num_gradients")

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        raise NotImplementedError(
            "infer.ars draws independent samples through infer.sample (or "
            "infer.algorithms.ars.sample for a bare function); it has no Markov step."
        )


@public_name("ars")
def as_top_level_api(
    domain,
    *,
    start_points=None,
    max_points: int = 32,
    derivative_free: bool = False,
    batch_size: int = 4096,
    max_rounds: int = 100_000,
) -> ARS:
    """Adaptive rejection sampling for a log-concave density of one scalar.

    Args:
        domain: ``(lower, upper)`` of the support, any two numbers (a tuple, a list, an
            array); either may be ``±inf`` (or ``None``).
        start_points: initial hull points (at least two distinct ones, strictly inside, at
            most ``max_points``); by default three around the mode, found from the slope
            (from values alone with ``derivative_free``, the outer two at least one log
            unit below the highest point found).
        max_points: hull slots (the hull grows on rejections until they are full).
        derivative_free: ``True`` or ``False``: use secants (Gilks 1992) instead of tangents;
            then no gradient is ever taken, in the search for start points neither.
        batch_size: proposals per vectorised round once the hull is full.
        max_rounds: budget of rounds before giving up with an error.

    Returns:
        An exact sampler for :func:`infer.sample` (``num_chains * num_samples`` independent
        draws). ``result.info`` reports the acceptance rate, the density evaluations per draw
        the squeeze could not spare, and the hull's size. A density found not log-concave
        (a computed value of ``log f`` above the hull or below the squeeze's chord) raises an
        error; a dip that no computed value falls in cannot be seen.
    """
    return ARS(
        domain,
        start_points=start_points,
        max_points=max_points,
        derivative_free=derivative_free,
        batch_size=batch_size,
        max_rounds=max_rounds,
    )
