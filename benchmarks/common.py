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

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


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
    """Write ``record`` as JSON to ``path``, atomically."""
    from infer.io import write_atomically

    return write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
