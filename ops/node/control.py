"""The node's control plane and nicpool's etcd: command lines for the node's namespace.

All of it runs inside the node's network namespace, so the apiserver reaches
kubelet (``kubectl exec``, logs, the pod proxy) and kubelet, pods and the
hostNetwork agent reach the apiserver:

* the cluster's etcd: plain HTTP on the node's loopback (``KUBE_ETCD_PORT``);
* kube-apiserver on 0.0.0.0:443 of the node namespace, authorizer
  ``Node,RBAC``, admission with ``NodeRestriction`` and ``ServiceAccount``
  (pods get their token volumes), a client certificate towards kubelet;
* kube-controller-manager with its default controllers (the node lifecycle
  controller among them: without it the node keeps its
  ``not-ready:NoSchedule`` taint), one service-account credential per
  controller;
* kube-scheduler, so pods are scheduled, not pinned;
* nicpool's own etcd, TLS with client certificates, on the node's address
  (pods and the agent dial ``https://NODE_IP:2379``) and its loopback.

Both etcds run with ``--unsafe-no-fsync``: this is a lab on a shared 2-core
machine, where an fsync stall would look like a product bug.
"""

from __future__ import annotations

from pathlib import Path

from ops.node.layout import (
    APISERVER_PORT,
    KUBE_ETCD_PORT,
    NICPOOL_ETCD_PORT,
    NODE_IP,
    SERVICE_CIDR,
    Layout,
)


def kube_etcd(binary: Path, layout: Layout) -> list[str]:
    client, peer = f"http://127.0.0.1:{KUBE_ETCD_PORT}", f"http://127.0.0.1:{KUBE_ETCD_PORT + 1}"
    return [
        str(binary),
        "--name=kube",
        f"--data-dir={layout.root / 'etcd-kube'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=kube={peer}",
        "--log-level=warn",
        "--unsafe-no-fsync",
    ]


def nicpool_etcd(binary: Path, layout: Layout) -> list[str]:
    pki = layout.pki
    node = f"https://{NODE_IP}:{NICPOOL_ETCD_PORT}"
    local = f"https://127.0.0.1:{NICPOOL_ETCD_PORT}"
    peer = f"http://127.0.0.1:{NICPOOL_ETCD_PORT + 1}"
    return [
        str(binary),
        "--name=nicpool",
        f"--data-dir={layout.root / 'etcd-nicpool'}",
        f"--listen-client-urls={node},{local}",
        f"--advertise-client-urls={node}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=nicpool={peer}",
        f"--cert-file={pki / 'nicpool-etcd.crt'}",
        f"--key-file={pki / 'nicpool-etcd.key'}",
        f"--trusted-ca-file={pki / 'etcd-ca.crt'}",
        "--client-cert-auth",
        "--log-level=warn",
        "--unsafe-no-fsync",
    ]


def apiserver(binary: Path, layout: Layout) -> list[str]:
    pki = layout.pki
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{KUBE_ETCD_PORT}",
        "--bind-address=0.0.0.0",
        f"--secure-port={APISERVER_PORT}",
        f"--advertise-address={NODE_IP}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        # The node name resolves nowhere here (and no lookup may leave the machine).
        "--kubelet-preferred-address-types=InternalIP",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        "--profiling=false",
        f"--cert-dir={layout.root / 'apiserver-certs'}",
    ]


def controller_manager(binary: Path, layout: Layout) -> list[str]:
    kubeconfig = layout.node_kubeconfigs / "kube-controller-manager.kubeconfig"
    pki = layout.pki
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--cert-dir={layout.root / 'kcm-certs'}",
        "--profiling=false",
    ]


def scheduler(binary: Path, layout: Layout) -> list[str]:
    kubeconfig = layout.node_kubeconfigs / "kube-scheduler.kubeconfig"
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--profiling=false",
    ]
