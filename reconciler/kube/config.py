"""Kubeconfig / in-cluster credentials -> :class:`KubeClient`.

Uses the official loader so every kubeconfig form works (tokens, client
certificates, exec plugins with refresh); only the resulting settings are
kept. Order (DESIGN.md): ``--kubeconfig`` / ``KUBECONFIG``, else the
in-cluster service account, else ``~/.kube/config``.
"""

from __future__ import annotations

import os

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from reconciler.kube.client import Endpoint, KubeClient


def load_endpoint(kubeconfig: str | None) -> Endpoint:
    configuration = k8s_client.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]

    def authorization() -> str | None:
        # The generated client names the bearer-token setting "BearerToken"
        # (older releases: "authorization"); auth_settings() refreshes it.
        for setting in configuration.auth_settings().values():
            if isinstance(setting, dict) and setting.get("key") == "authorization":
                value = setting.get("value")
                if value:
                    return str(value)
        return None

    return Endpoint(
        host=str(configuration.host),
        authorization=authorization,
        ca_file=configuration.ssl_ca_cert,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        verify=bool(configuration.verify_ssl),
    )


def kube_client(kubeconfig: str | None, *, pool_size: int = 64) -> KubeClient:
    return KubeClient(load_endpoint(kubeconfig), pool_size=pool_size)
