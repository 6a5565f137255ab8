"""Progress bars (tqdm) for long work, shown from the host between compiled chunks.

No callbacks run inside compiled code: the host calls one compiled chunk after another and
updates the bar in between, so bars work under ``vmap`` and sharding alike and cost nothing
when off.
"""

from __future__ import annotations

import contextlib

PROGRESS_CHUNKS = 25  # progress is updated about this often: every 4% of all steps


def chunk_length(phase_steps: int, all_steps: int) -> int:
    """Steps per chunk: about ``all_steps / PROGRESS_CHUNKS``, preferring a divisor of
    ``phase_steps`` (then every chunk has the same length). Each chunk costs one host round
    trip, so fewer is cheaper."""
    if phase_steps == 0:
        return 0
    target = max(1, -(-all_steps // PROGRESS_CHUNKS))
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if phase_steps % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


def check_progress(progress) -> None:
    """A ``TypeError`` unless ``progress`` is True, False/None, or a callable that makes a bar
    (a tqdm class or partial)."""
    if not progress or progress is True or callable(progress):  # any false value: no bar
        return
    raise TypeError(
        f"progress must be True, False or a tqdm class (e.g. functools.partial(tqdm.tqdm, "
        f"ncols=80)); got {progress!r}."
    )


@contextlib.contextmanager
def progress_bar(progress, total: int | None, description: str, unit: str = "step"):
    """A tqdm bar for ``total`` units (``None``: unknown), or a stand-in that does nothing
    when ``progress`` is false.

    Args:
        progress: ``True`` for tqdm's default bar, a tqdm class or partial to customise it,
            or a false value for none.
    """
    if not progress:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    factory = tqdm if progress is True else progress
    bar = factory(total=total, desc=description, unit=unit)
    try:
        yield bar
    finally:
        bar.close()


class _NoBar:
    """What a bar that is off does: nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass
