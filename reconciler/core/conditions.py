"""Status conditions as Kube-OVN writes them on Subnets, IPPools and Vips.

Kube-OVN keeps a ``Ready`` and an ``Error`` condition (``type``, ``status``
``True``/``False``, ``reason``, ``message``, ``lastUpdateTime``,
``lastTransitionTime``, ``observedGeneration``). nicpool writes the same
two: a usable object is ``Ready=True`` / ``Error=False``; a refused one
``Ready=False`` / ``Error=True`` with the refusal's reason; one whose
deletion waits for its leases ``Ready=False`` (reason ``...InUse``) /
``Error=False``. Other condition types already on the object are kept.

:func:`merged` is pure: the caller passes the clock's value, and an
unchanged condition keeps its timestamps, so a status that did not change
compares equal and is not written again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

READY = "Ready"
ERROR = "Error"


@dataclass(frozen=True)
class Verdict:
    """What the controller concluded about one object."""

    ready: bool
    reason: str
    message: str = ""
    error: bool = False
    """True when the object is refused (Error=True), not merely waiting."""

    @classmethod
    def ok(cls, reason: str, message: str = "") -> Verdict:
        return cls(True, reason, message)

    @classmethod
    def refused(cls, reason: str, message: str) -> Verdict:
        return cls(False, reason, message, error=True)

    @classmethod
    def waiting(cls, reason: str, message: str) -> Verdict:
        return cls(False, reason, message)


def merged(
    current: Sequence[Mapping[str, Any]] | None, verdict: Verdict, *, generation: int, now: str
) -> list[dict[str, Any]]:
    """``current`` conditions with Ready and Error set from ``verdict``."""
    error_reason = verdict.reason if verdict.error else "NoError"
    error_message = verdict.message if verdict.error else ""
    wanted = {
        READY: (verdict.ready, verdict.reason, verdict.message),
        ERROR: (verdict.error, error_reason, error_message),
    }
    found = [dict(c) for c in current or [] if isinstance(c, Mapping)]
    out = [c for c in found if c.get("type") not in wanted]
    for kind, (truth, reason, message) in wanted.items():
        old = next((c for c in found if c.get("type") == kind), None)
        status = "True" if truth else "False"
        condition = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message[:1000],
            "observedGeneration": generation,
        }
        unchanged = old is not None and all(old.get(k) == v for k, v in condition.items())
        if unchanged and old is not None:
            out.append(old)
            continue
        condition["lastUpdateTime"] = now
        condition["lastTransitionTime"] = (
            old.get("lastTransitionTime", now)
            if old is not None and old.get("status") == status
            else now
        )
        out.append(condition)
    return sorted(out, key=lambda c: str(c.get("type")))


def condition(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any]:
    """The condition of ``kind`` (empty when absent)."""
    return next(
        (c for c in conditions or [] if isinstance(c, Mapping) and c.get("type") == kind), {}
    )
