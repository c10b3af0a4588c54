"""Transaction building blocks as plain values.

The store's modules describe a transaction with these and hand it to
``store.etcd``, the only module that turns them into client calls. Keeping
them as values lets the planning code be tested without etcd and keeps the
client library swappable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from store.core.identity import Revision


@dataclass(frozen=True)
class ModRevisionIs:
    """The key's mod_revision equals ``revision`` (0: the key does not exist)."""

    key: str
    revision: Revision


@dataclass(frozen=True)
class CreateRevisionIs:
    """The key's create_revision equals ``revision`` (0: the key does not exist)."""

    key: str
    revision: Revision


Compare = ModRevisionIs | CreateRevisionIs


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int | None = None


@dataclass(frozen=True)
class Delete:
    key: str
    prefix: bool = False
    """Delete every key that starts with ``key``."""


@dataclass(frozen=True)
class Get:
    key: str


Op = Put | Delete | Get


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: Revision
    create_revision: Revision


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: Revision
    """The store revision after (or at) the transaction."""
    gets: tuple[KeyValue | None, ...] = ()
    """Results of the ``Get`` ops of the branch that ran, in order."""


MAX_TXN_OPS = 128
"""etcd's default ``--max-txn-ops``: the cap on each of compare/success/failure."""

MAX_TXN_BYTES = 1024 * 1024
"""Keys and values one transaction may carry: under etcd's default
``--max-request-bytes`` (1.5 MiB), leaving room for compares and framing. A
transaction over that limit fails whole, so a batch is cut by bytes as well
as by ops."""

MAX_RECORD_BYTES = 512 * 1024
"""The largest pod NIC record nicpool writes. A pod's annotations are capped
at 256 KiB by the apiserver, so only a hand-made request comes near it; one
over it is refused alone (``RecordTooLarge``), never failing a batch."""


def op_bytes(op: Op) -> int:
    """What an op adds to a transaction's request size (key, and value for a put)."""
    return len(op.key) + (len(op.value) if isinstance(op, Put) else 0)


def grown_size(known: tuple[int, int], ops: Sequence[Op]) -> tuple[int, int]:
    """``(ops counted, their bytes)`` brought up to date with ``ops``, a list that only
    grows: a plan asks its size once per request, and summing every op each time made
    a batch quadratic in its length."""
    counted, total = known
    return len(ops), total + sum(op_bytes(op) for op in ops[counted:])
