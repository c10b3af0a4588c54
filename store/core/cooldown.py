"""The cool-down: a freed address is not handed out again for a while.

A neighbour's ARP/NDP cache, a conntrack entry or a client still retrying
an old connection can point at an address for some seconds after its pod
is gone (Whereabouts #288; the AWS VPC CNI waits 30 s for the same reason).
Next-fit (``store.core.allocator``) already reuses freed addresses last, but
in a small or nearly full subnet "last" can be a moment later. So the next
free address skips any address freed less than ``cooldown`` seconds ago.

Where the time of release lives: beside each bitmap chunk, under
``subnets/<subnet>/cooling/<family>/<chunk>``, one small JSON record per
chunk (:class:`FreedTimes`) written in the same transaction that clears the
chunk's bit. The planner reads it with the chunk (one round trip, and only
when the chunk is not cached), so the hot path costs no extra read; and
because every write of a record also writes its chunk, the chunk's
mod_revision compare that every allocation already makes proves the record
it planned from is current. A new leader reads the records from etcd: the
cool-down survives a leader change.

Only the *next free* choice waits. A fixed address (``ip_address``) or an
``ip_pool`` entry is the user naming that address, as after recreating a
pod with a static IP: Kube-OVN has no cool-down and hands it out at once,
and so does nicpool. Among ``ip_pool`` candidates one not cooling is
preferred; a cooling one is taken when no other is free, so a pool never
waits. StatefulSet retention frees nothing, so it never cools.

Each record carries ``keep``, the cool-down of the controller that last
wrote it. A release drops the chunk's entries older than that, so a writer
with no cool-down of its own (``nicpoolctl release``) never prunes what the
controller still honours, and a record holds at most a cool-down's worth of
releases. Times are wall-clock seconds; an entry stamped in the future by a
skewed clock counts from now, so no address cools longer than ``cooldown``.
A record that cannot be read is treated as empty (an address may then be
reused early, never refused) and is rewritten by the chunk's next release.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from store.core.ops import Delete, Op, Put

if TYPE_CHECKING:  # bitmap.py imports FreedTimes from here
    from store.core.bitmap import Chunk

DEFAULT_COOLDOWN = 5.0
"""Seconds a freed address waits before the next-free choice may hand it out again."""

MAX_COOLDOWN = 3600.0
"""The longest cool-down accepted (an hour would already starve a busy subnet)."""


def check_cooldown(seconds: float) -> float:
    """A cool-down setting, checked: between 0 (off) and :data:`MAX_COOLDOWN`."""
    if not 0 <= seconds <= MAX_COOLDOWN:  # also refuses NaN
        raise ValueError(f"cool-down must be between 0 and {MAX_COOLDOWN:g} seconds")
    return seconds


@dataclass
class FreedTimes:
    """When addresses of one bitmap chunk were last freed (offset -> epoch seconds)."""

    times: dict[int, float] = field(default_factory=dict)
    keep: float = 0.0
    """Seconds entries are kept (the writing controller's cool-down); 0: not known yet."""

    def copy(self) -> FreedTimes:
        return FreedTimes(dict(self.times), self.keep)

    def freed(self, offset: int, now: float) -> None:
        self.times[offset] = now

    def unfreed(self, offset: int) -> None:
        self.times.pop(offset, None)

    def prune(self, now: float, cooldown: float) -> None:
        """Adopt the writer's cool-down (if it has one) and drop entries past ``keep``."""
        if cooldown > 0:
            self.keep = cooldown
        elif self.keep <= 0:
            self.keep = DEFAULT_COOLDOWN
        self.times = {o: t for o, t in self.times.items() if now - t < self.keep}

    def encode(self, base: int) -> bytes:
        """The record: offsets relative to the chunk's first offset ``base``."""
        freed = sorted([o - base, round(t, 3)] for o, t in self.times.items())
        return json.dumps({"keep": self.keep, "freed": freed}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | None, base: int, span: int) -> FreedTimes:
        """The record of the chunk holding offsets ``[base, base + span)``; empty when
        absent or unreadable (see the module docstring)."""
        if raw is None:
            return cls()
        try:
            doc = json.loads(raw)
            keep = float(doc["keep"])
            times = {base + int(o): float(t) for o, t in doc["freed"]}
        except (ValueError, KeyError, TypeError):
            return cls()
        sane = all(base <= o < base + span and math.isfinite(t) for o, t in times.items())
        if not sane or not 0 <= keep <= MAX_COOLDOWN:
            return cls()
        return cls(times, keep)


@dataclass(frozen=True)
class CoolDown:
    """The cool-down as one plan applies it, at the plan's ``now`` (0 seconds: none)."""

    seconds: float
    now: float

    def cooling(self, freed_at: float | None) -> bool:
        """True when an address freed at ``freed_at`` must not be handed out yet."""
        return freed_at is not None and self.seconds > 0 and self.ready_in(freed_at) > 0

    def ready_in(self, freed_at: float) -> float:
        """Seconds until an address freed at ``freed_at`` may be handed out (<= 0: now)."""
        return min(freed_at, self.now) + self.seconds - self.now


def record_op(key: str, chunk: Chunk, *, now: float, cooldown: float) -> Op:
    """Write a chunk's release times (at ``key``) as they now stand, pruned; delete the
    record once it is empty."""
    chunk.freed.prune(now, cooldown)
    if not chunk.freed.times:
        return Delete(key)
    return Put(key, chunk.freed.encode(chunk.base))
