"""A NumPyro model as a target: its unconstrained log density (Jacobian included), a starting
point, and the map back to constrained values under the model's site names.

The model's array arguments are the target's *data*: the log density of ``(position, data)``
is built once per model, argument layout and values the model reads from outside, so a new
target of the same model with same-shaped arrays shares the first's compiled programs."""

from __future__ import annotations

import collections
import functools
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.caller import INFER_FRAMES
from infer.numpyro_data import (
    check_observation_shapes,
    constant_data,
    is_data,
    refuse_unsampleable_sites,
    unobserved_arguments,
)
from infer.numpyro_failures import (
    abstract_trace,
    explain_failure,
    outside_support,
    refuse_nonfinite_arguments,
    refuse_plates_named_like_sites,
)
from infer.outside_values import outside_values

_FUNCTIONS: collections.OrderedDict = collections.OrderedDict()
_MAX_MODELS = 64


class ModelTarget(NamedTuple):
    """What :meth:`infer.Target.from_numpyro` builds a target from.

    Attributes:
        logdensity_fn: ``logdensity_fn(z, data) -> scalar``, ``z`` unconstrained (a dict).
        constrain_fn: ``constrain_fn(z, data) -> dict`` of constrained values of every latent
            and deterministic site.
        data: the model's array arguments, a tuple of arrays.
        init: a starting point (dict), NumPyro's ``init_to_median`` (unconstrained).
        loglik_fn: ``loglik_fn(z, data) -> dict`` observed site -> the log likelihood of
            each of its observations (shaped like the site's value).
        observed_data: observed site -> its values (numpy).
        constant_data: the model's other array arguments, by parameter name (numpy).
        source: the model and its arguments, for NumPyro's ``Predictive``.
        dims: site -> the names of its leading dimensions, as ``arviz_base.from_numpyro``
            names them: its plates' names (outermost first), then the names given as
            ``infer={"event_dims": [...]}``. Sites in no plate are not listed.
    """

    logdensity_fn: Callable
    constrain_fn: Callable
    data: tuple
    init: dict
    loglik_fn: Callable
    observed_data: dict
    constant_data: dict
    source: ModelSource
    dims: dict
    unobserved: list  # sites of arguments left to None (see numpyro_data.unobserved_arguments)
    left_out: list  # those of them that are discrete, hidden from the log density
    deterministic: tuple = ()  # the numpyro.deterministic sites: values, not parameters


class ModelSource(NamedTuple):
    """A NumPyro model with the arguments a target was made from."""

    model: Callable
    args: tuple
    kwargs: dict


class _Layout(NamedTuple):
    """How ``(args, kwargs)`` is rebuilt from the data: the tree, which leaves are data, and
    the other leaves (part of the program)."""

    structure: object
    is_data: tuple
    static: tuple

    def rebuild(self, data) -> tuple:
        """``(args, kwargs)`` with the data as JAX arrays (traced in a program; a NumPy
        array, checked on the host, would make NumPyro check an observation's support with
        NumPy, which fails on a bound that is a parameter: ``Uniform(0, theta)``)."""
        data_leaves, static_leaves = iter(jax.tree.map(jnp.asarray, data)), iter(self.static)
        leaves = [next(data_leaves) if d else next(static_leaves) for d in self.is_data]
        return jax.tree.unflatten(self.structure, leaves)


