"""The ClusterRoles of ops/deploy, enforced by a real kube-apiserver in RBAC mode.

Each case logs in with a token minted for the ServiceAccount (TokenRequest
API, as a pod would get) and does the thing for real: what the controller or
agent needs must succeed, and neighbouring verbs it does not need must be
refused with 403 Forbidden. A missing rule shows up here, not as a crash loop
on a user's cluster; an extra rule shows up as a failing "refused" case.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import (
    AppsV1Api,
    CoordinationV1Api,
    CoreV1Api,
    CustomObjectsApi,
)
from kubernetes.client.exceptions import ApiException

from ops.lab.kube import ControlPlane, apply_documents
from tests.controller.conftest import started_control_plane
from tests.controller.kubevirt import install_kubevirt_crds
from tests.controller.rbac_actions import (
    CLAIMS,
    KUBEOVN,
    KUBEVIRT,
    Action,
    World,
    annotate_pod,
    change_claim_spec,
    claim_status,
    core_event,
    create_ippool,
    create_nad,
    events_v1_event,
    finalizers,
    get_pod,
    ip_lifecycle,
    ippool_status,
    read_kubeovn,
    read_nads,
    read_workloads,
    subnet_status,
    vip_status,
    watch_claims_and_vms,
    watch_everything_else,
    watch_nodes,
    watch_pods,
)
from tests.controller.test_deploy_manifests import DEPLOY, NAMESPACE, kustomize

pytestmark = pytest.mark.controller

RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}


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
