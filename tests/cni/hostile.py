"""What a hostile input could change on a node, the commands it smuggles, and a rogue agent.

:class:`Smuggled` is the payload every hostile value carries: ``ip -batch``
lines that would add a network namespace, touch a file and add a veth pair
if a value reached ``ip`` as text; :meth:`Smuggled.traces` looks for them.
:class:`NodeState` is a snapshot of everything the ``kube-ovn`` plugin (or a
command smuggled into it) could change in the test lab: the machine's
network namespace names, and the links, addresses and routes of the lab's
"host" and pod namespaces. Two snapshots compare equal when nothing ran.
Other labs (parallel test sessions, named ``np-<hex>-<role>``) create and
delete namespaces meanwhile, so their names are left out.

:class:`RogueAgent` listens on a unix socket and answers every ADD with one
canned body, the way a compromised agent or another process on its socket
would: the plugin must treat that answer as untrusted input too.
"""

from __future__ import annotations

import json
import re
import socketserver
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.lab.cni import CniOutcome
from ops.lab.netns import Lab, Netns, ip

OTHER_LABS = re.compile(r"^(np-[0-9a-f]{6}-|nicpool-node$)")
"""Namespaces other labs on this machine create and remove at any time: the cni
tier's (``np-<hex>-<role>``) and the real node's (``nicpool-node``)."""


def netns_names() -> frozenset[str]:
    """``ip netns list`` without other labs' namespaces (they come and go)."""
    names = (line.split()[0] for line in ip("netns", "list").splitlines() if line.strip())
    return frozenset(name for name in names if not OTHER_LABS.match(name))


def _links(ns: Netns) -> list[tuple[Any, ...]]:
    """Name, admin state, MTU, MAC, master and kind of every link (no carrier: it flaps)."""
    return sorted(
        (
            link["ifname"],
            "UP" in link.get("flags", []),
            link.get("mtu"),
            link.get("address"),
            link.get("master"),
            link.get("linkinfo", {}).get("info_kind"),
        )
        for link in ns.ip_json("-d", "link", "show")
    )


def _addresses(ns: Netns) -> list[tuple[str, str]]:
    return sorted(
        (link["ifname"], f"{a['local']}/{a['prefixlen']}")
        for link in ns.ip_json("addr", "show")
        for a in link.get("addr_info", [])
    )


def _routes(ns: Netns) -> list[str]:
    return sorted(
        json.dumps(route, sort_keys=True)
        for family in (4, 6)
        for route in ns.ip_json(f"-{family}", "route", "show", "table", "all")
    )


def _settle(ns: Netns, timeout: float = 15.0) -> None:
    """Wait until no address is tentative.

    An IPv6 link-local address finishes duplicate address detection a
    second or more after its link comes up, and only then gets its local
    route: a snapshot taken before would see the kernel's own work as a
    change made by the plugin.
    """
    deadline = time.monotonic() + timeout
    while any(
        address.get("tentative")
        for link in ns.ip_json("addr", "show")
        for address in link.get("addr_info", [])
    ):
        if time.monotonic() > deadline:
            return  # the comparison will show what is still moving
        time.sleep(0.05)


@dataclass(frozen=True)
class NodeState:
    netns: frozenset[str]
    namespaces: tuple[tuple[str, Any, Any, Any], ...]

    @classmethod
    def of(cls, lab: Lab) -> NodeState:
        for ns in lab.namespaces:
            _settle(ns)
        return cls(
            netns=netns_names(),
            namespaces=tuple(
                (ns.name, _links(ns), _addresses(ns), _routes(ns)) for ns in lab.namespaces
            ),
        )

    def changes(self, lab: Lab) -> list[str]:
        """What differs now from this snapshot, one line per item (empty: nothing)."""
        now = NodeState.of(lab)
        found = [f"netns {name} appeared" for name in sorted(now.netns - self.netns)]
        found += [f"netns {name} vanished" for name in sorted(self.netns - now.netns)]
        for (name, *was), (_, *is_) in zip(self.namespaces, now.namespaces, strict=True):
            for kind, old, new in zip(("link", "address", "route"), was, is_, strict=True):
                found += [f"{name}: {kind} gone: {item}" for item in old if item not in new]
                found += [f"{name}: {kind} new: {item}" for item in new if item not in old]
        return found


@dataclass
class Smuggled:
    """``ip -batch`` lines an attacker appends to a value, and their traces."""

    name: str
    marker: Path

    @property
    def lines(self) -> str:
        pwn = self.name
        return (
            f"\nnetns add {pwn}\nnetns exec {pwn} touch {self.marker}\n"
            f"link add {pwn}a type veth peer name {pwn}b"
        )

    def traces(self, lab: Lab) -> list[str]:
        found = [f"netns {self.name}"] if self.name in netns_names() else []
        found += [f"file {self.marker}"] if self.marker.exists() else []
        found += [
            f"link {link} in {ns.name}"
            for ns in lab.namespaces
            for link in ns.links()
            if link.startswith(self.name)
        ]
        return found


def assert_refused(out: CniOutcome, code: int) -> None:
    """A CNI error a runtime can read: JSON on stdout, the code, a message."""
    assert not out.ok
    assert isinstance(out.doc, dict), out.stdout + out.stderr
    assert out.doc["code"] == code, out.doc
    assert out.doc["msg"]


class RogueAgent:
    """Answers ``POST /api/v1/add`` with ``body`` (and every other request with 204)."""

    def __init__(self, body: bytes | dict[str, Any], status: int = 200) -> None:
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.status = status
        # A short directory: AF_UNIX paths are limited to 107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="np-rogue-"))
        self.socket = self.dir / "agent.sock"
        self.requests: list[bytes] = []
        self._server: socketserver.UnixStreamServer | None = None

    def _handler(self) -> type[socketserver.StreamRequestHandler]:
        rogue = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = self.rfile.readline()
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                rogue.requests.append(head + self.rfile.read(length))
                status, body = (rogue.status, rogue.body) if b"/add" in head else (204, b"")
                self.wfile.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
                )

        return Handler

    def __enter__(self) -> RogueAgent:
        self._server = socketserver.UnixStreamServer(str(self.socket), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self.socket.unlink(missing_ok=True)
        self.dir.rmdir()
