"""The plugin under the oldest Python it supports (3.8), end to end.

The same file a node holds, installed with a 3.8 interpreter in its
shebang, runs the main plugin's ADD, CHECK and DEL in the lab and serves
macvlan as its IPAM plugin, through the real agent and etcd, and refuses a
hostile NAD value as on 3.11. Where this machine has no 3.8 the tests skip
(fail in CI): see tests/support/pythons.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.lab.cni import AgentProcess
from ops.lab.netns import Lab
from tests.cni.conftest import Leases, Runner
from tests.cni.hostile import NodeState, Smuggled, assert_refused
from tests.cni.test_macvlan import seed_config
from tests.cni.test_main_plugin import attachnet
from tests.support.pythons import python_or_missing

pytestmark = pytest.mark.cni


@pytest.fixture(scope="module")
def old_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnibin.install import install_plugin

    python = python_or_missing("3.8")
    return install_plugin(tmp_path_factory.mktemp("cni-bin-py38"), python=python).parent


@pytest.fixture
def run38(lab: Lab, agent: AgentProcess, old_bin: Path, reference_plugins: Path) -> Runner:
    return Runner(lab, agent, [old_bin, reference_plugins], lab.pod("samplepod"))


def test_the_installed_file_names_python_38(old_bin: Path) -> None:
    assert "3.8" in (old_bin / "kube-ovn").read_text().splitlines()[0]


def test_main_plugin_add_check_del_on_python_38(run38: Runner, leases: Leases) -> None:
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    att = leases.allocate(
        "samplepod", "attachnet.default.ovn", subnet="attachnet", routes=[{"gw": "172.17.0.254"}]
    )
    added = run38("ADD", attachnet("1.1.0"), plugin="kube-ovn")
    assert added.ok, added.stdout + added.stderr
    assert run38.pod.addresses("net1") == [f"{att.ips[0].ip}/16"]
    assert run38.pod.mac("net1") == att.mac
    checked = run38("CHECK", attachnet("1.1.0", prevResult=added.doc), plugin="kube-ovn")
    assert checked.ok, checked.stdout + checked.stderr
    assert run38("DEL", attachnet("1.1.0"), plugin="kube-ovn").ok
    assert "net1" not in run38.pod.links()


def test_macvlan_ipam_on_python_38(run38: Runner, leases: Leases) -> None:
    leases.seed_subnet()
    att = leases.allocate("samplepod", "macvlan.default")
    added = run38("ADD", seed_config())
    assert added.ok, added.stdout + added.stderr
    assert run38.pod.addresses("net1") == [f"{att.ips[0].ip}/16"]
    assert run38("DEL", seed_config()).ok


def test_a_hostile_route_is_refused_on_python_38(
    run38: Runner, lab: Lab, leases: Leases, smuggled: Smuggled
) -> None:
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    leases.allocate("samplepod", "attachnet.default.ovn", subnet="attachnet")
    routes = [{"dst": "192.0.2.0/24", "gw": f"172.17.0.254 dev net1 onlink{smuggled.lines}"}]
    before = NodeState.of(lab)
    out = run38("ADD", attachnet("1.0.0", routes=routes), plugin="kube-ovn")
    assert smuggled.traces(lab) == []
    assert_refused(out, 7)
    assert before.changes(lab) == []
