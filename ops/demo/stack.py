"""The processes, namespaces and files the demo starts, and their teardown.

:class:`Stack` owns everything in one temporary directory. Each start method
registers what it made before waiting on it, so :meth:`Stack.close` can stop
a half-started stack (an error or Ctrl-C in the middle of a step). Teardown
order matters: controllers and agent first (they would log errors about a
vanished apiserver or etcd), then the pod namespaces (deleting a namespace
deletes its macvlan links), then the control plane and the directory.
:meth:`Stack.leftovers` checks afterwards that nothing survived.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ops.lab.cni import REFERENCE_PLUGINS, AgentProcess, install_plugin
from ops.lab.controllers import ControllerProcess
from ops.lab.kube import ControlPlane
from ops.lab.netns import NETNS_DIR, Lab
from ops.lab.ports import free_port

PREFIX = "/nicpool/v1/"
ELECTION_TTL = 3
CONTROLLER_PORTS = (10665, 10675, 10685)
AGENT_PORT = 10666


def port_or_free(wanted: int) -> int:
    """``wanted`` when nothing listens on it, else any free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: a port in TIME_WAIT from a previous run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            return free_port()
    return wanted


@dataclass
class Stack:
    assets: Path
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-demo-")))
    cp: ControlPlane | None = None
    controllers: list[ControllerProcess] = field(default_factory=list)
    agent: AgentProcess | None = None
    lab: Lab | None = None
    cni_path: list[Path] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    """Every process id the demo started, checked by :meth:`leftovers`."""

    @property
    def etcd_endpoint(self) -> str:
        assert self.cp is not None and self.cp.etcd is not None
        return self.cp.etcd.endpoint

    def start_control_plane(self) -> ControlPlane:
        kube_dir = self.workdir / "kube"
        kube_dir.mkdir()
        self.cp = ControlPlane(assets=self.assets, workdir=kube_dir)
        self.cp.start()
        self.pids += self.cp.pids()
        self.cp.install_crds()
        return self.cp

    def start_controllers(self) -> list[ControllerProcess]:
        """Three replicas, each confirmed to be the process serving its metrics port."""
        for n, wanted in enumerate(CONTROLLER_PORTS):
            self.controllers.append(self._spawn_controller(n, port_or_free(wanted)))
        for n, replica in enumerate(self.controllers):
            if not wait_listening(replica.pid, replica.metrics_port, replica.alive):
                # Another process took the port between the probe and the bind.
                retry = self.controllers[n] = self._spawn_controller(n, free_port())
                if not wait_listening(retry.pid, retry.metrics_port, retry.alive):
                    raise RuntimeError(f"{retry.identity} did not start:\n{retry.log_tail()}")
        return self.controllers

    def _spawn_controller(self, n: int, port: int) -> ControllerProcess:
        assert self.cp is not None
        replica = ControllerProcess(
            self.cp.kubeconfig,
            self.etcd_endpoint,
            PREFIX,
            identity=f"replica-{n}",
            extra_args=[f"--election-ttl={ELECTION_TTL}"],
            metrics_port=port,
            log_path=self.workdir / f"controller-{n}.log",
        )
        replica.start()
        self.pids.append(replica.pid)
        return replica

    def start_agent(self) -> AgentProcess:
        agent_dir = self.workdir / "agent"
        (agent_dir / "run").mkdir(parents=True)
        self.agent = AgentProcess(
            self.etcd_endpoint, PREFIX, workdir=agent_dir, metrics_port=port_or_free(AGENT_PORT)
        )
        try:
            self.agent.start()
        finally:
            if self.agent.process is not None:
                self.pids.append(self.agent.process.pid)
        return self.agent

    def start_lab(self) -> Lab:
        """The node's netns with its veth master, and the installed plugin."""
        self.lab = Lab()
        self.lab.start()
        plugin = install_plugin(self.workdir / "cni-bin")
        self.cni_path = [plugin.parent, REFERENCE_PLUGINS]
        return self.lab

    def close(self) -> list[tuple[str, float]]:
        """Stop everything; safe on a half-started stack, and twice. Seconds per part."""
        timings: list[tuple[str, float]] = []

        def timed(part: str, action: Callable[[], object]) -> None:
            started = time.monotonic()
            action()
            timings.append((part, time.monotonic() - started))

        timed("controllers", self._stop_controllers)
        if self.agent is not None:
            timed("agent", self.agent.stop)
        if self.lab is not None:
            timed("netns", self.lab.close)
        if self.cp is not None:
            timed("control plane", self.cp.stop)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return timings

    def _stop_controllers(self) -> None:
        """In parallel: each replica takes a few seconds to resign and drain."""
        if self.controllers:
            with ThreadPoolExecutor(len(self.controllers)) as pool:
                list(pool.map(lambda replica: replica.stop(), self.controllers))

    def leftovers(self) -> list[str]:
        """What :meth:`close` failed to remove: live pids, namespaces, the workdir."""
        found = [f"process {pid}" for pid in self.pids if _alive(pid)]
        tag = self.lab.tag if self.lab is not None else None
        if tag is not None and NETNS_DIR.is_dir():
            found += [f"netns {p.name}" for p in NETNS_DIR.iterdir() if p.name.startswith(tag)]
        if self.workdir.exists():
            found.append(f"directory {self.workdir}")
        return found


def wait_listening(pid: int, port: int, alive: Callable[[], bool], timeout: float = 60) -> bool:
    """True once ``pid`` listens on 127.0.0.1:``port``; False if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if _listening_inode(port) in _socket_inodes(pid):
            return True
        time.sleep(0.05)
    return False


def _listening_inode(port: int) -> str | None:
    """The inode of the TCP socket listening on 127.0.0.1:``port`` (/proc/net/tcp)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                return fields[9]
    return None


def _socket_inodes(pid: int) -> set[str | None]:
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return set()
    return {link[8:-1] for link in links if link.startswith("socket:[")}


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie we did not reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def os_is_root() -> bool:
    return os.geteuid() == 0
