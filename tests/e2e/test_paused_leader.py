"""A leader frozen past its lease (SIGSTOP: a long GC pause, a stalled VM) must not act on waking.

While it is stopped a standby takes over and allocates; when it resumes it
believes nothing has changed, but its etcd lease is gone: it must report
itself as no longer leading and every write it still attempts must fail its
fence. The user sees every pod allocated once, no address twice, and
the subnet usage exported by the new leader only.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(control_plane: ControlPlane) -> Iterator[list[ControllerProcess]]:
    assert control_plane.etcd is not None
    prefix = f"/nicpool-pause-{uuid.uuid4().hex[:6]}/v1/"
    processes = [
        ControllerProcess(
            control_plane.kubeconfig,
            control_plane.etcd.endpoint,
            prefix,
            identity=f"p{n}",
            extra_args=["--election-ttl=5"],  # a loaded machine never starves it
        ).start()
        for n in range(2)
    ]
    yield processes
    for process in processes:
        if process.popen is not None and process.alive():
            process.popen.send_signal(signal.SIGCONT)
        process.stop()


def test_a_paused_leader_wakes_up_deposed(
    control_plane: ControlPlane, kube_namespace: str, pair: list[ControllerProcess]
) -> None:
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(f"{ns}-pause", provider=provider, cidrBlock="10.91.0.0/24")
    leader = wait_for("a leader", lambda: next((p for p in pair if p.is_leader()), None))
    standby = next(p for p in pair if p is not leader)
    usage = f'family="4",state="total",subnet="{ns}-pause"'
    wait_for("the leader to export usage", lambda: leader.metric("nicpool_subnet_addresses", usage))
    assert leader.popen is not None
    leader.popen.send_signal(signal.SIGSTOP)
    wait_for("the standby to take over", standby.is_leader, 60)
    for n in range(20):
        cluster.create_pod(ns, f"while-paused-{n}", {"k8s.v1.cni.cncf.io/networks": f"{ns}/net"})
    leader.popen.send_signal(signal.SIGCONT)
    for n in range(20, 40):
        cluster.create_pod(ns, f"after-wake-{n}", {"k8s.v1.cni.cncf.io/networks": f"{ns}/net"})
    ips = []
    for pod in cluster.core.list_namespaced_pod(ns).items:
        got = cluster.allocated(ns, pod.metadata.name, provider)
        ips.append(got[f"{provider}.kubernetes.io/ip_address"])
    assert len(ips) == 40 and len(set(ips)) == 40
    wait_for(
        "the woken replica to know it does not lead", lambda: leader.metric("nicpool_leader") == 0.0
    )
    assert standby.is_leader() and leader.alive()
    # Deposed, it no longer exports pool numbers it stopped refreshing; the leader does.
    assert leader.metric("nicpool_subnet_addresses", usage) is None
    assert standby.metric("nicpool_subnet_addresses", usage) is not None
