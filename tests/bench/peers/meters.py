"""Where the time goes: CPU seconds per process and apiserver requests per verb.

Wall time alone does not say why a system is slow. Around every workload
the benchmark reads, for each process it started (kube-apiserver, the
apiserver's etcd, nicpool's etcd, the agent, the controller or floor
process), the user + system CPU seconds from ``/proc/<pid>/stat``; the
plugin processes the callers exec'd show up as this process's reaped
children (``os.times``); and the apiserver's own ``apiserver_request_total``
counter, by verb and resource, says how many requests the system made.
A system that is slow with idle cores is waiting (Whereabouts' lease
retries); one that is slow with busy cores is paying CPU somewhere, and the
table says where.
"""

from __future__ import annotations

import os
import re
import ssl
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

_REQUEST = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> dict[str, float]:
    """Resident set now and at its peak (VmRSS, VmHWM), in MiB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (the exec'd plugins)."""
    times = os.times()
    return times.children_user + times.children_system


def own_cpu() -> float:
    """CPU seconds of this process (creators, callers, watcher threads)."""
    times = os.times()
    return times.user + times.system


class Meter:
    """Snapshot CPU and apiserver counters now; :meth:`delta` says what changed since."""

    def __init__(self, pids: dict[str, int], server: str, token: str, ca_file: Path) -> None:
        self.pids = pids
        self.server = server
        self.token = token
        self.ca_file = ca_file
        self.cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.children = children_cpu()
        self.own = own_cpu()
        self.requests = self._requests()

    def _requests(self) -> Counter[str]:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            f"{self.server}/metrics", headers={"Authorization": f"Bearer {self.token}"}
        )
        counts: Counter[str] = Counter()
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                text = response.read().decode()
        except OSError:
            return counts
        for line in text.splitlines():
            match = _REQUEST.match(line)
            if match:
                labels = dict(_LABEL.findall(match.group(1)))
                if labels.get("resource") and labels.get("verb") not in ("WATCH", "LIST"):
                    key = f"{labels.get('verb')} {labels.get('resource')}"
                    counts[key] += int(float(match.group(2)))
        return counts

    def delta(self) -> dict[str, Any]:
        after = Meter(self.pids, self.server, self.token, self.ca_file)
        cpu = {name: round(after.cpu[name] - self.cpu[name], 2) for name in self.pids}
        cpu["plugins_and_children"] = round(after.children - self.children, 2)
        cpu["bench_process"] = round(after.own - self.own, 2)
        requests = after.requests - self.requests
        return {
            "cpu_seconds": {k: v for k, v in cpu.items() if v > 0},
            "apiserver_requests": dict(requests.most_common(8)),
        }
