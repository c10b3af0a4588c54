"""What the checker says: anomalies, each named by the invariant it breaks, and the totals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anomaly:
    kind: str
    at: float
    """When it happened, or when it was certain (a deadline passed)."""
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True)
class Settings:
    bound: float = 90.0
    """Fault-free seconds within which every pod must be allocated."""
    slack: float = 2.0
    """How much earlier than the watch saw it a pod nobody deleted may have gone."""


@dataclass(frozen=True)
class Verdict:
    anomalies: tuple[Anomaly, ...]
    operations: int
    """History entries examined (etcd writes, pod versions, intents, CNI results, ...)."""
    pods: int
    faults: int

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def kinds(self) -> set[str]:
        return {a.kind for a in self.anomalies}
