"""Host-side argument checks, run before anything is traced.

Each error names the argument, what was expected, what was got, and how to fix it.
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from infer.object_table import ObjectTable

#: ArviZ's dimensions of every group, which no variable may be named.
ARVIZ_DIMS = ("chain", "draw")


def unstorable_name(name) -> str | None:
    """Why ``name`` cannot name a variable of a result's ``DataTree`` written to NetCDF or
    Zarr, or None: it must be a non-empty string without ``/`` (a group separator in both),
    other than ``.`` and ``..`` (a path's segments there)."""
    if not isinstance(name, str) or not name:
        return "is not a non-empty string"
    if "/" in name:
        return "holds '/', the separator of ArviZ's (and NetCDF's, Zarr's) groups"
    if name in (".", ".."):
        return "is a path segment ('.' or '..'), which NetCDF and Zarr files cannot hold"
    return None


def positive_int(name: str, value, hint: str = "", minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or a ``ValueError``/``TypeError`` naming ``name``.
    A 0-d NumPy or JAX integer array (``jnp.int32(3)``, ``np.array(3)``) passes as its int."""
    if _integer_array_scalar(value):
        try:
            value = int(value)
        except TypeError:  # a traced one (not concrete): refused below, by name
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}.{_hint(hint)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}.{_hint(hint)}")
    return int(value)


def _integer_array_scalar(value) -> bool:
    """Whether ``value`` is a 0-d array of integers (not bools): NumPy's or JAX's, on the
    host or a device (read with ``int``; a traced one is not taken)."""
    dtype = getattr(value, "dtype", None)
    return (
        not isinstance(value, numbers.Integral)
        and getattr(value, "shape", None) == ()
        and dtype is not None
        and np.dtype(dtype).kind in "iu"
        and hasattr(value, "__index__")
    )


def superchain_size(superchains, num_chains: int, name: str = "superchains") -> int:
    """Chains per superchain, for ``superchains`` superchains of ``num_chains`` chains: an
    integer >= 2 that divides ``num_chains`` and is less than it, or an error naming ``name``."""
    superchains = positive_int(
        name,
        superchains,
        "Nested R-hat compares superchains with each other: a whole number of them, two or more.",
        minimum=2,
    )
    if num_chains % superchains:
        raise ValueError(
            f"{name}={superchains} must divide num_chains={num_chains}: each superchain "
            "holds the same number of chains."
        )
    if superchains == num_chains:
        raise ValueError(
            f"{name}={superchains} with num_chains={num_chains} makes superchains of one "
            "chain each, which are plain independent chains (nested R-hat needs several "
            "chains per superchain): pass fewer superchains, or leave superchains out."
        )
    return num_chains // superchains


SEED_LIMIT = 2**32  # seeds are uint32: jax.random.key takes no more


def seed(name: str, value) -> int:
    """``value`` as a seed, an int in ``[0, 2**32)``, or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [0, 2**32); got {value!r}.")
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**32); got {value}.")
    return int(value)


def is_real_scalar(value) -> bool:
    """A real number: a Python or numpy scalar, or a 0-d numpy or JAX array (not a bool)."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, numbers.Real):
        return True
    return hasattr(value, "__array__") and np.ndim(value) == 0 and not np.iscomplexobj(value)


def positive_float(name: str, value, hint: str = "", allow_none: bool = False) -> float | None:
    """``value`` as a finite float > 0 (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    if not is_real_scalar(value):
        raise TypeError(f"{name} must be a positive number; got {value!r}.{_hint(hint)}")
    value = float(np.asarray(value))
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value}.{_hint(hint)}")
    return value


def step_size_in_precision(value: float, name: str = "step_size") -> float:
    """``value`` (a positive float) if JAX's float type holds it as a normal number: below
    float32's smallest, 1.2e-38, a step is 0 or a denormal that CPUs flush to 0, and the
    chains take steps of nothing, every one accepted."""
    from infer.placement import x64_enabled

    if value < np.finfo(np.float32).tiny and not x64_enabled():
        raise ValueError(
            f"{name}={value:g} is below float32's smallest normal number, "
            f"{np.finfo(np.float32).tiny:.3g} (float32 is JAX's default precision): the chains "
            "would take steps of 0. Give a larger one (warm-up tunes it from there), or enable "
            "64-bit floats (JAX_ENABLE_X64=1)."
        )
    return value


def per_chain_hint(name: str, value, otherwise: str = "") -> str:
    """The hint for ``value`` given with a chain axis (as ``result.state.tuned`` holds each
    chain's tuned values) where one chain's is taken; ``otherwise`` for other values."""
    if isinstance(value, str) or np.ndim(value) == 0:
        return otherwise
    return (
        f"result.state.tuned holds one per chain (chain axis first): pass one chain's, "
        f"tuned[{name!r}][chain]."
    )


def nonnegative_float(name: str, value, hint: str = "") -> float:
    """``value`` as a finite float >= 0."""
    if not is_real_scalar(value):
        raise TypeError(f"{name} must be a number >= 0; got {value!r}.{_hint(hint)}")
    value = float(np.asarray(value))
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {value}.{_hint(hint)}")
    return value


def probability(name: str, value, hint: str = "") -> float:
    """``value`` as a float strictly between 0 and 1 (a number or a 0-d array of one)."""
    if not is_real_scalar(value):
        raise TypeError(f"{name} must be a number in (0, 1); got {value!r}.{_hint(hint)}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1); got {value}.{_hint(hint)}")
    return float(value)


def flag(name: str, value, alternative: str = "") -> bool:
    """``value`` as a bool if it is one (Python or numpy), else a ``TypeError`` naming
    ``name``: a string such as ``"no"`` would otherwise be taken as True. ``alternative``:
    what else is allowed, said after "True or False" (e.g. "or None (...)")."""
    if not isinstance(value, bool | np.bool_):
        extra = f" {alternative}" if alternative else ""
        raise TypeError(f"{name} must be True or False{extra}; got {value!r}.")
    return bool(value)


def one_of(name: str, value, choices, hint: str = ""):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}.{_hint(hint)}")
    return value


