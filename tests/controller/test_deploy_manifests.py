"""The deployment manifests (ops/deploy), applied to a real kube-apiserver.

What an operator notices: `kubectl apply -k ops/deploy` works on a bare
cluster (no Prometheus Operator needed), the controller Deployment really
produces three pods wired to the etcd client certificate, and the optional
ServiceMonitor finds both metrics Services.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import CoreV1Api, RbacAuthorizationV1Api

from ops.lab.kube import REPO, ControlPlane, apply_documents
from tests.support.components import missing

pytestmark = pytest.mark.controller

DEPLOY = REPO / "ops" / "deploy"
NAMESPACE = "nicpool-system"


def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found is None:
        missing("kubectl", "install kubectl (it renders ops/deploy with its built-in kustomize)")
    assert found is not None
    return found


def kubectl(control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    command = [kubectl_binary(), f"--kubeconfig={control_plane.kubeconfig}", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization the way `kubectl apply -k` would."""
    command = [kubectl_binary(), "kustomize", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def container(document: dict[str, Any], name: str) -> dict[str, Any]:
    spec = document["spec"]["template"]["spec"]
    found = [
        c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] == name
    ]
    assert len(found) == 1, f"{document['metadata']['name']} has no container {name!r}"
    return found[0]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(DEPLOY)


@pytest.fixture(scope="module")
def applied(
    control_plane: ControlPlane, base: list[dict[str, Any]]
) -> Iterator[list[dict[str, Any]]]:
    """The base, really created in the shared apiserver; removed afterwards."""
    answered = apply_documents(
        control_plane.api_client(),
        base,
        namespace=None,
        dry_run=False,
        cache_file=control_plane.workdir / "deploy-discovery.json",
    )
    yield answered
    core = CoreV1Api(control_plane.api_client())
    core.delete_namespace(NAMESPACE)
    rbac = RbacAuthorizationV1Api(control_plane.api_client())
    for doc in by_kind(base, "ClusterRoleBinding"):
        rbac.delete_cluster_role_binding(doc["metadata"]["name"])
    for doc in by_kind(base, "ClusterRole"):
        rbac.delete_cluster_role(doc["metadata"]["name"])


class TestBaseApplies:
    def test_every_object_is_accepted(
        self, base: list[dict[str, Any]], applied: list[dict[str, Any]]
    ) -> None:
        sent = [(d["kind"], d["metadata"]["name"]) for d in base]
        stored = [(d["kind"], d["metadata"]["name"]) for d in applied]
        assert stored == sent
        assert all(d["metadata"].get("uid") for d in applied)

    def test_needs_no_prometheus_operator(self, base: list[dict[str, Any]]) -> None:
        assert not [d for d in base if d["apiVersion"].startswith("monitoring.coreos.com")]

    def test_everything_namespaced_lands_in_nicpool_system(
        self, applied: list[dict[str, Any]]
    ) -> None:
        namespaced = [d for d in applied if d["metadata"].get("namespace")]
        assert {d["metadata"]["namespace"] for d in namespaced} == {NAMESPACE}
        kinds = {"ServiceAccount", "ConfigMap", "Deployment", "DaemonSet", "Service"}
        assert {d["kind"] for d in namespaced} >= kinds | {"PodDisruptionBudget"}

    def test_controller_deployment_creates_three_pods_with_the_etcd_certificate(
        self, control_plane: ControlPlane, applied: list[dict[str, Any]]
    ) -> None:
        core = CoreV1Api(control_plane.api_client())
        pods = wait_for_pods(core, "app.kubernetes.io/name=nicpool-controller", count=3)
        for pod in pods:
            assert pod.spec.service_account_name == "nicpool-controller"
            volumes = {v.name: v for v in pod.spec.volumes}
            # Its own certificate (CN nicpool-controller), not the agents'.
            assert volumes["etcd-client"].secret.secret_name == "nicpool-etcd-controller"
            args = pod.spec.containers[0].args
            assert "--etcd-cert=/etc/nicpool/etcd/tls.crt" in args
            # No kubelet here: the pods exist and wait for a node, as on a real
            # cluster before scheduling.
            assert pod.status.phase == "Pending"


