"""Where programs and chains live: the cache of compiled programs, and the placement of
per-chain arrays on the devices.

A compiled program is the most expensive thing a user waits for, so every program the
library compiles goes through :data:`PROGRAMS`, keyed on what changes it (the identity of the
log density, the sampler's structural options, shapes, placement), never on data values:
data are arguments of the program.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
import warnings
from collections.abc import Callable

import jax
import numpy as np

from infer.caller import INFER_FRAMES
from infer.outside_values import forget_programs_on_stale_constants


def x64_enabled() -> bool:
    """Whether JAX makes 64-bit floats here and now (``jax_enable_x64``, globally or in a
    ``jax.enable_x64`` context)."""
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


class ProgramCache:
    """A least-recently-used store of compiled programs, safe to share between threads:
    threads that ask for the same missing program at once wait for one build of it.

    Every key is held together with whether 64-bit floats were on: a program compiled in
    one mode refuses the other's arguments (JAX narrows float64 arrays to float32 with them
    off), so a process that switches ``jax_enable_x64`` compiles each program anew.

    Args:
        size: programs kept; the oldest is dropped beyond it.
    """

    def __init__(self, size: int = 64):
        self.size = size
        self._programs: collections.OrderedDict = collections.OrderedDict()
        self._building: dict = {}  # key -> the lock its one build holds
        self._guard = threading.Lock()

    def get(self, key, build: Callable[[], object]) -> tuple[object, float]:
        """``(program, seconds spent building it)``: ``build()`` on a miss, 0.0 on a hit
        (also for a thread that waited while another built it)."""
        key = (key, x64_enabled())
        with self._guard:
            if key in self._programs:
                self._programs.move_to_end(key)
                return self._programs[key], 0.0
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._programs:
                    return self._programs[key], 0.0
            try:
                start = time.perf_counter()
                program = build()
                seconds = time.perf_counter() - start
                with self._guard:
                    self._programs[key] = program
                    while len(self._programs) > self.size:
                        self._programs.popitem(last=False)
            finally:
                with self._guard:
                    self._building.pop(key, None)
        return program, seconds

    def peek(self, key):
        """The program held under ``key``, or ``None`` (no build, no reordering)."""
        return self._programs.get((key, x64_enabled()))

    def __contains__(self, key) -> bool:
        return (key, x64_enabled()) in self._programs

    def keys(self) -> list:
        """The keys held (of either mode of 64-bit floats), oldest first."""
        return [key for key, _ in self._programs]

    def clear(self) -> None:
        with self._guard:  # another thread may be between a lookup and its reordering
            self._programs.clear()


#: The process-wide cache every compiled program of the library goes through.
PROGRAMS = ProgramCache()
forget_programs_on_stale_constants(PROGRAMS.clear)


#: What tracing a function for its output's shapes gave (``jax.eval_shape``), keyed as
#: :data:`PROGRAMS` is: a second run of the same target and shapes traces nothing on the host.
SHAPES = ProgramCache()
forget_programs_on_stale_constants(SHAPES.clear)


def traced_shapes(key, fn: Callable, *args):
    """``jax.eval_shape(fn, *args)``, traced once per ``key`` (what identifies ``fn``, e.g.
    :func:`infer.target.program_key`) and the arguments' abstract values; a trace that
    raises is not kept, so it raises again the next time."""
    shapes, _ = SHAPES.get((key, abstract(args)), lambda: jax.eval_shape(fn, *args))
    return shapes


def clear_cache() -> None:
    """Forget every compiled program (the next call of each shape compiles again)."""
    PROGRAMS.clear()
    SHAPES.clear()


def device_list(devices) -> list:
    """The devices a ``devices`` argument names: ``None`` for ``jax.devices()`` (every device
    of every process), a device, or a list or tuple of them.

    Raises:
        TypeError: for anything else, naming what to pass.
    """
    if isinstance(devices, jax.Device):
        devices = [devices]
    if isinstance(devices, str):
        raise TypeError(
            f"devices must be a list of jax devices (e.g. jax.devices()[:2]); got the string "
            f"{devices!r}. For a platform's devices pass jax.devices({devices!r})."
        )
    if devices is not None and not isinstance(devices, list | tuple):
        raise TypeError(
            f"devices must be a list of jax devices (e.g. jax.devices()[:2]); got "
            f"{type(devices).__name__} {devices!r}. For one device: jax.devices()[:1]."
        )
    devices = list(jax.devices() if devices is None else devices)
    wrong = [d for d in devices if not isinstance(d, jax.Device)]
    if wrong:
        raise TypeError(
            f"devices must be a list of jax devices (e.g. jax.devices()[:2]); got {wrong[0]!r}."
        )
    return devices


def chain_sharding(devices, num_chains: int):
    """How per-chain arrays are placed: split over ``devices`` along the chain axis when the
    chains divide evenly among them, else all on the first.

    With several processes (``jax.distributed.initialize``), the default is every device of
    every process, and the chains must divide evenly among them.

    Args:
        devices: a list of devices, or ``None`` for ``jax.devices()`` (this process's devices
            when it is the only one).
        num_chains: the length of the chain axis.

    Raises:
        ValueError: for an empty list, or chains that several processes cannot share evenly.
    """
    given = devices is not None
    devices = device_list(devices)
    if len(set(devices)) < len(devices):
        raise ValueError(f"devices lists a device more than once: {devices}.")
    if not devices:
        raise ValueError("devices must name at least one device; got an empty list.")
    processes = {device.process_index for device in devices}
    if jax.process_index() not in processes:
        raise ValueError(
            f"devices {devices} belong to process(es) {sorted(processes)}, and this process "
            f"({jax.process_index()}) holds none of them: leave devices out to share the "
            "chains over every process's devices, or give each its own (jax.local_devices())."
        )
    if len(processes) > 1 and num_chains % len(devices):
        raise ValueError(
            f"num_chains={num_chains} chains cannot be split evenly over the {len(devices)} "
            f"devices of {len(processes)} processes; use a multiple of {len(devices)}."
        )
    if given and len(devices) > 1 and num_chains % len(devices):
        warnings.warn(
            f"num_chains={num_chains} does not divide among the {len(devices)} devices given, "
            f"so every chain runs on the first ({devices[0]}): use a multiple of "
            f"{len(devices)} chains to split them.",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    if len(devices) > 1 and num_chains % len(devices) == 0:
        mesh = jax.sharding.Mesh(np.array(devices), ("chain",))
        return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("chain"))
    # jax 0.12.1 deprecates the class's constructor for this function (older jax lacks it)
    one_device = getattr(jax.sharding, "make_single_device_sharding", None)
    return one_device(devices[0]) if one_device else jax.sharding.SingleDeviceSharding(devices[0])


def in_host_memory(leaf) -> bool:
    """Whether ``leaf`` is a numpy array or lives on CPU devices, whose memory is the host's
    (reading it back is next to free there; from an accelerator it is a copy)."""
    if not isinstance(leaf, jax.Array):
        return True
    return all(device.platform == "cpu" for device in leaf.sharding.device_set)


def to_host(tree):
    """A pytree of (possibly sharded) device arrays as numpy arrays on this host. Arrays that
    span several processes are gathered from all of them (a collective: every process must
    call it at the same point)."""

    def one(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return np.asarray(leaf)

    return jax.tree.map(one, tree)


def is_writer() -> bool:
    """Whether this process writes files (the first of several, or the only one)."""
    return jax.process_index() == 0


def replicated(sharding):
    """The placement of arrays every chain reads (data): a copy on each of ``sharding``'s
    devices."""
    if isinstance(sharding, jax.sharding.NamedSharding):
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    return sharding


def draw_major(sharding):
    """The placement of draw-major arrays ``(num_draws, num_chains, ...)`` whose chains are
    placed with ``sharding`` (chain axis first): the chain axis split the same way, second."""
    if isinstance(sharding, jax.sharding.NamedSharding):
        spec = jax.sharding.PartitionSpec(None, *sharding.spec)
        return jax.sharding.NamedSharding(sharding.mesh, spec)
    return sharding


def sharding_key(sharding) -> tuple:
    """A hashable summary of a placement, for cache keys: a mesh's devices in its order, its
    axis names and the partition (a device set's order is arbitrary, and the same devices
    in another order are another placement: a program compiled for one refused the other)."""
    mesh = getattr(sharding, "mesh", None)
    if mesh is None:  # a PmapSharding's devices are in order too; one device's are a set
        listed = getattr(sharding, "devices", None)
        ids = (
            tuple(device.id for device in np.asarray(listed).flat)
            if listed is not None
            else tuple(sorted(device.id for device in sharding.device_set))
        )
        return (type(sharding).__name__, ids, str(getattr(sharding, "sharding_spec", "")))
    devices = tuple(device.id for device in np.asarray(mesh.devices).flat)
    spec = getattr(sharding, "spec", None)
    return (type(sharding).__name__, devices, tuple(mesh.axis_names), str(spec))


def abstract(tree) -> tuple:
    """A hashable summary of a pytree of arrays: its structure and each leaf's shape and
    type as a program sees it (``()`` for no tree): JAX's type of the leaf, so that NumPy
    float64 data with 64-bit floats off (made float32 on the device) and float32 data key
    one program, and a Python float (weakly typed) another than a float32 array."""
    if tree is None:
        return ()
    leaves, structure = jax.tree.flatten(tree)
    return structure, tuple((tuple(np.shape(leaf)), _leaf_type(leaf)) for leaf in leaves)


def _leaf_type(leaf) -> str:
    try:
        return _written(jax.typeof(leaf))
    except TypeError:  # not an array JAX takes: its own dtype or type
        return str(getattr(leaf, "dtype", type(leaf)))


@functools.lru_cache(maxsize=1024)
def _written(aval) -> str:  # writing a type out takes longer than finding it here
    return str(aval)
