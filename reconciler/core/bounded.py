"""A set that forgets its oldest members past a size: memory that cannot grow without limit.

The controller remembers some things per pod or per Event (refused pods to
retry early, Events already written to bump their count). A cluster can
hold any number of those, so each such memory is bounded: past ``limit``
the least recently touched member is dropped. What is forgotten costs a
little efficiency (a retry comes from backoff instead, an Event is written
anew), never correctness.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    """A thread-safe mapping keeping at most ``limit`` most recently set keys."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def set(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class Bounded(Generic[K]):
    """A thread-safe set keeping at most ``limit`` most recently added members."""

    def __init__(self, limit: int) -> None:
        self._map: BoundedMap[K, None] = BoundedMap(limit)

    def add(self, key: K) -> None:
        self._map.set(key, None)

    def discard(self, key: K) -> None:
        self._map.pop(key)

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __iter__(self) -> Iterator[K]:
        return iter(self._map.keys())

    def __len__(self) -> int:
        return len(self._map)
