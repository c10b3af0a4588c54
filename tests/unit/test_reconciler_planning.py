"""Planning: pod + NADs + Subnets + IPPools -> one allocation plan per NIC, or the refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from reconciler.core.errors import DuplicateProvider
from reconciler.core.ippools import IPPoolView
from reconciler.core.planning import PodView, World, plan_pod
from reconciler.core.subnets import SubnetView, subnet_from_object
from store.core.identity import PodUID, SubnetName
from store.core.records import Route, WorkloadRef

pytestmark = pytest.mark.unit

MACVLAN = json.dumps(
    {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": "macvlan.default"}}
)
ATTACHNET = json.dumps({"type": "kube-ovn", "provider": "attachnet.default.ovn"})


def subnet(name: str, provider: str, cidr: str, **extra: object) -> SubnetView:
    return subnet_from_object(name, {"provider": provider, "cidrBlock": cidr, **extra})


SUBNETS = {
    s.name: s
    for s in (
        subnet("macvlan", "macvlan.default", "172.17.0.0/16", gateway="172.17.0.1"),
        subnet("attachnet", "attachnet.default.ovn", "172.18.0.0/16"),
        subnet("ovn-sub", "ovn", "172.19.0.0/16"),
        subnet("dual", "dual.default", "10.20.0.0/24,fd00:20::/64"),
        subnet("v6", "v6.default", "fd00:30::/64"),
    )
}
NADS: dict[str, str | None] = {
    "default/macvlan": MACVLAN,
    "default/attachnet": ATTACHNET,
    "default/dual": json.dumps(
        {"type": "bridge", "ipam": {"type": "kube-ovn", "provider": "dual.default"}}
    ),
    "default/v6": json.dumps(
        {"type": "bridge", "ipam": {"type": "kube-ovn", "provider": "v6.default"}}
    ),
    "default/hostlocal": json.dumps({"type": "bridge", "ipam": {"type": "host-local"}}),
    "default/macvlan-conf-2": None,
}
WORLD = World(
    nads=NADS,
    subnets=SUBNETS,
    ippools={"pool-1": IPPoolView("pool-1", "macvlan", ("172.17.0.50..172.17.0.52",))},
)


def pod(
    annotations: dict[str, str],
    *,
    name: str = "p",
    workload: WorkloadRef | None = None,
    ordinal: int | None = None,
) -> PodView:
    return PodView("default", name, PodUID("uid-1"), annotations, workload, ordinal)


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


# -- Kube-OVN v1.16's per-interface keys: <nad>.<ns>.kubernetes.io/ip_address.<if> --


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
