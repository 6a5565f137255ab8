"""Will a run fit? Its memory is estimated from the shapes of its compiled programs, before
anything is compiled or allocated, and compared with what the machine has.

A run that cannot fit is refused with an error that says how many bytes it needs, how many
there are, and what to change; one that fits but would take most of the memory gets a
warning. Without this, an oversized run either aborts the interpreter inside XLA (taking a
notebook's state with it) or fails after compiling with an out-of-memory error that names
no argument.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from typing import NamedTuple

import jax
import numpy as np

from infer.caller import INFER_FRAMES

#: Above this share of the available memory a run is refused; above ``WARN_SHARE``, warned.
REFUSE_SHARE = 0.9
WARN_SHARE = 0.5


class MemoryWarning(UserWarning):
    """A run that fits in memory, but only just."""


class Need(NamedTuple):
    """What a run holds at its peak, in bytes.

    Attributes:
        host: in host memory (the draws gathered from the devices and the result).
        device: on each device (chain states, one chunk of draws); on a CPU backend this is
            host memory too.
        parts: name -> bytes, what the totals are made of (for the message).
        result: bytes of the result's arrays (draws and statistics), what the caller gets.
    """

    host: int
    device: int
    parts: dict
    result: int = 0


def markov_need(
    chunk_structs,
    carry_structs,
    capacity,
    num_chains,
    num_draws,
    draw_bytes,
    num_devices,
    stored=False,
    checked=False,
) -> Need:
    """A Markov-chain run's peak memory.

    On the host: the unconstrained draws and statistics gathered from the devices, and the
    result built from them (constrained draws of ``draw_bytes`` per chain and draw); with
    ``stored`` (draws written to a store chunk by chunk) one chunk of each, plus, with
    ``checked`` (a stopping rule, which reads every unconstrained draw so far), all the
    unconstrained positions. On each device: the chains' state (in and out of a call) and
    one chunk of draws.

    Args:
        chunk_structs: ``(positions, logdensity, infos)`` of one chunk, ``(capacity,
            num_chains, ...)`` structs; carry_structs: the chains' state.
    """
    positions, logdensity, infos = chunk_structs
    carry = nbytes(carry_structs)
    chunk = nbytes(chunk_structs)
    stats_per_draw = nbytes((logdensity, infos)) // capacity
    kept = min(num_draws, capacity) if stored else num_draws
    gathered = chunk // capacity * kept
    result = (draw_bytes * num_chains + stats_per_draw) * kept
    parts = {
        "draws gathered from the devices": gathered,
        "the result" if not stored else "one chunk of draws written to the store": result,
        "chain states": 2 * carry,
        "one chunk of draws": chunk,
    }
    read = nbytes(positions) // capacity * num_draws if stored and checked else 0
    if read:
        parts["the draws the stopping rule reads"] = read
    device = (2 * carry + chunk) // max(num_devices, 1)
    return Need(gathered + result + read, device, parts, 0 if stored else result)


def nbytes(tree) -> int:
    """Bytes of a pytree of arrays or ``ShapeDtypeStruct``s (a PRNG key counts its key
    data)."""
    return int(sum(math.prod(leaf.shape) * _itemsize(leaf.dtype) for leaf in jax.tree.leaves(tree)))


@functools.lru_cache(maxsize=64)  # a key's type is traced to read it; every leaf asks
def _itemsize(dtype) -> int:
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct((), dtype)).size * 4
    return np.dtype(dtype).itemsize


def host_available() -> int:
    """Bytes of host memory available now (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def device_available(device) -> int | None:
    """Bytes free on ``device``, or ``None`` where the backend does not say (CPU: the
    device's memory is host memory)."""
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    if limit is None:
        return None
    return int(limit) - int(stats.get("bytes_in_use", 0))


def _gigabytes(count: int) -> str:
    return f"{count / 2**30:.3g} GiB" if count >= 2**27 else f"{count / 2**20:.3g} MiB"


def check(need: Need, devices, what: str, fixes: str) -> None:
    """Refuse a run that cannot fit, warn about one that nearly fills the memory.

    Args:
        need: the run's estimate.
        devices: the devices it runs on.
        what: the run, for the message (e.g. "nuts on normal_10d, 4 chains x 1000 draws").
        fixes: what to change, for the message.

    Raises:
        MemoryError: when the run needs more than :data:`REFUSE_SHARE` of what is available.
    """
    on_cpu = all(d.platform == "cpu" for d in devices)
    host_need = need.host + (need.device * len(devices) if on_cpu else 0)
    checks = [("host memory", host_need, host_available())]
    if not on_cpu:
        free = [device_available(d) for d in devices]
        if all(f is not None for f in free):
            checks.append((f"memory on each {devices[0].platform} device", need.device, min(free)))
    parts = ", ".join(f"{name} {_gigabytes(size)}" for name, size in need.parts.items() if size)
    for label, needed, available in checks:
        if needed > REFUSE_SHARE * available:
            raise MemoryError(
                f"{what} needs about {_gigabytes(needed)} of {label} ({parts}) but "
                f"{_gigabytes(available)} is available, so it was not started. {fixes}"
            )
        if needed > WARN_SHARE * available:
            warnings.warn(
                f"{what} needs about {_gigabytes(needed)} of {label} ({parts}), "
                f"{needed / available:.0%} of the {_gigabytes(available)} available. {fixes}",
                MemoryWarning,
                skip_file_prefixes=INFER_FRAMES,
            )