def model_target(model: Callable, args: tuple, kwargs: dict) -> ModelTarget:
    """Turn a NumPyro model and its arguments into a target's parts.

    Raises:
        TypeError: if ``model`` is not callable.
        ValueError: if the model has discrete latent sites (no sampler here handles them), or
            no latent sites at all.
    """
    if not callable(model):
        raise TypeError(f"model must be a NumPyro model function; got {type(model).__name__}.")
    # the arguments' values as they are now (see validation.snapshot)
    args, kwargs = jax.tree.map(validation.snapshot, (tuple(args), dict(kwargs)))
    try:
        trace = abstract_trace(model, args, kwargs)
    except Exception as err:
        refuse_unsampleable_sites(model, args, kwargs, err)
        explain_failure(model, args, kwargs, err, "samples")
        raise
    check_observation_shapes({k: site for k, site in trace.items() if is_observation(site)})
    params = [name for name, site in trace.items() if site["type"] == "param"]
    if params:
        warnings.warn(
            f"the model's numpyro.param site(s) {params} are held at their initial values: "
            "infer.sample draws the sample sites only (as NumPyro's MCMC does). To infer "
            "them, make them numpyro.sample sites with a prior.",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    latent = {
        name: site
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"]
    }
    unobserved = unobserved_arguments(model, args, kwargs, latent)
    discrete = [name for name, site in latent.items() if site["fn"].support.is_discrete]
    left_out = [name for name in discrete if name in unobserved]  # outcomes, for predictions
    discrete = [name for name in discrete if name not in left_out]
    if discrete:
        raise ValueError(
            f"the NumPyro model has discrete latent site(s) {discrete}. HMC, NUTS, MALA and the "
            "random-walk samplers here work on continuous parameters only: marginalise it "
            "out by hand (log-sum-exp over its values, added with numpyro.factor), observe "
            "it, or run NumPyro's MCMC, which enumerates sites marked "
            "infer={'enumerate': 'parallel'} (infer does not)."
        )
    if not latent:
        refuse_plates_named_like_sites(model, args, kwargs)
        raise ValueError("the NumPyro model has no latent sample sites: there is nothing to infer.")
    replay = any(site["type"] == "deterministic" for site in trace.values())
    leaves, structure = jax.tree.flatten((tuple(args), dict(kwargs)))
    data_leaves = tuple(is_data(leaf) for leaf in leaves)
    layout = _Layout(
        structure,
        data_leaves,
        tuple(leaf for leaf, d in zip(leaves, data_leaves, strict=True) if not d),
    )
    data = tuple(leaf for leaf, d in zip(leaves, data_leaves, strict=True) if d)
    logdensity_fn, constrain_fn, start_fn, loglik_fn, observed_fn = _functions(
        _without(model, tuple(left_out)), layout, replay, outside_values(model)
    )
    try:
        init, value = jax.device_get(start_fn(data))
    except Exception as err:  # array arguments are traced here, not before
        explain_failure(model, args, kwargs, err, "data")
        raise
    observed = {k: np.asarray(v) for k, v in jax.device_get(observed_fn(data)).items()}
    traced = {name: site["value"] for name, site in trace.items() if is_observation(site)}
    if not np.isfinite(value):  # the prior median is outside the support: NumPyro's search
        init = _searched_start(model, tuple(left_out), args, kwargs, observed)
    return ModelTarget(
        logdensity_fn,
        constrain_fn,
        data,
        jax.tree.map(np.asarray, init),
        loglik_fn,
        observed,
        constant_data(model, args, kwargs, traced, observed),
        ModelSource(model, tuple(args), dict(kwargs)),
        site_dims(trace),
        unobserved,
        left_out,
        tuple(name for name, site in trace.items() if site["type"] == "deterministic"),
    )


def _without(model: Callable, sites: tuple) -> Callable:
    """:func:`_hidden`, once per model and sites where the model can be a cache key."""
    if not sites:
        return model
    try:
        return _hidden(model, sites)
    except TypeError:  # an unhashable callable object
        return _hidden.__wrapped__(model, sites)


@functools.lru_cache(maxsize=_MAX_MODELS)
def _hidden(model: Callable, sites: tuple) -> Callable:
    """``model`` with its sample ``sites`` hidden from the log density (``handlers.block``):
    discrete outcomes left to ``None`` in a target for predictions, which, observing
    nothing, sum to one out of the joint density. The same object for the same model and
    sites (so compiled programs are found again)."""
    from numpyro import handlers

    def hidden(*args, **kwargs):  # seeded inside: no handler outside sees these sites
        with handlers.block(hide=list(sites)):
            return handlers.seed(model, rng_seed=0)(*args, **kwargs)

    hidden.__qualname__ = getattr(model, "__qualname__", "model")
    return hidden


def is_factor(site: dict) -> bool:
    """Whether a trace site (or message) is a ``numpyro.factor`` term: an observed ``Unit``
    site marked auxiliary, part of the log density that observes nothing."""
    return (
        site["type"] == "sample"
        and bool(site.get("is_observed"))
        and bool((site.get("infer") or {}).get("is_auxiliary", False))
    )


def is_observation(site: dict) -> bool:
    """Whether a trace site (or message) is an observed sample site that holds data."""
    return site["type"] == "sample" and bool(site.get("is_observed")) and not is_factor(site)


def site_dims(trace: dict) -> dict:
    """Site -> its dimension names, as ArviZ infers them from a NumPyro trace
    (``arviz_base.io_numpyro.infer_dims``): the plates' names ordered by their ``dim``
    (outermost first), then the site's ``infer["event_dims"]``."""
    dims = {}
    for name, site in trace.items():
        if site["type"] not in ("sample", "deterministic") or is_factor(site):
            continue  # a factor is in no group
        frames = sorted(site.get("cond_indep_stack", ()), key=lambda frame: frame.dim)
        names = [frame.name for frame in frames]
        names += list(site.get("infer", {}).get("event_dims", ()))
        if names:
            dims[name] = names
    return dims


def _searched_start(model: Callable, left_out: tuple, args, kwargs, observed: dict):
    """NumPyro's search for a start with a finite log density (of the model with the
    ``left_out`` sites hidden); when there is none, the error names array arguments or
    observed values that are NaN, inf or outside their likelihood's support."""
    from numpyro.infer.initialization import init_to_median
    from numpyro.infer.util import initialize_model

    args, kwargs = _data_as_jax(args, kwargs)
    try:
        info = initialize_model(
            jax.random.key(0),
            _without(model, left_out),
            init_strategy=init_to_median(num_samples=15),
            model_args=tuple(args),
            model_kwargs=dict(kwargs),
        )
    except (RuntimeError, ValueError) as err:  # ValueError: a distribution's argument check
        named = validation.nonfinite_leaves(observed)
        if not named:
            refuse_nonfinite_arguments(model, args, kwargs, err)  # a covariate's NaN
        if isinstance(err, ValueError) and not named:
            raise
        outside = "" if named else outside_support(model, args, kwargs)
        if named:
            cause = f"the observed values hold NaN or inf ({named}): drop or fill them"
        elif outside:
            cause = (
                f"observed values lie outside their likelihood's support: {outside}. Fix the "
                "data (labels counted from 0, counts as whole numbers >= 0), or the likelihood"
            )
        else:
            cause = (
                "check that every observed value is inside its likelihood's support (e.g. "
                "no negative value for an Exponential) and that the priors are proper"
            )
        raise ValueError(
            f"the NumPyro model's log density is not finite at any starting point tried: {cause}."
        ) from err
    return info.param_info.z


def _functions(model: Callable, layout: _Layout, replay: bool, outside: tuple = ()) -> tuple:
    """The ``(logdensity_fn, constrain_fn)`` pair of ``model`` under ``layout``, the same
    objects for the same model, layout and values it reads from outside (``outside``): so
    compiled programs are found again, and not after a global the model reads changed."""
    key = (model, layout.structure, layout.is_data, layout.static, replay, outside)
    try:
        hash(key)
    except TypeError:  # an unhashable argument: build afresh (and compile afresh)
        return _build_functions(model, layout, replay)
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = _build_functions(model, layout, replay)
        while len(_FUNCTIONS) > _MAX_MODELS:
            _FUNCTIONS.popitem(last=False)
    _FUNCTIONS.move_to_end(key)
    return _FUNCTIONS[key]


def _build_functions(model: Callable, layout: _Layout, replay: bool):
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.initialization import init_to_median
    from numpyro.infer.util import constrain_fn as numpyro_constrain
    from numpyro.infer.util import potential_energy

    def logdensity_fn(z, data):
        args, kwargs = layout.rebuild(data)
        return -potential_energy(model, args, kwargs, z)

    def constrain_fn(z, data):
        # The model runs at z; what the constrained values do not need (the likelihood, when
        # there are no deterministic sites) is removed by the compiler.
        args, kwargs = layout.rebuild(data)
        seeded = handlers.seed(model, rng_seed=0)
        return numpyro_constrain(seeded, args, kwargs, z, return_deterministic=replay)

    @jax.jit
    def start_fn(data):
        """The prior median in unconstrained space (NumPyro's ``init_to_median``), and the
        log density there: one compiled program, reused for same-shaped data."""
        args, kwargs = layout.rebuild(data)
        medians = handlers.substitute(
            handlers.seed(model, rng_seed=0), substitute_fn=init_to_median(num_samples=15)
        )
        trace = handlers.trace(medians).get_trace(*args, **kwargs)
        z = {
            name: biject_to(site["fn"].support).inv(site["value"])
            for name, site in trace.items()
            if site["type"] == "sample" and not site["is_observed"]
        }
        return z, logdensity_fn(z, data)

    def loglik_fn(z, data):
        """Observed site -> the log likelihood of each observation, at unconstrained z."""
        args, kwargs = layout.rebuild(data)
        latent = numpyro_constrain(handlers.seed(model, rng_seed=0), args, kwargs, z)
        conditioned = handlers.substitute(handlers.seed(model, rng_seed=0), data=latent)
        trace = handlers.trace(conditioned).get_trace(*args, **kwargs)
        return {
            name: site["fn"].log_prob(site["value"])
            for name, site in trace.items()
            if is_observation(site)
        }

    @jax.jit
    def observed_fn(data):
        """Observed site -> its values."""
        args, kwargs = layout.rebuild(data)
        trace = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(*args, **kwargs)
        return {name: site["value"] for name, site in trace.items() if is_observation(site)}

    logdensity_fn.__qualname__ = f"{getattr(model, '__qualname__', 'model')}.logdensity"
    return logdensity_fn, constrain_fn, start_fn, loglik_fn, observed_fn


def _data_as_jax(args, kwargs) -> tuple:
    """``(args, kwargs)`` with their NumPy data as JAX arrays, as ``_Layout.rebuild`` gives
    them to the model."""
    return jax.tree.map(lambda v: jnp.asarray(v) if is_data(v) else v, (args, kwargs))


def unconstrained_point(source: ModelSource, values: dict, init: dict) -> dict:
    """``values`` of the model's latent sites, each in its own support, as the unconstrained
    point the chains move in (laid out as ``init``, the target's start), through each
    site's bijection (NumPyro's ``biject_to(support).inv``, as ``init_to_value`` uses it).
    A site missing or unknown, a value of the wrong shape or outside its support is
    refused by name."""
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to

    if not isinstance(values, dict):
        raise TypeError(
            f"values must be a dict of the model's latent sites; got {type(values).__name__}."
        )
    missing, unknown = sorted(set(init) - set(values)), sorted(set(values) - set(init))
    if missing or unknown:
        raise ValueError(
            f"values must name each latent site of the model once, {sorted(init)}: "
            f"{'missing ' + ', '.join(missing) if missing else ''}"
            f"{'; ' if missing and unknown else ''}"
            f"{'unknown ' + ', '.join(unknown) if unknown else ''}."
        )
    args, kwargs = _data_as_jax(source.args, source.kwargs)
    given = {name: jnp.asarray(v, jnp.asarray(init[name]).dtype) for name, v in values.items()}
    model = handlers.substitute(handlers.seed(source.model, 0), data=given)
    try:
        trace = handlers.trace(model).get_trace(*args, **kwargs)
    except ValueError as err:  # a distribution's check of a value fed to it, e.g. a scale < 0
        raise ValueError(
            f"the model refused these values: {err} Is one outside its site's support?"
        ) from None
    point = {}
    for name, value in given.items():
        support = trace[name]["fn"].support  # the site's shape, from its unconstrained one
        wanted = tuple(biject_to(support).forward_shape(np.shape(init[name])))
        if value.shape != wanted:
            raise ValueError(f"values[{name!r}] has shape {value.shape}; the site's is {wanted}.")
        if not bool(jnp.all(support(value))):
            raise ValueError(
                f"values[{name!r}] = {np.asarray(value).tolist()} is outside the site's "
                f"support ({support}): give a value inside it."
            )
        point[name] = biject_to(support).inv(value).astype(value.dtype)
    return point
