"""nicpool and host-local as systems of the peers benchmark (Whereabouts has its own module).

**nicpool** is the real thing, as deployed: the ``nicpool-controller``
process (started for each workload and stopped after it, so it never
competes with another system for the two cores), ``nicpool-agent``, and
the ``kube-ovn`` plugin installed as the single file a node holds. Its
state lives in an etcd of its own with fsync on. Each workload gets a NAD
and a Subnet per NIC in a fresh namespace; a pod is allocated by the
controller when it is created, and the plugin's ADD asks the agent, which
answers from etcd or waits for the lease.

**host-local** is the CNI reference plugin installed by Debian (Go,
node-local files, no coordination at all): the lower bound for an exec'd
IPAM plugin on this machine.

Every system creates the same NADs and annotates its pods the same way
(the Multus networks annotation), so the apiserver stores the same objects
whichever system runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ops.lab.cni import REFERENCE_PLUGINS, AgentProcess
from ops.lab.controllers import ControllerProcess
from reconciler.kube.client import KubeClient
from reconciler.kube.resources import NADS, SUBNETS
from store.etcd import EtcdClient
from tests.bench.peers.plugins import network, run_plugin
from tests.bench.peers.workload import Pod

NETWORKS = "k8s.v1.cni.cncf.io/networks"


def networks_annotation(namespace: str, nics: int) -> dict[str, str]:
    return {NETWORKS: ",".join(f"{namespace}/net{nic}" for nic in range(nics))}


def create_nads(kube: KubeClient, namespace: str, configs: list[bytes]) -> None:
    for nic, config in enumerate(configs):
        body = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": f"net{nic}", "namespace": namespace},
            "spec": {"config": config.decode()},
        }
        kube.create(NADS, namespace, body)


@dataclass(frozen=True)
class NicpoolStore:
    """nicpool's side of a bench run: its own etcd (endpoint and a client), the key
    prefix and the apiserver's kubeconfig; every nicpool process starts from it."""

    kubeconfig: Path
    etcd: EtcdClient
    etcd_endpoint: str
    prefix: str

    def controller(self, identity: str) -> ControllerProcess:
        """A controller process on this store (not started)."""
        return ControllerProcess(
            self.kubeconfig, self.etcd_endpoint, self.prefix, identity=identity
        )


class Nicpool:
    name = "nicpool"

    def __init__(
        self, kube: KubeClient, *, store: NicpoolStore, agent: AgentProcess, plugin: Path
    ) -> None:
        self.kube = kube
        self.store = store
        self.agent = agent
        self.plugin = plugin
        self.controller: ControllerProcess | None = None
        self.subnets: list[str] = []

    def start(self) -> None:
        self.controller = self.store.controller("bench-peers")
        self.controller.start()
        self.controller.wait_leader()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def prepare(self, namespace: str, index: int, nics: int) -> list[bytes]:
        configs = []
        self.subnets = []
        for nic in range(nics):
            provider = f"net{nic}.{namespace}"
            ipam = {"type": "kube-ovn", "server_socket": str(self.agent.socket)}
            configs.append(network(f"net{nic}", {**ipam, "provider": provider}))
            subnet = f"{namespace}-net{nic}"
            spec = {"provider": provider, "protocol": "IPv4"}
            spec["cidrBlock"] = f"10.{100 + 2 * index + nic}.0.0/16"
            body = {"apiVersion": "kubeovn.io/v1", "kind": "Subnet"}
            self.kube.create(SUBNETS, None, {**body, "metadata": {"name": subnet}, "spec": spec})
            self.subnets.append(subnet)
        create_nads(self.kube, namespace, configs)
        self._wait(lambda: all(self._has(f"subnets/{s}/spec") for s in self.subnets), 60)
        return configs

    def pod_annotations(self, namespace: str, nics: int) -> dict[str, str]:
        return networks_annotation(namespace, nics)

    def done_keys(self, namespace: str, nics: int) -> list[str]:
        return [f"net{nic}.{namespace}.kubernetes.io/allocated" for nic in range(nics)]

    def cni(self, command: str, config: bytes, pod: Pod, ifname: str) -> str | None:
        return run_plugin(self.plugin, command, config, pod, ifname)

    def leases(self) -> int:
        """Leases left in the current workload's subnets."""
        return sum(
            self.store.etcd.count_prefix(f"{self.store.prefix}subnets/{s}/leases/")
            for s in self.subnets
        )

    def settle(self, timeout: float = 300.0) -> float:
        """Wait until the controller released every lease of the workload; the seconds it took."""
        return self._wait(lambda: self.leases() == 0, timeout)

    def _has(self, key: str) -> bool:
        return self.store.etcd.count_prefix(f"{self.store.prefix}{key}") > 0

    @staticmethod
    def _wait(probe: Callable[[], bool], timeout: float) -> float:
        started = time.monotonic()
        while not probe():
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"not settled after {timeout} s")
            time.sleep(0.1)
        return time.monotonic() - started


class ExecPeer:
    """A peer that is only its plugin binary: every ADD and DEL is a process of
    its own, nothing runs between calls, and nothing marks a pod done."""

    binary: Path

    def start(self) -> None:
        """Nothing runs between calls."""

    def stop(self) -> None:
        """See :meth:`start`."""

    def pod_annotations(self, namespace: str, nics: int) -> dict[str, str]:
        return networks_annotation(namespace, nics)

    def done_keys(self, namespace: str, nics: int) -> list[str]:
        return []

    def cni(self, command: str, config: bytes, pod: Pod, ifname: str) -> str | None:
        return run_plugin(self.binary, command, config, pod, ifname)


class HostLocal(ExecPeer):
    name = "host-local"

    def __init__(self, kube: KubeClient, workdir: Path) -> None:
        self.kube = kube
        self.binary = REFERENCE_PLUGINS / "host-local"
        self.data_dir = workdir / "host-local"

    def prepare(self, namespace: str, index: int, nics: int) -> list[bytes]:
        configs = []
        for nic in range(nics):
            ipam = {"type": "host-local", "subnet": f"10.{200 + 2 * index + nic}.0.0/16"}
            configs.append(network(f"net{nic}", {**ipam, "dataDir": str(self.data_dir)}))
        create_nads(self.kube, namespace, configs)
        return configs
