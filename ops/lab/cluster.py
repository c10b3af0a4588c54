"""Small helpers over the Kubernetes client for controller-tier and e2e tests."""

from __future__ import annotations

import contextlib
import datetime
import json
from typing import Any

from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from ops.lab.controllers import wait_for
from ops.lab.examples import EXAMPLES, seed_nad_config

__all__ = ["EXAMPLES", "Cluster"]


class Cluster:
    def __init__(self, api_client: Any) -> None:
        # Typed Any: the generated client's annotations are looser than its
        # behaviour (it accepts plain dicts as bodies and returns dicts for
        # custom objects), and these helpers lean on exactly that.
        self.core: Any = CoreV1Api(api_client)
        self.apps: Any = AppsV1Api(api_client)
        self.custom: Any = CustomObjectsApi(api_client)

    # -- reads ---------------------------------------------------------------

    def annotations(self, namespace: str, name: str) -> dict[str, str]:
        pod = self.core.read_namespaced_pod(name, namespace)
        return dict(pod.metadata.annotations or {})

    def allocated(
        self, namespace: str, name: str, provider: str, timeout: float = 60
    ) -> dict[str, str]:
        """Wait for ``<provider>.kubernetes.io/allocated: "true"``; returns the annotations."""

        def probe() -> dict[str, str] | None:
            found = self.annotations(namespace, name)
            return found if found.get(f"{provider}.kubernetes.io/allocated") == "true" else None

        return wait_for(f"{namespace}/{name} allocated for {provider}", probe, timeout)

    def events(self, namespace: str, name: str) -> list[Any]:
        found = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        )
        return list(found.items)

    def wait_event(self, namespace: str, name: str, reason: str, timeout: float = 60) -> Any:
        def probe() -> Any:
            return next((e for e in self.events(namespace, name) if e.reason == reason), None)

        return wait_for(f"event {reason} on {namespace}/{name}", probe, timeout)

    def pods(self, namespace: str, selector: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(namespace, label_selector=selector).items)

    def ip_object(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_cluster_custom_object(
                "kubeovn.io", "v1", "ips", name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def subnet(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_cluster_custom_object(
            "kubeovn.io", "v1", "subnets", name
        )
        return found

    def kubeovn(self, plural: str, name: str) -> dict[str, Any] | None:
        """A cluster-scoped kubeovn.io object (subnets, ippools, vips, ips), or None."""
        try:
            found: dict[str, Any] = self.custom.get_cluster_custom_object(
                "kubeovn.io", "v1", plural, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def condition(self, plural: str, name: str, kind: str = "Ready") -> dict[str, Any]:
        """The object's status condition of ``kind`` (empty when absent)."""
        obj = self.kubeovn(plural, name) or {}
        found = (obj.get("status") or {}).get("conditions") or []
        return next((c for c in found if c.get("type") == kind), {})

    def wait_condition(
        self, plural: str, name: str, status: str, reason: str | None = None, kind: str = "Ready"
    ) -> dict[str, Any]:
        """Wait until the object's condition ``kind`` has ``status`` (and ``reason``)."""

        def probe() -> dict[str, Any] | None:
            found = self.condition(plural, name, kind)
            match = found.get("status") == status and reason in (None, found.get("reason"))
            return found if match else None

        return wait_for(f"{plural}/{name} {kind}={status} ({reason})", probe)

    def gone(self, plural: str, name: str, timeout: float = 60) -> None:
        wait_for(f"{plural}/{name} gone", lambda: self.kubeovn(plural, name) is None, timeout)

    # -- writes --------------------------------------------------------------

    def delete_pod(self, namespace: str, name: str, *, wait: bool = True, grace: int = 0) -> None:
        """Delete a pod (``grace`` > 0: gracefully; a pod bound to a node then waits for
        a kubelet to confirm, forever here, so pass ``wait=False``)."""
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace)
        if wait:
            wait_for(f"pod {namespace}/{name} gone", lambda: self._gone(namespace, name), 60)

    def _gone(self, namespace: str, name: str) -> bool:
        try:
            self.core.read_namespaced_pod(name, namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    def set_pod_phase(self, namespace: str, name: str, phase: str, reason: str = "") -> None:
        """Write the pod's ``status.phase`` as a kubelet would (no kubelet runs here)."""
        status: dict[str, Any] = {"phase": phase}
        if reason:
            status["reason"] = reason
        self.core.patch_namespaced_pod_status(name, namespace, {"status": status})

    def delete_cluster_object(self, plural: str, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.custom.delete_cluster_custom_object("kubeovn.io", "v1", plural, name)

    def create_subnet(self, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": "kubeovn.io/v1",
            "kind": "Subnet",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_cluster_custom_object("kubeovn.io", "v1", "subnets", body)

    def create_kubeovn(self, plural: str, kind: str, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": "kubeovn.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_cluster_custom_object("kubeovn.io", "v1", plural, body)

    def create_ippool(self, name: str, **spec: Any) -> None:
        self.create_kubeovn("ippools", "IPPool", name, **spec)

    def create_vip(self, name: str, **spec: Any) -> None:
        self.create_kubeovn("vips", "Vip", name, **spec)

    def create_nad(self, namespace: str, name: str, config: str | None) -> None:
        body: dict[str, Any] = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace},
        }
        if config is not None:
            body["spec"] = {"config": config}
        self.custom.create_namespaced_custom_object(
            "k8s.cni.cncf.io", "v1", namespace, "network-attachment-definitions", body
        )

    def ipam_network(self, namespace: str, subnet: str, cidr: str, *, name: str = "net") -> str:
        """NAD ``name`` in ``namespace`` with kube-ovn IPAM (the seed's macvlan NAD, its
        provider ``<name>.<namespace>``) and Subnet ``subnet`` for it; returns the provider."""
        provider = f"{name}.{namespace}"
        config = seed_nad_config(ipam={"provider": provider})
        self.create_nad(namespace, name, json.dumps(config))
        self.create_subnet(subnet, provider=provider, cidrBlock=cidr)
        return provider

    def create_pod(
        self,
        namespace: str,
        name: str,
        annotations: dict[str, str],
        *,
        node: str | None = None,
        **meta: Any,
    ) -> None:
        """A pod (``node``: bound to that node, as the scheduler would bind it)."""
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
        if node is not None:
            spec["nodeName"] = node
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations, **meta},
            "spec": spec,
        }
        self.core.create_namespaced_pod(namespace, body)

    def create_node(self, name: str) -> None:
        """A Node object (no kubelet behind it); set its readiness with :meth:`set_node_ready`."""
        self.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})

    def set_node_ready(self, name: str, status: str, since: datetime.datetime) -> None:
        """Write the node's Ready condition (``True``, ``False``, ``Unknown``) as the
        node lifecycle controller would, changed at ``since``."""
        stamp = since.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {
            "type": "Ready",
            "status": status,
            "reason": "NodeStatusUnknown" if status == "Unknown" else "Test",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        self.core.patch_node_status(name, {"status": {"conditions": [condition]}})

    def delete_node(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.core.delete_node(name)
