"""What the controller exports, and when: the series operators alert and graph on.

* Every labelled error/retry counter is exported at 0 from start-up, so
  ``rate()``/``increase()`` see the first error (a series born on its first
  increment has no earlier sample to compare with).
* A new leader exports ``nicpool_subnet_addresses`` as soon as it has
  registered the Subnets, not one status interval later.
* A replica that stops leading drops those series: it no longer refreshes
  them, and a stale copy next to the leader's would be summed by dashboards.

The in-process test runs a :class:`Controller` against the test cluster with a
status interval of an hour, so only the leader's start-up export can produce
the usage series.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from reconciler.controller import Controller
from reconciler.core.errors import NAD_REFUSALS, AmbiguousSubnet
from reconciler.kube.config import kube_client
from reconciler.metrics import RETRY_OPERATIONS
from reconciler.runtime import Settings
from store.config import EtcdSettings
from store.errors import PoolExhausted
from store.etcd import connect

pytestmark = pytest.mark.controller

HOUR = 3600.0


@pytest.fixture
def controller(control_plane: ControlPlane) -> Iterator[Controller]:
    assert control_plane.etcd is not None
    etcd = connect(EtcdSettings(endpoints=(control_plane.etcd.endpoint,)))
    made = Controller(
        kube=kube_client(str(control_plane.kubeconfig), pool_size=8),
        etcd=etcd,
        prefix=f"/nicpool-metrics-{uuid.uuid4().hex[:6]}/v1/",
        settings=Settings(identity="metrics-test", workers=2, status_interval=HOUR),
    )
    yield made
    made.shutdown()
    etcd.close()


def usage(subnet: str, state: str = "total") -> float | None:
    labels = {"subnet": subnet, "family": "4", "state": state}
    return REGISTRY.get_sample_value("nicpool_subnet_addresses", labels)


def test_a_new_leader_exports_usage_at_once_and_drops_it_when_it_stops_leading(
    control_plane: ControlPlane, kube_namespace: str, controller: Controller
) -> None:
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    subnet = f"{ns}-usage"
    cluster.create_subnet(subnet, provider=f"net.{ns}", cidrBlock="10.93.0.0/28")
    controller.start()
    runner = threading.Thread(target=controller.run, daemon=True)
    runner.start()
    states = ("total", "used", "available", "excluded")  # set one after another
    wait_for(
        "the leader to export usage", lambda: all(usage(subnet, s) is not None for s in states)
    )
    assert usage(subnet, "used") == 0.0
    assert (usage(subnet, "available") or 0) > 0
    controller.shutdown()
    runner.join(30)
    assert not runner.is_alive()
    assert usage(subnet) is None, "a replica that stopped leading still exports pool numbers"


def test_every_known_label_is_exported_at_zero_from_the_start(
    control_plane: ControlPlane,
) -> None:
    assert control_plane.etcd is not None
    process = ControllerProcess(
        control_plane.kubeconfig,
        control_plane.etcd.endpoint,
        f"/nicpool-zeroes-{uuid.uuid4().hex[:6]}/v1/",
        identity="zeroes",
    ).start()
    try:
        wait_for("/metrics", lambda: process.http("/metrics")[0] == 200)
        for reason in (AmbiguousSubnet.reason, PoolExhausted.reason, "NoProvider"):
            assert process.metric("nicpool_allocation_errors_total", f'reason="{reason}"') == 0.0
        for error in NAD_REFUSALS:
            assert process.metric("nicpool_nad_errors_total", f'reason="{error.reason}"') == 0.0
        for operation in RETRY_OPERATIONS:
            assert process.metric("nicpool_retries_total", f'operation="{operation}"') == 0.0
    finally:
        process.stop()


def test_a_refusal_counts_under_its_reason_and_nad_refusals_twice(
    control_plane: ControlPlane, kube_namespace: str
) -> None:
    assert control_plane.etcd is not None
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    cluster.create_nad(ns, "empty", None)
    process = ControllerProcess(
        control_plane.kubeconfig,
        control_plane.etcd.endpoint,
        f"/nicpool-refusal-{uuid.uuid4().hex[:6]}/v1/",
        identity="refusals",
    ).start()
    try:
        process.wait_leader()
        cluster.create_pod(
            ns, "p", {"k8s.v1.cni.cncf.io/networks": json.dumps([{"name": "empty"}])}
        )

        def counted() -> bool:
            # A pod may be refused more than once (the takeover revisits every pod, a
            # refusal is retried): each refusal counts once under each name.
            nad = process.metric("nicpool_nad_errors_total", 'reason="NoProvider"') or 0
            allocation = process.metric("nicpool_allocation_errors_total", 'reason="NoProvider"')
            return nad >= 1 and allocation == nad

        wait_for("the refusal counted under both names", counted)
        assert process.metric("nicpool_allocation_errors_total", 'reason="AmbiguousSubnet"') == 0.0
    finally:
        process.stop()
