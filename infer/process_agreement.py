"""Every process of a multi-process run must make the same ``infer.sample`` call: each chain's
draws depend on the seed and the chain's index alone, and the processes exchange arrays whose
shapes follow the arguments. A seed taken from the process index mixed two runs' chains into
one result without a word; another ``num_chains`` aborted inside the collectives (gloo). This
checks first, with one small exchange of each argument's fingerprint.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import jax
import numpy as np

from infer.base import IdentityKey
from infer.outside_values import array_crc, outside_values
from infer.placement import x64_enabled

#: Arguments compared by whether they are given (their paths may differ between processes).
GIVEN_OR_NOT = ("store", "checkpoint", "resume")
#: The log densities at the start agree within this relative difference: a GPU's scatter-add
#: (atomics) or another GEMM algorithm may move their last bits between processes.
START_RTOL = 1e-5
START = "the log density at the start"


def _fingerprint(value) -> int:
    """A 31-bit fingerprint of ``value``, a pytree: its structure, its arrays by their bytes
    and shape (whose ``repr`` would elide the middle of a large one), other leaves by their
    ``repr``; hashed leaf by leaf."""
    leaves, structure = jax.tree.flatten(value)
    crc = zlib.crc32(repr(structure).encode())
    for leaf in leaves:
        if isinstance(leaf, np.ndarray | jax.Array):
            crc = array_crc(leaf, crc)  # a typed key by its words; empty, bfloat16 too
        else:
            crc = zlib.crc32(repr(leaf).encode(), crc)
    return crc & 0x7FFFFFFF


def sample_call(target, sampler, init, *arguments: dict) -> dict:
    """What every process's ``infer.sample`` call must agree on, name -> value: the
    ``arguments`` (dicts name -> value) as given (``store``, ``checkpoint`` and ``resume``
    by whether they are given: their paths may differ; ``keep`` a list of names or None),
    the target's name and data, the sampler's name and settings, ``init``, and whether
    64-bit floats are on."""
    arguments = {name: value for given in arguments for name, value in given.items()}
    for name in GIVEN_OR_NOT:
        arguments[name] = arguments.get(name) is not None
    return {
        **arguments,
        "target": getattr(target, "name", None),
        "sampler": (getattr(sampler, "name", None), _settings_of(sampler)),
        "init": init,
        "the target's data": getattr(target, "data", None),
        # one process in 64-bit floats places and exchanges other arrays: they waited for
        # each other in a collective forever
        "64-bit floats (jax_enable_x64, JAX_ENABLE_X64)": x64_enabled(),
        # data captured by a log density (a global, a closure cell), read per process: its
        # value at the start can be alike, and a small array made into a constant of each
        # process's program left their collectives waiting for each other forever
        OUTSIDE: _outside_of(target),
    }


#: The argument that names what a log density reads from outside its arguments.
OUTSIDE = "values the log density reads from outside its arguments (globals, closure cells)"


def _outside_of(target) -> tuple | None:
    """:func:`infer.outside_values.outside_values` of the target's log density and
    constraining function (``None`` for what is not a target), the objects it keys by their
    identity (a function a ``functools.partial`` binds) by their names: their addresses
    differ between processes."""
    functions = (getattr(target, "logdensity_fn", None), getattr(target, "constrain_fn", None))
    return _named(tuple(outside_values(fn) if callable(fn) else None for fn in functions))


def _named(value):
    """``value`` with each :class:`infer.base.IdentityKey` in its tuples replaced by the name
    of the object it holds (its module and qualified name, or its type's)."""
    if isinstance(value, tuple):
        return tuple(_named(item) for item in value)
    if isinstance(value, IdentityKey):
        held = value.obj
        name = getattr(held, "__qualname__", None) or type(held).__qualname__
        return ("object", getattr(held, "__module__", None) or type(held).__module__, name)
    return value


def layout(devices):
    """What the processes must agree on of ``devices``: ``None`` (every device of every
    process); for a list of this process's own devices, their number (a run of its own in
    each process); else the devices' ids. Anything else as it is (refused later by name)."""
    if isinstance(devices, jax.Device):
        devices = [devices]
    if not isinstance(devices, list | tuple) or not all(isinstance(d, jax.Device) for d in devices):
        return devices
    if devices and all(d.process_index == jax.process_index() for d in devices):
        return ("this process's own devices", len(devices))
    return ("devices", [d.id for d in devices])  # in their order: another is another mesh


def _settings_of(sampler):
    """The sampler's settings, or None if it has none."""
    try:
        return sampler.settings()
    except Exception:  # noqa: BLE001 - checked later by name, where it matters
        return None


def start_value(target, init) -> float:
    """The target's log density at ``init`` (the first chain's start of per-chain starts) or
    at the target's own ``init``, compiled (not op by op); NaN when there is none or it
    cannot be evaluated here (the call's checks name that later). Different data captured in
    a log density's closure show here."""
    point = init if init is not None else getattr(target, "init", None)
    positions = getattr(point, "positions", None)  # per-chain starts: the first chain's
    if positions is not None:
        point = jax.tree.map(lambda leaf: leaf[0], positions)
    if point is None:
        return float("nan")
    try:
        return float(jax.jit(target.logdensity)(point))
    except Exception:  # noqa: BLE001 - checked later, where it matters
        return float("nan")


def check_processes_agree(arguments: dict, start: float = float("nan")) -> None:
    """A ``ValueError`` naming the arguments (name -> value, the same names in every process)
    whose values differ between the processes, and the log density at the start (``start``)
    when it differs by more than :data:`START_RTOL`; nothing with one process."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    names = list(arguments)
    mine = np.array([_fingerprint(arguments[name]) for name in names], np.int32)
    every = np.asarray(multihost_utils.process_allgather(mine))  # (processes, arguments)
    differ = [name for i, name in enumerate(names) if np.any(every[:, i] != every[0, i])]
    if differ:  # every process found the same ones: one more exchange shows their values
        shown = _values_by_process(differ, arguments)
        differ = [f"{name} ({shown[name]} by process)" if shown[name] else name for name in differ]
    starts = np.asarray(multihost_utils.process_allgather(np.array([start], np.float32)))
    starts = starts.reshape(-1).astype(np.float64)
    scale = np.maximum(1.0, np.maximum(np.abs(starts), np.abs(starts[0])))
    same = (np.abs(starts - starts[0]) <= START_RTOL * scale) | (
        np.isnan(starts) & np.isnan(starts[0])
    )
    if not same.all():
        shown = ", ".join(f"{value:.6g}" for value in starts)
        differ.append(f"{START} ({shown} by process: data read per process and captured by it?)")
    if differ:
        given = [name for name in differ if name.split(" (")[0] in GIVEN_OR_NOT]
        some = f"; {', '.join(given)}: given on some only" if given else ""
        if any(name.startswith("devices") for name in differ):
            some += (
                "; leave devices out, or give each process its own (jax.local_devices()); a "
                "list given to every process must hold devices of every process"
            )
        raise ValueError(
            f"the {jax.process_count()} processes called infer.sample with different "
            f"{', '.join(differ)} (process {jax.process_index()} of them{some}): every process "
            "must make the same call, the same seed included (each chain's draws come from "
            "the seed and the chain's index, whatever process runs it; a seed from the "
            "process index would mix two runs' chains). Values are compared as given: a seed "
            "and its jax.random.key, or a default and the same value written out, differ."
        )


#: The bytes of an argument's value shown in the message of a call that differs.
SHOWN_BYTES = 64


def _shown(name: str, value) -> str:
    """``value`` of argument ``name`` as the message shows it: a sampler by its name, small
    arrays and keys by their numbers, a larger array by its shape, other values by their
    ``repr``; empty where that is longer than :data:`SHOWN_BYTES`."""
    if name == "sampler":
        return str(value[0])
    if name == OUTSIDE:  # fingerprints: the message says which kind of value differs
        return ""
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    if isinstance(value, np.ndarray | jax.Array | np.generic):
        array = np.asarray(value)
        text = np.array2string(array, precision=6, separator=", ") if array.size <= 4 else ""
        return text if 0 < len(text) <= SHOWN_BYTES else f"an array of shape {array.shape}"
    text = repr(value)
    return text if len(text.encode()) <= SHOWN_BYTES else ""


def _values_by_process(names: list[str], arguments: dict) -> dict[str, str]:
    """Each of ``names`` -> its values on every process, ``"4, 6"`` (one exchange), or empty
    where some cannot be shown or all show alike (data that differ in their values)."""
    from jax.experimental import multihost_utils

    mine = np.zeros((len(names), SHOWN_BYTES), np.uint8)
    for i, name in enumerate(names):
        text = _shown(name, arguments[name]).encode()[:SHOWN_BYTES]
        mine[i, : len(text)] = np.frombuffer(text, np.uint8)
    every = np.asarray(multihost_utils.process_allgather(mine))  # (processes, names, bytes)
    values = {}
    for i, name in enumerate(names):
        texts = [bytes(row[i]).rstrip(b"\0").decode(errors="replace") for row in every]
        values[name] = "" if not all(texts) or len(set(texts)) == 1 else ", ".join(texts)
    return values


#: The bytes of a refusal's message that the other processes are told.
REFUSAL_BYTES = 480


def share_refusal(error: Exception | None) -> None:
    """Tell every process whether this one refused the call (``error``, from a check made on
    each process alone: an argument before they compare them, a host's own free memory),
    so that none is left waiting in a collective the refusing process never joins. Every
    process calls it at the same point; it raises, where ``error`` is None, a ``ValueError``
    naming the first process that refused and its message (one exchange; nothing with one
    process). A process that refused raises its own error after the exchange; one whose
    exchange times out (another process never came) a ``RuntimeError`` saying so."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    text = "" if error is None else f"{type(error).__name__}: {error}"
    encoded = text.encode()[:REFUSAL_BYTES]
    mine = np.zeros(REFUSAL_BYTES + 1, np.uint8)
    mine[0] = error is not None
    mine[1 : 1 + len(encoded)] = np.frombuffer(encoded, np.uint8)
    try:
        every = np.asarray(multihost_utils.process_allgather(mine))  # (processes, bytes)
    except jax.errors.JaxRuntimeError as err:
        if "DEADLINE_EXCEEDED" not in str(err):
            raise
        if error is not None:  # this process's own refusal is what it raises
            error.add_note("(The other processes did not come to hear of it: see theirs.)")
            return
        raise RuntimeError(
            f"process {jax.process_index()} of {jax.process_count()} waited in infer.sample "
            "for the other processes, which did not come: one of them stopped before its own "
            "infer.sample call reached this point (an error of its own: see its output), or "
            f"is far slower. (JAX: {str(err).splitlines()[0][:200]})"
        ) from None  # JAX's words are in it; its traceback names neither
    refused = np.flatnonzero(every[:, 0])
    if error is None and refused.size:
        first = int(refused[0])
        message = bytes(every[first, 1:]).rstrip(b"\0").decode(errors="replace")
        raise ValueError(
            f"process {first} of {jax.process_count()} refused this infer.sample call, so "
            f"process {jax.process_index()} stops too (every process must make the same "
            f"call, and each checks it): {message}"
        )


def on_every_process[T](check: Callable[[], T]) -> T:
    """``check()``, a check each process makes alone, whose refusal on any process stops
    every process (see :func:`share_refusal`); its value."""
    try:
        value = check()
    except Exception as err:
        share_refusal(err)
        raise
    share_refusal(None)
    return value
