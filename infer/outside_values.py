"""The values a function reads from outside its arguments (globals it names, its closure's
cells, a callable object's attributes), as a hashable fingerprint: part of the key under
which a target's compiled programs are kept, so that a changed global array or prior scale
makes new programs instead of silently reusing those traced with the old value."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import numbers
import types
import zlib
from collections.abc import Callable

import numpy as np

from infer.base import IdentityKey
from infer.object_table import ObjectTable

#: The kinds of value fingerprinted: what a model or log density reads as a constant.
_ARRAYS = (np.ndarray, np.generic)


#: ``(kind, id(obj)) -> (obj, value)`` within :func:`held`, else ``None``.
_HELD: contextvars.ContextVar[dict | None] = contextvars.ContextVar("outside_values", default=None)


@contextlib.contextmanager
def held():
    """Within it, :func:`outside_values` reads each function once: one call of the library
    (the user's globals do not change during it) keys its programs, shapes and checks by
    fingerprints taken once, not once per key (a 40 MB global array took 50 ms each)."""
    if _HELD.get() is not None:  # an enclosing call's
        yield
        return
    token = _HELD.set({})
    try:
        yield
    finally:
        _HELD.reset(token)


def outside_values(fn) -> tuple:
    """``((name, fingerprint), ...)`` of the numbers, strings and arrays (and tuples, lists
    and dicts of them) that ``fn`` reads from outside: the globals its code names, its
    closure cells, and, for a callable object, its attributes; of an object among them (a
    ``SimpleNamespace`` or dataclass of settings), the attributes ``fn``'s code names
    (``config.scale``). Functions, modules and classes are left out (their identity is
    theirs). Values reached through other functions are not seen."""
    return once_per_call("outside values", fn, lambda: _read(fn))


def once_per_call(kind: str, obj, compute: Callable):
    """``compute()``, kept for ``obj`` (by identity) within :func:`held`: what a call of the
    library reads of its arguments once (``kind`` names it), however many keys need it."""
    memo = _HELD.get()
    if memo is None:
        return compute()
    known = memo.get((kind, id(obj)))
    if known is None or known[0] is not obj:
        known = memo[kind, id(obj)] = (obj, compute())
    return known[1]


def _read(fn) -> tuple:
    """:func:`outside_values`, read now."""
    if isinstance(fn, functools.partial):  # its bound values, and what its function reads
        return (("<bound>", _bound_values(fn)), ("<function>", outside_values(fn.func)))
    found = []
    function = fn if hasattr(fn, "__code__") else type(fn).__call__  # a callable object's
    code = getattr(function, "__code__", None)
    namespace = getattr(function, "__globals__", {})
    names = frozenset(_names(code))  # globals and attribute names alike
    for name in sorted(names):
        if name in namespace:
            found.append((name, _fingerprint(namespace[name], names)))
    for index, cell in enumerate(getattr(fn, "__closure__", None) or ()):
        try:
            found.append((f"<closure {index}>", _fingerprint(cell.cell_contents, names)))
        except ValueError:  # an empty cell
            continue
    if not hasattr(fn, "__code__"):  # a callable object: what its __call__ reads of self
        for name, value in sorted(vars(fn).items()) if hasattr(fn, "__dict__") else ():
            found.append((f"self.{name}", _fingerprint(value, names)))
    return tuple(item for item in found if item[1] is not None)


def _names(code, depth: int = 0) -> set:
    """The names ``code`` reads (globals and attributes), and those of the code nested in it:
    a lambda, a comprehension or a ``scan`` body written inside the function reads globals
    as the function does."""
    found = set(getattr(code, "co_names", ()))
    for const in getattr(code, "co_consts", ()) if depth < 4 else ():
        if isinstance(const, types.CodeType):
            found |= _names(const, depth + 1)
    return found


def function_key(fn) -> tuple:
    """A hashable key for what ``fn`` computes: its identity and :func:`outside_values`, and
    through a ``functools.partial``, those of its function and of the callables it binds
    (and the values of the data it binds): a key that changes when a global the function
    reads, or an array it binds, does."""

    if isinstance(fn, functools.partial):
        return (function_key(fn.func), _bound_values(fn))
    return (IdentityKey(fn), outside_values(fn))


def _bound_values(partial: functools.partial) -> tuple:
    """:func:`_bound_keys`, read once per call of the library (see :func:`held`)."""
    return once_per_call("bound values", partial, lambda: _bound_keys(partial))


def _bound_keys(partial: functools.partial) -> tuple:
    """A ``functools.partial``'s bound arguments, positional then by keyword: a callable's
    key, the values of an array, number or string, or of a tuple, list or dict of only such
    values (one refilled in place is another); anything else by its identity too."""

    def key(value):
        if callable(value):
            return function_key(value)
        fingerprint = _fingerprint(value)  # arrays, numbers, strings, containers of them
        if fingerprint is None or not _read_whole(value):
            # also by its identity: a fingerprint leaves out what it cannot read (a function
            # in a dict of settings), which would merge two of them
            return (IdentityKey(value), fingerprint)
        return fingerprint

    return tuple(map(key, partial.args)) + tuple(
        (name, key(value)) for name, value in sorted(partial.keywords.items())
    )


def _read_whole(value, depth: int = 0) -> bool:
    """Whether :func:`_fingerprint` reads all of ``value``: a number, string, array, dtype or
    ``None``, or a tuple, list or dict (up to its limits) of only such values."""
    plain = bool | numbers.Number | str | np.ndarray | np.generic
    if isinstance(value, plain) or value is None or _is_dtype(value) or _is_jax_array(value):
        return True
    if isinstance(value, tuple | list):
        return all(_read_whole(item, depth) for item in value)
    if isinstance(value, dict) and depth < _MAX_DEPTH and len(value) <= _MAX_ENTRIES:
        return all(_read_whole(item, depth + 1) for item in value.values())
    return False


#: ``array -> (its bytes' checksum, jax_enable_x64 then)`` of the 64-bit NumPy arrays read
#: from outside functions: to tell one refilled in place, or read again after 64-bit floats
#: were switched.
_SEEN_WIDE = ObjectTable()

#: What drops compiled programs when an array read as a constant was refilled in place (see
#: :func:`forget_programs_on_stale_constants`).
_FORGETTERS: list = []

#: The dtypes JAX converts to 32 bits with 64-bit floats off.
WIDE_DTYPES = ("float64", "int64", "uint64", "complex128")


def forget_programs_on_stale_constants(forget: Callable[[], None]) -> None:
    """Call ``forget()`` (a cache's ``clear``) when a 64-bit NumPy array a function reads was
    refilled in place: a compiled program holding JAX's old copy of it keeps that copy the
    one JAX hands back for the array."""
    _FORGETTERS.append(forget)


def drop_compiled_copies() -> None:
    """Drop every compiled program, the library's and JAX's, and with them the copies JAX
    made of 64-bit NumPy constants (JAX 0.12 hands such a copy back for its array later,
    to new traces too: stale after a refill, and of the other width after 64-bit floats
    were switched, which XLA then refuses). Every program compiles again once."""
    import jax

    for forget in _FORGETTERS:  # programs holding the old copy, the library's own too
        forget()
    jax.clear_caches()
    gc.collect()  # the old copy goes with the last program holding it


def _note_array(value: np.ndarray, crc: int) -> None:
    """:func:`drop_compiled_copies` when ``value`` (the same 64-bit array object as before)
    holds other bytes than when last read with 64-bit floats off, or was last read with
    ``jax_enable_x64`` the other way: JAX may hand back the copy it converted then. Rare."""
    import jax

    if str(value.dtype) not in WIDE_DTYPES:
        return
    wide = bool(jax.config.jax_enable_x64)
    seen = _SEEN_WIDE.get(value)
    if seen is not None:
        last_crc, last_wide = seen
        if last_wide != wide or (not wide and last_crc != crc):
            drop_compiled_copies()
    _SEEN_WIDE.set(value, (crc, wide))


#: How deep dicts and objects are followed (``config.prior.scale`` is 2), and how many
#: entries of a dict are read (a larger one is left out, as anything unseen).
_MAX_DEPTH = 3
_MAX_ENTRIES = 256


def _fingerprint(value, names=frozenset(), depth=0):
    """A hashable stand-in for ``value`` when it is a number, string, array, or a tuple or
    list of them; for a dict, of its entries that are; for an object of plain attributes,
    of those named in ``names`` that are. ``None`` for anything else."""
    if isinstance(value, bool | numbers.Number | str):
        return (type(value).__name__, value)
    if value is None:  # a setting left out ({"mask": None})
        return ("None",)
    if _is_dtype(value):
        return ("dtype", np.dtype(value).str)
    if isinstance(value, _ARRAYS) and value.dtype.hasobject:
        return None  # Python objects: no bytes to fingerprint
    if _is_jax_array(value):
        return (np.shape(value), str(value.dtype), _jax_array_crc(value))
    if isinstance(value, _ARRAYS):
        crc = array_crc(value)
        if isinstance(value, np.ndarray):  # not a NumPy scalar: it cannot be refilled
            _note_array(value, crc)
        return (np.shape(value), str(value.dtype), crc)
    if isinstance(value, tuple | list):
        parts = tuple(_fingerprint(item) for item in value)
        return None if any(part is None for part in parts) else (type(value).__name__, parts)
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, dict) and len(value) <= _MAX_ENTRIES:
        entries = sorted(value.items(), key=lambda item: repr(item[0]))
        return _parts("dict", entries, names, depth)
    if _has_plain_attributes(value):
        attributes = [(name, item) for name, item in sorted(vars(value).items()) if name in names]
        return _parts(type(value).__qualname__, attributes, names, depth)
    return None


#: ``array -> its checksum`` of the JAX arrays read: a JAX array never changes, so its bytes
#: are read (copied to the host) once, not in every call.
_JAX_CRCS = ObjectTable()


def _jax_array_crc(value) -> int:
    """:func:`array_crc` of a JAX array, kept while the array lives."""
    crc = _JAX_CRCS.get(value)
    if crc is None:
        crc = array_crc(value)
        _JAX_CRCS.set(value, crc)
    return crc


def _parts(kind: str, entries, names, depth: int):
    parts = tuple(
        (repr(key), part)
        for key, item in entries
        if (part := _fingerprint(item, names, depth + 1)) is not None
    )
    return (kind, parts) if parts else None


def _has_plain_attributes(value) -> bool:
    """An instance with a ``__dict__``, not a module, class, function or method."""
    return (
        hasattr(value, "__dict__")
        and not isinstance(value, types.ModuleType | type)
        and not callable(value)
    )


def array_crc(leaf, crc: int = 0) -> int:
    """The CRC-32 of an array's shape, dtype and bytes, continuing ``crc``: a NumPy or JAX
    array, a typed PRNG key by its words; empty and bfloat16 arrays too."""
    import jax

    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    array = np.ascontiguousarray(np.asarray(leaf))
    crc = zlib.crc32(f"{array.shape}{array.dtype}".encode(), crc)
    return zlib.crc32(array.reshape(-1).view(np.uint8), crc)


def _is_dtype(value) -> bool:
    """A NumPy dtype, or a NumPy scalar type (``np.float32``) as a dtype is named."""
    return isinstance(value, np.dtype) or (
        isinstance(value, type) and issubclass(value, np.generic)
    )


def _is_jax_array(value) -> bool:
    import jax

    return isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer)
