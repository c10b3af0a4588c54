"""A throwaway certificate authority and the certificates the lab's servers use.

Made with the ``openssl`` command (no Python crypto dependency), EC P-256,
valid for a week: long enough for any run, short enough that a leaked
directory is worthless soon. Every server certificate names
``IP:127.0.0.1`` and ``DNS:localhost``, because the lab's servers listen on
loopback and clients reach them there, directly or through a fault proxy on
another loopback port (TLS checks the host, never the port).

Client certificates carry the identity in their CN: etcd maps the CN of a
client certificate to its user when auth is enabled (``--client-cert-auth``),
which is how nicpool's components get their own roles.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
LOOPBACK_SANS = ("IP:127.0.0.1", "DNS:localhost")


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA in ``directory`` (``<name>.crt``/``<name>.key``) that issues certificates there."""

    directory: Path
    name: str = "ca"

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.name}.crt"

    @property
    def key(self) -> Path:
        return self.directory / f"{self.name}.key"

    def create(self, common_name: str = "nicpool-test-ca") -> CertificateAuthority:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._openssl("req", "-x509", *_EC, "-keyout", self.key.name, "-out", self.cert.name,
                      "-days", "7", "-subj", f"/CN={common_name}")  # fmt: skip
        return self

    def issue(
        self,
        name: str,
        *,
        common_name: str,
        sans: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> KeyPair:
        """``<name>.crt``/``<name>.key`` signed by this CA.

        ``server`` adds serverAuth (and the SANs), ``client`` clientAuth; an
        etcd member's certificate is both, since peers dial each other.
        """
        usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
        lines = [f"extendedKeyUsage={','.join(usages)}"] if usages else []
        if sans:
            lines.append(f"subjectAltName={','.join(sans)}")
        ext = self.directory / f"{name}.ext"
        ext.write_text("\n".join(lines) + "\n")
        pair = KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        self._openssl("req", *_EC, "-keyout", pair.key.name, "-out", f"{name}.csr",
                      "-subj", f"/CN={common_name}")  # fmt: skip
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", self.cert.name,
                      "-CAkey", self.key.name, "-CAcreateserial", "-out", pair.cert.name,
                      "-days", "7", "-extfile", ext.name)  # fmt: skip
        return pair

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.directory, check=True, capture_output=True)


def signing_key_pair(directory: Path, name: str = "sa") -> KeyPair:
    """An EC key pair as ``<name>.key`` and ``<name>.pub`` (service-account tokens)."""
    key, pub = directory / f"{name}.key", directory / f"{name}.pub"
    for args in (
        ("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.name),
        ("ec", "-in", key.name, "-pubout", "-out", pub.name),
    ):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    return KeyPair(pub, key)
