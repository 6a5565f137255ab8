"""The number and table formats every renderer shares."""

from __future__ import annotations

import math


def g(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}g}"


def f(x, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}"


_SIDES = {
    ">=": lambda x, goal: x >= goal,
    "<=": lambda x, goal: x <= goal,
    "<": lambda x, goal: x < goal,
}


def against(x, goal: float, side: str, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, or more where fewer would read on the other side of
    ``goal`` (``side`` ``">="``, ``"<="`` or ``"<"``): a ratio of 0.9996 against a goal of at
    least 1.0 reads 0.9996, not 1.00, and 9.95 s against less than 10 s is not 10.0."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    met = _SIDES[side](x, goal)
    for shown in range(digits, 8):
        if _SIDES[side](float(f"{x:.{shown}f}"), goal) == met:
            return f"{x:.{shown}f}"
    return repr(x)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
