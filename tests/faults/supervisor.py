"""Watching every process of the run: an exit the test did not cause is an anomaly.

The nemesis announces each process it is about to kill (:meth:`Supervisor.expect`,
by pid, before the signal), so an exit is "expected" only for that very
process; a replacement started later is watched afresh. An unexpected exit
is recorded with the log's tail and the process is started again, as its
Deployment or DaemonSet would, so the run goes on and shows what follows.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ops.lab.kube import ControlPlane
from tests.faults.history import History, ProcessExit
from tests.faults.system import System


@dataclass(frozen=True)
class Watched:
    name: str
    popen: subprocess.Popen[bytes] | None
    log_tail: Callable[[], str]
    restart: Callable[[], object] | None


class Supervisor:
    def __init__(self, system: System, history: History, *, every: float = 0.5) -> None:
        self.system, self.history, self.every = system, history, every
        self.expected: set[int] = set()
        self.seen: set[int] = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="supervisor")

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        self._thread.join(120)
        self.poll()  # a last look

    def expect(self, popen: subprocess.Popen[bytes] | None) -> None:
        """The test is about to end this process: its exit is no anomaly."""
        if popen is not None:
            with self.lock:
                self.expected.add(popen.pid)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.poll()

    def poll(self) -> None:
        for watched in self.watched():
            popen = watched.popen
            if popen is None or popen.poll() is None or popen.pid in self.seen:
                continue
            with self.lock:
                self.seen.add(popen.pid)
                expected = popen.pid in self.expected
            self.history.exits.append(
                ProcessExit(
                    at=time.time(),
                    process=watched.name,
                    code=int(popen.returncode),
                    expected=expected,
                    log_tail="" if expected else watched.log_tail(),
                )
            )
            if not expected and watched.restart is not None and not self.stop.is_set():
                watched.restart()

    def watched(self) -> list[Watched]:
        system = self.system
        found = [
            Watched(
                r.identity, r.process.popen, r.process.log_tail, partial(system.restart_replica, r)
            )
            for r in system.replicas
        ]
        found += [
            Watched(f"{n.name}-agent", n.agent.process, n.agent.log_text, n.agent.start)
            for n in system.nodes
        ]
        if system.etcd is not None:
            cluster = system.etcd
            for index, member in enumerate(cluster.members):
                if member.process is not None:
                    restart = partial(cluster.start_member, index, wait=False)
                    process = member.process
                    found.append(
                        Watched(f"etcd-{member.name}", process.popen, process.log_tail, restart)
                    )
        if system.plane is not None:
            plane = system.plane
            for name, popen in plane.components().items():
                tail = partial(_component_log, plane, name)
                found.append(Watched(name, popen, tail, partial(plane.restart, name)))
        if system.proxies is not None:
            found.append(Watched("faultproxyd", system.proxies.popen, str, None))
        return found


def _component_log(plane: ControlPlane, name: str) -> str:
    return plane.logs().get(name, "")
