"""nicpoolctl against a real kube-apiserver and etcd: the cluster side of the repair kit.

Planted tests build a consistent state by hand (a lease in etcd, the pod
annotated as the controller would, its IP object), then break one thing
and check ``audit`` reports exactly that kind. ``release`` is refused while
the owner pod exists. ``rebuild`` recreates the store from annotations and
refuses conflicting claims. The last test runs the real controller: it
allocates, etcd is wiped, and ``rebuild --apply`` brings back the very
same leases.

Every test works in its own namespace and passes ``--namespace`` so pods
other tests leave in the shared apiserver do not show up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.examples import seed_nad_config
from ops.lab.kube import ControlPlane
from store.core.identity import AttachmentRef, PodRef, Provider
from store.core.keys import Keys
from store.core.records import Attachment
from store.etcd import EtcdClient
from tests.support.ctl import Ctl, allocate, connect, register

pytestmark = pytest.mark.controller
NETWORKS = "k8s.v1.cni.cncf.io/networks"


@dataclass
class Setup:
    """One namespace with a kube-ovn IPAM NAD, its Subnet (object + store) and a CLI."""

    ns: str
    provider: str
    subnet: str
    cluster: Cluster
    etcd: EtcdClient
    ctl: Ctl

    def pod(self, name: str, extra: dict[str, str] | None = None) -> str:
        """Create a pod attached to the NAD; returns its uid."""
        self.cluster.create_pod(self.ns, name, {NETWORKS: "macvlan", **(extra or {})})
        return str(self.cluster.core.read_namespaced_pod(name, self.ns).metadata.uid)

    def key(self, suffix: str) -> str:
        return f"{self.provider}.kubernetes.io/{suffix}"

    def annotations_of(self, att: Attachment) -> dict[str, str]:
        """What the controller writes for an allocated NIC."""
        return {
            self.key("allocated"): "true",
            self.key("ip_address"): att.ip_csv(),
            self.key("mac_address"): att.mac,
            self.key("cidr"): att.cidr_csv(),
            self.key("gateway"): att.gateway_csv(),
        }

    def allocated_pod(self, name: str, ip: str) -> Attachment:
        """A pod, its lease, its annotations and its IP object: all consistent."""
        uid = self.pod(name)
        att = allocate(
            self.etcd, self.ctl.prefix, name, self.subnet,
            namespace=self.ns, provider=self.provider, uid=uid, ips=[ip],
        )  # fmt: skip
        self.annotate(name, self.annotations_of(att))
        self.create_ip_object(att)
        return att

    def annotate(self, name: str, annotations: dict[str, str]) -> None:
        patch = {"metadata": {"annotations": annotations}}
        self.cluster.core.patch_namespaced_pod(name, self.ns, patch)

    def ip_name(self, pod: str) -> str:
        return f"{pod}.{self.ns}.{self.provider}"

    def create_ip_object(self, att: Attachment) -> None:
        body = {
            "apiVersion": "kubeovn.io/v1",
            "kind": "IP",
            "metadata": {
                "name": self.ip_name(att.ref.pod.name),
                "labels": {"app.kubernetes.io/managed-by": "nicpool"},
            },
            "spec": {
                "podName": att.ref.pod.name,
                "namespace": self.ns,
                "subnet": att.subnet,
                "ipAddress": att.ip_csv(),
                "v4IpAddress": att.ip_csv(),
                "macAddress": att.mac,
            },
        }
        self.cluster.custom.create_cluster_custom_object("kubeovn.io", "v1", "ips", body)

    def audit(self, expect: int) -> dict[str, Any]:
        report: dict[str, Any] = self.ctl.json("audit", "--namespace", self.ns, expect=expect)
        return report


def nad_config(provider: str) -> str:
    return json.dumps(seed_nad_config(ipam={"provider": provider}))


@pytest.fixture
def setup(control_plane: ControlPlane, kube_namespace: str, etcd_server: Any) -> Iterator[Setup]:
    ns = kube_namespace
    provider = f"macvlan.{ns}"
    subnet = f"ctl-{ns}"
    cluster = Cluster(control_plane.api_client())
    cluster.create_nad(ns, "macvlan", nad_config(provider))
    cluster.create_subnet(subnet, protocol="IPv4", provider=provider, cidrBlock="10.40.0.0/24")
    etcd = connect(etcd_server.endpoint)
    prefix = f"/nicpool-ctl-kube/{uuid.uuid4().hex[:8]}/v1/"
    register(etcd, prefix, subnet, "10.40.0.0/24", provider=provider)
    ctl = Ctl(etcd_server.endpoint, prefix, kubeconfig=str(control_plane.kubeconfig))
    yield Setup(ns, provider, subnet, cluster, etcd, ctl)
    for name in [i["metadata"]["name"] for i in _ip_objects(cluster, ns)]:
        cluster.delete_cluster_object("ips", name)
    cluster.delete_cluster_object("subnets", subnet)
    etcd.close()


def _ip_objects(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    found = cluster.custom.list_cluster_custom_object("kubeovn.io", "v1", "ips")
    return [i for i in found["items"] if (i.get("spec") or {}).get("namespace") == ns]


def only(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    others = {k: v for k, v in report.items() if isinstance(v, list) and k != kind and v}
    assert not others, f"unexpected findings besides {kind}: {others}"
    assert report["ok"] is False
    return list(report[kind])


# -- audit ---------------------------------------------------------------------


def test_consistent_pods_leases_and_ip_objects_pass(setup: Setup) -> None:
    setup.allocated_pod("a", "10.40.0.10")
    setup.allocated_pod("b", "10.40.0.11")
    report = setup.audit(expect=0)
    assert report["ok"] is True and report["kube"] is True
    text = setup.ctl.run("audit", "-n", setup.ns)
    assert text.returncode == 0 and "audit: OK" in text.stdout


def test_an_annotation_that_disagrees_with_the_lease_is_found(setup: Setup) -> None:
    setup.allocated_pod("a", "10.40.0.10")
    setup.annotate("a", {setup.key("ip_address"): "10.40.0.99"})
    [finding] = only(setup.audit(expect=1), "annotations_disagree")
    assert finding["pod"] == f"{setup.ns}/a" and finding["field"] == "ip_address"
    assert (finding["annotation"], finding["store"]) == ("10.40.0.99", "10.40.0.10")


def test_a_pod_annotated_as_allocated_without_a_lease_is_found(setup: Setup) -> None:
    setup.pod("claims", {setup.key("allocated"): "true", setup.key("ip_address"): "10.40.0.7"})
    [finding] = only(setup.audit(expect=1), "annotations_disagree")
    assert finding["store"] is None and finding["annotation"] == "10.40.0.7"


def test_an_attachment_whose_pod_is_gone_is_an_orphan(setup: Setup) -> None:
    setup.allocated_pod("stays", "10.40.0.10")
    setup.allocated_pod("goes", "10.40.0.11")
    setup.cluster.delete_pod(setup.ns, "goes")
    [finding] = only(setup.audit(expect=1), "orphans")
    assert finding["pod"] == f"{setup.ns}/goes" and finding["ips"] == ["10.40.0.11"]
    assert finding["problem"] == "pod is gone"


def test_an_ip_object_that_disagrees_with_the_lease_is_found(setup: Setup) -> None:
    setup.allocated_pod("a", "10.40.0.10")
    patch = {"spec": {"ipAddress": "10.40.0.50", "v4IpAddress": "10.40.0.50"}}
    setup.cluster.custom.patch_cluster_custom_object(
        "kubeovn.io", "v1", "ips", setup.ip_name("a"), patch
    )
    [finding] = only(setup.audit(expect=1), "ip_objects_disagree")
    assert finding == {
        "name": setup.ip_name("a"),
        "field": "ipAddress",
        "ip_object": "10.40.0.50",
        "store": "10.40.0.10",
    }


def test_a_missing_ip_object_is_found(setup: Setup) -> None:
    setup.allocated_pod("a", "10.40.0.10")
    setup.cluster.delete_cluster_object("ips", setup.ip_name("a"))
    [finding] = only(setup.audit(expect=1), "ip_objects_disagree")
    assert finding["name"] == setup.ip_name("a") and "missing" in finding["problem"]


# -- release -------------------------------------------------------------------


def test_release_is_refused_while_the_owner_pod_exists(setup: Setup) -> None:
    setup.allocated_pod("a", "10.40.0.10")
    refused = setup.ctl.run("release", "10.40.0.10")
    assert refused.returncode == 1
    assert f"pod {setup.ns}/a still exists" in refused.stderr
    assert setup.ctl.json("lease", "show", "10.40.0.10")["pod"] == "a"

    setup.cluster.delete_pod(setup.ns, "a")
    done = setup.ctl.run("release", "10.40.0.10")
    assert done.returncode == 0, done.stderr
    assert "released 10.40.0.10" in done.stdout
    assert f"deleted IP object {setup.ip_name('a')}" in done.stdout
    assert setup.cluster.ip_object(setup.ip_name("a")) is None
    assert setup.audit(expect=0)["ok"] is True


def test_release_force_never_frees_a_live_pods_address(setup: Setup) -> None:
    """Issue 8 item 15: it used to, and another pod could then get the address the
    live pod still used. Now the NIC is marked; the controller frees it once the
    pod is gone (tests/controller/test_controller_release.py)."""
    setup.allocated_pod("a", "10.40.0.10")
    done = setup.ctl.run("release", "10.40.0.10", "--force")
    assert done.returncode == 0, done.stderr
    assert "marked 10.40.0.10" in done.stdout
    shown = setup.ctl.json("lease", "show", "10.40.0.10")
    assert shown["pod"] == "a" and shown["release_requested"] is True
    assert setup.cluster.ip_object(setup.ip_name("a")) is not None


# -- rebuild -------------------------------------------------------------------


def _leases(ctl: Ctl) -> list[tuple[str, str, str, str]]:
    found = ctl.json("leases")["leases"]
    return sorted((x["ip"], x["pod"], x["provider"], x["mac"]) for x in found)


def test_rebuild_recreates_the_leases_from_annotations(setup: Setup) -> None:
    setup.allocated_pod("a", "10.40.0.10")
    setup.allocated_pod("b", "10.40.0.20")
    before = _leases(setup.ctl)
    empty = setup.ctl.with_prefix(setup.ctl.prefix.replace("/v1/", "/lost/v1/"))

    dry = empty.json("rebuild", "-n", setup.ns)
    assert dry["applied"] is False
    assert sorted(c["ips"][0] for c in dry["claims"]) == ["10.40.0.10", "10.40.0.20"]
    assert setup.etcd.count_prefix(empty.prefix) == 0  # a dry run writes nothing

    applied = empty.json("rebuild", "-n", setup.ns, "--apply")
    assert [o["status"] for o in applied["outcomes"]] == ["written", "written"]
    assert _leases(empty) == before
    assert empty.json("audit", "-n", setup.ns)["ok"] is True
    again = empty.json("rebuild", "-n", setup.ns, "--apply")
    assert [o["status"] for o in again["outcomes"]] == ["present", "present"]


def test_rebuild_refuses_two_pods_claiming_one_address(setup: Setup) -> None:
    claim = {setup.key("allocated"): "true", setup.key("ip_address"): "10.40.0.30"}
    setup.pod("first", {**claim, setup.key("mac_address"): "02:00:00:00:00:01"})
    setup.pod("second", {**claim, setup.key("mac_address"): "02:00:00:00:00:02"})
    setup.pod(
        "third",
        {
            setup.key("allocated"): "true",
            setup.key("ip_address"): "10.40.0.31",
            setup.key("mac_address"): "02:00:00:00:00:01",
        },
    )
    empty = setup.ctl.with_prefix(setup.ctl.prefix.replace("/v1/", "/lost/v1/"))
    done = empty.run("rebuild", "-n", setup.ns, "--apply")
    assert done.returncode == 1
    assert "conflict: address 10.40.0.30" in done.stdout
    assert "conflict: mac 02:00:00:00:00:01" in done.stdout
    assert "nothing written" in done.stdout
    assert setup.etcd.count_prefix(empty.prefix) == 0

    report = empty.json("rebuild", "-n", setup.ns, expect=1)
    conflicts = {(c["kind"], c["value"]): c["claimants"] for c in report["conflicts"]}
    p = setup.provider
    assert conflicts == {
        ("address", "10.40.0.30"): [f"{setup.ns}/first@{p}", f"{setup.ns}/second@{p}"],
        ("mac", "02:00:00:00:00:01"): [f"{setup.ns}/first@{p}", f"{setup.ns}/third@{p}"],
    }


def test_rebuild_skip_conflicts_writes_the_rest(setup: Setup) -> None:
    claim = {setup.key("allocated"): "true", setup.key("ip_address"): "10.40.0.30"}
    setup.pod("first", claim)
    setup.pod("second", claim)
    setup.pod("alone", {setup.key("allocated"): "true", setup.key("ip_address"): "10.40.0.40"})
    empty = setup.ctl.with_prefix(setup.ctl.prefix.replace("/v1/", "/lost/v1/"))
    report = empty.json("rebuild", "-n", setup.ns, "--apply", "--skip-conflicts", expect=1)
    assert [(o["nic"], o["status"]) for o in report["outcomes"]] == [
        (f"{setup.ns}/alone@{setup.provider}", "written")
    ]
    assert [x[0] for x in _leases(empty)] == ["10.40.0.40"]


# -- with the real controller -----------------------------------------------------


def test_rebuild_after_etcd_loss_restores_what_the_controller_allocated(
    control_plane: ControlPlane, setup: Setup
) -> None:
    assert control_plane.etcd is not None
    prefix = f"/nicpool-ctl-real/{uuid.uuid4().hex[:8]}/v1/"
    ctl = Ctl(setup.ctl.endpoint, prefix, kubeconfig=str(control_plane.kubeconfig))
    controller = ControllerProcess(
        control_plane.kubeconfig, setup.ctl.endpoint, prefix, identity="ctl-test"
    ).start()
    try:
        controller.wait_leader()
        setup.pod("fixed", {setup.key("ip_address"): "10.40.0.100"})
        for name in ("fixed", "dyn-0", "dyn-1"):
            if name != "fixed":
                setup.pod(name)
            setup.cluster.allocated(setup.ns, name, setup.provider)
        for name in ("fixed", "dyn-0", "dyn-1"):  # written after the annotations
            ip_object = f"{name}.{setup.ns}.{setup.provider}"
            wait_for(f"{ip_object} written", lambda n=ip_object: setup.cluster.ip_object(n))
    finally:
        controller.stop()
    before = _leases(ctl)
    assert len(before) == 3 and ("10.40.0.100", "fixed") in [lease[:2] for lease in before]
    assert ctl.json("audit", "-n", setup.ns)["ok"] is True

    setup.etcd.delete_prefix(prefix)  # etcd lost
    lost = ctl.run("audit", "-n", setup.ns, "--json")
    assert lost.returncode == 1
    assert len(json.loads(lost.stdout)["annotations_disagree"]) == 3

    applied = ctl.json("rebuild", "-n", setup.ns, "--apply")
    assert sorted(o["status"] for o in applied["outcomes"]) == ["written"] * 3
    assert _leases(ctl) == before
    assert ctl.json("audit", "-n", setup.ns)["ok"] is True
    ref = AttachmentRef(PodRef(setup.ns, "fixed"), Provider(setup.provider))
    assert setup.etcd.get(Keys(prefix).attachment(ref))[0] is not None
