"""Quiet for Orbax's reads of a damaged checkpoint: when one array cannot be read, Orbax
raises its error while its reads of the other arrays go on; those end later, after its event
loop closed, each printing a traceback ("Event loop is closed", "exception was never
retrieved"), up to 200 lines after the one line that names the damaged checkpoint.

``with reads_quieted(): manager.restore(...)`` leaves those out; once a read failed, they
stay left out for the rest of the process (they arrive at any time after), as do Python's
warnings of coroutines never awaited (Orbax's reads it had yet to start). Nothing else is:
every other unraisable exception and asyncio log goes where it went."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

#: Words of an Orbax or TensorStore read's error in asyncio's log of it.
READ_WORDS = ("orbax", "TensorStore", "OCDBT")
#: The coroutine of Orbax's read of one array's shard.
READER = "_read_array_index_and_device_put"


class _Quiet:
    """The filters, installed while a read runs and for good after one failed."""

    def __init__(self):
        self.plain_hook = None  # sys.unraisablehook when installed, else None
        self.failed = False

    def unraisable(self, unraisable) -> None:
        closed = isinstance(unraisable.exc_value, RuntimeError) and unraisable.object is None
        closed = closed and str(unraisable.exc_value) == "Event loop is closed"
        if not closed and getattr(unraisable.object, "__qualname__", "") != READER:
            (self.plain_hook or sys.__unraisablehook__)(unraisable)

    @staticmethod
    def keeps(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        unread = "exception was never retrieved" in message
        return not (unread and any(word in message for word in READ_WORDS))

    def install(self) -> None:
        if self.plain_hook is None:  # else in place (or in a chain a later hook made)
            self.plain_hook, sys.unraisablehook = sys.unraisablehook, self.unraisable
            logging.getLogger("asyncio").addFilter(self.keeps)

    def remove(self) -> None:
        # a hook installed over this one meanwhile (chained to it, maybe) is left in place,
        # and this one stays where it is in the chain
        mine = sys.unraisablehook == self.unraisable
        if self.plain_hook is not None and not self.failed and mine:
            sys.unraisablehook, self.plain_hook = self.plain_hook, None
            logging.getLogger("asyncio").removeFilter(self.keeps)


_QUIET = _Quiet()


@contextlib.contextmanager
def reads_quieted():
    """Run an Orbax restore with the stray tracebacks of a failed one left out."""
    _QUIET.install()
    try:
        yield
    except Exception:
        _QUIET.failed = True
        # the reads Orbax had yet to start when one failed, warned of at any line (at exit:
        # sys:1) after it: left out from then on, as the tracebacks are
        warnings.filterwarnings("ignore", r"coroutine '.*' was never awaited", RuntimeWarning)
        raise
    finally:
        _QUIET.remove()
