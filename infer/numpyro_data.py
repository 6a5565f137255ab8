"""A NumPyro model's arguments as data, for :mod:`infer.numpyro_models`: which arrays are
observed and which are constant data (covariates), which arguments the user left to ``None``
(outcomes of a model called for predictions), and what is wrong with arguments the model
cannot take (lists, pandas objects, NaN).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

import jax
import numpy as np
from jax.tree_util import keystr

from infer import validation
from infer.caller import INFER_FRAMES


def is_data(leaf) -> bool:
    """Whether a leaf of the model's arguments is an array (data), not part of the program."""
    return isinstance(leaf, (np.ndarray, jax.Array))


def lists_of_numbers(model: Callable, args: tuple, kwargs: dict) -> list[str]:
    """The model's arguments that are non-empty lists or tuples of numbers, or pandas
    objects (a Series, a DataFrame), named by parameter name where the signature tells."""
    named = _named(model, args, kwargs)
    return [
        name
        for name, value in named.items()
        if validation.is_number_list(value, (list, tuple))
        or type(value).__module__.split(".")[0] == "pandas"
    ]


def raise_naming_arguments(model: Callable, args: tuple, kwargs: dict, err: Exception) -> None:
    """Raise ``err`` (a plain ``ValueError``, ``TypeError`` or ``IndexError``: of a model that
    fails on its data, mostly a shape) again, its message led by the model's arguments and
    their shapes; return for any other kind of error, which stands as it is."""
    if type(err) not in (ValueError, TypeError, IndexError):
        return
    named = _bound(model, args, kwargs)
    if named is None and _signature(model) is not None:  # a misnamed or extra argument
        raise TypeError(
            f"the model takes {model.__name__ if hasattr(model, '__name__') else 'model'}"
            f"{_signature(model)}; calling it raised {validation.error_line(err)}. Pass its "
            "arguments by those names, or by position."
        ) from err
    named = _named(model, args, kwargs)
    shown = ", ".join(f"{name} {_described(value)}" for name, value in named.items())
    said = validation.error_line(err).rstrip(".")
    if "distribution got invalid" in said:  # NumPyro's check of a distribution's parameters
        raise type(err)(
            f"calling the model on its arguments ({shown}) raised {said}: a distribution was "
            "given a parameter outside its support (a negative scale, a probability above "
            "1), by a constant in the model, from a sampled value (a prior whose support is "
            "not the parameter's, such as HalfNormal with a negative scale), or from the "
            "arguments' values. Check that distribution's parameters in the model."
        ) from err
    raise type(err)(
        f"calling the model on its arguments ({shown}) raised {said}. "
        "Check each argument's shape against what the model does with it."
    ) from err


def _described(value) -> str:
    if is_data(value):
        return f"{np.shape(value)} {value.dtype}"
    return "None" if value is None else type(value).__name__


def _signature(model: Callable):
    try:
        return inspect.signature(model)
    except (TypeError, ValueError):
        return None


def _named(model: Callable, args, kwargs) -> dict:
    """The arguments by parameter name where the signature binds them, else ``args[i]`` and
    the keywords."""
    bound = _bound(model, args, kwargs)
    return {f"args[{i}]": a for i, a in enumerate(args)} | kwargs if bound is None else bound


def _bound(model: Callable, args, kwargs) -> dict | None:
    try:
        return inspect.signature(model).bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return None


def unobserved_arguments(model: Callable, args, kwargs, latent) -> list[str]:
    """The latent sites named like an argument of the model that is ``None`` (left at its
    default or passed so): an outcome left out of a target for predictions at new inputs, or
    data the user forgot to pass, which NumPyro then samples as a parameter
    (``numpyro.sample("y", ..., obs=y)`` with ``y=None``). An argument named otherwise than
    its site cannot be told from a parameter."""
    bound = _bound(model, args, kwargs)
    if bound is None:
        return []
    return [
        name
        for name, parameter in inspect.signature(model).parameters.items()
        if name in latent and bound.get(name, parameter.default) is None
    ]


