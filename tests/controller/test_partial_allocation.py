"""A pod whose second subnet fails after its first committed leaks nothing (issue 8 item 10).

``Ipam.allocate`` commits subnet by subnet. When a later subnet fails for a
while (etcd unavailable for it, retries exhausted), the NICs already
committed come back in ``PartialAllocation``; the controller used to drop
them, so a pod deleted before its retry succeeded left its first address
leased for good (nothing in the index to release on deletion). Now what
committed is indexed at once, and the pod's deletion releases it.

The GC (which would also find such an orphan, after ``gc_grace``) is kept
out of it with a grace far longer than the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from store import leases
from store.core.identity import SubnetName
from store.errors import Unavailable
from store.leases import Ipam
from tests.controller.inprocess import start_controller

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture
def two_networks(
    control_plane: ControlPlane, kube_namespace: str
) -> Iterator[tuple[Cluster, str, str, str]]:
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    first = cluster.ipam_network(ns, f"{ns}-a", "10.93.0.0/24", name="net-a")
    second = cluster.ipam_network(ns, f"{ns}-b", "10.94.0.0/24", name="net-b")
    yield cluster, ns, first, second
    for subnet in (f"{ns}-a", f"{ns}-b"):
        cluster.delete_cluster_object("subnets", subnet)


def test_the_first_subnets_address_is_released_when_the_second_never_came(
    control_plane: ControlPlane,
    two_networks: tuple[Cluster, str, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster, ns, _first, second = two_networks
    broken = SubnetName(f"{ns}-b")
    real_commit = Ipam._commit_batch
    real_retrying = leases.retrying

    def unavailable_for_b(self: Ipam, subnet: SubnetName, *args: Any) -> None:
        if subnet == broken:
            raise Unavailable("injected: etcd unavailable for this subnet's transactions")
        real_commit(self, subnet, *args)

    monkeypatch.setattr(Ipam, "_commit_batch", unavailable_for_b)
    # Retries give up within a second instead of 30 s: the same path, sooner.
    monkeypatch.setattr(
        leases, "retrying", lambda op, **kw: real_retrying(op, **{**kw, "deadline": 1.0})
    )
    handle = start_controller(control_plane, gc_grace=3600.0)
    try:
        cluster.create_pod(ns, "two-nics", {NETWORKS: f"{ns}/net-a, {ns}/net-b"})

        def first_leased() -> list[Any]:
            return [
                a
                for a in handle.rt.ipam.attachments(SubnetName(f"{ns}-a"))
                if a.ref.pod.name == "two-nics"
            ]

        wait_for("the first NIC committed", first_leased, 60)
        assert f"{second}.kubernetes.io/allocated" not in cluster.annotations(ns, "two-nics")

        cluster.delete_pod(ns, "two-nics")
        wait_for("the first NIC released", lambda: not first_leased(), 30)
    finally:
        handle.stop()
