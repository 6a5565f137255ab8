"""Ctrl-C while the ``infer`` command loads (JAX, NumPyro, ArviZ: a few seconds) ends it with
one line and exit code 130, as once the command runs, instead of a traceback from deep inside
an import. Only the command's own start is covered, ``python -m infer ...`` and the ``infer``
script, up to :func:`restore_interrupts` as the command begins; ``import infer`` in a
program of one's own leaves its Ctrl-C alone."""

from __future__ import annotations

import os
import signal
import sys
import threading

_previous = []  # the handler replaced while the command starts, if it was


def _interrupted(signum, frame) -> None:
    print("\ninfer: interrupted while starting; nothing was run.", file=sys.stderr, flush=True)
    os._exit(130)  # nothing was written yet: no clean-up to run


def _is_the_command() -> bool:
    """Whether this process is the ``infer`` command: ``python -m infer`` (from the
    interpreter's own arguments) or the ``infer`` script."""
    orig = list(getattr(sys, "orig_argv", []))
    as_module = any(a == "-m" and b == "infer" for a, b in zip(orig, orig[1:], strict=False))
    script = bool(sys.argv) and os.path.basename(sys.argv[0]) in ("infer", "infer.exe")
    return as_module or script


def quiet_interrupts_while_starting() -> None:
    """Install the one-line Ctrl-C handler when this process is the ``infer`` command."""
    if _previous or not _is_the_command():
        return
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # (a background job's)
    if threading.current_thread() is threading.main_thread() and not ignored:
        _previous.append(signal.signal(signal.SIGINT, _interrupted))


def restore_interrupts() -> None:
    """Put back the Ctrl-C handler replaced at the start (the command handles Ctrl-C itself
    from here on: it keeps what finished)."""
    if _previous:
        signal.signal(signal.SIGINT, _previous.pop())
