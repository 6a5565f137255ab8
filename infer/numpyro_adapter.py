"""Everything that touches NumPyro's inference code lives here.

* :func:`hmc` and :func:`nuts`: NumPyro's functional HMC/NUTS pair
  (``numpyro.infer.hmc.hmc(potential_fn, algo=...)``) wrapped as our :class:`~infer.base.Kernel`,
  with NumPyro's own warm-up (dual-averaging step size, windowed mass matrix). The pair is
  rebuilt for every :meth:`build`, so no NumPyro object keeps state between runs.
* :func:`infer.tempered_hmc.tempered_hmc` (its own module): NumPyro's HMC kernel on an
  annealing path, for :func:`infer.ais`.

NumPyro models become targets in :mod:`infer.numpyro_models`.

Our convention is ``logdensity_fn`` (log p); NumPyro's ``potential_fn`` (-log p) appears only
in this module and :mod:`infer.tempered_hmc`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.base import Kernel, Sampler
from infer.caller import INFER_FRAMES
from infer.flat_position import Layout
from infer.keywords import refusing_unknown_keywords
from infer.placement import to_host
from infer.proposal import check_covariance, check_covariance_dim

__all__ = [
    "HMCState",
    "HMCInfo",
    "NUTSInfo",
    "hmc",
    "nuts",
    "biject_to",
]


@jax.tree_util.register_pytree_node_class
class HMCState:
    """One chain's state: NumPyro's ``HMCState`` (with its ``rng_key`` cleared: every step gets
    its key from the driver), which also carries NumPyro's warm-up adaptation state. NumPyro
    moves the position as one flat vector (``kernel_state.z``, ``(dim,)``; see
    :mod:`infer.flat_position`); ``layout``, static, turns it back into the target's pytree.

    Properties ``position`` (the pytree, leading axes kept) and ``logdensity`` give the
    current point and log p there.
    """

    def __init__(self, kernel_state, layout: Layout):
        self.kernel_state = kernel_state
        self.layout = layout

    @property
    def position(self):
        return self.layout.unravel(self.kernel_state.z)

    @property
    def logdensity(self):
        return -self.kernel_state.potential_energy

    def tree_flatten(self):
        return (self.kernel_state,), self.layout

    @classmethod
    def tree_unflatten(cls, layout, children):
        return cls(children[0], layout)


class HMCInfo(NamedTuple):
    """Diagnostics of one HMC step (ArviZ names).

    Attributes:
        acceptance_rate: Metropolis acceptance probability, scalar float.
        diverging: the trajectory's energy error exceeded 1000, scalar bool.
        n_steps: leapfrog steps (= gradient evaluations), scalar int.
        energy: Hamiltonian at the new state, scalar float.
        step_size: step size used, scalar float.
    """

    acceptance_rate: jax.Array
    diverging: jax.Array
    n_steps: jax.Array
    energy: jax.Array
    step_size: jax.Array


class NUTSInfo(NamedTuple):
    """Diagnostics of one NUTS step: :class:`HMCInfo`'s fields plus ``tree_depth`` (scalar
    int, ``floor(log2(n_steps)) + 1``); ``acceptance_rate`` is the mean over the tree."""

    acceptance_rate: jax.Array
    diverging: jax.Array
    n_steps: jax.Array
    tree_depth: jax.Array
    energy: jax.Array
    step_size: jax.Array


class NumPyroHMC(Sampler):
    """NumPyro's HMC or NUTS kernel; see :func:`hmc` and :func:`nuts`."""

    uses_gradients = True

    def __init__(self, algo: str, **options):
        self.algo = algo
        self.name = algo.lower()
        self.options = options

    def settings(self) -> dict:
        """The options under :func:`nuts`'s and :func:`hmc`'s own names (NumPyro's
        ``target_accept_prob`` is ``target_accept``): ``infer.nuts(**settings)`` remakes it."""
        named = {"target_accept_prob": "target_accept"}
        return {named.get(key, key): value for key, value in self.options.items()}

    def check(self, position) -> None:
        check_covariance_dim(self.options["inverse_mass_matrix"], position, "inverse_mass_matrix")

    def target_acceptance(self, dim: int) -> float | None:
        return self.options["target_accept_prob"] if self.options["adapt_step_size"] else None

    def acceptance_band(self, target_accept: float) -> tuple[float, float | None]:
        """Too low below half the target; no upper limit (a high HMC acceptance is fine)."""
        return target_accept / 2.0, None

    def tuned(self, carry) -> dict:
        """Each chain's step size ``(num_chains,)`` and inverse mass matrix, ``(num_chains,
        dim)`` or ``(num_chains, dim, dim)`` over the flattened position (the order
        ``inverse_mass_matrix=`` takes)."""
        adapt_state = carry.kernel_state.kernel_state.adapt_state
        return to_host(
            {
                "step_size": adapt_state.step_size,
                "inverse_mass_matrix": adapt_state.inverse_mass_matrix,
            }
        )

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        from numpyro.infer.hmc import hmc as numpyro_hmc

        options = dict(self.options)
        inverse_mass_matrix = options.pop("inverse_mass_matrix")
        if inverse_mass_matrix is not None:
            inverse_mass_matrix = jnp.asarray(inverse_mass_matrix)

        layout = []  # the target's position pytree, learnt from the first position seen

        def potential_fn(flat):
            # NaN or +inf log density is numerical trouble, not a high-probability point:
            # give NumPyro an infinite potential, which it treats as a divergence and rejects.
            logdensity = computed_once(logdensity_fn(layout[0].unravel(flat)))
            return -jnp.where(logdensity < jnp.inf, logdensity, -jnp.inf)

        init_kernel, sample_kernel = numpyro_hmc(potential_fn=potential_fn, algo=self.algo)
        fixed_steps = options.get("num_steps") is not None
        length = None if self.algo == "NUTS" or fixed_steps else options["trajectory_length"]

        def init(position) -> HMCState:
            if not layout:
                layout.append(Layout.of(position))
            kernel_state = init_kernel(
                layout[0].ravel(position),
                num_warmup,
                inverse_mass_matrix=inverse_mass_matrix,
                rng_key=jax.random.key(0),  # used only for momentum refreshes we overwrite
                **options,
            )
            return HMCState(kernel_state._replace(rng_key=None), layout[0])

        initialised = []

        def step(rng_key, state: HMCState, params=None):
            if not initialised:
                # NumPyro's init_kernel sets up the closure sample_kernel relies on; make sure it
                # has run once for this pair even when only `step` is traced.
                layout[:] = [state.layout]
                jax.eval_shape(init, state.position)
                initialised.append(True)
            kernel_state = state.kernel_state._replace(rng_key=rng_key)
            if length is None:
                new = sample_kernel(kernel_state)
                n_steps = jnp.asarray(new.num_steps, jnp.int32)
                step_size = kernel_state.adapt_state.step_size
            else:
                new, n_steps, step_size = _along_trajectory(sample_kernel, kernel_state)
            common = dict(
                acceptance_rate=new.accept_prob,
                diverging=new.diverging,
                n_steps=n_steps,
                energy=new.energy,
                step_size=step_size,
            )
            if self.algo == "NUTS":
                depth = jnp.floor(jnp.log2(jnp.maximum(n_steps, 1))).astype(jnp.int32) + 1
                info = NUTSInfo(tree_depth=depth, **common)
            else:
                info = HMCInfo(**common)
            return HMCState(new._replace(rng_key=None), state.layout), info

        return Kernel(
            init=init,
            step=step,
            params=lambda position: None,
            adaptation=None,
            cost=lambda info: (info.n_steps, info.n_steps),
        )


