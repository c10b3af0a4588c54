"""``state.json``: what ``make cluster`` started, for ``make cluster-down`` and the tests.

Written after every step of the bring-up, so a bring-up that fails half way
is torn down as completely as a finished one. Holds the daemons' recorded
process ids, the machine's forwarded loopback ports, the access tokens and
the machine directories created as mountpoints.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ops.node.daemons import Pid


@dataclass
class State:
    daemons: dict[str, list[int]] = field(default_factory=dict)
    """name -> [pid, start time] (see :class:`ops.node.daemons.Pid`)."""
    ports: dict[str, int] = field(default_factory=dict)
    """Loopback ports on the machine: ``apiserver``, ``nicpool-etcd``, ``kube-etcd``."""
    tokens: dict[str, str] = field(default_factory=dict)
    created_dirs: list[str] = field(default_factory=list)
    kube_bin: str = ""
    """Directory of etcd and the Kubernetes binaries the node runs."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds from the start of the bring-up to each milestone."""

    def pid(self, name: str) -> Pid | None:
        raw = self.daemons.get(name)
        return Pid.from_json(raw) if raw else None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(**raw)
