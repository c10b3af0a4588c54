"""``nicpoolctl pools`` and the audit of IPPools and Vips, on what a real controller made.

A real controller allocates into a Subnet with a namespace-bound IPPool and
a Vip; ``pools`` reports the pool's usage as its status does, and the audit
finds nothing. Then one thing is broken at a time, as an operator could
find it: a pod of another namespace given a pool address, an IPPool that
overlaps an older one, a Vip's binding lost from etcd. Each shows up under
``pools`` or ``vips``, and the audit exits 1.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess
from ops.lab.kube import ControlPlane
from store.core.identity import SubnetName
from store.core.keys import Keys
from store.core.ops import Delete
from store.etcd import EtcdClient
from tests.controller.conftest import leading_controller
from tests.support.ctl import Ctl, connect

pytestmark = pytest.mark.controller
NETWORKS = "k8s.v1.cni.cncf.io/networks"


@dataclass
class World:
    cluster: Cluster
    ns: str
    provider: str
    subnet: str
    prefix: str
    ctl: Ctl
    etcd: EtcdClient
    pool: str
    vip: str

    def pod(self, name: str, namespace: str | None = None, **annotations: str) -> dict[str, str]:
        ns = namespace or self.ns
        extra = {f"{self.provider}.kubernetes.io/{k}": v for k, v in annotations.items()}
        self.cluster.create_pod(ns, name, {NETWORKS: f"{self.ns}/net", **extra})
        return self.cluster.allocated(ns, name, self.provider)

    def findings(self, kind: str, *, expect: int) -> list[dict[str, Any]]:
        report = self.ctl.json("audit", "--namespace", self.ns, expect=expect)
        assert report["ok"] is (expect == 0)
        found: list[dict[str, Any]] = report[kind]
        return found


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(control_plane, "ctlres")


@pytest.fixture
def world(
    control_plane: ControlPlane, controller: ControllerProcess, kube_namespace: str
) -> Iterator[World]:
    assert control_plane.etcd is not None
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "net", json.dumps(config))
    prefix = f"10.67.{int(uuid.uuid4().hex[:4], 16) % 250}"
    subnet, pool, vip = f"{ns}-net", f"{ns}-pool", f"{ns}-vip"
    cluster.create_subnet(subnet, provider=provider, cidrBlock=f"{prefix}.0/24")
    cluster.create_ippool(pool, subnet=subnet, ips=[f"{prefix}.10..{prefix}.13"], namespaces=[ns])
    cluster.create_vip(vip, subnet=subnet, namespace=ns)
    cluster.wait_condition("ippools", pool, "True")
    cluster.wait_condition("vips", vip, "True")
    ctl = Ctl(control_plane.etcd.endpoint, controller.prefix, str(control_plane.kubeconfig))
    etcd = connect(control_plane.etcd.endpoint)
    yield World(cluster, ns, provider, subnet, prefix, ctl, etcd, pool, vip)
    etcd.close()
    assert controller.alive(), controller.log_tail()


def test_pools_reports_usage_and_the_audit_is_clean(world: World) -> None:
    got = world.pod("bound")[f"{world.provider}.kubernetes.io/ip_address"]
    assert got.startswith(f"{world.prefix}.1") and int(got.rsplit(".", 1)[1]) in range(10, 14)
    world.pod("borrower", vip=world.vip)
    report = world.ctl.json("pools", "--subnet", world.subnet)
    [pool] = report["ippools"]
    assert (pool["ippool"], pool["state"], pool["namespaces"]) == (world.pool, "Ready", [world.ns])
    [v4] = pool["families"]
    assert (v4["total"], v4["used"], v4["available"], v4["using"]) == (4, 1, 3, got)
    text = world.ctl.run("pools", "--subnet", world.subnet)
    assert text.returncode == 0 and world.pool in text.stdout and "Ready" in text.stdout
    assert world.findings("vips", expect=0) == []


def test_a_pool_address_held_outside_its_namespaces_is_a_finding(world: World) -> None:
    other = f"{world.ns}-x"
    world.cluster.core.create_namespace({"metadata": {"name": other}})
    try:
        world.pod("stranger", other, ip_address=f"{world.prefix}.12")
        report = world.ctl.json("audit", "--namespace", other, expect=1)
        [finding] = report["pools"]
        assert finding["ippool"] == world.pool and finding["ips"] == [f"{world.prefix}.12"]
    finally:
        world.cluster.core.delete_namespace(other)


def test_an_overlapping_pool_is_a_finding(world: World) -> None:
    clash = f"{world.ns}-clash"
    world.cluster.create_ippool(
        clash, subnet=world.subnet, ips=[f"{world.prefix}.13"], namespaces=[world.ns]
    )
    world.cluster.wait_condition("ippools", clash, "False", "IPPoolOverlap")
    found = world.findings("pools", expect=1)
    assert len(found) == 1, found
    assert (found[0]["ippool"], found[0]["reason"]) == (clash, "IPPoolOverlap")
    states = {p["ippool"]: p["state"] for p in world.ctl.json("pools")["ippools"]}
    assert states[clash] == "IPPoolOverlap"


def test_a_lost_vip_binding_is_a_finding(world: World) -> None:
    world.pod("borrower", vip=world.vip)
    key = Keys(world.ctl.prefix).vip_binding(SubnetName(world.subnet), world.vip)
    assert world.etcd.get(key)[0] is not None
    world.etcd.txn([], [Delete(key)])  # as a botched manual repair would
    [finding] = world.findings("vips", expect=1)
    assert finding["vip"] == world.vip and finding["problem"] == "binding missing"


def test_release_refuses_a_vips_address_and_leases_name_the_vip(world: World) -> None:
    vip = world.cluster.kubeovn("vips", world.vip) or {}
    address = vip["status"]["v4ip"]
    done = world.ctl.run("release", address, "--force")
    assert done.returncode == 1 and f"reserved by Vip {world.vip}" in done.stderr
    listed = world.ctl.run("leases", "--subnet", world.subnet)
    assert f"Vip {world.vip}" in listed.stdout
    assert world.findings("vips", expect=0) == []  # nothing was touched
