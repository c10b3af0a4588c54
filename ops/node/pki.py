"""Certificates, keys and tokens for the node, made with ``openssl``.

Two CAs, as a real cluster keeps them apart: the cluster CA (apiserver
serving certificate, the apiserver's client certificate towards kubelet) and
nicpool's etcd CA (its server certificate and one client certificate per
etcd user, :data:`ETCD_USERS`: the controller's and the agent's become the
Secrets ``nicpool-etcd-controller`` and ``nicpool-etcd-agent`` exactly as
``ops/deploy/README.md`` tells a user to create them, and etcd auth gives
each CN its role). Components log in to the apiserver with static
tokens (:data:`IDENTITIES`): the apiserver's authorizer is ``Node,RBAC``, so
each of them gets only what its user name and groups grant, kubelet through
the Node authorizer and the rest through the default RBAC bootstrap policy.
Keys are EC P-256 (fast to make); certificates last a week.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from ops.node.layout import NODE_IP, NODE_NAME, SERVICE_IP

IDENTITIES: dict[str, tuple[str, str]] = {
    # name: (user, groups)
    "admin": ("nicpool-lab-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "kubelet": (f"system:node:{NODE_NAME}", "system:nodes"),
    "multus": ("nicpool-lab:multus", ""),
}

ETCD_USERS = ("root", "nicpool-controller", "nicpool-agent", "nicpool-admin")
"""etcd client certificates (CN = etcd user); see ``store.core.access`` for the roles."""

APISERVER_SANS = (
    f"IP:127.0.0.1,IP:{SERVICE_IP},IP:{NODE_IP},DNS:localhost,DNS:kubernetes,"
    "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
    "DNS:kubernetes.default.svc.cluster.local"
)
ETCD_SANS = f"IP:127.0.0.1,IP:{NODE_IP},DNS:localhost"
_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(directory: Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, check=False)
    if done.returncode:
        raise RuntimeError(f"openssl {' '.join(args)}: {done.stderr.decode().strip()}")


def _ca(directory: Path, name: str, subject: str) -> None:
    _openssl(directory, "req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-days", "7", "-subj", f"/CN={subject}")  # fmt: skip


def _signed(directory: Path, ca: str, name: str, subject: str, extensions: str) -> None:
    _openssl(directory, "req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject)  # fmt: skip
    (directory / f"{name}.ext").write_text(extensions + "\n")
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
             "-CAkey", f"{ca}.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "7",
             "-extfile", f"{name}.ext")  # fmt: skip
    (directory / f"{name}.csr").unlink()
    (directory / f"{name}.ext").unlink()


def make_pki(directory: Path) -> dict[str, str]:
    """Write every certificate and key into ``directory``; returns the tokens by identity."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    server, client = "extendedKeyUsage=serverAuth", "extendedKeyUsage=clientAuth"
    _ca(directory, "ca", "nicpool-node-ca")
    _signed(directory, "ca", "apiserver", "/CN=kube-apiserver",
            f"subjectAltName={APISERVER_SANS}\n{server}")  # fmt: skip
    _signed(directory, "ca", "apiserver-kubelet-client",
            "/O=system:masters/CN=kube-apiserver-kubelet-client", client)  # fmt: skip
    _ca(directory, "etcd-ca", "nicpool-etcd-ca")
    _signed(directory, "etcd-ca", "nicpool-etcd", "/CN=nicpool-etcd",
            f"subjectAltName={ETCD_SANS}\nextendedKeyUsage=serverAuth,clientAuth")  # fmt: skip
    # One client certificate per etcd user (the CN is the user once auth is on).
    for user in ETCD_USERS:
        _signed(directory, "etcd-ca", user, f"/CN={user}", client)
    _openssl(directory, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key")
    _openssl(directory, "ec", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    tokens = {name: secrets.token_hex(16) for name in IDENTITIES}
    lines = []
    for name, (user, groups) in IDENTITIES.items():
        line = f"{tokens[name]},{user},{user}"
        lines.append(f'{line},"{groups}"' if groups else line)
    (directory / "tokens.csv").write_text("\n".join(lines) + "\n")
    for path in directory.iterdir():
        if path.suffix in (".key", ".csv"):
            path.chmod(0o600)
    return tokens


def kubeconfig(server: str, ca_file: Path, user: str, token: str) -> str:
    """A kubeconfig (YAML is a superset of JSON) for one token user."""
    import json

    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "nicpool-node", "cluster": {"server": server,
                                                     "certificate-authority": str(ca_file)}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "nicpool-node", "user": user}}],
            "current-context": user,
        },
        indent=2,
    )  # fmt: skip
