"""Ctrl-C in the ``infer`` command.

Ctrl-C while the ``infer`` command loads (JAX, NumPyro, ArviZ: a few seconds) ends it with
one line and exit code 130, as once the command runs, instead of a traceback from deep inside
an import. Only the command's own start is covered, ``python -m infer ...`` and the ``infer``
script, up to :func:`restore_interrupts` as the command begins; ``import infer`` in a
program of one's own leaves its Ctrl-C alone."""

from __future__ import annotations

import _thread
import contextlib
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


#: Seconds after which a Ctrl-C lost inside a finaliser is delivered again.
REDELIVERY_DELAY = 0.01


@contextlib.contextmanager
def noted_interrupts():
    """Within: Python's Ctrl-C, each noted in the list yielded. A ``KeyboardInterrupt``
    raised inside a finaliser (a garbage collector's callback, JAX's; a ``__del__``; a weak
    reference's callback) is printed as "Exception ignored" and lost, and the command would
    go on to its end: Python hands it to ``sys.unraisablehook``, which here delivers the
    Ctrl-C again a moment later instead, outside the finaliser; the list keeps it in case
    that comes too late (the command's end). Only where Python's own handler is installed,
    in the main thread; put back after."""
    noted: list = []
    redeliveries: list[threading.Timer] = []
    closing = []
    noting = threading.current_thread() is threading.main_thread()
    noting = noting and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    plain_hook = sys.unraisablehook

    def note(signum, frame) -> None:
        noted.append(signum)
        if not closing:  # else the command has ended; main() says it was interrupted
            raise KeyboardInterrupt

    def lost(unraisable) -> None:
        if closing or not issubclass(unraisable.exc_type, KeyboardInterrupt):
            plain_hook(unraisable)
            return
        redelivery = threading.Timer(REDELIVERY_DELAY, _thread.interrupt_main)
        redelivery.daemon = True
        redeliveries.append(redelivery)
        redelivery.start()

    if noting:
        sys.unraisablehook = lost
        signal.signal(signal.SIGINT, note)
    try:
        yield noted
    finally:
        if noting:
            closing.append(True)
            for redelivery in redeliveries:
                redelivery.cancel()
                redelivery.join()  # one already sent is handled by note (above) in closing
            signal.signal(signal.SIGINT, signal.default_int_handler)  # (pending ones first)
            if sys.unraisablehook is lost:  # else one installed since chains to it: kept
                sys.unraisablehook = plain_hook


def _command(argv) -> str:
    """The sub-command ``argv`` (or the process's arguments) names: its first word."""
    return next((a for a in argv or sys.argv[1:] if not a.startswith("-")), "")


def interrupted(argv) -> int:
    """Ctrl-C's one line, and the shell's code for it."""
    command = _command(argv)
    report = {
        "compare": ", but a report is whole only once its path is printed (its "
        "index.html comes last)",
        "sbc": ", but a report is whole only once its path is printed",
    }.get(command, "")
    print(
        f"\ninfer {command}: interrupted. Files already written are complete (each is "
        f"written atomically){report}: run the command again.",
        file=sys.stderr,
    )
    return 130


def output_closed(argv, saved: str = "") -> int:
    """The end of the program reading the command's output (``infer compare | head``): the
    output sent nowhere from here (Python's advice, so that its last flush is quiet), one
    line on stderr (with ``saved``, what was kept), and code 1."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no file behind it (StringIO, None)
        pass
    command = _command(argv)
    print(
        f"infer {command}: stopped: the program reading its output ended. {saved}".rstrip(),
        file=sys.stderr,
    )
    return 1
