"""What the samplers sample: a log density with a starting point, names and, when known, the
answer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace

import jax
import numpy as np

from infer import validation
from infer.base import IdentityKey
from infer.init_checks import checked_init
from infer.outside_values import once_per_call, outside_values
from infer.placement import abstract
from infer.reported_values import default_names, storable


@dataclass(frozen=True)
class GroundTruth:
    """Known posterior moments, in constrained space, keyed by draw name.

    Attributes:
        mean: name -> array shaped like one draw of that name.
        std: name -> array, the marginal standard deviations.
        source: how the values were obtained ("analytic", or the reference run's settings).
        mean_se: name -> Monte Carlo standard error of ``mean`` when it comes from a reference
            run (``None`` when analytic, i.e. exact).
        std_se: likewise for ``std``.
    """

    mean: dict
    std: dict
    source: str = "analytic"
    mean_se: dict | None = None
    std_se: dict | None = None

    def __post_init__(self):
        for field_name in ("mean", "std", "mean_se", "std_se"):
            value = getattr(self, field_name)
            left_out = value is None and field_name.endswith("_se")  # those are optional
            if not left_out and not isinstance(value, Mapping):
                raise TypeError(
                    f"GroundTruth.{field_name} must be a dict draw name -> array (one draw's "
                    f"shape), e.g. {{'x': np.zeros(3)}}; got {type(value).__name__}."
                )
            if field_name != "mean":  # spreads and standard errors: NaN for unknown
                for name, spread in (value or {}).items():
                    if np.any(np.asarray(spread, float) < 0):
                        raise ValueError(
                            f"GroundTruth.{field_name}[{name!r}] holds a negative value, "
                            f"{np.min(spread):g}: standard deviations and errors are >= 0."
                        )


def _check_optional_fields(target) -> None:
    """The optional fields of a :class:`Target` are what they say, checked at construction:
    a wrong one would otherwise surface only after the run (at ``save`` or ``compare``)."""
    if target.constrain_fn is not None and not callable(target.constrain_fn):
        raise TypeError(
            "constrain_fn must be a callable constrain_fn(position) -> dict of named values; "
            f"got {type(target.constrain_fn).__name__}."
        )
    if target.ground_truth is not None and not isinstance(target.ground_truth, GroundTruth):
        raise TypeError(
            "ground_truth must be an infer.GroundTruth(mean={name: ...}, std={name: ...}); got "
            f"{type(target.ground_truth).__name__}."
        )
    for group in ("observed_data", "constant_data"):
        value = getattr(target, group)
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(
                f"{group} must be a dict name -> array (e.g. {group}={{'y': y}}), the names "
                f"ArviZ shows; got {type(value).__name__}."
            )
        for name, array in (value or {}).items():
            if not isinstance(array, np.ndarray | np.generic | jax.Array | int | float):
                raise TypeError(
                    f"{group}[{name!r}] must be an array; got {type(array).__name__}. Pass "
                    "np.asarray(...) of it (.to_numpy() of a pandas Series)."
                )
    if not isinstance(target.notes, dict):
        raise TypeError(f"notes must be a dict; got {type(target.notes).__name__}.")
    if target.dims is not None:
        check_dims(target.dims)


def check_dims(dims) -> None:
    """``dims`` maps names (str) to lists or tuples of dimension names (str)."""
    example = 'e.g. dims={"theta": ["school"]}'
    if not isinstance(dims, dict):
        raise TypeError(
            f"dims must be a dict name -> list of dimension names ({example}); "
            f"got {type(dims).__name__}."
        )
    for name, names in dims.items():
        if (
            not isinstance(name, str)
            or not isinstance(names, list | tuple)
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise TypeError(
                f"dims must map each name to a list of dimension names ({example}); got "
                f"{name!r}: {names!r}."
            )
        taken = [n for n in names if n in ("chain", "draw")]
        if taken or len(set(names)) < len(names):
            raise ValueError(
                f"dims[{name!r}] = {list(names)}: each axis needs its own name, and 'chain' "
                "and 'draw' are ArviZ's (the first two axes are named so already)."
            )


@dataclass(frozen=True, eq=False)
class Target:
    """A log density to sample, over an array or a pytree.

    Attributes:
        logdensity_fn: ``logdensity_fn(position) -> scalar`` log density, up to a constant, or
            ``logdensity_fn(position, data) -> scalar`` when ``data`` is given. It must be a
            pure JAX function; it is traced and compiled.
        init: a starting point (array or pytree), or ``None``. Chains start from a seeded
            jitter around it.
        name: a short name, used in outputs.
        constrain_fn: ``constrain_fn(position) -> dict`` (``constrain_fn(position, data)``
            with ``data``) of named values to report; ``None`` reports an array position as
            ``{"x": position}`` and a dict position as itself.
        ground_truth: known moments, or ``None``.
        rejection_proposal: a proposal that covers this target with heavier tails, for
            :func:`infer.rejection`, or ``None``.
        description: one line for people.
        notes: free-form facts for tools (e.g. a rejection envelope).
        data: a pytree of arrays the log density reads (observations, covariates), or
            ``None``. Data are arguments of the compiled programs, not constants in them, so
            a new target with the same ``logdensity_fn`` and same-shaped data reuses the
            programs compiled for the first: no second compilation.
        loglik_fn: ``loglik_fn(position) -> (num_observations,)`` (``(position, data)`` with
            ``data``), the log likelihood of each observation, or a dict of such arrays by
            observed name; with it, results get an ArviZ ``log_likelihood`` group (for
            ``az.loo`` and ``az.compare``). NumPyro targets have one.
        observed_data, constant_data: name -> array, the ArviZ ``observed_data`` and
            ``constant_data`` groups of results (NumPyro targets fill them).
        source: what the target was made from (a NumPyro model and its arguments), for
            :func:`infer.predictive`; ``None`` for a plain log density.
        dims: variable name -> the names of its dimensions after ``(chain, draw)`` in the
            ArviZ groups (``{"theta": ["school"]}``), ArviZ's ``dims``; unnamed ones are
            ``<name>_dim_<i>``. NumPyro targets name them after the model's plates, as
            ``az.from_numpyro`` does.

    Example:
        >>> target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(3), name="normal")
        >>> def regression(beta, data):
        ...     x, y = data
        ...     return -0.5 * jnp.sum((y - x @ beta) ** 2) - 0.5 * jnp.sum(beta**2)
        >>> target = infer.Target(regression, init=jnp.zeros(2), data=(x, y))
    """

    logdensity_fn: Callable
    init: object = None
    name: str = "target"
    constrain_fn: Callable | None = None
    ground_truth: GroundTruth | None = None
    rejection_proposal: object = None
    description: str = ""
    notes: dict = field(default_factory=dict)
    data: object = None
    loglik_fn: Callable | None = None
    observed_data: dict | None = None
    constant_data: dict | None = None
    source: object = None
    dims: dict | None = None

    def __post_init__(self):
        if not callable(self.logdensity_fn):
            raise TypeError(
                "logdensity_fn must be a callable logdensity_fn(position) -> scalar log density; "
                f"got {type(self.logdensity_fn).__name__}."
            )
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string; got {self.name!r}.")
        if self.init is not None:
            object.__setattr__(self, "init", checked_init(self.init))
        _check_optional_fields(self)
        if self.loglik_fn is not None and not callable(self.loglik_fn):
            raise TypeError(
                "loglik_fn must be a callable loglik_fn(position) -> (num_observations,) log "
                f"likelihoods; got {type(self.loglik_fn).__name__}."
            )
        if self.data is not None:
            data = validation.checked_data(self.data, "logdensity_fn")
            object.__setattr__(self, "data", data)

    def __repr__(self) -> str:
        """The name, the parameters' and the data's shapes: no array values (a target's data
        can be large)."""
        parts = [
            f"name={self.name!r}",
            f"logdensity_fn={getattr(self.logdensity_fn, '__qualname__', '?')}",
        ]
        for label, tree in (("init", self.init), ("data", self.data)):
            if tree is not None:
                parts.append(f"{label}={_shapes(tree)}")
        parts += [
            f"{label}=[{', '.join(map(str, names))}]"
            for label, names in (
                ("observed", self.observed_data or {}),
                ("dims", self.dims or {}),
            )
            if names
        ]
        return f"Target({', '.join(parts)})"

    def data_groups(self) -> dict:
        """The ArviZ groups without draws a result of this target carries:
        ``observed_data`` and ``constant_data``, those it has (group -> name -> array)."""
        groups = {"observed_data": self.observed_data, "constant_data": self.constant_data}
        return {name: dict(values) for name, values in groups.items() if values}

    @functools.cached_property
    def logdensity(self) -> Callable:
        """``logdensity(position) -> scalar``, with the data bound when there are data (the
        same function object on every access)."""
        if self.data is None:
            return self.logdensity_fn
        return functools.partial(_call_with_data, self.logdensity_fn, self.data)

    @classmethod
    def from_numpyro(cls, model: Callable, *args, **kwargs) -> Target:
        """A NumPyro model as a target over its unconstrained latent sites.

        ``args`` and ``kwargs`` are the model's arguments (data). Draws are reported in
        constrained space under the model's site names, deterministic sites included. The
        starting point is NumPyro's ``init_to_median(num_samples=15)``: each site's median of
        15 seeded prior draws (near the prior median, not at it).

        Array arguments are the target's ``data``: a second target made from the same model
        with same-shaped arrays reuses the compiled programs of the first. Other arguments
        (ints, strings, ``None``) are part of the program.

        An argument left to ``None`` whose value the model observes (``obs=y``) is an
        outcome left out, as in a target for :func:`infer.predictive` at new inputs: its site
        is sampled as a parameter (a discrete one is left out of the log density), and
        :func:`infer.sample` warns of it.

        Raises:
            ValueError: if the model has discrete latent sites or none at all.
        """
        from infer.numpyro_models import model_target

        parts = model_target(model, args, kwargs)
        return cls(
            parts.logdensity_fn,
            init=parts.init,
            name=getattr(model, "__name__", "model"),
            constrain_fn=parts.constrain_fn,
            data=parts.data,
            loglik_fn=parts.loglik_fn,
            observed_data=parts.observed_data,
            constant_data=parts.constant_data,
            source=parts.source,
            dims=parts.dims,
            notes=_numpyro_notes(parts),
        )

    @classmethod
    def from_flax(
        cls,
        module,
        log_likelihood_fn: Callable,
        data=None,
        *,
        prior=1.0,
        position: str = "tree",
        name: str | None = None,
        pointwise: bool = False,
    ) -> Target:
        """A Flax NNX module's parameters as a target (a Bayesian neural network).

        Args:
            module: an ``nnx.Module``; its ``nnx.Param`` variables are sampled (starting at
                their current values), the rest of its state is held fixed.
            log_likelihood_fn: ``log_likelihood_fn(model, data) -> scalar``, the log
                likelihood of all the data, ``model`` the module at the position's parameters.
            data: a pytree of arrays, passed as the target's data (programs are reused for
                a new target of the same structure with same-shaped data). When every leaf
                has the same leading axis (the examples) and the likelihood is a sum over
                it (checked on the first 16, with a warning when it is not), minibatch
                samplers (:func:`infer.sgld`) subsample that axis (``notes["minibatch"]``).
            prior: the scale of an independent ``N(0, prior^2)`` on every parameter, or a
                callable ``log_prior(params) -> scalar`` on the parameter pytree.
            position: ``"tree"`` (the parameter pytree, a nested dict) or ``"flat"`` (one
                vector). Draws are named by parameter path (``"hidden.kernel"``) either way;
                ``target.notes["flax"].params(result.draws)`` gives them back as the pytree.
            name: the target's name; default the module's class name.
            pointwise: also give results the ArviZ ``log_likelihood`` group (variable
                ``"obs"``, one value per example and draw) that ``az.loo`` and
                ``az.compare`` read: each example's term is ``log_likelihood_fn`` on a batch
                of that one example. Needs data whose every leaf holds the examples on its
                first axis. Off by default: it stores draws x examples values.

        Raises:
            TypeError, ValueError: see :func:`infer.flax_targets.flax_parts`.
        """
        from infer.flax_targets import flax_parts

        parts = flax_parts(module, log_likelihood_fn, data, prior, position, name, pointwise)
        return cls(
            parts.logdensity_fn,
            init=parts.init,
            name=parts.name,
            constrain_fn=parts.constrain_fn,
            description=parts.description,
            notes=parts.notes,
            data=parts.data,
            loglik_fn=parts.loglik_fn,
        )

    def with_options(self, **changes) -> Target:
        """A copy with some attributes changed, e.g. ``target.with_options(name="mine")``."""
        known = [item.name for item in fields(self) if item.init]
        if unknown := sorted(set(changes) - set(known)):
            raise TypeError(f"with_options got {unknown}, not attributes of a Target: {known}.")
        return replace(self, **changes)

    def constrain(self, position, data=None) -> dict:
        """Named values reported for one position (constrained space for NumPyro models).

        ``data``: the data to use instead of ``self.data`` (traced data inside a program).
        """
        if self.constrain_fn is None:
            named = default_names(position)
        elif self.data is None:
            named = self.constrain_fn(position)
        else:
            named = self.constrain_fn(position, self.data if data is None else data)
        return {name: storable(value) for name, value in dict(named).items()}

    def unconstrain(self, values: dict) -> dict:
        """A NumPyro target's point from the values of its latent sites, each in its own
        support (``{"sigma": 2.0}``), in the unconstrained space the chains move in:
        ``infer.sample(..., init=target.unconstrain(values))`` starts there, as NumPyro's
        ``init_to_value`` does (``init`` itself is read unconstrained). A site missing or
        unknown, or a value outside its support, is refused by name."""
        from infer.numpyro_models import unconstrained_point

        if self.source is None:
            raise TypeError(
                f"target {self.name!r} is not a NumPyro model's: its positions are its log "
                "density's own arguments, so init takes them as they are."
            )
        return unconstrained_point(self.source, values, self.init)

    def result_info(self) -> dict:
        """What every result of this target records of it in ``result.info``: its
        deterministic sites (``"deterministic"``), values the parameters fix."""
        deterministic = self.notes.get("deterministic")
        return {"deterministic": list(deterministic)} if deterministic else {}

    def bound(self, data) -> Callable:
        """``logdensity(position)`` with ``data`` (e.g. traced data inside a program) in place
        of ``self.data``."""
        if self.data is None:
            return self.logdensity_fn
        return functools.partial(_call_with_data, self.logdensity_fn, data)

    def bound_loglik(self, data) -> Callable | None:
        """``loglik(position) -> dict`` name -> per-observation log likelihood, with ``data``
        in place of ``self.data``; ``None`` without a ``loglik_fn``."""
        if self.loglik_fn is None:
            return None
        fn = (
            self.loglik_fn
            if self.data is None
            else functools.partial(_call_with_data, self.loglik_fn, data)
        )

        observed = list(self.observed_data or {})
        label = observed[0] if len(observed) == 1 else "obs"

        def named(position):
            out = fn(position)
            return dict(out) if isinstance(out, dict) else {label: out}

        return named


def _numpyro_notes(parts) -> dict:
    """A NumPyro target's notes: its outcomes left to ``None`` (``"unobserved"``) and its
    deterministic sites (``"deterministic"``, values the parameters fix: a constant entry of
    one is no sign that nothing was learned)."""
    notes = {}
    if parts.unobserved:
        notes["unobserved"] = (parts.unobserved, parts.left_out)
    if parts.deterministic:
        notes["deterministic"] = parts.deterministic
    return notes


def _call_with_data(logdensity_fn: Callable, data, position):
    return logdensity_fn(position, data)


def program_key(target: Target) -> tuple:
    """What identifies a target's log density in a compiled program: the identity of its
    functions, the values they read from outside their arguments (a global array or scale,
    which tracing makes constants: :mod:`infer.outside_values`), and the shapes of its data,
    never the data's values; read once per call (:func:`infer.outside_values.held`)."""
    return once_per_call("program key", target, lambda: _program_key(target))


def _program_key(target: Target) -> tuple:
    return (
        IdentityKey(target.logdensity_fn),
        IdentityKey(target.constrain_fn),
        outside_values(target.logdensity_fn),
        outside_values(target.constrain_fn) if target.constrain_fn is not None else (),
        abstract(target.data),
    )


def check_target(target) -> Target:
    """``target`` itself, or a ``TypeError`` saying how to make one."""
    if not isinstance(target, Target):
        raise TypeError(
            f"target must be an infer.Target; got {type(target).__name__}. Wrap a log density "
            "as infer.Target(logdensity_fn, init=...), or a NumPyro model as "
            "infer.Target.from_numpyro(model, *args)."
        )
    return target


def _shapes(tree) -> str:
    """A pytree's leaves as ``path: shape dtype``, one short line."""

    def described(path, leaf) -> str:
        dtype = getattr(leaf, "dtype", type(leaf).__name__)
        return f"{jax.tree_util.keystr(path) or '.'}: {tuple(np.shape(leaf))} {dtype}"

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return "{" + ", ".join(described(path, leaf) for path, leaf in leaves) + "}"
