"""The ClusterRoles of ops/deploy, enforced by a real kube-apiserver in RBAC mode.

Each case logs in with a token minted for the ServiceAccount (TokenRequest
API, as a pod would get) and does the thing for real: what the controller or
agent needs must succeed, and neighbouring verbs it does not need must be
refused with 403 Forbidden. A missing rule shows up here, not as a crash loop
on a user's cluster; an extra rule shows up as a failing "refused" case.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client import (
    AppsV1Api,
    CoordinationV1Api,
    CoreV1Api,
    CustomObjectsApi,
    EventsV1Api,
)
from kubernetes.client.exceptions import ApiException

from ops.lab.kube import ControlPlane, apply_documents
from tests.controller.conftest import started_control_plane
from tests.controller.kubevirt import install_kubevirt_crds
from tests.controller.test_deploy_manifests import DEPLOY, NAMESPACE, kustomize

pytestmark = pytest.mark.controller

RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
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


@pytest.fixture(scope="module")
def rbac_plane() -> Iterator[ControlPlane]:
    # No controller manager: nothing here needs pods from workloads.
    for plane in started_control_plane(authorization_mode="RBAC", controller_manager=False):
        install_kubevirt_crds(plane)  # a test copy: the rules name KubeVirt's resources
        yield plane


@pytest.fixture(scope="module")
def world(rbac_plane: ControlPlane) -> World:
    rbac_docs = [d for d in kustomize(DEPLOY) if d["kind"] in RBAC_KINDS]
    admin = rbac_plane.api_client()
    apply_documents(
        admin, rbac_docs, namespace=None, dry_run=False, cache_file=rbac_plane.workdir / "d.json"
    )
    suffix = uuid.uuid4().hex[:6]
    world = World(
        rbac_plane, "default", f"app-{suffix}", f"net-{suffix}", f"pool-{suffix}",
        f"vip-{suffix}", {}, f"vm-{suffix}.data",
    )  # fmt: skip
    rbac_plane.apply_yaml(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: {world.pod}, namespace: default}}
spec:
  containers: [{{name: app, image: example.invalid/app:1}}]
---
apiVersion: v1
kind: Node
metadata: {{name: node-1}}
---
apiVersion: kubeovn.io/v1
kind: Subnet
metadata: {{name: {world.subnet}}}
spec: {{protocol: IPv4, provider: macvlan.default, cidrBlock: 172.17.0.0/16}}
---
apiVersion: kubeovn.io/v1
kind: IPPool
metadata: {{name: {world.pool}}}
spec: {{subnet: {world.subnet}, ips: [172.17.0.200]}}
---
apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata: {{name: {world.claim}, namespace: default}}
spec: {{network: tenant-net, interface: ""}}
---
apiVersion: kubeovn.io/v1
kind: Vip
metadata: {{name: {world.vip}}}
spec: {{subnet: {world.subnet}}}
"""
    )
    for identity in ("nicpool-controller", "nicpool-agent"):
        kubeconfig = rbac_plane.service_account_kubeconfig(NAMESPACE, identity)
        world.clients[identity] = rbac_plane.api_client(kubeconfig)
    return world


# --- what the controller does ------------------------------------------------


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

CONTROLLER_MAY: dict[str, Action] = {
    "list pods": lambda w, c: CoreV1Api(c).list_pod_for_all_namespaces(),
    "watch pods": watch_pods,
    "watch subnets, ips, ippools, NADs, workloads": watch_everything_else,
    "read and watch nodes": watch_nodes,
    "get a pod": get_pod,
    "patch pod annotations": annotate_pod,
    "create core events": core_event,
    "create events.k8s.io events": events_v1_event,
    "create, update, delete IPs": ip_lifecycle,
    "update subnet status": subnet_status,
    "patch ippool status": ippool_status,
    "patch vip status": vip_status,
    "add and remove finalizers of subnets, ippools, vips": finalizers,
    "read subnets, ips, ippools, vips": read_kubeovn,
    "read network-attachment-definitions": read_nads,
    "read deployments, replicasets, statefulsets": read_workloads,
    "watch ipamclaims and virtualmachines, get a virtualmachineinstance": watch_claims_and_vms,
    "patch ipamclaim status": claim_status,
}

