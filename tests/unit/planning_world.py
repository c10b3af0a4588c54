"""The world the planning tests plan against: the seed's NADs and Subnets, one IPPool."""

from __future__ import annotations

import json

from reconciler.core.ippools import IPPoolView
from reconciler.core.planning import PodView, World
from reconciler.core.subnets import SubnetView, subnet_from_object
from store.core.identity import PodUID
from store.core.records import WorkloadRef

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