def instance_of(name: str, value, kind: type, hint: str = ""):
    """``value`` if it is a ``kind``, else a ``TypeError`` naming ``name`` and both types."""
    if not isinstance(value, kind):
        raise TypeError(
            f"{name} must be an {kind.__module__.split('.')[0]}.{kind.__name__}; got "
            f"{type(value).__name__}.{_hint(hint)}"
        )
    return value


def error_line(err: BaseException, limit: int = 200) -> str:
    """``"TypeError: <the first line of its message>"``, cut to ``limit`` characters: an error
    from the user's code quoted inside one of ours."""
    first = (str(err).splitlines() or [""])[0][:limit]
    return f"{type(err).__name__}: {first}"


def not_a_class(name: str, value) -> None:
    """Refuse a class where an instance is expected (``dist.Normal`` for ``dist.Normal(0, 1)``),
    which otherwise fails later on an unbound method or a property."""
    if isinstance(value, type):
        raise TypeError(
            f"{name} is the class {value.__name__}, not an instance of it: make one with its "
            f"parameters, {name}={value.__name__}(...)."
        )


def _hint(hint: str) -> str:
    return f" {hint}" if hint else ""


def nonfinite_leaves(tree, prefix: str = "") -> str:
    """Where the float arrays of ``tree`` hold NaN or inf, as ``"3 in y"`` per leaf of a dict
    (``"3 in data['y']"`` with ``prefix="data"``, ``"3 in data[0][1]"`` in tuples, ``"3 in
    data"`` for a bare array: Python's indexing); ``""`` when nowhere."""
    import jax

    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        leaf = np.asarray(leaf)
        if np.issubdtype(leaf.dtype, np.inexact) and not np.all(np.isfinite(leaf)):
            named = not prefix and len(path) == 1 and hasattr(path[0], "key")
            where = str(path[0].key) if named else f"{prefix}{jax.tree_util.keystr(path)}"
            found.append(f"{int(np.sum(~np.isfinite(leaf)))} in {where}")
    return ", ".join(found)


