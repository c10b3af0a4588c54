"""Kube-OVN v1.16's per-interface keys: ``<nad>.<ns>.kubernetes.io/ip_address.<if>``.

A NAD attached twice keys each NIC's static address and MAC by interface;
nicpool reads that form and its own ``<provider>.<if>`` form (the
per-interface one wins), against the seed's world (:mod:`tests.unit.planning_world`).
"""

from __future__ import annotations

import json

import pytest

from reconciler.core.planning import plan_pod
from tests.unit.planning_world import WORLD, pod

pytestmark = pytest.mark.unit


def nics(annotations: dict[str, str]) -> list[tuple[str, tuple[str, ...], str | None]]:
    plan = plan_pod(pod(annotations), WORLD)
    assert plan.ok, plan.errors
    return [(n.ref.qualified, n.fixed_ips, n.mac) for n in plan.nics]


def test_a_nad_attached_twice_reads_each_nics_address_and_mac_by_interface() -> None:
    assert nics(
        {
            "k8s.v1.cni.cncf.io/networks": "default/macvlan@m1,default/macvlan@m2",
            "macvlan.default.kubernetes.io/ip_address.m1": "172.17.0.81",
            "macvlan.default.kubernetes.io/mac_address.m2": "0A:00:00:00:00:82",
        }
    ) == [
        ("macvlan.default.m1", ("172.17.0.81",), None),
        ("macvlan.default.m2", (), "0a:00:00:00:00:82"),
    ]


def test_the_per_interface_keys_win_over_the_provider_interface_keys() -> None:
    """Both forms given: Kube-OVN v1.16 reads ``ip_address.<if>`` first; so does nicpool."""
    assert nics(
        {
            "k8s.v1.cni.cncf.io/networks": "default/macvlan@m1,default/macvlan@m2",
            "macvlan.default.kubernetes.io/ip_address.m1": "172.17.0.81",
            "macvlan.default.m1.kubernetes.io/ip_address": "172.17.0.91",
            "macvlan.default.m2.kubernetes.io/ip_address": "172.17.0.92",
            "macvlan.default.kubernetes.io/mac_address.m2": "0a:00:00:00:00:82",
            "macvlan.default.m2.kubernetes.io/mac_address": "0a:00:00:00:00:92",
        }
    ) == [
        ("macvlan.default.m1", ("172.17.0.81",), None),
        ("macvlan.default.m2", ("172.17.0.92",), "0a:00:00:00:00:82"),
    ]


def test_per_interface_keys_follow_an_interface_the_networks_annotation_names() -> None:
    """Attached once: read when the interface is named (``@if`` or JSON), as in Kube-OVN;
    a NIC named by Multus's counting (``net1``) is not addressed that way."""
    named = {
        "k8s.v1.cni.cncf.io/networks": json.dumps(
            [{"name": "macvlan", "namespace": "default", "interface": "data0"}]
        ),
        "macvlan.default.kubernetes.io/ip_address.data0": "172.17.0.83",
    }
    assert nics(named) == [("macvlan.default", ("172.17.0.83",), None)]
    counted = {
        "k8s.v1.cni.cncf.io/networks": "default/macvlan",
        "macvlan.default.kubernetes.io/ip_address.net1": "172.17.0.84",
    }
    assert nics(counted) == [("macvlan.default", (), None)]


def test_a_kube_ovn_type_nad_is_keyed_by_nad_and_namespace_without_ovn() -> None:
    assert nics(
        {
            "k8s.v1.cni.cncf.io/networks": "default/attachnet@a1,default/attachnet@a2",
            "attachnet.default.kubernetes.io/ip_address.a2": "172.18.0.9",
        }
    ) == [
        ("attachnet.default.ovn.a1", (), None),
        ("attachnet.default.ovn.a2", ("172.18.0.9",), None),
    ]


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("ip_address.m2", "ten", "InvalidAddress"),
        ("ip_address.m2", "10.9.9.9", "AddressOutsideSubnet"),
        ("ip_address.m2", "172.17.0.5,172.17.0.6", "AddressFamilyMismatch"),
        ("mac_address.m2", "01:00:00:00:00:01", "InvalidMac"),
    ],
)
def test_bad_per_interface_values_are_refused_naming_their_key(
    key: str, value: str, reason: str
) -> None:
    annotation = f"macvlan.default.kubernetes.io/{key}"
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan@m1,default/macvlan@m2",
                annotation: value,
            }
        ),
        WORLD,
    )
    assert [e.reason for e in plan.errors] == [reason]
    assert annotation in str(plan.errors[0])
