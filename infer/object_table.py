"""A value kept for each object, by the object's identity, while the object lives: what the
library remembers of an array it was handed (a checksum, the copy it made), without keeping
the array alive or mistaking a later object of the same ``id`` for it."""

from __future__ import annotations

import functools
import weakref


class ObjectTable:
    """``obj -> value`` by identity. An entry goes when its object does (a weak reference's
    callback), so the table holds only live objects and never needs emptying; an object
    that takes no weak reference is not kept (:meth:`get` then gives ``default``)."""

    def __init__(self):
        self._entries: dict = {}  # id(obj) -> (weak reference to obj, value)

    def get(self, obj, default=None):
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0]() is obj:
            return entry[1]
        return default

    def set(self, obj, value) -> None:
        key = id(obj)
        try:
            reference = weakref.ref(obj, functools.partial(self._forget, key))
        except TypeError:  # no weak reference (a view of some kinds): not kept
            return
        self._entries[key] = (reference, value)

    def _forget(self, key: int, reference) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] is reference:  # not a later object's entry
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