def _along_trajectory(sample_kernel, kernel_state) -> tuple:
    """One HMC step of NumPyro's ``sample_kernel`` with a trajectory length ``L``: ``(new
    state, steps taken, the step size they took)``. NumPyro takes ``ceil(L / step_size)``
    steps of ``L`` over that: here at most :data:`MAX_HMC_STEPS` (the trajectory is cut
    there), and at least one of the whole length (a huge step size's count underflowed to 0
    steps, always accepted)."""
    step_size = kernel_state.adapt_state.step_size
    given = kernel_state.trajectory_length
    over = jnp.ceil(given / step_size) > MAX_HMC_STEPS  # as NumPyro counts them
    most = step_size * (MAX_HMC_STEPS - 0.5)  # ceil(most / step_size) <= the cap
    capped = jnp.where(over, jnp.asarray(most, jnp.result_type(given)), given)
    whole = jnp.minimum(step_size, capped.astype(step_size.dtype))
    adapt_state = kernel_state.adapt_state._replace(step_size=whole)
    new = sample_kernel(kernel_state._replace(trajectory_length=capped, adapt_state=adapt_state))
    # The cut is this step's: the next starts from the length given (kept, each cut length
    # ratcheted it down for good, and then a tiny length let the step size grow to float32's
    # largest: draws of 0 steps); and from the step size tuned, which NumPyro's warm-up sets
    # apart from the one taken (outside warm-up it hands back the one taken).
    tuned = new.adapt_state.step_size
    tuned = jnp.where(tuned == whole, step_size, tuned)
    new = new._replace(
        trajectory_length=given, adapt_state=new.adapt_state._replace(step_size=tuned)
    )
    n_steps = jnp.asarray(new.num_steps, jnp.int32)
    taken = (capped / jnp.maximum(n_steps, 1)).astype(step_size.dtype)  # NumPyro's L / n
    return new, n_steps, taken


