"""The plugin's answers to bad environments and configs, before any I/O.

Each case is what a person running the plugin by hand (or a broken runtime)
would do wrong; the plugin must answer with the CNI error code the runtime
acts on and a message that says what to fix.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from cnibin import plugin

pytestmark = pytest.mark.unit

IPAM_CONF: dict[str, Any] = {
    "cniVersion": "0.3.0",
    "name": "macvlan",
    "type": "macvlan",
    "master": "eth0",
    "mode": "bridge",
    "ipam": {
        "type": "kube-ovn",
        "server_socket": "/nonexistent/kube-ovn-daemon.sock",
        "provider": "macvlan.default",
    },
}
ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c1",
    "CNI_IFNAME": "net1",
    "CNI_NETNS": "/var/run/netns/x",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=samplepod",
}


def conf_with(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(IPAM_CONF))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        target = doc[section] if field else doc
        name = field or section
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return doc


def error_of(env: dict[str, str], raw: bytes) -> plugin.CniError:
    with pytest.raises(plugin.CniError) as caught:
        plugin.run(env, raw)
    return caught.value


@pytest.mark.parametrize(
    ("env_changes", "code", "words"),
    [
        ({"CNI_COMMAND": ""}, 4, "CNI_COMMAND"),
        ({"CNI_COMMAND": "FROB"}, 4, "FROB"),
        ({"CNI_CONTAINERID": ""}, 4, "CNI_CONTAINERID"),
        ({"CNI_NETNS": ""}, 4, "CNI_NETNS"),
        ({"CNI_IFNAME": "a-name-longer-than-15"}, 4, "not a valid interface name"),
        ({"CNI_ARGS": ""}, 7, "K8S_POD_NAME"),
        ({"CNI_ARGS": "K8S_POD_NAME=p"}, 7, "K8S_POD_NAMESPACE"),
    ],
)
def test_bad_environment_is_named(env_changes: dict[str, str], code: int, words: str) -> None:
    env = {**ENV, **env_changes}
    error = error_of(env, json.dumps(IPAM_CONF).encode())
    assert error.code == code
    assert words in error.msg + error.details


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"{not json", 6, "cannot decode"),
        (b"[1, 2]", 6, "JSON object"),
        (json.dumps(conf_with(cniVersion="0.2.0")).encode(), 1, "0.2.0"),
        (json.dumps(conf_with(cniVersion=None)).encode(), 1, "supported: 0.3.0"),
        (json.dumps(conf_with(ipam__server_socket=None)).encode(), 7, "server_socket"),
        (json.dumps(conf_with(ipam__provider=None)).encode(), 7, "provider"),
        (json.dumps(conf_with(ipam__provider="")).encode(), 7, "provider"),
        (json.dumps(conf_with(ipam__type="host-local")).encode(), 7, "kube-ovn"),
        (json.dumps(conf_with(ipam__routes="10.0.0.0/8")).encode(), 7, "routes"),
        (json.dumps(conf_with(ipam=None)).encode(), 7, "kube-ovn"),
    ],
)
def test_bad_config_is_named(raw: bytes, code: int, words: str) -> None:
    error = error_of(ENV, raw)
    assert error.code == code
    assert words in error.msg + error.details


def test_unreachable_agent_is_try_again_later_with_the_socket_named() -> None:
    error = error_of(ENV, json.dumps(IPAM_CONF).encode())
    assert error.code == 11
    assert "/nonexistent/kube-ovn-daemon.sock" in error.msg
    assert "nicpool-agent" in error.details


def test_error_json_carries_the_callers_version() -> None:
    doc = plugin.CniError(7, "invalid config", "set it").to_json("0.4.0")
    assert doc == {"cniVersion": "0.4.0", "code": 7, "msg": "invalid config", "details": "set it"}


def test_request_uses_kube_ovn_field_names_and_passes_the_pod_uid() -> None:
    conf = plugin.NetConf(conf_with(ipam__routes=[{"dst": "10.9.0.0/16", "gw": "172.17.0.254"}]))
    env = {**ENV, "CNI_ARGS": ENV["CNI_ARGS"] + ";K8S_POD_UID=u-1"}
    request = plugin.build_request(conf, env)
    assert request == {
        "cni_type": "ipam",
        "pod_name": "samplepod",
        "pod_namespace": "default",
        "container_id": "c1",
        "net_ns": "/var/run/netns/x",
        "if_name": "net1",
        "provider": "macvlan.default",
        "routes": [{"dst": "10.9.0.0/16", "gw": "172.17.0.254"}],
        "pod_uid": "u-1",
    }


def test_main_plugin_reads_its_keys_from_the_top_level() -> None:
    conf = plugin.NetConf(
        {
            "cniVersion": "1.0.0",
            "type": "kube-ovn",
            "server_socket": "/run/x.sock",
            "provider": "attachnet.default.ovn",
            "bridge": "br-nicpool",
        }
    )
    assert (conf.main, conf.provider, conf.bridge) == (True, "attachnet.default.ovn", "br-nicpool")


def test_cni_args_tolerate_empty_items_and_values_with_equals() -> None:
    assert plugin.cni_args("A=1;;B=x=y;IgnoreUnknown") == {
        "A": "1",
        "B": "x=y",
        "IgnoreUnknown": "",
    }


def test_host_veth_name_is_stable_and_fits_the_kernel_limit() -> None:
    first = plugin.host_veth("container-" * 10, "net1")
    assert first == plugin.host_veth("container-" * 10, "net1")
    assert first != plugin.host_veth("container-" * 10, "net2")
    assert len(first) <= 15


@pytest.mark.parametrize(
    "doc",
    [
        {"a": [1, 2.5, None, True, False, 'quote " backslash \\ newline \n'], "b": {}},
        {"snowman": "\u2603", "big": 10**30, "neg": -0.5},
        [],
        "text",
    ],
)
def test_json_without_the_json_module_matches_json(doc: Any) -> None:
    assert plugin.dumps(doc) == json.dumps(doc)
    assert plugin.loads(plugin.dumps(doc)) == doc
    assert plugin.loads(f" \n{json.dumps(doc)}\t ".encode()) == doc


@pytest.mark.parametrize("bad", ["", "{", "[1,]", '{"a": 1} trailing', "nul", "{'a': 1}"])
def test_json_errors_are_value_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        plugin.loads(bad)


def test_undecodable_bytes_are_a_decode_error() -> None:
    error = error_of(ENV, b'{"cniVersion": "\xff"}')
    assert error.code == 6


def test_the_hot_path_imports_neither_json_nor_os_nor_socket() -> None:
    """The modules whose import cost dominated the plugin's start-up."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import plugin; "
        "print(' '.join(m for m in ('json', 'os', 'socket', 're', 'subprocess') "
        "if m in sys.modules))"
    )
    here = str(Path(plugin.__file__).parent)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, here], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_an_unexpected_failure_is_still_cni_error_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(env: dict[str, str], raw: bytes) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(plugin, "run", broken)
    monkeypatch.setattr(sys, "stdin", None)
    assert plugin.main() == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["code"] == 999
    assert "surprise" in doc["details"]


def _agent_answering(tmp_path: Path, reply: bytes) -> tuple[str, threading.Thread]:
    """A unix socket that reads one request and answers ``reply`` (b"": closes)."""
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return path, thread


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (b"", 11),  # the agent went away mid-request (restarted): try again
        (b"SSH-2.0-OpenSSH\r\n\r\n", 101),  # something else answers: an unusable reply
    ],
    ids=["closed-without-a-reply", "not-http"],
)
def test_an_agent_that_closes_without_replying_is_try_again(
    tmp_path: Path, reply: bytes, code: int
) -> None:
    path, thread = _agent_answering(tmp_path, reply)
    conf = {**IPAM_CONF, "ipam": {**IPAM_CONF["ipam"], "server_socket": path}}
    error = error_of(ENV, json.dumps(conf).encode())
    thread.join(5)
    assert error.code == code, error.msg
