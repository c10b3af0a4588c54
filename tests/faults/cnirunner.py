"""The container runtime's part for a sample of pods: CNI ADD through real macvlan, retried.

For each sampled pod a sandbox (a network namespace in one node's lab) gets
one NIC per attachment: the real ``macvlan`` plugin runs in the node's
namespace with the NAD's config and execs ``kube-ovn`` as its IPAM, which
asks that node's agent. As a container runtime does, a sandbox whose setup
failed is torn down (DEL for every NIC, the namespace deleted) and a new
one (new namespace, new container ID) is tried after a pause, until one
succeeds or the pod is gone; every ADD, failed or not, goes into the
history. When the pod is deleted the runtime's DEL runs and the namespace
goes.

An ADD may start before its pod exists (``uid`` None): the fault tier does
that so the agent is still waiting for the lease when it is restarted.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ops.lab.cni import REFERENCE_PLUGINS, CniOutcome, exec_plugin, pod_args
from ops.lab.netns import Netns, ip
from tests.faults.history import CniAdd, History
from tests.faults.system import Node, System

RETRY_PAUSE = 1.0
GIVE_UP = 300.0
"""Seconds of failed ADDs after which the runtime stops trying (the checker judges)."""


@dataclass(frozen=True)
class Nic:
    provider: str
    ifname: str
    config: dict[str, Any]


@dataclass
class Sandbox:
    node: Node
    namespace: str
    pod: str
    nics: list[Nic]
    uid: str | None = None
    netns: Netns | None = None
    container_id: str = field(default_factory=lambda: secrets.token_hex(16))
    gone: threading.Event = field(default_factory=threading.Event)
    """Set when the pod is deleted (or the run ends): no more ADDs."""
    done: threading.Event = field(default_factory=threading.Event)
    added: set[str] = field(default_factory=set)
    """Interfaces whose ADD succeeded in the current sandbox."""


class CniRunner:
    def __init__(self, system: System, history: History) -> None:
        self.system = system
        self.history = history
        self.sandboxes: list[Sandbox] = []
        self._lock = threading.Lock()

    def attach(self, sandbox: Sandbox) -> Sandbox:
        """Set the sandbox up on a thread of its own (retrying as a runtime does)."""
        with self._lock:
            self._fresh(sandbox)
            self.sandboxes.append(sandbox)
        threading.Thread(target=self._set_up, args=(sandbox,), daemon=True).start()
        return sandbox

    def detach(self, sandbox: Sandbox) -> None:
        """The pod is gone: stop retrying, run DEL, delete the namespace (on a thread)."""
        sandbox.gone.set()
        threading.Thread(target=self._remove, args=(sandbox,), daemon=True).start()

    def halt(self, timeout: float = 120.0) -> None:
        """Stop every retry loop (the run is over); namespaces go with the labs."""
        for sandbox in list(self.sandboxes):
            sandbox.gone.set()
        self.wait_idle(timeout)

    def _fresh(self, sandbox: Sandbox) -> None:
        sandbox.container_id = secrets.token_hex(16)
        sandbox.netns = sandbox.node.lab.pod(f"{sandbox.pod[:20]}-{sandbox.container_id[:6]}")

    def _set_up(self, sandbox: Sandbox) -> None:
        started = time.monotonic()
        try:
            while not sandbox.gone.is_set() and time.monotonic() - started < GIVE_UP:
                if all(self._add(sandbox, nic) for nic in sandbox.nics):
                    return
                self._tear_down(sandbox)
                if sandbox.gone.wait(RETRY_PAUSE):
                    return
                self._fresh(sandbox)
        finally:
            sandbox.done.set()

    def _add(self, sandbox: Sandbox, nic: Nic) -> bool:
        outcome = self._exec(sandbox, nic, "ADD")
        ok = outcome.ok and isinstance(outcome.doc, dict)
        self.history.cni.append(
            CniAdd(
                at=time.time(),
                node=sandbox.node.name,
                namespace=sandbox.namespace,
                pod=sandbox.pod,
                uid=sandbox.uid,
                provider=nic.provider,
                ifname=nic.ifname,
                ok=ok,
                ips=_addresses(outcome.doc) if ok else (),
                error="" if ok else _error(outcome),
            )
        )
        if ok:
            sandbox.added.add(nic.ifname)
        return ok

    def _tear_down(self, sandbox: Sandbox) -> None:
        """DEL every NIC (idempotent, as the runtime calls it), then the namespace."""
        if sandbox.netns is None:
            return
        for nic in sandbox.nics:
            self._exec(sandbox, nic, "DEL")
        sandbox.added.clear()
        ip("netns", "del", sandbox.netns.name, check=False)
        sandbox.netns = None

    def _remove(self, sandbox: Sandbox) -> None:
        sandbox.done.wait(120)
        self._tear_down(sandbox)

    def _exec(self, sandbox: Sandbox, nic: Nic, command: str) -> CniOutcome:
        node = sandbox.node
        assert node.lab.host is not None and sandbox.netns is not None
        try:
            return exec_plugin(
                REFERENCE_PLUGINS / str(nic.config["type"]),
                command,
                nic.config,
                cni_path=self.system.cni_path,
                container_id=sandbox.container_id,
                ifname=nic.ifname,
                netns_path=sandbox.netns.path,
                cni_args=pod_args(sandbox.namespace, sandbox.pod, sandbox.uid),
                netns=node.lab.host.name,
                openvswitch_dir=node.agent.socket.parent,
                timeout=60,
            )
        except Exception as exc:  # a hung plugin, unreadable stdout: a failed attempt
            return CniOutcome(-1, "", f"{type(exc).__name__}: {exc}")

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for sandbox in list(self.sandboxes):
            sandbox.done.wait(max(0.0, deadline - time.monotonic()))


def _addresses(doc: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(entry["address"]).split("/")[0] for entry in doc.get("ips", []))


def _error(outcome: CniOutcome) -> str:
    if isinstance(outcome.doc, dict):
        return f"{outcome.doc.get('code')}: {outcome.doc.get('msg')}"
    return f"exit {outcome.returncode}: {outcome.stderr.strip()[-300:]}"
