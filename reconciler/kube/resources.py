"""The API resources the controller reads and writes, by URL path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group_version: str
    """``v1`` for the core group, ``apps/v1``, ``kubeovn.io/v1``, ..."""
    plural: str
    namespaced: bool
    kind: str

    @property
    def base(self) -> str:
        return "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"

    def collection(self, namespace: str | None = None) -> str:
        if self.namespaced and namespace:
            return f"{self.base}/namespaces/{namespace}/{self.plural}"
        return f"{self.base}/{self.plural}"

    def item(self, namespace: str | None, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


PODS = Resource("v1", "pods", True, "Pod")
EVENTS = Resource("v1", "events", True, "Event")
NODES = Resource("v1", "nodes", False, "Node")
NADS = Resource(
    "k8s.cni.cncf.io/v1", "network-attachment-definitions", True, "NetworkAttachmentDefinition"
)
SUBNETS = Resource("kubeovn.io/v1", "subnets", False, "Subnet")
IPS = Resource("kubeovn.io/v1", "ips", False, "IP")
IPPOOLS = Resource("kubeovn.io/v1", "ippools", False, "IPPool")
VIPS = Resource("kubeovn.io/v1", "vips", False, "Vip")
DEPLOYMENTS = Resource("apps/v1", "deployments", True, "Deployment")
REPLICASETS = Resource("apps/v1", "replicasets", True, "ReplicaSet")
STATEFULSETS = Resource("apps/v1", "statefulsets", True, "StatefulSet")
IPAMCLAIMS = Resource("k8s.cni.cncf.io/v1alpha1", "ipamclaims", True, "IPAMClaim")
VIRTUALMACHINES = Resource("kubevirt.io/v1", "virtualmachines", True, "VirtualMachine")
VIRTUALMACHINEINSTANCES = Resource(
    "kubevirt.io/v1", "virtualmachineinstances", True, "VirtualMachineInstance"
)
