"""Network namespaces for the cni tier, created and destroyed by the tests.

Nothing here touches the machine's own network namespace: every link lives in
a namespace named ``np-<random>-<role>``. A :class:`Lab` holds one "host"
namespace (standing in for the node: it holds a veth pair whose end
``master`` is the macvlan master, since this kernel has no dummy links, and
it is where the plugins run) and one namespace per pod. ``Lab.close`` deletes
them all; deleting a namespace deletes every link in it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NETNS_DIR = Path("/var/run/netns")
MASTER = "npmaster0"
"""The macvlan master inside the host namespace (replaces the seed's ``eth0``)."""


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def why_unavailable() -> str | None:
    """None when this machine can run the cni tier, else the reason."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("nsenter") is None:
        return "iproute2 (ip) and util-linux (nsenter) are required"
    probe = f"np-{secrets.token_hex(3)}-probe"
    try:
        ip("netns", "add", probe)
        ip("link", "add", "p0", "type", "veth", "peer", "name", "p1", netns=probe)
        ip("link", "add", "mv0", "link", "p0", "type", "macvlan", "mode", "bridge", netns=probe)
    except RuntimeError as exc:
        return f"cannot create netns/veth/macvlan here: {exc}"
    finally:
        ip("netns", "del", probe, check=False)
    return None


@dataclass
class Netns:
    name: str

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.name)

    def ip_json(self, *args: str) -> Any:
        return json.loads(ip("-j", *args, netns=self.name) or "[]")

    def addresses(self, ifname: str) -> list[str]:
        """``ip/prefix`` of every global address on ``ifname``."""
        links = self.ip_json("addr", "show", "dev", ifname)
        return [
            f"{a['local']}/{a['prefixlen']}"
            for link in links
            for a in link.get("addr_info", [])
            if a.get("scope") == "global"
        ]

    def mac(self, ifname: str) -> str:
        return str(self.ip_json("link", "show", "dev", ifname)[0]["address"])

    def links(self) -> list[str]:
        return [link["ifname"] for link in self.ip_json("link", "show")]

    def routes(self, family: int = 4) -> list[dict[str, Any]]:
        return list(json.loads(ip("-j", f"-{family}", "route", "show", netns=self.name) or "[]"))

    def default_route(self) -> dict[str, Any] | None:
        return next((r for r in self.routes() if r.get("dst") == "default"), None)


@dataclass
class Lab:
    """A host namespace with a macvlan master, and pod namespaces on demand."""

    tag: str = field(default_factory=lambda: f"np-{secrets.token_hex(3)}")
    namespaces: list[Netns] = field(default_factory=list)
    host: Netns | None = None

    def create(self, role: str) -> Netns:
        ns = Netns(f"{self.tag}-{role}")
        ip("netns", "add", ns.name)
        self.namespaces.append(ns)
        ip("link", "set", "lo", "up", netns=ns.name)
        return ns

    def start(self) -> Lab:
        self.host = self.create("host")
        ip("link", "add", MASTER, "type", "veth", "peer", "name", "npuplink0", netns=self.host.name)
        for link in (MASTER, "npuplink0"):
            ip("link", "set", link, "up", netns=self.host.name)
        return self

    def pod(self, name: str) -> Netns:
        return self.create(f"pod-{name}")

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            ip("netns", "del", ns.name, check=False)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
