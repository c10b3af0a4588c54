"""The system under test: every real part, each nicpool connection through a fault proxy.

::

    replica-N ──proxy replica-N-api──> kube-apiserver (its own etcd, + controller manager)
        └─────proxy replica-N-m0..m2──> etcd m0, m1, m2 (TLS: client, server, peer)
    node-N agent ─proxy node-N-m0..m2─┘    (etcd auth: controller read-write, agent read-only)
    node-N netns: macvlan master; pod namespaces get NICs through macvlan + kube-ovn

The recorders, the workload and ``nicpoolctl audit`` talk to the servers
directly: only nicpool's own connections are put through faults. Each
replica and each agent has proxies of its own, so the nemesis can cut one
process off while the others keep working.

:meth:`System.stop` stops everything that was started, in reverse order,
also after a failed start.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ops.lab.cni import REFERENCE_PLUGINS, AgentProcess, install_plugin
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.etcdcluster import EtcdCluster, nicpool_access
from ops.lab.faultproxyd import ProxyDaemon
from ops.lab.kube import ControlPlane
from ops.lab.netns import Lab

PREFIX = "/nicpool/v1/"


@dataclass(frozen=True)
class Knobs:
    """Timings of the system under test (short, so a run sees many terms of office)."""

    election_ttl: int = 3
    gc_interval: float = 3.0
    gc_grace: float = 6.0
    workers: int = 8
    lease_wait: float = 10.0
    replicas: int = 3
    nodes: int = 2
    auth: bool = True
    """etcd auth with nicpool's roles (controller read-write, agent read-only)."""


@dataclass
class Replica:
    identity: str
    process: ControllerProcess
    api_proxy: str
    etcd_proxies: list[str]

    @property
    def proxies(self) -> list[str]:
        return [self.api_proxy, *self.etcd_proxies]

    def leads(self) -> bool:
        return self.process.alive() and self.process.is_leader()


@dataclass
class Node:
    name: str
    agent: AgentProcess
    lab: Lab
    etcd_proxies: list[str]


@dataclass
class System:
    assets: Path
    knobs: Knobs = field(default_factory=Knobs)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-faults-")))
    proxies: ProxyDaemon | None = None
    etcd: EtcdCluster | None = None
    plane: ControlPlane | None = None
    replicas: list[Replica] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    cni_path: list[Path] = field(default_factory=list)
    keep: Path | None = None
    """Where to copy every process's log when stopping (None: nowhere)."""

    # -- start -----------------------------------------------------------------

    def start_servers(self) -> None:
        """The proxy process, the etcd cluster and the control plane (CRDs installed)."""
        self.proxies = ProxyDaemon(workdir=self._dir("proxies")).start()
        self.etcd = EtcdCluster(
            binary=self.assets / "etcd",
            workdir=self._dir("etcd"),
            auth_setup=nicpool_access(PREFIX) if self.knobs.auth else None,
        )
        self.etcd.start()
        self.plane = ControlPlane(assets=self.assets, workdir=self._dir("kube"))
        self.plane.start()
        self.plane.install_crds()

    def start_nicpool(self) -> None:
        """Replicas and node agents, each behind its own proxies; waits for a leader."""
        for n in range(self.knobs.replicas):
            self.replicas.append(self._replica(f"replica-{n}"))
        plugin = install_plugin(self._dir("cni-bin"))
        self.cni_path = [plugin.parent, REFERENCE_PLUGINS]
        for n in range(self.knobs.nodes):
            node = self._node(f"node-{n}")
            self.nodes.append(node)  # registered first: stop() cleans up a failed start
            node.lab.start()  # the node's namespace with its macvlan master
            node.agent.start()
        wait_for("a leader", self.leader, 90)

    def _dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _etcd_proxies(self, owner: str) -> tuple[list[str], str]:
        assert self.proxies is not None and self.etcd is not None
        names, urls = [], []
        for member in self.etcd.members:
            name = f"{owner}-{member.name}"
            port = self.proxies.add(name, "127.0.0.1", member.client_port)
            names.append(name)
            urls.append(f"https://127.0.0.1:{port}")
        return names, ",".join(urls)

    def _replica(self, identity: str) -> Replica:
        assert self.proxies is not None and self.etcd is not None and self.plane is not None
        api = f"{identity}-api"
        port = self.proxies.add(api, "127.0.0.1", self.plane.port)
        kubeconfig = self.plane.admin_kubeconfig_via(
            f"https://127.0.0.1:{port}", self.workdir / f"{identity}.kubeconfig"
        )
        etcd_names, endpoints = self._etcd_proxies(identity)
        knobs = self.knobs
        process = ControllerProcess(
            kubeconfig,
            endpoints,
            PREFIX,
            identity=identity,
            extra_args=[
                *self.etcd.client_flags("nicpool-controller"),
                f"--election-ttl={knobs.election_ttl}",
                f"--gc-interval={knobs.gc_interval}",
                f"--gc-grace={knobs.gc_grace}",
                f"--workers={knobs.workers}",
            ],
            log_path=self.workdir / f"{identity}.log",
        )
        return Replica(identity, process.start(), api, etcd_names)

    def _node(self, name: str) -> Node:
        assert self.etcd is not None
        etcd_names, endpoints = self._etcd_proxies(name)
        agent = AgentProcess(
            endpoints,
            PREFIX,
            lease_wait=self.knobs.lease_wait,
            workdir=self._dir(name),
            node_name=name,
            extra_args=self.etcd.client_flags("nicpool-agent"),
        )
        return Node(name, agent, Lab(), etcd_names)

    # -- acting on it ----------------------------------------------------------

    def leader(self) -> Replica | None:
        return next((r for r in self.replicas if r.leads()), None)

    def restart_replica(self, replica: Replica) -> None:
        """A new process for the replica (what its Deployment would do), same flags."""
        old = replica.process
        replica.process = ControllerProcess(
            old.kubeconfig,
            old.etcd_endpoint,
            old.prefix,
            identity=old.identity,
            extra_args=old.extra_args,
            metrics_port=old.metrics_port,
            log_path=old.log_path,
        ).start()

    def restart_agent(self, node: Node) -> None:
        node.agent.stop()
        node.agent.start()

    # -- stop --------------------------------------------------------------------

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.process.popen is not None and replica.process.alive():
                replica.process.popen.send_signal(signal.SIGCONT)
            replica.process.stop()
        for node in self.nodes:
            node.agent.stop()
            node.lab.close()
        self._keep_logs()
        if self.plane is not None:
            self.plane.stop()
        if self.etcd is not None:
            self.etcd.destroy()
        if self.proxies is not None:
            self.proxies.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _keep_logs(self) -> None:
        """Copy every log (servers still running: theirs are complete enough) to ``keep``."""
        if self.keep is None:
            return
        for log in self.workdir.rglob("*.log"):
            target = self.keep / log.relative_to(self.workdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, target)