def computed_once(values):
    """``values`` (log densities), which the gradient's checks of them then read rather than
    recompute: the check of a value for NaN or ``+inf`` selects each coordinate of the
    gradient, and XLA fused the whole log density into each of them (a NumPyro model of 31
    scalar sites: 63 copies, and NUTS's programs took two to three times as long to compile;
    ``benchmarks/latency.py``'s ``many_sites``)."""
    return jax.lax.optimization_barrier(values)


def _checked_inverse_mass_matrix(matrix, dense_mass: bool):
    """``matrix`` as a float array: a vector of positive variances (``dense_mass=False``) or a
    symmetric positive definite matrix (``dense_mass=True``)."""
    if isinstance(matrix, str):
        raise TypeError(
            f"inverse_mass_matrix must be an array, (dim,) or (dim, dim), or None to start "
            f"from the identity; got {matrix!r}. dense_mass=True asks for a dense one."
        )
    if isinstance(matrix, dict):  # NumPyro's adapt_state.inverse_mass_matrix
        raise TypeError(
            "inverse_mass_matrix must be an array over the whole flattened position, (dim,) "
            "or (dim, dim), in the order of jax.flatten_util.ravel_pytree(init) (that of "
            "result.state.tuned); got a dict, NumPyro's blocks keyed by site names. Pass the "
            "array of a block that holds every site, checking its order against ravel_pytree, "
            "or a run's own result.state.tuned['inverse_mass_matrix'][chain]."
        )
    _, matrix = check_covariance(matrix, "inverse_mass_matrix")
    if (matrix.ndim == 2) != dense_mass:
        raise ValueError(
            f"inverse_mass_matrix of shape {matrix.shape} needs dense_mass={matrix.ndim == 2}: "
            "a vector is a diagonal mass matrix, a square matrix a dense one."
        )
    return matrix


