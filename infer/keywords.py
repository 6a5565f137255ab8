"""Sampler factories and entry points that refuse an unknown keyword argument by naming the
closest one they take (NumPyro's ``target_accept_prob`` for ``target_accept``) and their
options, before the call, where Python names the argument alone."""

from __future__ import annotations

import difflib
import functools
import inspect


def refusing_unknown_keywords(factory, name: str | None = None):
    """``factory`` wrapped so that a keyword it does not take is refused naming the closest
    one it does (``target_accept_prob``, NumPyro's name: did you mean ``target_accept``?)
    and its options, before the call; ``help()`` still shows its own signature."""
    name = name or factory.__name__
    parameters = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return factory
    options = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]

    @functools.wraps(factory)
    def called(*args, **kwargs):
        if unknown := [key for key in kwargs if key not in parameters]:
            close = difflib.get_close_matches(unknown[0], options, n=1, cutoff=0.6)
            raise TypeError(
                f"{name}() got an unexpected keyword argument {unknown[0]!r}"
                + (f": did you mean {close[0]}?" if close else ".")
                + f" Its options: {', '.join(options)}."
            )
        return factory(*args, **kwargs)

    return called