class TestControllerDeployment:
    def test_three_spread_replicas_guarded_by_a_budget_of_two(
        self, base: list[dict[str, Any]]
    ) -> None:
        (deployment,) = by_kind(base, "Deployment")
        (pdb,) = by_kind(base, "PodDisruptionBudget")
        assert deployment["spec"]["replicas"] == 3
        anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        terms = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert pdb["spec"]["minAvailable"] == 2
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]

    def test_probes_hit_the_metrics_port(self, base: list[dict[str, Any]]) -> None:
        for kind, name in (("Deployment", "controller"), ("DaemonSet", "agent")):
            (workload,) = by_kind(base, kind)
            main = container(workload, name)
            assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
            assert main["image"] == "nicpool:0.1.0"

    def test_configuration_uses_the_documented_flags_and_variables(
        self, base: list[dict[str, Any]]
    ) -> None:
        (config,) = by_kind(base, "ConfigMap")
        assert set(config["data"]) == {
            "NICPOOL_ETCD_ENDPOINTS", "NICPOOL_ETCD_PREFIX", "NICPOOL_ELECTION_TTL",
        }  # fmt: skip
        (deployment,) = by_kind(base, "Deployment")
        args = container(deployment, "controller")["args"]
        assert {a.split("=")[0] for a in args} == {
            "--metrics-addr", "--etcd-cacert", "--etcd-cert", "--etcd-key",
        }  # fmt: skip


class TestEtcdConnection:
    @pytest.mark.parametrize(
        ("kind", "name"), [("Deployment", "controller"), ("DaemonSet", "agent")]
    )
    def test_process_would_reach_the_configured_etcd_over_mutual_tls(
        self, base: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, kind: str, name: str
    ) -> None:
        """Feed the manifest's env and args to nicpool's own etcd flag parser."""
        from store.config import add_etcd_arguments, etcd_settings_from_args

        (config,) = by_kind(base, "ConfigMap")
        (workload,) = by_kind(base, kind)
        main = container(workload, name)
        assert main["envFrom"] == [{"configMapRef": {"name": "nicpool-config"}}]
        for variable, value in config["data"].items():
            monkeypatch.setenv(variable, value)
        parser = argparse.ArgumentParser()
        add_etcd_arguments(parser)
        settings = etcd_settings_from_args(parser.parse_known_args(main["args"])[0])
        assert settings.endpoints == tuple(config["data"]["NICPOOL_ETCD_ENDPOINTS"].split(","))
        assert all(endpoint.startswith("https://") for endpoint in settings.endpoints)
        (mount,) = [m for m in main["volumeMounts"] if m["name"] == "etcd-client"]
        files = (settings.cacert, settings.cert, settings.key)
        assert files == tuple(f"{mount['mountPath']}/{f}" for f in ("ca.crt", "tls.crt", "tls.key"))


class TestKubectl:
    def test_apply_k_dry_run_server_accepts_the_base(self, control_plane: ControlPlane) -> None:
        result = kubectl(control_plane, "apply", "-k", str(DEPLOY), "--dry-run=server")
        assert result.returncode == 0, result.stderr
        applied = re.search(
            r"deployment.apps/nicpool-controller \w+ \(server dry run\)", result.stdout
        )
        assert applied is not None, result.stdout
        assert "would violate PodSecurity" not in result.stderr, result.stderr

    def test_monitoring_overlay_needs_the_prometheus_operator(
        self, control_plane: ControlPlane
    ) -> None:
        overlay = DEPLOY / "overlays" / "with-monitoring"
        result = kubectl(control_plane, "apply", "-k", str(overlay), "--dry-run=server")
        assert result.returncode != 0
        assert 'no matches for kind "ServiceMonitor"' in result.stderr


