"""nicpool's CRDs, served by a real kube-apiserver.

What a user notices: the reference document's YAML applies unchanged; a
Kube-OVN field of the wrong type or a misspelled field is refused by the
apiserver itself, with a message naming the field; `kubectl get subnets`
shows the columns a Kube-OVN user knows; status is written only through the
status subresource.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiextensionsV1Api, CustomObjectsApi
from kubernetes.dynamic.exceptions import DynamicApiError

from ops.lab.kube import REPO, ControlPlane, describe_api_error, load_documents

pytestmark = pytest.mark.controller

EXAMPLES = sorted((REPO / "ops" / "examples").glob("*.yaml"))
GROUP, VERSION = "kubeovn.io", "v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def subnet(name: str, **spec: Any) -> dict[str, Any]:
    body = {"protocol": "IPv4", "provider": "ovn", "cidrBlock": "10.77.0.0/24", **spec}
    return {
        "apiVersion": "kubeovn.io/v1",
        "kind": "Subnet",
        "metadata": {"name": name},
        "spec": body,
    }


def rejection(control_plane: ControlPlane, document: dict[str, Any]) -> str:
    """Create ``document`` (dry run) and return the server's refusal message."""
    with pytest.raises(DynamicApiError) as caught:
        control_plane.apply_yaml(json.dumps(document), dry_run=True, create=True)
    # 422: schema validation; 400: strict decoding (an unknown field).
    assert caught.value.status in {400, 422}, describe_api_error(caught.value)
    return describe_api_error(caught.value)


class TestServed:
    def test_scopes_and_status_subresources_match_kube_ovn(
        self, control_plane: ControlPlane
    ) -> None:
        api = ApiextensionsV1Api(control_plane.api_client())
        crds = {
            name: api.read_custom_resource_definition(name)
            for name in (
                "subnets.kubeovn.io",
                "ips.kubeovn.io",
                "ippools.kubeovn.io",
                "vips.kubeovn.io",
                "network-attachment-definitions.k8s.cni.cncf.io",
            )
        }
        scopes = {name: crd.spec.scope for name, crd in crds.items()}
        assert scopes == {
            "subnets.kubeovn.io": "Cluster",
            "ips.kubeovn.io": "Cluster",
            "ippools.kubeovn.io": "Cluster",
            "vips.kubeovn.io": "Cluster",
            "network-attachment-definitions.k8s.cni.cncf.io": "Namespaced",
        }
        has_status = {n: bool(c.spec.versions[0].subresources) for n, c in crds.items()}
        assert has_status["subnets.kubeovn.io"] and has_status["ippools.kubeovn.io"]
        assert has_status["vips.kubeovn.io"]  # nicpool's addition: status only via the subresource
        assert crds["network-attachment-definitions.k8s.cni.cncf.io"].spec.names.short_names == [
            "net-attach-def"
        ]


class TestSeedExamples:
    @pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
    def test_example_is_accepted_unchanged(self, control_plane: ControlPlane, path: Path) -> None:
        sent = load_documents(path)
        answered = control_plane.apply_yaml(path, dry_run=True)
        assert [obj["kind"] for obj in answered] == [doc["kind"] for doc in sent]
        for doc, obj in zip(sent, answered, strict=True):
            # Nothing pruned or rewritten: a Kube-OVN manifest keeps its meaning.
            if "spec" in doc and doc["kind"] in {"Subnet", "NetworkAttachmentDefinition"}:
                assert obj["spec"] == doc["spec"]
            annotations = doc["metadata"].get("annotations", {})
            assert obj["metadata"].get("annotations", {}) == annotations

    def test_examples_cover_every_yaml_block_of_the_reference_document(self) -> None:
        kinds = [load_documents(path)[0]["kind"] for path in EXAMPLES]
        assert len(EXAMPLES) == 17
        assert kinds.count("Subnet") == 4 and kinds.count("NetworkAttachmentDefinition") == 3
        nad = load_documents(REPO / "ops" / "examples" / "02-nad-macvlan.yaml")[0]
        assert json.loads(nad["spec"]["config"])["master"] == "eth0"


class TestSchemaRejectsBadInput:
    def test_non_string_cidr_block(self, control_plane: ControlPlane) -> None:
        message = rejection(control_plane, subnet(unique("bad"), cidrBlock=172))
        assert "spec.cidrBlock" in message and "string" in message

    def test_missing_cidr_block(self, control_plane: ControlPlane) -> None:
        document = subnet(unique("bad"))
        del document["spec"]["cidrBlock"]
        message = rejection(control_plane, document)
        assert "spec.cidrBlock" in message and "Required value" in message

    def test_unknown_protocol(self, control_plane: ControlPlane) -> None:
        message = rejection(control_plane, subnet(unique("bad"), protocol="IPv5"))
        assert "spec.protocol" in message and "IPv5" in message

    def test_exclude_ips_must_be_a_list(self, control_plane: ControlPlane) -> None:
        message = rejection(control_plane, subnet(unique("bad"), excludeIps="10.77.0.1"))
        assert "spec.excludeIps" in message and "array" in message

    def test_misspelled_field_is_reported_not_dropped(self, control_plane: ControlPlane) -> None:
        document = subnet(unique("bad"))
        document["spec"]["excludeIPs"] = ["10.77.0.1"]  # Kube-OVN spells it excludeIps
        message = rejection(control_plane, document)
        assert "excludeIPs" in message and "unknown field" in message

    def test_nad_config_must_be_a_string(self, control_plane: ControlPlane) -> None:
        document = load_documents(REPO / "ops" / "examples" / "02-nad-macvlan.yaml")[0]
        document["spec"]["config"] = json.loads(document["spec"]["config"])
        message = rejection(control_plane, document)
        # Strict decoding (kubectl's default) names the fields found under a
        # string-typed spec.config: "unknown field spec.config.cniVersion".
        assert "spec.config.cniVersion" in message

    def test_ippool_needs_subnet_and_ips(self, control_plane: ControlPlane) -> None:
        pool = {
            "apiVersion": "kubeovn.io/v1",
            "kind": "IPPool",
            "metadata": {"name": unique("pool")},
            "spec": {"subnet": "macvlan"},
        }
        message = rejection(control_plane, pool)
        assert "spec.ips" in message and "Required value" in message


