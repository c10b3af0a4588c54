"""Every cniVersion's result shape and every error code, from the installed plugin.

The plugin runs as the single file a node would hold (``#!/usr/bin/python3
-IS``), exec'd with the CNI environment; stdout is parsed as JSON in every
case, errors included, because a runtime does exactly that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ops.lab.cni import AgentProcess, CniOutcome, exec_plugin, pod_args
from tests.cni.conftest import Leases, container_id

pytestmark = pytest.mark.cni

VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def ipam_config(socket: Path | str, version: str = "1.0.0", **ipam: Any) -> dict[str, Any]:
    section = {"type": "kube-ovn", "server_socket": str(socket), "provider": "macvlan.default"}
    section.update(ipam)
    return {"cniVersion": version, "name": "macvlan", "type": "macvlan", "ipam": section}


def call(
    kube_ovn: Path,
    command: str,
    config: dict[str, Any] | bytes | None,
    *,
    args: dict[str, str] | None = None,
    **env: str,
) -> CniOutcome:
    outcome = exec_plugin(
        kube_ovn,
        command,
        config,
        cni_path=[kube_ovn.parent],
        container_id=env.pop("container_id", container_id()),
        ifname=env.pop("ifname", "net1"),
        netns_path=env.pop("netns_path", "/var/run/netns/not-needed-for-ipam"),
        cni_args=pod_args("default", "samplepod") if args is None else args,
        env=env,
    )
    if not outcome.ok:
        assert isinstance(outcome.doc, dict), outcome.stdout
        assert set(outcome.doc) >= {"cniVersion", "code", "msg"}
    return outcome


@pytest.mark.parametrize("version", VERSIONS)
def test_result_shape_per_version(
    version: str, kube_ovn: Path, agent: AgentProcess, leases: Leases
) -> None:
    leases.seed_subnet()
    att = leases.allocate("samplepod", "macvlan.default", default_route=True)
    added = call(kube_ovn, "ADD", ipam_config(agent.socket, version))
    assert added.ok, added.stdout + added.stderr
    expected_ip: dict[str, Any] = {"address": f"{att.ips[0].ip}/16", "gateway": "172.17.0.1"}
    if version < "1.0.0":
        expected_ip["version"] = "4"
    assert added.doc == {
        "cniVersion": version,
        "ips": [expected_ip],
        "routes": [{"dst": "0.0.0.0/0", "gw": "172.17.0.1"}],
    }


def test_version_lists_every_supported_version(kube_ovn: Path) -> None:
    out = call(kube_ovn, "VERSION", {"cniVersion": "0.4.0"})
    assert out.doc == {"cniVersion": "0.4.0", "supportedVersions": VERSIONS}


ERROR_CASES = [
    ("", "ok", None, {}, 4, "CNI_COMMAND"),
    ("ADD", "ok", None, {"netns_path": ""}, 4, "CNI_NETNS"),
    ("ADD", "ok", None, {"ifname": "x" * 16}, 4, "interface name"),
    ("ADD", b"{oops", None, {}, 6, "decode"),
    ("ADD", {"server_socket": None}, None, {}, 7, "server_socket"),
    ("ADD", {"provider": None}, None, {}, 7, "provider"),
    ("ADD", "ok", {"K8S_POD_NAMESPACE": "default"}, {}, 7, "K8S_POD_NAME"),
    ("ADD", "ok", {"K8S_POD_NAME": "samplepod"}, {}, 7, "K8S_POD_NAMESPACE"),
    ("ADD", {"version": "0.2.0"}, None, {}, 1, "0.2.0"),
    ("CHECK", {"version": "0.3.1"}, None, {}, 1, "CHECK"),
    ("GC", {"version": "1.0.0"}, None, {}, 1, "GC"),
    ("ADD", {"server_socket": "/nonexistent/agent.sock"}, None, {}, 11, "unreachable"),
    ("STATUS", {"version": "1.1.0", "server_socket": "/nonexistent/a.sock"}, None, {}, 50, ""),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: f"{case[0] or 'none'}-{case[4]}")
def test_error_codes(kube_ovn: Path, tmp_path: Path, case: tuple[Any, ...]) -> None:
    command, config, args, env, code, words = case
    doc: Any = config
    if not isinstance(config, bytes):
        changes = {} if config == "ok" else dict(config)
        version = changes.pop("version", "1.0.0")
        doc = ipam_config(tmp_path / "agent.sock", version)
        for key, value in changes.items():
            if value is None:
                del doc["ipam"][key]
            else:
                doc["ipam"][key] = value
    out = call(kube_ovn, command, doc, args=args, CNI_COMMAND=command, **env)
    assert not out.ok
    assert out.doc["code"] == code, out.doc
    assert words in out.doc["msg"] + out.doc.get("details", "")


def test_no_lease_within_the_wait_is_try_again_later(kube_ovn: Path, agent: AgentProcess) -> None:
    out = call(kube_ovn, "ADD", ipam_config(agent.socket))
    assert out.doc["code"] == 11
    assert "default/samplepod" in out.doc["msg"]
    assert "nicpool-controller" in out.doc["details"]


def test_a_lease_of_an_older_pod_incarnation_is_try_again_later(
    kube_ovn: Path, agent: AgentProcess, leases: Leases
) -> None:
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default", uid="old-uid")
    args = pod_args("default", "samplepod", uid="new-uid")
    out = call(kube_ovn, "ADD", ipam_config(agent.socket), args=args)
    assert out.doc["code"] == 11
    assert "old-uid" in out.doc["details"]
    good = call(
        kube_ovn, "ADD", ipam_config(agent.socket), args=pod_args("default", "samplepod", "old-uid")
    )
    assert good.ok


def test_main_plugin_add_into_a_missing_netns_is_unknown_container(
    kube_ovn: Path, agent: AgentProcess, leases: Leases
) -> None:
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    leases.allocate("samplepod", "attachnet.default.ovn", subnet="attachnet")
    config = {
        "cniVersion": "1.0.0",
        "type": "kube-ovn",
        "server_socket": str(agent.socket),
        "provider": "attachnet.default.ovn",
    }
    out = call(kube_ovn, "ADD", config, netns_path="/var/run/netns/np-does-not-exist")
    assert out.doc["code"] == 3


def test_status_and_gc_with_a_live_agent(
    kube_ovn: Path, agent: AgentProcess, leases: Leases
) -> None:
    config = ipam_config(agent.socket, "1.1.0")
    status = call(kube_ovn, "STATUS", config)
    assert status.ok, status.stdout
    assert status.stdout == ""
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    assert call(kube_ovn, "ADD", config, container_id="c-kept").ok
    assert call(kube_ovn, "ADD", config, container_id="c-forgotten").ok
    valid = [{"containerID": "c-kept", "ifname": "net1"}]
    gc = call(kube_ovn, "GC", {**config, "cni.dev/valid-attachments": valid})
    assert gc.ok, gc.stdout
    assert "nicpool_cni_unknown_attachments_total 1.0" in agent.metrics()
    # The lease is not freed by GC: ADD still answers with it.
    assert call(kube_ovn, "ADD", config).ok


def test_gc_and_del_succeed_without_an_agent(kube_ovn: Path, tmp_path: Path) -> None:
    config = ipam_config(tmp_path / "gone.sock", "1.1.0")
    assert call(kube_ovn, "GC", {**config, "cni.dev/valid-attachments": []}).ok
    assert call(kube_ovn, "DEL", config).ok
