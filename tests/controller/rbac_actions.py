"""What each identity tries against the real apiserver in ``test_rbac``: the actions.

Each action does one thing the controller (or, refused, the agent) might
do, for real, on the objects an admin created (:class:`World`);
``test_rbac`` says which identity may do which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi, EventsV1Api
from kubernetes.client.exceptions import ApiException

from ops.lab.kube import ControlPlane

KUBEOVN = ("kubeovn.io", "v1")
NAD = ("k8s.cni.cncf.io", "v1", "network-attachment-definitions")
CLAIMS = ("k8s.cni.cncf.io", "v1alpha1")
KUBEVIRT = ("kubevirt.io", "v1")


@dataclass
class World:
    """Objects the admin created for the cases to act on, and a client per identity."""

    plane: ControlPlane
    namespace: str
    pod: str
    subnet: str
    pool: str
    vip: str
    clients: dict[str, Any]
    claim: str


def watch_pods(w: World, client: Any) -> None:
    stream = watch.Watch().stream(CoreV1Api(client).list_pod_for_all_namespaces, timeout_seconds=1)
    names = {event["object"].metadata.name for event in stream}
    assert w.pod in names


def watch_everything_else(w: World, client: Any) -> None:
    """The controller also watches subnets, IPs, pools, NADs and workload owners."""
    custom, apps = CustomObjectsApi(client), AppsV1Api(client)
    listers = [
        (custom.list_cluster_custom_object, (*KUBEOVN, "subnets")),
        (custom.list_cluster_custom_object, (*KUBEOVN, "ips")),
        (custom.list_cluster_custom_object, (*KUBEOVN, "ippools")),
        (custom.list_cluster_custom_object, (*KUBEOVN, "vips")),
        (custom.list_cluster_custom_object, NAD),
        (apps.list_stateful_set_for_all_namespaces, ()),
        (apps.list_deployment_for_all_namespaces, ()),
        (apps.list_replica_set_for_all_namespaces, ()),
    ]
    seen = set()
    for lister, args in listers:
        for event in watch.Watch().stream(lister, *args, timeout_seconds=1):
            seen.add(str(event["type"]))
    assert "ADDED" in seen  # at least the subnet and pool the admin created


def watch_nodes(w: World, client: Any) -> None:
    """Stuck pods: the controller reads each node's Ready condition."""
    core = CoreV1Api(client)
    stream = watch.Watch().stream(core.list_node, timeout_seconds=1)
    assert {event["object"].metadata.name for event in stream} == {"node-1"}
    assert core.read_node("node-1").metadata.name == "node-1"


def annotate_pod(w: World, client: Any) -> None:
    key = "macvlan.default.kubernetes.io/allocated"
    patch = {"metadata": {"annotations": {key: "true"}}}
    pod = CoreV1Api(client).patch_namespaced_pod(w.pod, w.namespace, patch)
    assert pod.metadata.annotations[key] == "true"


def core_event(w: World, client: Any) -> None:
    event = {
        "metadata": {"generateName": "nicpool-"},
        "involvedObject": {"kind": "Pod", "namespace": w.namespace, "name": w.pod},
        "reason": "AddressConflict",
        "message": "172.17.0.100 is held by another pod",
        "type": "Warning",
    }
    CoreV1Api(client).create_namespaced_event(w.namespace, event)


def events_v1_event(w: World, client: Any) -> None:
    event = {
        "metadata": {"generateName": "nicpool-"},
        # A MicroTime needs a fraction; the client prints none for microsecond 0.
        "eventTime": datetime.now(UTC).replace(microsecond=123456),
        "reportingController": "nicpool.io/controller",
        "reportingInstance": "nicpool-controller-0",
        "action": "Allocate",
        "reason": "PoolExhausted",
        "regarding": {"kind": "Pod", "namespace": w.namespace, "name": w.pod},
        "type": "Warning",
    }
    EventsV1Api(client).create_namespaced_event(w.namespace, event)


def ip_lifecycle(w: World, client: Any) -> None:
    api = CustomObjectsApi(client)
    name = f"{w.pod}.{w.namespace}.macvlan.default"
    body = {
        "apiVersion": "kubeovn.io/v1",
        "kind": "IP",
        "metadata": {"name": name},
        "spec": {"podName": w.pod, "namespace": w.namespace, "subnet": w.subnet,
                 "ipAddress": "172.17.0.11", "v4IpAddress": "172.17.0.11"},
    }  # fmt: skip
    created = api.create_cluster_custom_object(*KUBEOVN, "ips", body)
    created["spec"]["macAddress"] = "02:00:00:00:00:11"
    api.replace_cluster_custom_object(*KUBEOVN, "ips", name, created)
    api.delete_cluster_custom_object(*KUBEOVN, "ips", name)


