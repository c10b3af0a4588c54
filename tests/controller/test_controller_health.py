"""The controller never stops working silently (issue 8, items 4 and 5).

* A worker thread that died (an exception escaping its loop) used to stay
  dead while ``/readyz`` stayed green; once every worker had died nothing
  was allocated. Now every loop survives and ``/readyz`` reports a dead
  thread or a stuck informer.
* A takeover step that failed (a temporary etcd error, a page of large
  records over gRPC's limit) used to kill the process, and then every later
  leader too. Now it is retried, and a new leader never exits on it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from reconciler import workers
from store.config import EtcdSettings
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, SubnetName
from store.core.records import Route
from store.core.requests import UNFENCED, AllocationRequest
from store.errors import Unavailable
from store.etcd import connect
from store.leases import Ipam
from tests.controller.inprocess import start_controller

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture
def network(control_plane: ControlPlane, kube_namespace: str) -> Iterator[tuple[Cluster, str, str]]:
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = cluster.ipam_network(ns, f"{ns}-net", "10.92.0.0/24")
    yield cluster, ns, provider
    cluster.delete_cluster_object("subnets", f"{ns}-net")


def raise_for_pods_named(
    monkeypatch: pytest.MonkeyPatch, word: str, error: BaseException, *, once: bool = False
) -> None:
    """A worker processing a pod whose name holds ``word`` raises ``error``
    (only the first time when ``once``)."""
    real = workers.process
    raised: list[str] = []

    def failing(rt: Any, key: Any, on_fenced_out: Any) -> None:
        if word in key[1] and not (once and raised):
            raised.append(key[1])
            raise error
        real(rt, key, on_fenced_out)

    monkeypatch.setattr(workers, "process", failing)


def test_workers_survive_any_exception_and_keep_allocating(
    control_plane: ControlPlane, network: tuple[Cluster, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, ns, provider = network
    bug = OverflowError("a bug escaping the workflow (as 2.0**1024 once did)")
    raise_for_pods_named(monkeypatch, "boom", bug)
    handle = start_controller(control_plane, workers=2)
    try:
        for n in range(6):  # three times as many bugs as workers
            cluster.create_pod(ns, f"boom-{n}", {NETWORKS: f"{ns}/net"})
        cluster.create_pod(ns, "after", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, "after", provider)
        handle.wait_settled()  # ready: no worker died
    finally:
        handle.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_readyz_reports_a_worker_thread_that_died(
    control_plane: ControlPlane, network: tuple[Cluster, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop survives every Exception; what still ends a thread (a SystemExit
    raised in it, a BaseException of a library) must turn ``/readyz`` false,
    so the kubelet takes the replica out of rotation instead of leaving it
    green with fewer workers, or none."""
    cluster, ns, provider = network
    # Once: a later visit of the same pod (a takeover revisits every pod, a
    # relist may) would end the other worker too.
    raise_for_pods_named(monkeypatch, "ends", SystemExit("something no loop catches"), once=True)
    handle = start_controller(control_plane, workers=2)
    try:
        handle.wait_settled()
        assert handle.controller.readiness() == (True, "ok")
        cluster.create_pod(ns, "ends-1", {NETWORKS: f"{ns}/net"})
        wait_for(
            "a dead worker reported",
            lambda: any(p.startswith("thread") for p in handle.controller.problems()),
            60,
        )
        ready, why = handle.controller.readiness()
        assert not ready
        assert re.search(r"^thread \S+ died$", why, re.M), why
        cluster.create_pod(ns, "after", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, "after", provider)  # the other worker still serves
    finally:
        handle.stop()


def test_readyz_turns_false_while_an_informer_is_stuck(
    control_plane: ControlPlane, network: tuple[Cluster, str, str]
) -> None:
    cluster, ns, provider = network
    handle = start_controller(control_plane, watch_timeout=2)
    try:
        handle.wait_settled()  # ready: every informer synced and heard from
        handle.kube.hold_pod_watch()  # the next pod watch hangs, as a black hole would
        wait_for(
            "the pod informer reported stuck",
            lambda: any("informer pods " in p for p in handle.controller.problems()),
            60,
        )
        assert not handle.controller.ready()
        handle.kube.release_pod_watch()
        wait_for("readiness to come back", handle.controller.ready, 60)
        cluster.create_pod(ns, "still-served", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, "still-served", provider)
    finally:
        handle.stop()


def test_a_takeover_over_records_larger_than_one_grpc_response_leads(
    control_plane: ControlPlane, network: tuple[Cluster, str, str]
) -> None:
    """About 20 pods with large routes made one 1000-attachment page exceed gRPC's
    4 MiB response limit: every replica crashed while loading its index."""
    cluster, ns, provider = network
    assert control_plane.etcd is not None
    prefix = f"/nicpool-takeover-{uuid.uuid4().hex[:6]}/v1/"
    first = ControllerProcess(control_plane.kubeconfig, control_plane.etcd.endpoint, prefix)
    first.start().wait_leader()  # registers the Subnet, then goes away
    wait_for("subnet registered", lambda: cluster.subnet(f"{ns}-net").get("status"))
    first.stop()
    client = connect(EtcdSettings(endpoints=(control_plane.etcd.endpoint,)))
    routes = tuple(Route(dst=f"10.{n // 256}.{n % 256}.0/24", gw="10.92.0.1") for n in range(4700))
    ipam = Ipam(client, prefix)
    for n in range(25):  # ~210 KB each, ~5 MB in all
        cluster.create_pod(ns, f"big-{n}", {})
        uid = cluster.core.read_namespaced_pod(f"big-{n}", ns).metadata.uid
        request = AllocationRequest(
            ref=AttachmentRef(PodRef(ns, f"big-{n}"), Provider(provider)),
            uid=PodUID(uid),
            subnet=SubnetName(f"{ns}-net"),
            interface="net1",
            routes=routes,
        )
        ipam.allocate([request], fence=UNFENCED)
    client.close()
    second = ControllerProcess(
        control_plane.kubeconfig, control_plane.etcd.endpoint, prefix, identity="second"
    ).start()
    try:
        second.wait_leader()
        cluster.create_pod(ns, "after-takeover", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, "after-takeover", provider)
        loaded = wait_for(
            "the index to load", lambda: re.search(r"(\d+) attachments indexed", second.log_tail())
        )
        assert int(loaded.group(1)) >= 25  # the 25 large ones (and the pod just allocated)
        assert second.alive(), second.log_tail()
    finally:
        second.stop()


def test_a_temporary_etcd_error_at_takeover_is_retried_and_the_leader_stays(
    control_plane: ControlPlane,
    network: tuple[Cluster, str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TemporaryError while a new leader loaded its index killed the process
    (and every later leader on the same error): now the step is retried with
    backoff while the replica leads."""
    cluster, ns, provider = network
    real = Ipam.attachments
    failures: list[str] = []

    def flaky(self: Ipam, subnet: Any = None) -> Any:
        if len(failures) < 3:
            failures.append("refused")
            raise Unavailable("injected: etcd unavailable (DEADLINE_EXCEEDED)")
        return real(self, subnet)

    monkeypatch.setattr(Ipam, "attachments", flaky)
    handle = start_controller(control_plane)
    try:
        handle.wait_index_loaded()
        assert failures == ["refused"] * 3
        said = [r.getMessage() for r in caplog.records]
        assert sum("load the attachment index failed" in m for m in said) == 3, said
        assert not [m for m in said if "stepping down" in m]  # retried within the term
        handle.wait_settled()  # ready
        assert handle.rt.leading
        cluster.create_pod(ns, "after-retries", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, "after-retries", provider)
    finally:
        handle.stop()
