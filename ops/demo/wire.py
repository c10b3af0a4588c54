"""The CNI path for one pod NIC, and what the pod's netns shows afterwards.

The runtime's part is played as the cni tier plays it
(:func:`ops.lab.cni.exec_plugin`): the real ``macvlan`` plugin runs in
the lab's host namespace with the NAD's config on stdin (plus ``name``, which
Multus adds), ``CNI_NETNS`` pointing at the pod's namespace and kubelet's
``CNI_ARGS`` (pod namespace, name and UID). macvlan execs ``kube-ovn`` as its
IPAM plugin, which asks the agent over the socket the NAD names; the plugin
sees the agent's socket directory at ``/run/openvswitch`` through a private
mount namespace, so the machine's /run is never touched.

Nothing is taken from the CNI result for the table: addresses, MAC and routes
are read back with ``ip -n <pod netns> -j``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from ops.demo.pods import DemoError, Nic
from ops.demo.stack import Stack
from ops.lab.cni import exec_plugin, pod_args
from ops.lab.netns import Netns


@dataclass(frozen=True)
class ReadBack:
    nic: Nic
    netns: str
    addresses: list[str]
    mac: str
    routes: list[dict[str, Any]]

    @property
    def gateway(self) -> str:
        """The next hop of a default route through this NIC, else "-"."""
        return next((r["gateway"] for r in self.routes if r.get("dst") == "default"), "-")

    def route_text(self) -> str:
        def one(route: dict[str, Any]) -> str:
            via = f" via {route['gateway']}" if "gateway" in route else ""
            return f"{route['dst']}{via}"

        return ", ".join(one(r) for r in self.routes) or "-"


def attach(stack: Stack, nic: Nic, config: dict[str, Any], netns: Netns) -> ReadBack:
    """Run ADD for ``nic`` in ``netns`` and read the interface back."""
    assert stack.lab is not None and stack.lab.host is not None and stack.agent is not None
    outcome = exec_plugin(
        stack.cni_path[-1] / str(config["type"]),
        "ADD",
        config,
        cni_path=stack.cni_path,
        container_id=secrets.token_hex(16),
        ifname=nic.ifname,
        netns_path=netns.path,
        cni_args=pod_args(nic.namespace, nic.pod, nic.uid),
        netns=stack.lab.host.name,
        openvswitch_dir=stack.agent.socket.parent,
    )
    if not outcome.ok:
        detail = json.dumps(outcome.doc) if outcome.doc else outcome.stderr.strip()
        raise DemoError(f"CNI ADD for {nic.pod}/{nic.ifname} failed: {detail}")
    return read_back(nic, netns)


def read_back(nic: Nic, netns: Netns) -> ReadBack:
    routes = [r for r in netns.routes(4) if r.get("dev") == nic.ifname]
    return ReadBack(nic, netns.name, netns.addresses(nic.ifname), netns.mac(nic.ifname), routes)


def nad_config(nad: dict[str, Any]) -> dict[str, Any]:
    """The NAD's ``spec.config`` as Multus hands it to the delegate."""
    config: dict[str, Any] = json.loads(nad["spec"]["config"])
    config.setdefault("name", nad["metadata"]["name"])
    return config