class TestSubnetStatus:
    def test_status_is_written_only_through_the_subresource(
        self, control_plane: ControlPlane
    ) -> None:
        name = unique("status")
        document = subnet(name)
        with_status = copy.deepcopy(document)
        with_status["status"] = {"v4availableIPs": 1}
        control_plane.apply_yaml(json.dumps(with_status))
        custom = CustomObjectsApi(control_plane.api_client())
        try:
            assert "v4availableIPs" not in custom.get_cluster_custom_object(
                GROUP, VERSION, "subnets", name
            ).get("status", {})
            custom.patch_cluster_custom_object_status(
                GROUP,
                VERSION,
                "subnets",
                name,
                {"status": {"v4availableIPs": 253, "v4usingIPs": 0}},
            )
            stored = custom.get_cluster_custom_object(GROUP, VERSION, "subnets", name)
            assert stored["status"] == {"v4availableIPs": 253, "v4usingIPs": 0}
            assert printed_columns(control_plane, name)["V4Available"] == 253
        finally:
            custom.delete_cluster_custom_object(GROUP, VERSION, "subnets", name)

    def test_kubectl_get_shows_kube_ovn_columns(self, control_plane: ControlPlane) -> None:
        name = unique("columns")
        control_plane.apply_yaml(json.dumps(subnet(name, provider="macvlan.default")))
        try:
            columns = printed_columns(control_plane, name)
        finally:
            CustomObjectsApi(control_plane.api_client()).delete_cluster_custom_object(
                GROUP, VERSION, "subnets", name
            )
        assert columns["Provider"] == "macvlan.default"
        assert columns["CIDR"] == "10.77.0.0/24"
        assert columns["Protocol"] == "IPv4"
        assert {"V4Used", "V4Available", "V6Used", "V6Available", "ExcludeIPs"} <= set(columns)


def printed_columns(control_plane: ControlPlane, subnet_name: str) -> dict[str, Any]:
    """The row `kubectl get subnet <name>` prints, as {column: value}."""
    client = control_plane.api_client()
    response = client.call_api(
        "GET",
        f"{control_plane.server}/apis/kubeovn.io/v1/subnets/{subnet_name}",
        header_params={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
            "Authorization": f"Bearer {control_plane.admin_token}",
        },
    )
    response.read()
    table = json.loads(response.data)
    names = [column["name"] for column in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


def ipamclaim(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1alpha1",
        "kind": "IPAMClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"network": "tenant-net", "interface": "", **spec},
    }


class TestIPAMClaim:
    """The upstream IPAMClaim API as KubeVirt writes it and nicpool reports on it."""

    def test_kubevirts_claim_is_accepted_unchanged(self, control_plane: ControlPlane) -> None:
        document = ipamclaim(unique("vm1.data"), ipRequests=["10.77.0.9/24"])
        [answered] = control_plane.apply_yaml(json.dumps(document), dry_run=True, create=True)
        assert answered["spec"] == document["spec"]
        crd = ApiextensionsV1Api(control_plane.api_client()).read_custom_resource_definition(
            "ipamclaims.k8s.cni.cncf.io"
        )
        subresources = crd.spec.versions[0].subresources
        assert crd.spec.scope == "Namespaced" and subresources is not None
        assert subresources.status == {}

    def test_network_is_required(self, control_plane: ControlPlane) -> None:
        document = ipamclaim(unique("bad"))
        del document["spec"]["network"]
        message = rejection(control_plane, document)
        assert "spec.network" in message and "Required value" in message

    def test_at_most_two_ip_requests(self, control_plane: ControlPlane) -> None:
        three = ["10.77.0.1", "10.77.0.2", "fd00::1"]
        message = rejection(control_plane, ipamclaim(unique("bad"), ipRequests=three))
        assert "spec.ipRequests" in message

    def test_status_is_written_only_through_its_subresource(
        self, control_plane: ControlPlane
    ) -> None:
        api: Any = CustomObjectsApi(control_plane.api_client())
        group = ("k8s.cni.cncf.io", "v1alpha1", "default", "ipamclaims")
        name = unique("vm2.data")
        api.create_namespaced_custom_object(*group, ipamclaim(name))
        status = {"ips": ["10.77.0.5/24"], "ownerPod": {"name": "virt-launcher-vm2-abcde"},
                  "conditions": [{"type": "IPsAllocated", "status": "True",
                                  "reason": "SuccessfulAllocation", "message": "ok",
                                  "lastTransitionTime": "2026-01-01T00:00:00Z"}]}  # fmt: skip
        api.patch_namespaced_custom_object(*group, name, {"status": status})
        assert "status" not in api.get_namespaced_custom_object(*group, name)
        api.patch_namespaced_custom_object_status(*group, name, {"status": status})
        assert api.get_namespaced_custom_object(*group, name)["status"] == status
        api.delete_namespaced_custom_object(*group, name)
