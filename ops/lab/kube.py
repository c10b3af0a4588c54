"""A real Kubernetes control plane on loopback ports, for the controller and e2e tiers.

:class:`ControlPlane` runs the real binaries (envtest-style, from
``KUBEBUILDER_ASSETS`` or ``ops/tools/build-test-binaries.sh``): its own
etcd, a kube-apiserver serving TLS on 127.0.0.1, and optionally a
kube-controller-manager so Deployments, ReplicaSets and StatefulSets create
real Pods (and namespaces, garbage collection and ServiceAccounts work). There
is no scheduler and no kubelet: Pods stay Pending, which is all an IPAM
controller needs to see.

Certificates and the service-account signing key are generated with
``openssl`` into a temporary directory; the admin user authenticates with a
static token (group ``system:masters``, so it passes any authorizer). The
``ServiceAccount`` admission plugin is off by default: it refuses Pods whose
namespace has no ``default`` ServiceAccount yet, a race a test would only trip
over; the TokenRequest API (used to log in *as* a ServiceAccount) does not
depend on it.

The class is free of pytest so benchmarks and the demo use it as well::

    with ControlPlane(assets=find_assets()) as cp:
        cp.install_crds()
        cp.apply_yaml("ops/examples/03-subnet-macvlan.yaml")
        client = cp.api_client()          # kubernetes.client.ApiClient
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ops.lab.binaries import find_assets
from ops.lab.etcd import EtcdServer
from ops.lab.kube_objects import (
    apply_documents,
    describe_api_error,
    load_documents,
    wait_established,
)
from ops.lab.ports import free_port
from ops.lab.processes import LoggedProcess
from ops.lab.tls import LOOPBACK_SANS, CertificateAuthority, signing_key_pair

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "ops" / "deploy" / "crds"

# Only what a Pod-watching controller exercises; the cloud, node, volume and
# certificate controllers have nothing to act on without kubelets.
CONTROLLERS = (
    "namespace-controller",
    "garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
)


@dataclass
class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) on 127.0.0.1.

    After :meth:`start`: ``kubeconfig`` (admin), ``server`` (https URL),
    ``ca_file``, ``admin_token``; :meth:`api_client`, :meth:`apply_yaml`,
    :meth:`install_crds`, :meth:`service_account_kubeconfig`.
    """

    assets: Path
    authorization_mode: str = "AlwaysAllow"
    """``AlwaysAllow`` or ``RBAC`` (any kube-apiserver --authorization-mode value)."""
    controller_manager: bool = True
    """Run kube-controller-manager so workloads create Pods and namespaces delete."""
    service_account_admission: bool = False
    """Enable the ServiceAccount admission plugin (see the module docstring)."""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-kube-")))
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    etcd: EtcdServer | None = None
    _processes: list[LoggedProcess] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> None:
        """Start everything and return once the apiserver answers /readyz."""
        try:
            _make_certificates(self.workdir)
            (self.workdir / "tokens.csv").write_text(
                f"{self.admin_token},nicpool-admin,nicpool-admin-uid,system:masters\n"
            )
            self.etcd = EtcdServer(binary=self.assets / "etcd", data_dir=self.workdir / "etcd")
            self.etcd.start()
            self._write_kubeconfig(self.kubeconfig, user="nicpool-admin", token=self.admin_token)
            self._spawn("kube-apiserver", self._apiserver_args())
            self._wait_ready(timeout)
            if self.controller_manager:
                self._spawn("kube-controller-manager", self._controller_manager_args())
                self._wait_for_default_service_account(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process (controller manager first) and delete the workdir."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self.etcd is not None:
            self.etcd.stop()
            self.etcd = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def pids(self) -> list[int]:
        """Process ids of everything this control plane runs (its etcd included)."""
        found = [p.popen.pid for p in self._processes if p.popen is not None]
        if self.etcd is not None and self.etcd.process is not None:
            found.insert(0, self.etcd.process.pid)
        return found

    def components(self) -> dict[str, subprocess.Popen[bytes]]:
        """The running process of each component, by name (kube-apiserver, ...)."""
        return {p.name: p.popen for p in self._processes if p.popen is not None}

    def restart(self, name: str, *, kill: bool = False, timeout: float = 90.0) -> None:
        """Stop one component (SIGKILL with ``kill``, else SIGTERM) and start it again.

        Same flags, same certificates; returns once the apiserver answers
        /readyz again (the fault tier restarts it under a running workload).
        """
        process = next(p for p in self._processes if p.name == name)
        if kill and process.popen is not None and process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()
        process.stop()
        process.start()
        self._wait_ready(timeout)

    def logs(self) -> dict[str, str]:
        """The tail of each component's log, for assertion messages."""
        return {process.name: process.log_tail() for process in self._processes}

    def env(self) -> dict[str, str]:
        """Environment for a child process (e.g. nicpool-controller) using this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def _spawn(self, name: str, args: list[str]) -> None:
        process = LoggedProcess(name, args, self.workdir / f"{name}.log")
        self._processes.append(process)
        process.start()

    def _apiserver_args(self) -> list[str]:
        w = self.workdir
        assert self.etcd is not None
        args = [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers={self.etcd.endpoint}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={w / 'apiserver.crt'}",
            f"--tls-private-key-file={w / 'apiserver.key'}",
            f"--client-ca-file={w / 'ca.crt'}",
            f"--token-auth-file={w / 'tokens.csv'}",
            f"--authorization-mode={self.authorization_mode}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={w / 'sa.pub'}",
            f"--service-account-signing-key-file={w / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={w / 'cert-dir'}",
        ]
        if not self.service_account_admission:
            args.append("--disable-admission-plugins=ServiceAccount")
        return args

    def _controller_manager_args(self) -> list[str]:
        w = self.workdir
        return [
            str(self.assets / "kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={w / 'sa.key'}",
            f"--root-ca-file={w / 'ca.crt'}",
            f"--cert-dir={w / 'kcm-cert-dir'}",
            # No kubelets: nothing to wait for before acting on an object.
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--concurrent-statefulset-syncs=10",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ]

    def admin_kubeconfig_via(self, server: str, path: Path) -> Path:
        """The admin kubeconfig, reaching the apiserver at ``server`` (e.g. a fault proxy)."""
        self._write_kubeconfig(path, user="nicpool-admin", token=self.admin_token, server=server)
        return path

    def _write_kubeconfig(
        self, path: Path, *, user: str, token: str, server: str | None = None
    ) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "nicpool-test",
                    "cluster": {
                        "server": server or self.server,
                        "certificate-authority": str(self.ca_file),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": user, "context": {"cluster": "nicpool-test", "user": user}},
            ],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(config))

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for process in self._processes:
                process.check_alive()
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError) as error:
                last = str(error)
            time.sleep(0.2)
        raise RuntimeError(f"kube-apiserver not ready after {timeout}s ({last}); {self.logs()}")

    def _wait_for_default_service_account(self, timeout: float) -> None:
        """The controller manager is working once it has created default/default."""
        from kubernetes.client import CoreV1Api
        from kubernetes.client.exceptions import ApiException

        core = CoreV1Api(self.api_client())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self._processes:
                process.check_alive()
            try:
                core.read_namespaced_service_account("default", "default")
                return
            except ApiException as error:
                if error.status != 404:
                    raise
            time.sleep(0.2)
        raise RuntimeError(f"kube-controller-manager did not start in {timeout}s; {self.logs()}")

    # --- clients ------------------------------------------------------------

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for the admin (or the given kubeconfig)."""
        from kubernetes import config

        path = str(kubeconfig or self.kubeconfig)
        return config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, expiration_seconds: int = 3600
    ) -> Path:
        """Mint a token for ServiceAccount ``namespace/name`` (TokenRequest API).

        Returns a kubeconfig that acts as that ServiceAccount, exactly as a pod
        running under it would (minus the in-cluster file paths).
        """
        from kubernetes.client import (
            AuthenticationV1TokenRequest,
            CoreV1Api,
            V1TokenRequestSpec,
        )

        request = AuthenticationV1TokenRequest(
            spec=V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        core = CoreV1Api(self.api_client())
        issued = core.create_namespaced_service_account_token(name, namespace, request)
        assert issued.status is not None and issued.status.token, "TokenRequest gave no token"
        path = self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        user = f"system:serviceaccount:{namespace}:{name}"
        self._write_kubeconfig(path, user=user, token=issued.status.token)
        return path

    def apply_yaml(
        self,
        source: str | Path,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        create: bool = False,
        kubeconfig: Path | None = None,
    ) -> list[dict[str, Any]]:
        """Server-side apply every document of a file (Path) or YAML text (str).

        Strict field validation, like ``kubectl apply``: an unknown or mistyped
        field is an error, not a silent drop. Namespaced objects without a
        namespace land in ``namespace`` (default ``"default"``). Returns the
        objects as the server answered them. ``create=True`` POSTs instead (what
        ``kubectl create`` and a first ``kubectl apply`` do): a mistyped field
        then fails schema validation with 422, where server-side apply fails
        earlier with a 500 ("failed to create typed patch object"). Errors are
        the dynamic client's (``kubernetes.dynamic.exceptions.DynamicApiError``,
        with ``.status`` and ``.body``; see :func:`describe_api_error`).
        """
        return apply_documents(
            self.api_client(kubeconfig),
            load_documents(source),
            namespace=namespace,
            dry_run=dry_run,
            cache_file=self.workdir / "discovery.json",
            create=create,
        )

    def install_crds(self, directory: Path = CRD_DIR, timeout: float = 30.0) -> list[str]:
        """Apply the project's CRDs and wait until the apiserver serves them."""
        listed = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        applied = self.apply_yaml_files(directory / name for name in listed)
        names = [obj["metadata"]["name"] for obj in applied]
        wait_established(self.api_client(), names, timeout)
        return names

    def apply_yaml_files(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        return [obj for path in paths for obj in self.apply_yaml(path)]


def _make_certificates(directory: Path) -> None:
    """A CA, an apiserver serving cert for 127.0.0.1, and a service-account key pair."""
    ca = CertificateAuthority(directory).create()
    sans = (*LOOPBACK_SANS, "IP:10.0.0.1", "DNS:kubernetes.default.svc")
    ca.issue("apiserver", common_name="kube-apiserver", sans=sans, server=True)
    signing_key_pair(directory, "sa")


__all__ = [
    "REPO",
    "ControlPlane",
    "apply_documents",
    "describe_api_error",
    "find_assets",
    "load_documents",
    "wait_established",
]
