"""JAX's persistent compilation cache, on by default, so that a second *process* running the
same model (a user re-running their script) loads its compiled programs from disk instead of
compiling them again.

``import infer`` turns it on in a per-user folder (``$XDG_CACHE_HOME/infer/jax``, by default
``~/.cache/infer/jax``) unless the environment says otherwise:

* ``INFER_COMPILATION_CACHE=0`` (or ``off``, ``false``, ``no``): leave it off;
* ``INFER_COMPILATION_CACHE=/some/folder``: use that folder;
* a cache folder already set for JAX (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.update("jax_compilation_cache_dir", ...)`` before importing infer) is left as
  it is.

Only programs that take at least a tenth of a second to compile are stored (JAX's own
threshold is one second), unless ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise.

A run over several processes' CPU devices turns the cache off for the rest of the process
(:func:`off_across_cpu_processes`): with jax 0.12.1 and gloo, a program whose loop holds a
collective hangs every process when it is loaded from the cache.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

from infer.caller import INFER_FRAMES
from infer.io import expanded_path
from infer.placement import device_list

OFF = ("0", "off", "false", "no")
#: 0.5 left out the start program (0.48 s for NUTS on a small regression) and NumPyro's
#: model program (0.41 s): a second process compiled about a second again.
MIN_COMPILE_SECONDS = 0.1


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/infer/jax``, or ``~/.cache/infer/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "infer" / "jax"


def enable_compilation_cache(folder=None) -> Path | None:
    """Turn JAX's persistent compilation cache on (see the module's docstring for the
    defaults); returns the folder in use, or ``None`` when it stays off.

    Args:
        folder: a folder to use; ``None`` follows ``INFER_COMPILATION_CACHE`` and otherwise
            the per-user default.

    Raises:
        TypeError, ValueError: for a ``folder`` that is not a path, or is a file.
    """
    setting = os.environ.get("INFER_COMPILATION_CACHE", "")
    if folder is None:
        if setting.strip().lower() in OFF:
            return None
        if jax.config.jax_compilation_cache_dir:
            return Path(jax.config.jax_compilation_cache_dir)
        folder = setting.strip() or default_folder()
    else:  # the caller's: a wrong one is told, not run without
        folder = expanded_path(folder, "folder", "folder", "~/.cache/infer/jax")
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"folder={str(folder)!r} is a file; give a folder for the cache.")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: run without the cache rather than fail
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return folder


def off_across_cpu_processes(devices) -> bool:
    """Turn JAX's persistent compilation cache off for the rest of this process, with a
    warning, when ``devices`` span several processes and are CPUs; returns whether it did.

    A program whose while loop holds a collective across processes (the start program's
    check of every chain, a sampler's loop over the chain axis), loaded from the cache, hung
    both processes of a pair in its first collective (jax 0.12.1, gloo; the same program
    compiled afresh runs): so a second run of the same script never finished.

    Called before anything of the run compiles (the seed's key included: a program cached
    before the call would be loaded by the next run).

    Args:
        devices: the run's ``devices`` argument (:func:`infer.placement.device_list`);
            anything else, which the driver's checks refuse, is left alone.
    """
    try:
        devices = device_list(devices)
    except TypeError:  # the driver's checks say so
        return False
    if not devices:
        return False
    processes = {device.process_index for device in devices}
    if len(processes) < 2 or any(device.platform != "cpu" for device in devices):
        return False
    if not (jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir):
        return False
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()  # JAX decides once per process whether to use it
    warnings.warn(
        f"JAX's persistent compilation cache ({jax.config.jax_compilation_cache_dir}) is off "
        f"for the rest of this process: this run spans {len(processes)} processes' CPUs, "
        "where programs loaded from the cache hang in their collectives (jax with gloo). "
        "Each process compiles its programs afresh.",
        UserWarning,
        skip_file_prefixes=INFER_FRAMES,
    )
    return True