def snapshot(leaf):
    """A NumPy array copied, read-only (a masked one with its mask), anything else as it is;
    a copy made here is not copied again (it cannot have changed). JAX (0.12) keeps the
    float32 copy it makes of a float64 NumPy array traced as a constant, and hands it back
    for that array later, whatever was written into it since: a target's data refilled in
    place were sampled with their old values. A copy of its own is never the user's array."""
    if not isinstance(leaf, np.ndarray):
        return leaf
    if _OWNED.get(leaf) and not leaf.flags.writeable:
        return leaf  # read-only: what it holds is what it held when copied
    duplicate = np.array(leaf, subok=True)
    duplicate.setflags(write=False)  # a target's data stay as they were made
    _OWNED.set(duplicate, True)
    return duplicate


#: The copies :func:`snapshot` made.
_OWNED = ObjectTable()


def is_number_list(node, kinds: tuple = (list,)) -> bool:
    """Whether ``node`` is a non-empty list (or another of ``kinds``) of plain numbers: an
    array meant, given as a Python sequence."""
    return isinstance(node, kinds) and bool(node) and all(isinstance(x, numbers.Real) for x in node)


def checked_data(data, function_name: str):
    """A target's ``data`` with every leaf made an array by :func:`_data_leaf`; a Python list
    of numbers is refused (meant as one array, it would reach the function as a list)."""
    import jax

    lists = [n for n in jax.tree.leaves(data, is_leaf=is_number_list) if is_number_list(n)]
    if lists:
        raise TypeError(
            f"data must be a pytree of arrays (numpy or JAX) or numbers; it holds a list of "
            f"numbers ({str(lists[0])[:40]}): pass np.asarray(...) of it."
        )
    return jax.tree.map(lambda leaf: _data_leaf(leaf, function_name), data)


def _data_leaf(leaf, function_name: str):
    """One leaf of a target's ``data`` as an array: JAX arrays as they are, NumPy arrays
    copied (the target keeps the values it was made with), Python and numpy numbers as 0-d
    numpy arrays (so a scalar can change between runs without recompiling); anything else a
    ``TypeError`` that names ``function_name``, the function that could close over it
    instead."""
    if isinstance(leaf, np.ma.MaskedArray):
        raise TypeError(
            "data holds a NumPy masked array, which JAX takes no mask of (a plain copy would "
            "count the masked values, -999 or whatever fills them, as data): pass the values "
            "you keep "
            "(y.compressed()), or the filled values and the mask as two arrays of data."
        )
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        if hasattr(leaf, "to_numpy") and not hasattr(leaf, "columns"):  # pandas Series, an
            return np.array(leaf.to_numpy())  # xarray DataArray: JAX cannot trace them
        return snapshot(leaf)
    if isinstance(leaf, numbers.Real):  # bool, int, float
        return np.asarray(leaf)
    if hasattr(leaf, "to_numpy"):  # a pandas DataFrame (a Series has a shape and a dtype)
        fix = "Pass its values: df.to_numpy() (one dtype), or one array per column."
    else:
        fix = f"Close over other values in {function_name}."
    raise TypeError(
        f"data must be a pytree of arrays (numpy or JAX) or numbers; it holds a "
        f"{type(leaf).__name__}. {fix}"
    )


def refuse_discrete(argument: str, distribution, why: str) -> None:
    """A ``TypeError`` naming ``argument`` when ``distribution`` (a NumPyro one) is discrete:
    ``why`` says what needs real values."""
    support = getattr(distribution, "support", None)
    if getattr(support, "is_discrete", False):
        raise TypeError(
            f"{argument} is {type(distribution).__name__}, a discrete distribution; {why}. Use "
            "a continuous distribution (e.g. dist.Normal, dist.StudentT, dist.Gamma)."
        )


