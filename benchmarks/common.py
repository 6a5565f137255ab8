"""What every benchmark records next to its figures: the commit, the versions, the machine."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def commit() -> dict:
    """The git commit the figures describe, and whether the tree had uncommitted changes."""

    def git(*args) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    named = os.environ.get("INFER_COMMIT")
    if named:  # a copy of a clean tree on another machine (an accelerator): the sender names it
        return {"commit": named, "dirty": False, "commit_named_by": "INFER_COMMIT"}
    # results written by the suites run before this one do not make the code dirty
    changed = git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed)}


def versions(*packages: str) -> dict:
    """Installed versions of ``packages`` (None for the ones missing)."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine(*packages: str) -> dict:
    """The device, the CPU count, Python, the package versions, the date and the commit."""
    import jax

    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device": str(getattr(device, "device_kind", device)),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions("jax", "jaxlib", "numpyro", *packages),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **commit(),
    }


def write_result(path: Path, record: dict) -> Path:
    """Write ``record`` as JSON to ``path``, atomically. A smoke run (``--quick``, whose
    files end in ``_quick``) says so: ``record["quick"]``, unless the script set it."""
    from infer.io import write_atomically

    record = {**record, "quick": bool(record.get("quick", Path(path).stem.endswith("_quick")))}

    return write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))


#: How a measurement may use the machine: ``one_core`` pins the process (JAX's threads and
#: the other library's alike) to one core with ``taskset``; ``machine`` leaves it free (XLA
#: uses a thread per core, the other library what it uses); ``two_devices`` also splits the
#: CPU into two XLA devices, chains sharded over them.
MODES = ("one_core", "machine", "two_devices")


def modes() -> tuple[str, ...]:
    """The modes that mean something here: all of :data:`MODES` on a CPU; on an accelerator
    only ``machine`` (the device, with the host's single-threaded SciPy beside it)."""
    import jax

    return MODES if jax.default_backend() == "cpu" else ("machine",)


def run_json(script: Path, args: list[str], mode: str = "machine", timeout: int = 3600):
    """Run ``python script *args`` in a fresh process under ``mode`` and return the JSON it
    prints on its last line."""
    env = dict(os.environ)
    command = [__import__("sys").executable, str(script), *args]
    if mode == "two_devices":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    if mode == "one_core":
        command = ["taskset", "-c", "0", *command]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{script.name} {args} ({mode}) failed:\n{out.stderr[-3000:]}")
    lines = out.stdout.rstrip().splitlines()
    if len(lines) > 1:  # the worker's own lines, as they were (their indentation kept)
        print("\n".join(lines[:-1]), flush=True)
    return json.loads(lines[-1])


def cores_in_use() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def options_free_parser(doc: str, minutes: int):
    """The parser of a benchmark without options: ``--help`` says what it does, what it
    rewrites and how long it takes, instead of starting it."""
    import argparse

    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0]
        + f" Rewrites its results file in benchmarks/results/ (about {minutes} minutes on 2 "
        "CPU cores); no quick mode."
    )