class TestAgentDaemonSet:
    def test_installs_the_plugin_and_shares_the_kube_ovn_socket_directory(
        self, base: list[dict[str, Any]]
    ) -> None:
        (daemonset,) = by_kind(base, "DaemonSet")
        pod = daemonset["spec"]["template"]["spec"]
        host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
        assert host_paths == {"run-openvswitch": "/run/openvswitch", "cni-bin": "/opt/cni/bin"}
        install = container(daemonset, "install-cni")
        # nicpool's installer (one file, compiled cache, atomic rename, warm-up
        # run), not a raw copy of plugin.py.
        assert install["command"] == [
            "python", "-m", "cnibin.install", "--cni-bin-dir", "/host/opt/cni/bin",
        ]  # fmt: skip
        assert {"name": "cni-bin", "mountPath": "/host/opt/cni/bin"} in install["volumeMounts"]
        agent = container(daemonset, "agent")
        assert "--socket=/run/openvswitch/kube-ovn-daemon.sock" in agent["args"]
        node_name = next(e for e in agent["env"] if e["name"] == "NODE_NAME")
        assert node_name["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
        assert pod["tolerations"] == [{"operator": "Exists"}]

    def test_agents_carry_their_own_read_only_etcd_identity(
        self, base: list[dict[str, Any]]
    ) -> None:
        """Issue 8 item 2: one read-write certificate mounted everywhere let one
        compromised node rewrite the cluster's IPAM state."""
        (daemonset,) = by_kind(base, "DaemonSet")
        (deployment,) = by_kind(base, "Deployment")
        secret = {
            obj["kind"]: next(
                v["secret"]["secretName"]
                for v in obj["spec"]["template"]["spec"]["volumes"]
                if v["name"] == "etcd-client"
            )
            for obj in (daemonset, deployment)
        }
        assert secret == {
            "DaemonSet": "nicpool-etcd-agent",
            "Deployment": "nicpool-etcd-controller",
        }


class TestEtcdSecretIsReadable:
    @pytest.mark.parametrize(
        ("kind", "name"), [("Deployment", "controller"), ("DaemonSet", "agent")]
    )
    def test_the_process_user_can_read_its_etcd_key(
        self, base: list[dict[str, Any]], kind: str, name: str
    ) -> None:
        """kubelet writes Secret files root-owned with ``defaultMode``, group ``fsGroup``."""
        (workload,) = by_kind(base, kind)
        pod = workload["spec"]["template"]["spec"]
        main = container(workload, name)
        (volume,) = [v for v in pod["volumes"] if v["name"] == "etcd-client"]
        mode = volume["secret"].get("defaultMode", 0o644)
        user = {**pod.get("securityContext", {}), **main.get("securityContext", {})}.get(
            "runAsUser", 0
        )
        group = pod.get("securityContext", {}).get("fsGroup")
        readable = user == 0 or bool(mode & 0o004) or (group is not None and bool(mode & 0o040))
        assert readable, f"uid {user} cannot read a {oct(mode)} file (fsGroup {group})"


class TestMonitoringOverlay:
    def test_service_monitor_selects_both_metrics_services(self) -> None:
        rendered = kustomize(DEPLOY / "overlays" / "with-monitoring")
        (monitor,) = by_kind(rendered, "ServiceMonitor")
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s for s in by_kind(rendered, "Service")
            if selector.items() <= s["metadata"]["labels"].items()
        ]  # fmt: skip
        assert {s["metadata"]["name"] for s in services} == {
            "nicpool-controller-metrics",
            "nicpool-agent-metrics",
        }
        port = monitor["spec"]["endpoints"][0]["port"]
        assert all(port in {p["name"] for p in s["spec"]["ports"]} for s in services)
        assert monitor["metadata"]["namespace"] == NAMESPACE


def wait_for_pods(core: CoreV1Api, selector: str, *, count: int, timeout: float = 60) -> list[Any]:
    """Pods the controller manager creates arrive asynchronously; wait for them."""
    deadline = time.monotonic() + timeout
    while True:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        if len(pods) >= count or time.monotonic() > deadline:
            assert len(pods) == count, f"{len(pods)} pods for {selector}, wanted {count}"
            return list(pods)
        time.sleep(0.2)
