"""What every benchmark records next to its figures: the commit, the versions, the machine."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# The scripts' argument types: the command line's own (a whole number of at least n).
from infer.cli_types import integer_at_least, positive_int  # noqa: F401

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def json_file(text: str) -> Path:
    """A ``type=`` for ``--out``: a path to a JSON file to write, checked before anything
    runs (a folder, or a path under a file, would lose the run's figures at the end)."""
    import argparse

    from infer.io import file_path

    try:
        return file_path(text, "--out")
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def commit() -> dict:
    """The git commit the figures describe, and whether the tree had uncommitted changes.

    Git decides where it can: ``INFER_COMMIT`` names the commit only of a copy without git
    (an accelerator's); nothing there can check the copy for local changes, so ``dirty`` is
    None (unknown), not False. With neither, the commit is ``""`` and ``dirty`` None."""
    named = os.environ.get("INFER_COMMIT", "").strip()
    head = _git("rev-parse", "HEAD")
    if not head:
        if named:  # a copy of a clean tree on another machine: the sender names it
            return {"commit": named, "dirty": None, "commit_named_by": "INFER_COMMIT"}
        return {"commit": "", "dirty": None}
    # results and pictures written by the suites run before this one (bnn.py redraws
    # docs/images/bnn_regression.png) do not make the code dirty
    changed = _git(
        "status", "--porcelain", "--", ".", ":(exclude)benchmarks/results", ":(exclude)docs/images"
    )
    stamp = {"commit": head, "dirty": bool(changed)}
    if named and not head.startswith(named.lower()):
        print(
            f"INFER_COMMIT={named} is not this repository's HEAD ({head[:10]}): recording "
            "git's commit; unset INFER_COMMIT where git is available",
            file=sys.stderr,
        )
        stamp["infer_commit_ignored"] = named
    return stamp


def _git(*args) -> str:
    """What ``git *args`` prints in the repository, or "" where git or the repository is
    missing."""
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:  # no git on this machine
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def versions(*packages: str) -> dict:
    """Installed versions of ``packages`` (None for the ones missing)."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def precision() -> str:
    """The floating-point precision JAX computes in here: float64 with ``jax_enable_x64``."""
    import jax

    return "float64" if jax.config.jax_enable_x64 else "float32"


def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine(*packages: str) -> dict:
    """The device, the host's CPU (its model, its cores and those this process may use),
    the precision, Python, the package versions, the date and the commit."""
    import jax

    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device": str(getattr(device, "device_kind", device)),
        "cpu_count": os.cpu_count(),
        "cores_usable": cores_in_use(),
        "cpu_model": cpu_model(),
        "precision": precision(),
        "python": platform.python_version(),
        "versions": versions("jax", "jaxlib", "numpyro", *packages),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **commit(),
    }


def write_result(path: Path, record: dict) -> Path:
    """Write ``record`` as JSON to ``path``, atomically. A smoke run (``--quick``, whose
    files end in ``_quick``) says so: ``record["quick"]``, unless the script set it; its
    goals are not judged (each verdict, under a key that starts with ``goal``, is ``None``):
    its sizes are too small for them.

    Raises:
        ValueError: ``record``'s ``rows`` (or ``models``) is empty: such a file would replace
            a table's figures with nothing.
    """
    from infer.io import write_atomically

    empty = [key for key in ("rows", "models") if key in record and not record[key]]
    if empty:
        raise ValueError(
            f"not writing {path}: its {empty[0]!r} is empty (nothing was measured), and it "
            "would replace the figures there; check the options that chose what to measure"
        )
    record = {**record, "quick": bool(record.get("quick", Path(path).stem.endswith("_quick")))}
    if record["quick"]:
        record.update({k: _unjudged(v) for k, v in record.items() if k.startswith("goal")})

    return write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))


def _unjudged(verdicts):
    """``verdicts`` (a bool, or dicts of them beside other facts) with every bool ``None``."""
    if isinstance(verdicts, bool):
        return None
    if isinstance(verdicts, dict):
        return {name: _unjudged(value) for name, value in verdicts.items()}
    return verdicts


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
    command = [sys.executable, str(script), *args]
    if mode == "two_devices":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    if mode == "one_core":
        command = ["taskset", "-c", str(first_core()), *command]
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


def first_core() -> int:
    """The first core this process may run on (the one ``one_core`` pins a worker to)."""
    return min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0


def quick_or_given(parser, args, option: str, quick, full):
    """The value of ``--option``: ``quick`` under ``--quick``, else the one given, else
    ``full``. Given beside ``--quick`` (which would ignore it) it is refused: the option's
    default must be None."""
    given = getattr(args, option.lstrip("-").replace("-", "_"))
    if args.quick and given is not None:
        parser.error(
            f"{option} {given} has no effect with --quick (which uses {quick}): drop "
            f"{option}, or drop --quick to run in full with it"
        )
    if args.quick:
        return quick
    return full if given is None else given


def options_free_parser(doc: str, minutes: int):
    """The parser of a benchmark without options: ``--help`` says what it does, what it
    rewrites and how long it takes, instead of starting it."""
    import argparse

    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0]
        + f" Rewrites its results file in benchmarks/results/ (about {minutes} minutes on 2 "
        "CPU cores); no quick mode."
    )
