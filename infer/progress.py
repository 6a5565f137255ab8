"""Progress bars (tqdm) for long work, shown from the host between compiled chunks.

No callbacks run inside compiled code: the host calls one compiled chunk after another and
updates the bar in between, so bars work under ``vmap`` and sharding alike and cost nothing
when off.
"""

from __future__ import annotations

import contextlib

PROGRESS_CHUNKS = 25  # the exact and variational runners and runs over several processes
# update about this often: every 4%
#: A Markov-chain run's bar is updated about this often (seconds), at most every 1% of steps.
PROGRESS_SECONDS = 0.5
#: A segment is at most this many times longer than the one before.
PROGRESS_GROWTH = 8


def chunk_length(phase_steps: int, all_steps: int) -> int:
    """Steps per chunk: about ``all_steps / PROGRESS_CHUNKS``, preferring a divisor of
    ``phase_steps`` (then every chunk has the same length). Each chunk costs one host round
    trip, so fewer is cheaper."""
    if phase_steps == 0:
        return 0
    target = max(1, -(-all_steps // PROGRESS_CHUNKS))
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if phase_steps % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


class Pace:
    """Segment lengths of a Markov-chain run with a bar: the first 1% of the run's steps,
    each next one about :data:`PROGRESS_SECONDS` of steps at the rate of those done (at most
    :data:`PROGRESS_GROWTH` times the last), never under 1% of the steps, rounded up by
    ``round_up(steps)`` (whole blocks on an accelerator).

    Every segment is one host round trip (in 26 fixed segments a 2.5 s NUTS run took up to
    1.09 times as long as without a bar: ``benchmarks/diagnostics.py``), so a fast run is
    cut few times and a slow one still shows its bar move about twice a second. (Over
    several processes the segments cannot follow one process's clock: the runner cuts every
    :data:`PROGRESS_CHUNKS`-th of the steps there instead.)
    """

    def __init__(self, total_steps: int, round_up=lambda steps: steps):
        self.round_up = round_up
        self.least = round_up(max(1, -(-total_steps // 100)))
        self.every = self.least

    def observe(self, steps: int, seconds: float) -> None:
        """A segment of ``steps`` took ``seconds``: size the next one."""
        wanted = steps * PROGRESS_SECONDS / max(seconds, 1e-9)
        wanted = min(wanted, PROGRESS_GROWTH * max(steps, self.every))
        self.every = max(self.least, self.round_up(int(wanted)))


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
