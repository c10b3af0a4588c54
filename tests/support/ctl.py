"""Running ``nicpoolctl`` as an operator would, and writing the state it inspects.

The CLI runs as a subprocess (``python -m reconciler.ctl.main``), configured
through the same environment variables an operator would set; the tests read
what it prints. ``register`` and ``allocate`` write subnets and leases
through the store API, as the controller would, for the CLI to find.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.config import EtcdSettings
from store.core.identity import AttachmentRef, Mac, PodRef, PodUID, Provider, SubnetName
from store.core.records import Attachment
from store.core.subnetspec import parse_subnet_spec
from store.errors import PermanentError
from store.etcd import EtcdClient
from store.leases import UNFENCED, AllocationRequest, Ipam
from store.subnets import Subnets

REPO = Path(__file__).resolve().parents[2]
PROVIDER = "net1.default"


@dataclass
class Ctl:
    """Runs nicpoolctl against one etcd prefix (and optionally a kubeconfig)."""

    endpoint: str
    prefix: str
    kubeconfig: str | None = None

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "NICPOOL_ETCD_ENDPOINTS": self.endpoint,
            "NICPOOL_ETCD_PREFIX": self.prefix,
        }
        env.pop("KUBECONFIG", None)
        if self.kubeconfig:
            env["KUBECONFIG"] = self.kubeconfig
        return subprocess.run(
            [sys.executable, "-m", "reconciler.ctl.main", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
            check=False,
        )

    def json(self, *args: str, expect: int = 0) -> Any:
        done = self.run(*args, "--json")
        assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)

    def with_prefix(self, prefix: str) -> Ctl:
        return Ctl(self.endpoint, prefix, self.kubeconfig)


def connect(endpoint: str) -> EtcdClient:
    return EtcdClient(EtcdSettings(endpoints=(endpoint,)))


def register(client: EtcdClient, prefix: str, name: str, cidr: str, **fields: Any) -> None:
    fields.setdefault("provider", PROVIDER)
    Subnets(client, prefix).put(parse_subnet_spec(name, cidr_block=cidr, **fields), fence=UNFENCED)


def allocate(
    client: EtcdClient,
    prefix: str,
    pod: str,
    subnet: str,
    *,
    namespace: str = "default",
    provider: str = PROVIDER,
    uid: str | None = None,
    ips: Sequence[str] = (),
    mac: str | None = None,
) -> Attachment:
    request = AllocationRequest(
        ref=AttachmentRef(PodRef(namespace, pod), Provider(provider)),
        uid=PodUID(uid or f"uid-{pod}"),
        subnet=SubnetName(subnet),
        interface="net1",
        fixed_ips=tuple(ips),
        mac=Mac(mac) if mac else None,
    )
    [result] = Ipam(client, prefix).allocate([request], fence=UNFENCED)
    assert not isinstance(result, PermanentError), result
    return result
