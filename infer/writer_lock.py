"""One writer per output: a run holds ``<path>.lock`` beside its checkpoint folder or store
while it writes there, so that a second run given the same path (a job started twice, a job
array with one output name) is refused before it writes anything, instead of mixing two
runs' draws in one store or destroying both runs' checkpoints.

The lock file holds the host name and process id of its run. A lock whose process is gone
(killed on this host: ``SIGKILL`` leaves it behind) is taken over without a word; one of
another host is trusted, with the way out in the message (delete it if no run writes there).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

#: An empty lock file (or a takeover's guard) younger than this is a run starting now.
STALE_SECONDS = 10.0


@contextlib.contextmanager
def writing(path: Path, argument: str):
    """Hold the lock of ``path`` (``argument``, e.g. ``"checkpoint"``, names it in the
    error) while the body runs.

    Raises:
        ValueError: when another live run holds it.
    """
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()} {os.getpid()}"
    deadline = time.monotonic() + 3 * STALE_SECONDS
    while True:
        descriptor = _created(lock)
        if descriptor is None:
            holder = _live_holder(lock)
            if holder is not None:
                raise ValueError(
                    f"{argument}={str(path)!r} is being written by another run ({holder}): "
                    "two runs writing one path would mix or destroy each other's files. Give "
                    "this run another path, or wait for that one to end (if no run writes "
                    f"there, delete {str(lock)!r})."
                )
            descriptor = _taken_over(lock)  # its run is gone
            if descriptor is None and time.monotonic() > deadline:
                guard = str(lock) + ".takeover"
                raise ValueError(
                    f"{argument}={str(path)!r}: the lock of a run that is gone, {str(lock)!r}, "
                    f"could not be taken over in {3 * STALE_SECONDS:g} s: {guard!r} stays "
                    "(a takeover another process could not finish). If no run writes there, "
                    "delete both files."
                )
            if descriptor is None:  # another run took it over, or is at it: look again
                time.sleep(0.01)
                continue
        with os.fdopen(descriptor, "w") as file:
            file.write(me)
        break
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if lock.read_text() == me:
                lock.unlink()


def _created(lock: Path) -> int | None:
    """A descriptor of ``lock``, created now, or None when it exists."""
    try:
        return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None


def _taken_over(lock: Path) -> int | None:
    """``lock`` of a run that is gone, deleted and created anew for this one, one process at
    a time (under ``<lock>.takeover``): two runs started at once beside a stale lock each
    deleted it, the second the first's new one, and both wrote. None when another process
    is taking it over or has just done so."""
    guard = Path(str(lock) + ".takeover")
    held = _created(guard)
    if held is None:
        with contextlib.suppress(OSError):  # left by a run killed inside this function
            if time.time() - guard.stat().st_mtime > STALE_SECONDS:
                guard.unlink()
        return None
    os.close(held)
    try:
        if _live_holder(lock) is not None:  # taken over since it was read
            return None
        lock.unlink(missing_ok=True)
        return _created(lock)
    finally:
        guard.unlink(missing_ok=True)


def _live_holder(lock: Path) -> str | None:
    """``"process N on host H"`` of the run holding ``lock``, or None when that run is gone
    (or the file is empty or unreadable: a run killed while writing it)."""
    try:
        host, pid = lock.read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):  # empty: a run starting this instant, or killed
            if time.time() - lock.stat().st_mtime < STALE_SECONDS:  # while it wrote its name
                return "a run starting now"
        return None
    if host == socket.gethostname():
        if pid == os.getpid():
            return f"this process, {pid}, in another call still running"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
    return f"process {pid} on host {host}"
