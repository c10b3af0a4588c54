"""Backup and restore: the whole prefix as one JSON document, and back.

Document (``format: nicpool-backup``, ``version: 1``)::

    {"format": "nicpool-backup", "version": 1, "store_format": "1",
     "prefix": "/nicpool/v1/", "revision": 1234, "created": "2026-...Z",
     "keys": [{"key": "subnets/net1/spec", "json": {...}, "style": "spaced"},
              {"key": "subnets/net1/cursor/4", "text": "17"},
              {"key": "subnets/net1/macs/02:..", "ref": "attachments/ns/pod/net1.ns"},
              {"key": "subnets/net1/bitmap/4/000000000000", "base64": "..."}]}

Keys are relative to the prefix, so a backup restores under another prefix.
Records are stored decoded (``json``) when re-encoding them gives back the
same bytes, so the file is readable and greppable (``jq``); other text as
``text``; bitmap chunks as ``base64``. Election keys are left out: they
belong to live etcd leases and mean nothing in another store.

Restore writes into an empty prefix only (it refuses otherwise: merging
two stores is how duplicates are made). Each transaction also compares
that each key it writes does not exist yet, so a controller that starts
writing during a restore makes the restore fail loudly rather than mix.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from typing import Any

from store.core.identity import Revision
from store.core.keys import FORMAT_VERSION, Keys
from store.core.ops import MAX_TXN_BYTES, MAX_TXN_OPS, CreateRevisionIs, KeyValue, Put
from store.etcd import EtcdClient

DOCUMENT_FORMAT = "nicpool-backup"
DOCUMENT_VERSION = 1


class BackupError(ValueError):
    """A backup document nicpoolctl cannot restore, or a target it must not touch."""


def _styles() -> tuple[dict[str, Any], dict[str, Any]]:
    # The two JSON styles the store writes (compact records, spaced specs).
    return {"separators": (",", ":"), "sort_keys": True}, {"sort_keys": True}


def encode_value(value: bytes, prefix: str) -> dict[str, Any]:
    """The most readable form of ``value`` that restores to exactly the same bytes.

    A value naming a key under ``prefix`` (the MAC index points at its
    attachment) is kept relative (``ref``), so it follows the restore's prefix.
    """
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}
    if text.startswith(prefix):
        return {"ref": text[len(prefix) :]}
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict | list):
        compact, spaced = _styles()
        if json.dumps(doc, **compact) == text:
            return {"json": doc}
        if json.dumps(doc, **spaced) == text:
            return {"json": doc, "style": "spaced"}
    return {"text": text}


def decode_value(entry: dict[str, Any], prefix: str) -> bytes:
    if "ref" in entry:
        return f"{prefix}{entry['ref']}".encode()
    if "json" in entry:
        compact, spaced = _styles()
        style = spaced if entry.get("style") == "spaced" else compact
        return json.dumps(entry["json"], **style).encode()
    if "text" in entry:
        return str(entry["text"]).encode()
    if "base64" in entry:
        return base64.b64decode(entry["base64"], validate=True)
    raise BackupError(f"entry for {entry.get('key')!r} has no json, text or base64 value")


def take_backup(client: EtcdClient, prefix: str, *, attempts: int = 5) -> dict[str, Any]:
    """The backup document of ``prefix``, from a scan no write interleaved with.

    The scan is paged, so a write landing mid-scan could give a backup that
    was never a state of the store. After each scan the keys and their
    mod_revisions are listed again (a paged keys-only read); the backup is
    taken only when nothing moved.
    """
    for _ in range(attempts):
        kvs = list(client.iter_prefix(prefix))
        seen = {kv.key: kv.mod_revision for kv in kvs}
        now = {kv.key: kv.mod_revision for kv in client.iter_prefix(prefix, keys_only=True)}
        if now == seen:
            return _document(prefix, kvs)
    raise BackupError(
        f"{prefix} kept changing during {attempts} scans; scale the controllers down "
        "and take the backup again"
    )


def _document(prefix: str, kvs: list[KeyValue]) -> dict[str, Any]:
    election = Keys(prefix).election
    return {
        "format": DOCUMENT_FORMAT,
        "version": DOCUMENT_VERSION,
        "store_format": FORMAT_VERSION,
        "prefix": prefix,
        "revision": max((kv.mod_revision for kv in kvs), default=0),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "keys": [
            {"key": kv.key[len(prefix) :], **encode_value(kv.value, prefix)}
            for kv in kvs
            if not kv.key.startswith(election)
        ],
    }


ELECTION = "election/"
"""Relative prefix of election keys: never restored (they belong to live etcd leases)."""


def check_document(doc: object, prefix: str) -> list[tuple[str, bytes]]:
    """The (relative key, value) pairs of a backup, to restore under ``prefix``;
    BackupError naming what is wrong. Election keys are checked, then left out
    (see :func:`skipped_keys`): restored without their lease, one would stand in
    the line of candidates forever."""
    if not isinstance(doc, dict) or doc.get("format") != DOCUMENT_FORMAT:
        raise BackupError(f"not a nicpool backup (expected format {DOCUMENT_FORMAT!r})")
    if doc.get("version") != DOCUMENT_VERSION:
        raise BackupError(
            f"backup document version {doc.get('version')!r}; this nicpoolctl reads "
            f"version {DOCUMENT_VERSION}"
        )
    if doc.get("store_format") != FORMAT_VERSION:
        raise BackupError(
            f"backup holds store format {doc.get('store_format')!r}; this nicpool uses "
            f"{FORMAT_VERSION!r} (migrate first)"
        )
    entries = doc.get("keys")
    if not isinstance(entries, list):
        raise BackupError("backup has no 'keys' list")
    pairs: list[tuple[str, bytes]] = []
    for entry in entries:
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not key or key.startswith("/") or ".." in key.split("/"):
            raise BackupError(f"bad key entry in backup: {entry!r}")
        try:
            value = decode_value(entry, prefix)
        except (ValueError, TypeError) as exc:
            raise BackupError(f"bad value for key {key!r}: {exc}") from exc
        if not key.startswith(ELECTION):
            pairs.append((key, value))
    return pairs


def skipped_keys(doc: dict[str, Any]) -> int:
    """How many entries of a checked document :func:`check_document` left out."""
    return sum(1 for entry in doc["keys"] if str(entry.get("key", "")).startswith(ELECTION))


def restore(client: EtcdClient, prefix: str, pairs: list[tuple[str, bytes]]) -> int:
    """Write ``pairs`` under an empty ``prefix``; returns how many keys were written."""
    Keys(prefix)  # validates the prefix's shape
    present = client.count_prefix(prefix)
    if present:
        raise BackupError(
            f"refusing to restore: prefix {prefix} already holds {present} keys "
            "(restore only into an empty prefix; delete it or choose another --etcd-prefix)"
        )
    for batch in _batches(pairs):
        compares = [CreateRevisionIs(f"{prefix}{key}", Revision(0)) for key, _ in batch]
        ops = [Put(f"{prefix}{key}", value) for key, value in batch]
        if not client.txn(compares, ops).succeeded:
            raise BackupError(
                f"restore interrupted: a key under {prefix} appeared while restoring "
                "(is a controller running? scale it down); the prefix is now partial"
            )
    return len(pairs)


def _batches(pairs: list[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    """Transactions of at most MAX_TXN_OPS keys and MAX_TXN_BYTES bytes each."""
    batch: list[tuple[str, bytes]] = []
    size = 0
    for key, value in pairs:
        grows = len(key) + len(value)
        if batch and (len(batch) == MAX_TXN_OPS or size + grows > MAX_TXN_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((key, value))
        size += grows
    if batch:
        yield batch
