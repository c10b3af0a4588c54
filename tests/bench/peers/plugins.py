"""Running an IPAM plugin once, as the calling plugin (macvlan) would, with a timeout.

Every system's ADD and DEL go through :func:`run_plugin`: the CNI environment
kubelet and Multus set (``CNI_ARGS`` with the pod's namespace, name, infra
container ID and UID), the NIC's network config on stdin, and a deadline
after which the process is killed and the call counted as an error (a
Whereabouts call with no apiserver retries for two minutes). Only the IPAM
plugin is exec'd: no link is created for any system, so the comparison is
IPAM against IPAM.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ops.lab.cni import REFERENCE_PLUGINS, exec_plugin, pod_args
from tests.bench.peers.workload import Pod

TIMEOUT = 150.0
"""Seconds before a plugin call is killed (Whereabouts gives up after 120 s itself)."""


def run_plugin(
    binary: Path,
    command: str,
    config: bytes,
    pod: Pod,
    ifname: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> str | None:
    """None when the plugin succeeded, else a one-line reason."""
    try:
        outcome = exec_plugin(
            binary,
            command,
            config,
            cni_path=[binary.parent, REFERENCE_PLUGINS],
            container_id=pod.container_id,
            ifname=ifname,
            netns_path=f"/var/run/netns/{pod.container_id}",
            cni_args=pod_args(pod.namespace, pod.name, pod.uid or None),
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"killed after {timeout:.0f} s"
    except ValueError as exc:
        return f"stdout is not JSON: {exc}"
    if outcome.ok:
        return None
    message = outcome.doc.get("msg", "") if isinstance(outcome.doc, dict) else ""
    details = outcome.doc.get("details", "") if isinstance(outcome.doc, dict) else ""
    text = f"exit {outcome.returncode}: {message} {details}".strip()
    return text if message else f"{text} {outcome.stderr.strip()[-300:]}"


def network(name: str, ipam: dict[str, object]) -> bytes:
    """A macvlan network config with the given IPAM section (what Multus hands macvlan)."""
    config = {"cniVersion": "0.3.1", "name": name, "type": "macvlan", "master": "eth0"}
    return json.dumps({**config, "ipam": ipam}).encode()
