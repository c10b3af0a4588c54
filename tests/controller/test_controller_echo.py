"""The controller's own annotation patch, echoed back by the watch, is not processed again
(issue 14; kopf remembers the resourceVersion it wrote the same way)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ops.lab.kube import ControlPlane
from reconciler import workers
from tests.controller.inprocess import network_and_controller

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


def test_a_pod_is_visited_once_for_its_allocation(
    control_plane: ControlPlane, kube_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = kube_namespace
    visits: Counter[str] = Counter()
    real = workers.SYNCS["pod"]

    def counting(rt: Any, key: str) -> bool:
        visits[key] += 1
        return real(rt, key)

    monkeypatch.setitem(workers.SYNCS, "pod", counting)
    for cluster, provider, handle in network_and_controller(control_plane, ns, "10.96.0.0/24"):
        handle.wait_index_loaded()  # the takeover's own visits are over
        cluster.create_pod(ns, "once", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, "once", provider)
        # Watch events arrive in order: once this later pod is done, the first
        # pod's echo has been delivered (and skipped).
        cluster.create_pod(ns, "later", {NETWORKS: f"{ns}/net"})
        cluster.allocated(ns, "later", provider)
        assert visits[f"{ns}/once"] == 1
