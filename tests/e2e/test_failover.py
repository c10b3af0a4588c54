"""Three controller replicas; the leader is killed with SIGKILL while 200 pods are allocated.

What a user must see afterwards: every pod allocated, no address used
twice, and no lease in etcd without a live pod holding it (nothing leaked
by the half-done work of the dead leader, nothing done twice by the new one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from store.config import EtcdSettings
from store.etcd import connect
from store.leases import Ipam

pytestmark = pytest.mark.e2e
PODS = 200


@pytest.fixture
def replicas(control_plane: ControlPlane) -> Iterator[list[ControllerProcess]]:
    assert control_plane.etcd is not None
    prefix = f"/nicpool-e2e-{uuid.uuid4().hex[:6]}/v1/"
    processes = [
        ControllerProcess(
            control_plane.kubeconfig,
            control_plane.etcd.endpoint,
            prefix,
            identity=f"replica-{n}",
            extra_args=["--election-ttl=3", "--gc-interval=2", "--gc-grace=4"],
        ).start()
        for n in range(3)
    ]
    yield processes
    for process in processes:
        process.stop()


def test_kill_the_leader_during_allocation(
    control_plane: ControlPlane, kube_namespace: str, replicas: list[ControllerProcess]
) -> None:
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {
        "cniVersion": "1.0.0",
        "type": "macvlan",
        "ipam": {"type": "kube-ovn", "provider": provider},
    }
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(f"{ns}-e2e", provider=provider, cidrBlock="10.80.0.0/22")
    leader = wait_for("a leader", lambda: next((r for r in replicas if r.is_leader()), None), 60)

    def create(n: int) -> None:
        cluster.create_pod(ns, f"pod-{n:03d}", {"k8s.v1.cni.cncf.io/networks": f"{ns}/net"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(PODS)))
        allocated_key = f"{provider}.kubernetes.io/allocated"

        def some_allocated() -> bool:
            pods = cluster.core.list_namespaced_pod(ns).items
            return (
                sum((p.metadata.annotations or {}).get(allocated_key) == "true" for p in pods) >= 20
            )

        wait_for("allocation under way", some_allocated, 120, every=0.02)
        leader.kill()  # SIGKILL: no resign, no cleanup
    survivors = [r for r in replicas if r is not leader]
    successor = wait_for(
        "a new leader", lambda: next((r for r in survivors if r.is_leader()), None), 60
    )

    def all_allocated() -> list[str] | None:
        pods = cluster.core.list_namespaced_pod(ns).items
        ips = [
            (p.metadata.annotations or {}).get(f"{provider}.kubernetes.io/ip_address") for p in pods
        ]
        done = [(p.metadata.annotations or {}).get(allocated_key) == "true" for p in pods]
        return [ip for ip in ips if ip] if len(pods) == PODS and all(done) else None

    ips = wait_for("all 200 pods allocated", all_allocated, 180, every=0.5)
    assert len(set(ips)) == PODS, "an address was given twice"
    assert sum(r.is_leader() for r in replicas if r.alive()) == 1
    assert successor.alive()

    # etcd is authoritative: exactly one lease per pod, each held by a live pod's UID.
    uids = {p.metadata.name: p.metadata.uid for p in cluster.core.list_namespaced_pod(ns).items}
    assert control_plane.etcd is not None
    client = connect(EtcdSettings(endpoints=(control_plane.etcd.endpoint,)))
    attachments = [
        a for a in Ipam(client, replicas[0].prefix).attachments() if a.ref.pod.namespace == ns
    ]
    assert sorted(a.ref.pod.name for a in attachments) == sorted(uids)
    assert all(uids[a.ref.pod.name] == a.uid for a in attachments)
    assert sorted(a.ip_csv() for a in attachments) == sorted(ips)