def subnet_status(w: World, client: Any) -> None:
    api = CustomObjectsApi(client)
    status = {"status": {"v4availableIPs": 65522, "v4usingIPs": 1}}
    api.patch_cluster_custom_object_status(*KUBEOVN, "subnets", w.subnet, status)
    current = api.get_cluster_custom_object(*KUBEOVN, "subnets", w.subnet)
    current["status"]["v4usingIPs"] = 2
    api.replace_cluster_custom_object_status(*KUBEOVN, "subnets", w.subnet, current)


def ippool_status(w: World, client: Any) -> None:
    status = {"status": {"v4AvailableIPs": 1, "v4UsingIPs": 0}}
    CustomObjectsApi(client).patch_cluster_custom_object_status(*KUBEOVN, "ippools", w.pool, status)


def finalizers(w: World, client: Any) -> None:
    """The finalizer that holds a Subnet, IPPool or Vip while leases use it."""
    api = CustomObjectsApi(client)
    for plural, name in (("subnets", w.subnet), ("ippools", w.pool), ("vips", w.vip)):
        patch = {"metadata": {"finalizers": ["kubeovn.io/kube-ovn-controller"]}}
        api.patch_cluster_custom_object(*KUBEOVN, plural, name, patch)
        api.patch_cluster_custom_object(*KUBEOVN, plural, name, {"metadata": {"finalizers": []}})


def vip_status(w: World, client: Any) -> None:
    status = {"status": {"v4ip": "172.17.0.150", "mac": "02:00:00:00:00:15"}}
    CustomObjectsApi(client).patch_cluster_custom_object_status(*KUBEOVN, "vips", w.vip, status)


def read_kubeovn(w: World, client: Any) -> None:
    api = CustomObjectsApi(client)
    for plural in ("subnets", "ips", "ippools", "vips"):
        api.list_cluster_custom_object(*KUBEOVN, plural)
    api.get_cluster_custom_object(*KUBEOVN, "subnets", w.subnet)


def read_nads(w: World, client: Any) -> None:
    CustomObjectsApi(client).list_cluster_custom_object(*NAD)


def read_workloads(w: World, client: Any) -> None:
    apps = AppsV1Api(client)
    apps.list_deployment_for_all_namespaces()
    apps.list_replica_set_for_all_namespaces()
    apps.list_stateful_set_for_all_namespaces()


def get_pod(w: World, client: Any) -> None:
    assert CoreV1Api(client).read_namespaced_pod(w.pod, w.namespace).metadata.name == w.pod


def create_ippool(w: World, client: Any) -> None:
    pool = {
        "apiVersion": "kubeovn.io/v1",
        "kind": "IPPool",
        "metadata": {"name": "x"},
        "spec": {"subnet": w.subnet, "ips": ["172.17.0.201"]},
    }
    CustomObjectsApi(client).create_cluster_custom_object(*KUBEOVN, "ippools", pool)


def create_nad(w: World, client: Any) -> None:
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "x"}}  # fmt: skip
    CustomObjectsApi(client).create_namespaced_custom_object(
        NAD[0], NAD[1], w.namespace, NAD[2], nad
    )


def watch_claims_and_vms(w: World, client: Any) -> None:
    """IPAMClaims (their status is nicpool's report), KubeVirt VMs, a VMI by name."""
    custom = CustomObjectsApi(client)
    seen = {
        event["object"]["metadata"]["name"]
        for event in watch.Watch().stream(
            custom.list_cluster_custom_object, *CLAIMS, "ipamclaims", timeout_seconds=1
        )
    }
    assert w.claim in seen
    custom.list_cluster_custom_object(*KUBEVIRT, "virtualmachines")
    with pytest.raises(ApiException) as caught:  # allowed, and there is none
        custom.get_namespaced_custom_object(
            *KUBEVIRT, w.namespace, "virtualmachineinstances", "vm-x"
        )
    assert caught.value.status == 404


def claim_status(w: World, client: Any) -> None:
    status = {"status": {"ips": ["172.17.0.9/16"], "ownerPod": {"name": w.pod}}}
    CustomObjectsApi(client).patch_namespaced_custom_object_status(
        *CLAIMS, w.namespace, "ipamclaims", w.claim, status
    )


def change_claim_spec(w: World, client: Any) -> None:
    CustomObjectsApi(client).patch_namespaced_custom_object(
        *CLAIMS, w.namespace, "ipamclaims", w.claim, {"spec": {"network": "other"}}
    )


Action = Callable[[World, Any], Any]
