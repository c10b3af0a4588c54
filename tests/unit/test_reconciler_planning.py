"""Planning: pod + NADs + Subnets + IPPools -> one allocation plan per NIC, or the refusals.

The world planned against (the seed's NADs and Subnets) is in
:mod:`tests.unit.planning_world`; Kube-OVN v1.16's per-interface keys have
their own module, ``test_reconciler_interface_keys``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from reconciler.core.errors import DuplicateProvider
from reconciler.core.planning import World, plan_pod
from store.core.identity import SubnetName
from store.core.records import Route, WorkloadRef
from tests.unit.planning_world import MACVLAN, NADS, SUBNETS, WORLD, pod, subnet

pytestmark = pytest.mark.unit


def test_seed_random_address_pod() -> None:
    plan = plan_pod(pod({"k8s.v1.cni.cncf.io/networks": "default/macvlan"}), WORLD)
    assert plan.ok
    (nic,) = plan.nics
    assert (nic.ref.provider, nic.subnet, nic.interface) == ("macvlan.default", "macvlan", "net1")
    assert (nic.fixed_ips, nic.request.pool, nic.mac, nic.request.default_route) == (
        (),
        (),
        None,
        False,
    )


def test_seed_fixed_ip_pod_leaves_the_primary_cni_alone() -> None:
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "ovn.kubernetes.io/ip_address": "10.16.0.15",
                "ovn.kubernetes.io/mac_address": "00:00:00:53:6B:B6",
                "macvlan.default.kubernetes.io/ip_address": "172.17.0.100",
                "macvlan.default.kubernetes.io/mac_address": "00:00:00:53:6B:BB",
            }
        ),
        WORLD,
    )
    (nic,) = plan.nics
    assert nic.fixed_ips == ("172.17.0.100",)
    assert nic.mac == "00:00:00:53:6b:bb"
    assert [n.ref.provider for n in plan.nics] == ["macvlan.default"]


def test_seed_deployment_pool_passes_all_entries_in_order() -> None:
    deploy = WorkloadRef("Deployment", "static-workload", "d-uid")
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_pool": "172.17.0.200,172.17.0.201,172.17.0.202",
            },
            workload=deploy,
        ),
        WORLD,
    )
    (nic,) = plan.nics
    assert nic.request.pool == (("172.17.0.200",), ("172.17.0.201",), ("172.17.0.202",))
    assert (nic.request.workload, nic.adopt) == (deploy, False)


@pytest.mark.parametrize(("ordinal", "entry"), [(0, "172.17.0.200"), (2, "172.17.0.202")])
def test_statefulset_pod_takes_the_entry_at_its_ordinal(ordinal: int, entry: str) -> None:
    sts = WorkloadRef("StatefulSet", "web", "s-uid")
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_pool": "172.17.0.200,172.17.0.201,172.17.0.202",
            },
            name=f"web-{ordinal}",
            workload=sts,
            ordinal=ordinal,
        ),
        WORLD,
    )
    (nic,) = plan.nics
    assert (nic.request.pool, nic.adopt) == (((entry,),), True)


def test_statefulset_ordinal_beyond_the_pool_is_refused() -> None:
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_pool": "172.17.0.200",
            },
            name="web-1",
            workload=WorkloadRef("StatefulSet", "web", "s"),
            ordinal=1,
        ),
        WORLD,
    )
    assert [e.reason for e in plan.errors] == ["PoolExhausted"]
    assert plan.nics == ()


def test_ippool_by_name_expands_its_range() -> None:
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_pool": "pool-1",
            }
        ),
        WORLD,
    )
    (nic,) = plan.nics
    assert nic.request.pool == (("172.17.0.50",), ("172.17.0.51",), ("172.17.0.52",))


def test_seed_default_route_and_default_network() -> None:
    routed = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": '[{"name": "macvlan", "namespace": "default", '
                '"default-route": ["172.17.0.1"]}]'
            }
        ),
        WORLD,
    )
    (nic,) = routed.nics
    assert nic.request.default_route and nic.request.routes == (Route(dst="", gw="172.17.0.1"),)
    main = plan_pod(pod({"v1.multus-cni.io/default-network": "default/macvlan"}), WORLD)
    (eth0,) = main.nics
    assert (eth0.interface, eth0.request.default_route) == ("eth0", True)


def test_seed_logical_switch_wins_over_provider() -> None:
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/attachnet",
                "attachnet.default.ovn.kubernetes.io/logical_switch": "ovn-sub",
            }
        ),
        WORLD,
    )
    (nic,) = plan.nics
    assert (nic.subnet, nic.subnet_provider, nic.ref.provider) == (
        "ovn-sub",
        "ovn",
        "attachnet.default.ovn",
    )


def test_seed_custom_routes_are_planned_and_echoed() -> None:
    routes = '[{"dst": "192.168.0.101/24", "gw": "172.17.0.254"}, {"gw": "172.17.0.254"}]'
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/attachnet",
                "attachnet.default.ovn.kubernetes.io/routes": routes,
            }
        ),
        WORLD,
    )
    (nic,) = plan.nics
    assert nic.request.routes == (
        Route("192.168.0.0/24", "172.17.0.254"),
        Route("", "172.17.0.254"),
    )
    assert nic.routes_given == routes


def test_dual_stack_and_ipv6_only_fixed_addresses() -> None:
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/dual,default/v6",
                "dual.default.kubernetes.io/ip_address": "fd00:20::9,10.20.0.9",
                "v6.default.kubernetes.io/ip_address": "fd00:30::9",
            }
        ),
        WORLD,
    )
    assert plan.ok
    assert [n.fixed_ips for n in plan.nics] == [("10.20.0.9", "fd00:20::9"), ("fd00:30::9",)]


def test_two_nics_on_two_subnets() -> None:
    plan = plan_pod(
        pod({"k8s.v1.cni.cncf.io/networks": "default/macvlan, default/attachnet"}), WORLD
    )
    assert [(n.subnet, n.interface) for n in plan.nics] == [
        ("macvlan", "net1"),
        ("attachnet", "net2"),
    ]


def test_same_nad_twice_gets_one_provider_key_per_interface() -> None:
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan@m1,default/macvlan@m2",
                "macvlan.default.m2.kubernetes.io/ip_address": "172.17.0.77",
            }
        ),
        WORLD,
    )
    assert plan.ok
    assert [(n.ref.qualified, n.subnet, n.fixed_ips) for n in plan.nics] == [
        ("macvlan.default.m1", "macvlan", ()),
        ("macvlan.default.m2", "macvlan", ("172.17.0.77",)),
    ]
    assert [(n.ref.provider, n.ref.interface) for n in plan.nics] == [
        ("macvlan.default", "m1"),
        ("macvlan.default", "m2"),
    ]


def test_a_provider_literally_named_like_a_twice_attached_nic_is_refused() -> None:
    """Issue 8 item 15: ``macvlan.default`` on ``m1`` and a provider literally named
    ``macvlan.default.m1`` would write the same annotations: refused, not mixed."""
    literal = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": "macvlan.default.m1"}}
    lookalike = subnet("lookalike", "macvlan.default.m1", "10.50.0.0/24")
    world = replace(
        WORLD,
        nads={**WORLD.nads, "default/lookalike": json.dumps(literal)},
        subnets={**WORLD.subnets, lookalike.name: lookalike},
    )
    plan = plan_pod(
        pod(
            {
                "k8s.v1.cni.cncf.io/networks": (
                    "default/macvlan@m1,default/macvlan@m2,default/lookalike@m3"
                ),
            }
        ),
        world,
    )
    assert not plan.ok
    assert any(isinstance(e, DuplicateProvider) for e in plan.errors)


def test_nads_without_kube_ovn_are_ignored_not_refused() -> None:
    plan = plan_pod(
        pod({"k8s.v1.cni.cncf.io/networks": "default/hostlocal,default/macvlan"}), WORLD
    )
    assert plan.ok and plan.ignored == ("default/hostlocal",)
    assert [n.interface for n in plan.nics] == ["net2"]


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        ({"k8s.v1.cni.cncf.io/networks": "[{bad"}, "InvalidNetworksAnnotation"),
        ({"k8s.v1.cni.cncf.io/networks": "default/nope"}, "NetworkAttachmentDefinitionNotFound"),
        ({"k8s.v1.cni.cncf.io/networks": "default/macvlan-conf-2"}, "NoProvider"),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_address": "10.9.9.9",
            },
            "AddressOutsideSubnet",
        ),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_address": "ten",
            },
            "InvalidAddress",
        ),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/dual",
                "dual.default.kubernetes.io/ip_address": "10.20.0.9",
            },
            "AddressFamilyMismatch",
        ),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/mac_address": "xx",
            },
            "InvalidMac",
        ),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_pool": "172.17.0.1,10.0.0.1",
            },
            "AddressOutsideSubnet",
        ),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/ip_pool": "missing-pool",
            },
            "IPPoolNotFound",
        ),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/logical_switch": "nope",
            },
            "UnknownSubnet",
        ),
        (
            {
                "k8s.v1.cni.cncf.io/networks": "default/macvlan",
                "macvlan.default.kubernetes.io/routes": "[{}]",
            },
            "InvalidRoutes",
        ),
    ],
)
def test_every_bad_input_is_a_refusal_and_plans_nothing_for_it(
    annotations: dict[str, str], reason: str
) -> None:
    plan = plan_pod(pod(annotations), WORLD)
    assert not plan.ok
    assert [e.reason for e in plan.errors] == [reason]
    assert all(str(e) for e in plan.errors)


def test_no_subnet_for_provider_is_refused() -> None:
    world = World(nads=NADS, subnets={k: v for k, v in SUBNETS.items() if k != "macvlan"})
    plan = plan_pod(pod({"k8s.v1.cni.cncf.io/networks": "default/macvlan"}), world)
    assert [e.reason for e in plan.errors] == ["NoSubnetForProvider"]


def test_two_subnets_with_one_provider_are_ambiguous() -> None:
    extra = subnet("macvlan-2", "macvlan.default", "172.30.0.0/16")
    world = World(nads=NADS, subnets={**SUBNETS, SubnetName("macvlan-2"): extra})
    plan = plan_pod(pod({"k8s.v1.cni.cncf.io/networks": "default/macvlan"}), world)
    assert [e.reason for e in plan.errors] == ["AmbiguousSubnet"]


def test_two_nads_with_one_provider_collide() -> None:
    nads = {**NADS, "default/copy": MACVLAN}
    plan = plan_pod(
        pod({"k8s.v1.cni.cncf.io/networks": "default/macvlan,default/copy"}),
        World(nads=nads, subnets=SUBNETS),
    )
    assert [e.reason for e in plan.errors] == ["DuplicateProvider"]
