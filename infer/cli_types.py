"""Argument types of the ``infer`` command line, for ``argparse``'s ``type=``: each turns the
text given into a value, or says what was expected and what was got (argparse puts the
option's name in front)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from infer.validation import SEED_LIMIT

__all__ = [
    "integer_at_least",
    "positive_int",
    "non_negative_int",
    "seed",
    "probability",
]


def integer_at_least(low: int) -> Callable[[str], int]:
    """A ``type=`` for integers ``>= low``: ``"3"`` -> 3; ``"x"`` or a smaller number is
    refused with ``expected ..., got ...``."""
    expected = {0: "an integer >= 0", 1: "a positive integer"}.get(low, f"an integer >= {low}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    parse.__name__ = f"integer_at_least_{low}"
    return parse


positive_int = integer_at_least(1)
non_negative_int = integer_at_least(0)


def seed(text: str) -> int:
    """A ``type=`` for seeds: integers in ``[0, 2**32)``."""
    value = non_negative_int(text)
    if value >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {value}")
    return value


def probability(text: str) -> float:
    """A ``type=`` for a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def path(text: str):
    """A ``type=`` for file and folder options: a :class:`~pathlib.Path` with ``~`` expanded
    (the shell leaves ``--out=~/x`` and a quoted ``'~/x'`` as they are, and the folder would
    be made as ``./~/x`` while other files went to the home folder)."""
    import argparse
    from pathlib import Path

    if not text.strip():  # Path("") is ".": the outputs would land among the current files
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return Path(text).expanduser()


def report_folder_and_progress(
    folder, progress: bool | None, command: str, files=()
) -> bool | None:
    """Before ``command`` (``infer compare``) runs: ``None`` (with the reason printed to
    stderr) when ``folder`` cannot take its report (or a folder stands where it writes one
    of ``files``, names in ``folder``), else whether to show a progress bar (``--progress`` /
    ``--no-progress``, or by default when stderr is a terminal)."""
    import sys

    from infer.io import unwritable_folder

    problem = unwritable_folder(folder, command)
    blocked = [folder / name for name in files if (folder / name).exists()]
    blocked = [path for path in blocked if not path.is_file()]
    if blocked and not problem:
        problem = (
            f"{command}: error: --out: {blocked[0]} is a folder, where the report writes a "
            "file: move or remove it, or give another --out."
        )
    if problem:
        print(problem, file=sys.stderr)
        return None
    return sys.stderr.isatty() if progress is None else progress


def add_progress_flags(parser) -> None:
    """``--progress`` / ``--no-progress`` on ``parser`` (``args.progress``: True, False, or
    None for the default, a bar when stderr is a terminal)."""
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show progress bars (default: when writing to a terminal)",
    )
    shown.add_argument(
        "--no-progress", dest="progress", action="store_false", help="show no progress bars"
    )
