"""``--import MODULE``: your own samplers on the command line.

``infer.register(...)`` adds a sampler to the registry of the Python process that calls it;
a new ``infer`` process starts with the built-in ones only. ``infer compare --import
box_walk --samplers box_walk`` imports the module ``box_walk`` (a file ``box_walk.py`` in
the current folder, or any module on ``PYTHONPATH``) before the sampler names are read, so
the ``register`` calls it makes at import are seen.
"""

from __future__ import annotations

import importlib
import os
import sys

FLAG = "--import"


def add_import_flag(parser) -> None:
    """The ``--import MODULE`` option (repeatable) of a sub-command that takes samplers."""
    parser.add_argument(
        FLAG,
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (a module in the current folder, named without .py, or one on "
        "PYTHONPATH), so the samplers it registers with infer.register can be named "
        "(repeatable)",
    )


def modules_named(argv: list[str]) -> list[str]:
    """The modules ``argv`` asks to import, in order (``--import a``, ``--import=a``, and the
    abbreviations argparse accepts, ``--imp a``)."""
    named = []
    for i, argument in enumerate(argv):
        option, equals, value = argument.partition("=")
        if len(option) < 4 or not FLAG.startswith(option):  # argparse takes "--imp" too
            continue
        if equals:
            named.append(value)
        elif i + 1 < len(argv):
            named.append(argv[i + 1])
    return named


def import_modules(argv: list[str]) -> str | None:
    """Import every module ``argv`` names with ``--import``, the current folder first on the
    path (as ``python -m`` has it). Returns an error message for one that fails, else None."""
    named = modules_named(argv)
    if named and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in named:
        if "/" in name or "\\" in name:  # a file's path: import_module takes module names
            stem = os.path.splitext(os.path.basename(name))[0]
            return (
                f"{FLAG} {name}: give a module name, not a path: {FLAG} {stem}, run from the "
                f"folder that holds {stem}.py (or with that folder on PYTHONPATH)."
            )
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            missing = err.name or name
            if missing != name and not name.startswith(f"{missing}."):
                return (  # the module was found; an import inside it failed
                    f"{FLAG} {name}: importing it raised ModuleNotFoundError: {err} (an import "
                    f"inside {name}: install {missing!r} or fix that import)"
                )
            return (
                f"{FLAG} {name}: {err}. Give a module name (box_walk for ./box_walk.py, no "
                "'.py'), from the current folder or PYTHONPATH."
            )
        except Exception as err:  # the module's own code failed: say where
            return f"{FLAG} {name}: importing it raised {type(err).__name__}: {err}"
    return None