CONTROLLER_MAY_NOT: dict[str, Action] = {
    "delete pods": lambda w, c: CoreV1Api(c).delete_namespaced_pod(w.pod, w.namespace),
    "force-delete pods (stuck pods are reported, never deleted)": lambda w, c: CoreV1Api(
        c
    ).delete_namespaced_pod(w.pod, w.namespace, grace_period_seconds=0),
    "write node status": lambda w, c: CoreV1Api(c).patch_node_status(
        "node-1", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    ),
    "create pods": lambda w, c: CoreV1Api(c).create_namespaced_pod(
        w.namespace,
        {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "x"}]}},
    ),
    "read secrets": lambda w, c: CoreV1Api(c).list_namespaced_secret(NAMESPACE),
    "read configmaps": lambda w, c: CoreV1Api(c).list_namespaced_config_map(NAMESPACE),
    "create namespaces": lambda w, c: CoreV1Api(c).create_namespace({"metadata": {"name": "x"}}),
    "patch nodes": lambda w, c: CoreV1Api(c).patch_node(
        "node-1", {"metadata": {"labels": {"a": "b"}}}
    ),
    # Finalizers need `patch` on subnets, ippools and vips; RBAC cannot narrow that to
    # metadata.finalizers, so changing a spec is allowed too (the controller never does).
    "update a subnet": lambda w, c: CustomObjectsApi(c).replace_cluster_custom_object(
        *KUBEOVN,
        "subnets",
        w.subnet,
        CustomObjectsApi(c).get_cluster_custom_object(*KUBEOVN, "subnets", w.subnet),
    ),
    "create vips": lambda w, c: CustomObjectsApi(c).create_cluster_custom_object(
        *KUBEOVN,
        "vips",
        {
            "apiVersion": "kubeovn.io/v1",
            "kind": "Vip",
            "metadata": {"name": "x"},
            "spec": {"subnet": w.subnet},
        },
    ),
    "delete vips": lambda w, c: CustomObjectsApi(c).delete_cluster_custom_object(
        *KUBEOVN, "vips", w.vip
    ),
    "delete subnets": lambda w, c: CustomObjectsApi(c).delete_cluster_custom_object(
        *KUBEOVN, "subnets", w.subnet
    ),
    "create ippools": create_ippool,
    "create network-attachment-definitions": create_nad,
    "change an ipamclaim's spec": change_claim_spec,
    "delete ipamclaims": lambda w, c: CustomObjectsApi(c).delete_namespaced_custom_object(
        *CLAIMS, w.namespace, "ipamclaims", w.claim
    ),
    "list virtualmachineinstances": lambda w, c: CustomObjectsApi(c).list_cluster_custom_object(
        *KUBEVIRT, "virtualmachineinstances"
    ),
    "delete virtualmachines": lambda w, c: CustomObjectsApi(c).delete_namespaced_custom_object(
        *KUBEVIRT, w.namespace, "virtualmachines", "vm-x"
    ),
    "scale deployments": lambda w, c: AppsV1Api(c).patch_namespaced_deployment_scale(
        "x", w.namespace, {"spec": {"replicas": 1}}
    ),
    "take a Kubernetes lease (election is in etcd)": lambda w, c: CoordinationV1Api(
        c
    ).create_namespaced_lease(NAMESPACE, {"metadata": {"name": "x"}}),
}

AGENT_MAY_NOT: dict[str, Action] = {
    # Nothing is allowed: the agent never calls the API (issue 8 item 3 removed
    # ``pods get``, which its code never used).
    "get a pod": get_pod,
    "list pods": lambda w, c: CoreV1Api(c).list_pod_for_all_namespaces(),
    "watch pods": watch_pods,
    "patch pod annotations": annotate_pod,
    "read secrets": lambda w, c: CoreV1Api(c).read_namespaced_secret("x", NAMESPACE),
    "read subnets": read_kubeovn,
    "create events": core_event,
    "read nodes": lambda w, c: CoreV1Api(c).read_node("node-1"),
}


def assert_allowed(action: Action, world: World, client: Any) -> None:
    try:
        action(world, client)
    except ApiException as error:
        pytest.fail(f"refused with {error.status} {error.reason}: {error.body}")


def assert_forbidden(action: Action, world: World, client: Any) -> None:
    with pytest.raises(ApiException) as caught:
        action(world, client)
    assert caught.value.status == 403, caught.value.body
    assert "forbidden" in str(caught.value.body)


@pytest.mark.parametrize("case", CONTROLLER_MAY, ids=list(CONTROLLER_MAY))
def test_controller_can(world: World, case: str) -> None:
    assert_allowed(CONTROLLER_MAY[case], world, world.clients["nicpool-controller"])


@pytest.mark.parametrize("case", CONTROLLER_MAY_NOT, ids=list(CONTROLLER_MAY_NOT))
def test_controller_is_refused(world: World, case: str) -> None:
    assert_forbidden(CONTROLLER_MAY_NOT[case], world, world.clients["nicpool-controller"])


@pytest.mark.parametrize("case", AGENT_MAY_NOT, ids=list(AGENT_MAY_NOT))
def test_agent_is_refused(world: World, case: str) -> None:
    assert_forbidden(AGENT_MAY_NOT[case], world, world.clients["nicpool-agent"])


def test_tokens_act_as_the_service_accounts(world: World) -> None:
    """Guards the cases above: a refusal must come from RBAC, not a bad login."""
    from kubernetes.client import AuthenticationV1Api

    for identity, client in world.clients.items():
        review = AuthenticationV1Api(client).create_self_subject_review({})
        expected = f"system:serviceaccount:{NAMESPACE}:{identity}"
        assert review.status.user_info.username == expected
