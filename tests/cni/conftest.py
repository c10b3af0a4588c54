"""Fixtures for the cni tier: network namespaces, the installed plugin, the
agent as a process, and leases written into the real etcd through the store.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.lab import netns
from ops.lab.cni import (
    REFERENCE_PLUGINS,
    AgentProcess,
    CniOutcome,
    exec_plugin,
    install_plugin,
    pod_args,
)
from ops.lab.etcd import EtcdServer
from ops.lab.netns import Lab, Netns, ip
from store.core.identity import AttachmentRef, Mac, PodRef, PodUID, Provider, SubnetName
from store.core.records import Attachment, Route
from store.core.requests import UNFENCED, AllocationRequest
from store.core.subnetspec import parse_subnet_spec
from store.errors import PermanentError
from store.etcd import EtcdClient
from store.leases import Ipam
from store.subnets import Subnets
from tests.cni.hostile import Smuggled
from tests.support.components import missing

SEED_SOCKET = "/run/openvswitch/kube-ovn-daemon.sock"


@pytest.fixture(scope="session")
def netns_ready() -> None:
    reason = netns.why_unavailable()
    if reason is not None:
        missing("network namespaces", reason)


@pytest.fixture(scope="session")
def reference_plugins() -> Path:
    for name in ("macvlan", "bridge", "host-local"):
        if not os.access(REFERENCE_PLUGINS / name, os.X_OK):
            missing(
                f"CNI reference plugin {name}",
                f"install containernetworking-plugins (make deps) or set NICPOOL_CNI_PLUGINS; "
                f"looked in {REFERENCE_PLUGINS}",
            )
    return REFERENCE_PLUGINS


@pytest.fixture(scope="session")
def cni_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNI bin dir holding only ``kube-ovn``, installed as one file (-IS shebang)."""
    return install_plugin(tmp_path_factory.mktemp("cni-bin")).parent


@pytest.fixture(scope="session")
def kube_ovn(cni_bin: Path) -> Path:
    return cni_bin / "kube-ovn"


@pytest.fixture
def cni_path(cni_bin: Path, reference_plugins: Path) -> list[Path]:
    return [cni_bin, reference_plugins]


class SettledLab(netns.Lab):
    """The lab, with IPv6 duplicate address detection off in each namespace.

    Otherwise every link's link-local address stays tentative for a second
    or two after the link comes up, and its local route appears only then:
    the kernel would still be changing the namespaces while a test compares
    them before and after a plugin call (tests/cni/hostile.py).
    """

    def create(self, role: str) -> Netns:
        ns = super().create(role)
        for scope in ("all", "default"):
            ip_netns_sysctl(ns.name, f"net.ipv6.conf.{scope}.accept_dad=0")
        return ns


def ip_netns_sysctl(name: str, setting: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", name, "sysctl", "-qw", setting], check=True, capture_output=True
    )


@pytest.fixture
def lab(netns_ready: None) -> Iterator[netns.Lab]:
    with SettledLab() as created:
        yield created


ALLOWED_BRIDGES = ("br-nicpool*",)
"""What the test node's agent lets main-plugin NICs join (``--bridges``)."""


@pytest.fixture
def agent(etcd_server: EtcdServer, etcd_prefix: str) -> Iterator[AgentProcess]:
    """The real agent process; short lease wait so 'no lease' tests end quickly."""
    with AgentProcess(
        etcd_server.endpoint, etcd_prefix, lease_wait=2.0, bridges=ALLOWED_BRIDGES
    ) as process:
        yield process


class Leases:
    """Subnets and leases written through the store API, as the controller would."""

    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self.ipam = Ipam(client, prefix)
        self.subnets = Subnets(client, prefix)

    def subnet(self, name: str, cidr: str, provider: str, gateway: str, **kw: Any) -> None:
        spec = parse_subnet_spec(name, cidr_block=cidr, provider=provider, gateway=gateway, **kw)
        self.subnets.put(spec, fence=UNFENCED)

    def seed_subnet(self, provider: str = "macvlan.default", name: str = "macvlan") -> None:
        """The seed's Subnet: 172.17.0.0/16, gateway .1, .0-.10 excluded."""
        self.subnet(
            name, "172.17.0.0/16", provider, "172.17.0.1", exclude_ips=["172.17.0.0..172.17.0.10"]
        )

    def allocate(
        self,
        pod: str,
        provider: str,
        *,
        subnet: str = "macvlan",
        namespace: str = "default",
        interface: str = "net1",
        **kw: Any,
    ) -> Attachment:
        request = AllocationRequest(
            ref=AttachmentRef(PodRef(namespace, pod), Provider(provider)),
            uid=PodUID(kw.pop("uid", f"uid-{pod}")),
            subnet=SubnetName(subnet),
            interface=interface,
            mac=Mac(kw.pop("mac")) if "mac" in kw else None,
            routes=tuple(Route(r.get("dst", ""), r["gw"]) for r in kw.pop("routes", ())),
            **kw,
        )
        (result,) = self.ipam.allocate([request], fence=UNFENCED)
        if isinstance(result, PermanentError):
            raise result
        return result


def container_id() -> str:
    return secrets.token_hex(16)


class Runner:
    """Runs one plugin for one pod NIC as the runtime (or Multus) would."""

    def __init__(self, lab: Lab, agent: AgentProcess, cni_path: list[Path], pod: Netns) -> None:
        self.lab, self.agent, self.cni_path, self.pod = lab, agent, cni_path, pod
        self.container = container_id()

    def __call__(
        self,
        command: str,
        config: dict[str, Any],
        *,
        plugin: str = "macvlan",
        ifname: str = "net1",
        name: str = "samplepod",
        extra_args: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> CniOutcome:
        assert self.lab.host is not None
        return exec_plugin(
            self.cni_path[-1] / plugin if plugin != "kube-ovn" else self.cni_path[0] / plugin,
            command,
            config,
            cni_path=self.cni_path,
            container_id=self.container,
            ifname=ifname,
            netns_path=self.pod.path,
            cni_args={**pod_args("default", name), **(extra_args or {})},
            netns=self.lab.host.name,
            openvswitch_dir=self.agent.socket.parent,
            env=env,
        )


@pytest.fixture
def run(lab: Lab, agent: AgentProcess, cni_path: list[Path]) -> Runner:
    return Runner(lab, agent, cni_path, lab.pod("samplepod"))


@pytest.fixture
def leases(client: EtcdClient, etcd_prefix: str) -> Leases:
    return Leases(client, etcd_prefix)


@pytest.fixture
def smuggled(tmp_path: Path) -> Iterator[Smuggled]:
    payload = Smuggled(f"pwn{secrets.token_hex(3)}", tmp_path / "pwned")
    yield payload
    ip("netns", "del", payload.name, check=False)  # only ever there on a vulnerable plugin