def warn_of_unobserved(names: list[str], left_out: list[str]) -> None:
    """Warn, when a target is sampled, of the sites of arguments left to ``None``: sampled as
    parameters, or (``left_out``, discrete ones) left out of the log density."""
    for name in names:
        what = (
            "left out of the log density (it is discrete: its probabilities sum to one over "
            "its values, so the other sites are sampled as if it were not in the model, and "
            "infer.predictive simulates it)"
            if name in left_out
            else "sampled as a parameter, not observed"
        )
        warnings.warn(
            f"the model's argument {name} is None (not given), so its site {name!r} is {what}. "
            f"Pass {name}=<data> to Target.from_numpyro to condition on it (leave it out of "
            "a target for infer.predictive at new inputs, which is not sampled).",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def integer_scalar_arguments(model: Callable, args, kwargs) -> list[str]:
    """The 0-d integer arrays among the arguments (``np.array(3)``, ``jnp.max(g) + 1``):
    passed as data, traced, they cannot set a size (a plate's, an array's)."""
    bound = _named(model, args, kwargs)
    return [
        label
        for label, leaf in _array_leaves(model, bound)
        if np.ndim(leaf) == 0 and np.asarray(leaf).dtype.kind in "iu"
    ]


def nonfinite_arguments(model: Callable, args, kwargs) -> list[str]:
    """The array arguments (by parameter name and path) that hold NaN or inf."""
    bound = _named(model, args, kwargs)
    found = []
    for label, leaf in _array_leaves(model, bound):
        leaf = np.asarray(leaf)
        if leaf.dtype.kind == "f" and not np.all(np.isfinite(leaf)):
            found.append(f"{label} ({int(np.sum(~np.isfinite(leaf)))} of {leaf.size})")
    return found


def constant_data(model: Callable, args, kwargs, traced: dict, observed: dict) -> dict:
    """The model's array arguments by parameter name, but those that are observed. An
    argument passed to a site as it is (``obs=y``: ``traced``, site -> its value in the
    model's abstract trace, is that very argument) is that site's; a site whose value is no
    argument itself (``obs=jnp.log(y)``) claims the arguments equal to its value in
    ``observed`` (site -> concrete values)."""
    bound = _bound(model, args, kwargs)
    bound = {f"arg{i}": value for i, value in enumerate(args)} | kwargs if bound is None else bound
    leaves = _array_leaves(model, bound)
    claimed = {id(value) for value in traced.values()}
    passed_as_is = {id(leaf) for _, leaf in leaves} & claimed
    by_value = [
        np.asarray(observed[name])
        for name, value in traced.items()
        if id(value) not in passed_as_is and name in observed
    ]
    constants = {}
    for label, leaf in leaves:
        if id(leaf) in claimed:
            continue
        leaf = np.asarray(leaf)
        if not any(_same_values(leaf, v) for v in by_value):
            constants[label.replace("/", "_")] = leaf  # "/" would make a Zarr path
    return constants


def _array_leaves(model: Callable, bound: dict) -> list[tuple[str, object]]:
    """``(label, leaf)`` of every array in the arguments, labelled by parameter name and path
    (``data.x``), a ``**kwargs`` parameter's entries by their own keywords."""
    try:
        parameters = inspect.signature(model).parameters
    except (TypeError, ValueError):
        parameters = {}
    named = {}
    for name, value in bound.items():
        kind = parameters[name].kind if name in parameters else None
        named.update(value if kind == inspect.Parameter.VAR_KEYWORD else {name: value})
    return [
        (".".join(filter(None, [name, keystr(path, simple=True, separator=".")])), leaf)
        for name, value in named.items()
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]
        if is_data(leaf)
    ]


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and values (``a`` in ``b``'s dtype), NaN equal to NaN (observations
    masked with NaN)."""
    if a.shape != b.shape:
        return False
    if a.dtype != b.dtype and a.dtype.kind == b.dtype.kind == "f":
        a = a.astype(b.dtype)  # float64 data observed as float32 (JAX's default)
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # values NaN has no meaning for
        return bool(np.array_equal(a, b))


def check_observation_shapes(observations: dict) -> None:
    """A ``ValueError`` for an observed site whose value does not fit its distribution's
    shape (NumPyro's own error speaks of a guide, which a model run has none of), or that
    NumPyro would broadcast against it into a larger array, scoring each observation many
    times: ``y`` of shape ``(n, 1)`` (``df[["y"]].to_numpy()``) under a distribution of shape
    ``(n,)`` gives an ``(n, n)`` log probability. ``observations``: name -> trace site."""
    for name, site in observations.items():
        value_shape = tuple(np.shape(site["value"]))
        dist_shape = tuple(site["fn"].shape())
        try:
            scored = np.broadcast_shapes(value_shape, dist_shape)
        except ValueError:
            raise ValueError(
                f"the observed site {name!r} holds an array of shape {value_shape}, but its "
                f"distribution has shape {dist_shape} (from its parameters and plates, set "
                "by the model's other arguments): pass observations of that shape, one per "
                "entry, or check the arguments that set the plate sizes."
            ) from None
        times = int(np.prod(scored)) // max(int(np.prod(value_shape)), 1)
        own_axes = scored[len(scored) - len(value_shape) :]
        stretched = any(v == 1 < s for v, s in zip(value_shape, own_axes, strict=True))
        # an axis of the observations' own, of length one, stretched (a column vector); a
        # scalar observed under a batch (a penalty, obs=0.0) or a leading axis is not one
        if stretched:
            raise ValueError(
                f"the observed site {name!r} holds an array of shape {value_shape} under a "
                f"distribution of shape {dist_shape}: NumPyro broadcasts them to {scored}, "
                f"scoring each observation {times} times. Pass the observations in the "
                f"distribution's shape {dist_shape} (a column vector (n, 1), such as "
                "df[['y']].to_numpy(), as .ravel() or df['y'])."
            )


def refuse_unsampleable_sites(model, args, kwargs, err: Exception) -> None:
    """A ``ValueError`` naming the latent site whose distribution cannot draw a value (its
    ``sample`` raised ``NotImplementedError``: ``dist.ImproperUniform``, say), which infer
    needs to start from; returns for any other failure."""
    if not isinstance(err, NotImplementedError):
        return
    from numpyro import handlers
    from numpyro.primitives import Messenger

    reached = []

    class Record(Messenger):
        def process_message(self, msg):
            if msg["type"] == "sample" and not msg["is_observed"]:
                reached.append((msg["name"], type(msg["fn"]).__name__))

    try:
        with Record():
            handlers.seed(model, rng_seed=0)(*args, **kwargs)
    except NotImplementedError:
        pass
    if reached:
        name, kind = reached[-1]
        fix = (
            f"Leave that reparameterisation out: {name!r} is the site numpyro's "
            f"CircularReparam makes of {name.removesuffix('_unwrapped')!r}, which infer "
            "samples as it is (a von Mises site needs no reparam here)."
            if name.endswith("_unwrapped")
            else "Give it a proper prior (for ordered cutpoints, e.g. "
            "dist.TransformedDistribution(dist.Normal(0, 5).expand([K]).to_event(1), "
            "dist.transforms.OrderedTransform()))."
        )
        raise ValueError(
            f"the model's latent site {name!r} has a distribution ({kind}) that cannot draw "
            f"a value, which infer needs to trace the model and start its chains. {fix}"
        ) from err