def _common_options(
    step_size, inverse_mass_matrix, adapt_step_size, adapt_mass_matrix, dense_mass, target_accept
) -> dict:
    step_size = validation.positive_float(
        "step_size",
        step_size,
        validation.per_chain_hint(
            "step_size", step_size, "It is the initial step size; adaptation starts from it."
        ),
    )
    validation.step_size_in_precision(step_size)
    if target_accept is not None and adapt_step_size is False:
        warnings.warn(
            f"target_accept={target_accept} is ignored: adapt_step_size=False keeps "
            f"step_size={step_size} as it is. Leave adapt_step_size on to tune the step size "
            "toward target_accept.",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    target_accept = DEFAULT_TARGET_ACCEPT if target_accept is None else target_accept
    validation.probability("target_accept", target_accept)
    if dense_mass is None:  # as the given matrix says, else diagonal
        is_matrix = inverse_mass_matrix is not None and not isinstance(inverse_mass_matrix, str)
        dense_mass = bool(is_matrix and np.ndim(inverse_mass_matrix) == 2)
    if isinstance(dense_mass, list | tuple):  # NumPyro's blocks of sites
        raise TypeError(
            f"dense_mass must be True or False; got {dense_mass!r}. Blocks of sites (NumPyro's "
            "structured mass matrices) are not supported: use dense_mass=True for one dense "
            "matrix over every coordinate, or pass a block-diagonal inverse_mass_matrix."
        )
    for name, value in (
        ("dense_mass", dense_mass),
        ("adapt_step_size", adapt_step_size),
        ("adapt_mass_matrix", adapt_mass_matrix),
    ):
        validation.flag(name, value)
    if inverse_mass_matrix is not None:
        inverse_mass_matrix = _checked_inverse_mass_matrix(inverse_mass_matrix, dense_mass)
    return dict(
        step_size=step_size,
        inverse_mass_matrix=inverse_mass_matrix,
        adapt_step_size=bool(adapt_step_size),
        adapt_mass_matrix=bool(adapt_mass_matrix),
        dense_mass=dense_mass,
        target_accept_prob=float(target_accept),
    )


#: NUTS's and HMC's target mean acceptance probability by default (NumPyro's and Stan's).
DEFAULT_TARGET_ACCEPT = 0.8
#: The deepest tree :func:`nuts` allows: 2**30 - 1 leapfrog steps an iteration.
MAX_TREE_DEPTH = 30
#: The most leapfrog steps :func:`hmc` with a trajectory length takes a draw (as many as
#: NUTS's default tree depth of 10 allows): where warm-up drives the step size toward 0 (a
#: density with a hard wall), the trajectory is cut to ``MAX_HMC_STEPS * step_size`` rather
#: than run ``trajectory_length / step_size`` steps (1e8 a draw in a review's run: hours).
MAX_HMC_STEPS = 2**10 - 1


@refusing_unknown_keywords
def nuts(
    step_size: float = 1.0,
    *,
    max_tree_depth: int = 10,
    target_accept: float | None = None,
    adapt_step_size: bool = True,
    adapt_mass_matrix: bool = True,
    dense_mass: bool | None = None,
    inverse_mass_matrix=None,
) -> NumPyroHMC:
    """The No-U-Turn Sampler, NumPyro's kernel, with NumPyro's warm-up.

    Args:
        step_size: initial step size (adapted during warm-up unless ``adapt_step_size=False``).
        max_tree_depth: at most ``2**max_tree_depth - 1`` leapfrog steps per iteration.
        target_accept: dual averaging's target mean acceptance probability (default 0.8;
            ignored, with a warning, when ``adapt_step_size=False``).
        adapt_step_size: tune the step size during warm-up.
        adapt_mass_matrix: estimate the mass matrix during warm-up (Stan's windows).
        dense_mass: dense rather than diagonal mass matrix. Default: dense when
            ``inverse_mass_matrix`` is a square matrix, else diagonal.
        inverse_mass_matrix: initial inverse mass matrix, ``(dim,)`` or ``(dim, dim)``
            (e.g. chain ``c``'s learned one of an earlier run,
            ``result.state.tuned["inverse_mass_matrix"][c]``).

    Note:
        Vectorised chains run NUTS in lock-step: each iteration waits for the chain that builds
        the deepest tree, so many chains cost roughly the slowest chain's time.
    """
    depth = validation.positive_int(
        "max_tree_depth", max_tree_depth, "A tree of depth d takes up to 2**d - 1 steps."
    )
    if depth > MAX_TREE_DEPTH:
        raise ValueError(
            f"max_tree_depth must be at most {MAX_TREE_DEPTH} (a tree of depth d takes up to "
            f"2**d - 1 leapfrog steps, counted in 32-bit integers); got {depth}."
        )
    options = _common_options(
        step_size,
        inverse_mass_matrix,
        adapt_step_size,
        adapt_mass_matrix,
        dense_mass,
        target_accept,
    )
    return NumPyroHMC("NUTS", max_tree_depth=depth, **options)


@refusing_unknown_keywords
def hmc(
    step_size: float = 1.0,
    *,
    num_steps: int | None = None,
    trajectory_length: float | None = None,
    target_accept: float | None = None,
    adapt_step_size: bool = True,
    adapt_mass_matrix: bool = True,
    dense_mass: bool | None = None,
    inverse_mass_matrix=None,
) -> NumPyroHMC:
    """Hamiltonian Monte Carlo with a fixed trajectory, NumPyro's kernel and warm-up.

    Args:
        step_size: initial step size (adapted during warm-up unless ``adapt_step_size=False``).
        num_steps: leapfrog steps per iteration; if ``None``, ``n = ceil(trajectory_length /
            step_size)`` steps of ``trajectory_length / n`` each (NumPyro's HMC), the step
            ``stats["step_size"]`` reports. A tuned step size above ``trajectory_length``
            makes one step of the whole length, whose acceptance no longer responds to it:
            give a length several times the step size the posterior needs.
        trajectory_length: integration time (``2 pi`` when neither it nor ``num_steps`` is
            given); give one of the two, not both.
        target_accept: as for :func:`nuts`.
        adapt_step_size: as for :func:`nuts`.
        adapt_mass_matrix: as for :func:`nuts`.
        dense_mass: as for :func:`nuts`.
        inverse_mass_matrix: as for :func:`nuts`.
    """
    if num_steps is not None and trajectory_length is not None:
        raise ValueError(
            f"hmc got both num_steps={num_steps!r} and trajectory_length={trajectory_length!r}; "
            "give one: a fixed number of leapfrog steps, or an integration time that the "
            "adapted step size divides into steps."
        )
    length = None  # a fixed number of steps: the trajectory length follows the step size
    if num_steps is not None:
        num_steps = validation.positive_int("num_steps", num_steps)
    else:
        length = validation.positive_float(
            "trajectory_length", 2 * math.pi if trajectory_length is None else trajectory_length
        )
    options = _common_options(
        step_size,
        inverse_mass_matrix,
        adapt_step_size,
        adapt_mass_matrix,
        dense_mass,
        target_accept,
    )
    return NumPyroHMC("HMC", num_steps=num_steps, trajectory_length=length, **options)


def biject_to(support):
    """NumPyro's bijection from unconstrained space onto ``support``."""
    from numpyro.distributions.transforms import biject_to as numpyro_biject_to

    return numpyro_biject_to(support)