def fresh_numpy_leaves(distribution):
    """``distribution`` (a NumPyro one) as a shallow copy with its NumPy arrays copied, for
    a trace of its own; itself when it holds none. JAX (0.12) keeps the converted copy of a
    NumPy float64 array it traced and hands it back for that array later, in the other
    mode of jax_enable_x64 too (a proposal's scale ``1.3``, held by NumPyro as a float64
    array, then failed inside XLA, "RuntimeProgramInputMismatch"). Copied attribute by
    attribute, not rebuilt from its pytree leaves: a subclass's own attributes and NumPyro's
    argument validation stay as they were."""
    return _with_fresh_arrays(distribution, 0)


def _with_fresh_arrays(obj, depth: int):
    from numpyro.distributions import Distribution, constraints
    from numpyro.distributions.transforms import Transform

    if isinstance(obj, np.ndarray):
        return np.array(obj, subok=True)
    if depth > 6:
        return obj
    if isinstance(obj, list | tuple):
        items = [_with_fresh_arrays(item, depth + 1) for item in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        if hasattr(obj, "_fields"):  # a NamedTuple
            return type(obj)(*items)
        return type(obj)(items)
    if not isinstance(obj, Distribution | Transform | constraints.Constraint):
        return obj  # (a support's bounds are a constraint's arrays)
    held = _attributes(obj)
    fresh = {name: _with_fresh_arrays(value, depth + 1) for name, value in held.items()}
    changed = {name: value for name, value in fresh.items() if value is not held[name]}
    if not changed:
        return obj
    duplicate = copy.copy(obj)  # its __dict__ and __slots__ alike
    for name, value in changed.items():
        object.__setattr__(duplicate, name, value)
    return duplicate


def _attributes(obj) -> dict:
    """``obj``'s attributes: its ``__dict__`` and the ``__slots__`` of its classes that are
    set."""
    held = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                held[name] = getattr(obj, name)
    return held


def posterior_of_tree(draws):
    """``draws`` (for the statistics), or, for an ArviZ ``DataTree``, its ``posterior`` group
    as a ``Dataset`` (a tree's groups were read as parameters and failed in xarray's words);
    a ``TypeError`` for a tree without one."""
    if not (hasattr(draws, "children") and hasattr(draws, "to_dataset")):
        return draws
    if "posterior" in draws.children:
        return draws["posterior"].to_dataset()
    if draws.children:
        raise TypeError(
            f"draws is a DataTree of the groups {sorted(draws.children)} but no 'posterior': "
            "pass the group whose draws to read, e.g. draws=tree['sample_stats']."
        )
    return draws.to_dataset()


def in_chain_draw_order(value):
    """``value``, or an xarray ``DataArray`` naming a ``draw`` dimension with its axes put in
    the order ``(chain, draw, ...)`` (one chain where it names none): NumPy reads an array by
    position, and ``(draw, chain)`` was read as that many chains of that many draws, and
    ``(draw, x)`` as many chains, without a word."""
    dims = getattr(value, "dims", None)
    if not isinstance(dims, tuple) or "draw" not in dims:
        return value
    if "chain" not in dims:
        value = value.expand_dims("chain")
    return value.transpose(*ARVIZ_DIMS, ...)


def refuse_draws_of_parameters(where: str, name, value) -> None:
    """Refuse, naming ``where``, draws given as a container of parameters' draws that NumPy
    would read as one array, silently: a dict inside the dict (nested draws), a namedtuple,
    or a tuple of arrays of two or more axes (each ``(num_chains, num_draws)``, stacked as
    chains). A tuple of chains (1-D arrays, numbers) stays an array literal."""
    if isinstance(value, dict):
        raise ValueError(
            f"{where} is a dict: draws are one level of name -> array; flatten nested ones, "
            f"e.g. {{'{name or 'w'}.a': ...}}."
        )
    named = hasattr(value, "_fields")
    if isinstance(value, tuple) and (named or any(np.ndim(item) >= 2 for item in value)):
        raise TypeError(
            f"{where} is a {type(value).__name__} of {len(value)} parameters' draws, which "
            "would be read as one array stacked along a new first axis (taken as the chains'); "
            "pass a dict name -> array (a namedtuple's ._asdict(), or dict(zip(names, draws)))."
        )
