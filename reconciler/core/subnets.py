"""Kube-OVN Subnet objects as the controller sees them, and which one an attachment uses.

One reading of a Subnet: :func:`store_spec_of` turns the object's ``spec``
into the store's validated ``SubnetSpec`` (``store.core.subnetspec``), and
the planning view is that spec. So planning never accepts a Subnet the store
would refuse (a planned NIC on a Subnet the store cannot register used to
commit the pod's other NICs and then fail, leaking them).

Choice (DESIGN.md): ``<provider>.kubernetes.io/logical_switch`` names the
Subnet and wins; otherwise the Subnet whose ``spec.provider`` equals the
attachment's provider. Several Subnets with one provider is refused rather
than guessed at (Kube-OVN would take whichever its cache lists first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import AmbiguousSubnet, InvalidSubnet, NoSubnetForProvider
from store.core.addressing import FamilyLayout
from store.core.identity import SubnetName
from store.core.subnetspec import SubnetSpec, parse_subnet_spec
from store.errors import InvalidSubnetSpec, UnknownSubnet


@dataclass(frozen=True)
class SubnetView:
    """What planning needs from one Subnet object: the store's reading of it."""

    spec: SubnetSpec
    created: str = ""
    """``metadata.creationTimestamp``: of two overlapping Subnets the older wins."""
    network: str = ""
    """The network its addresses live on (``core.overlaps.network_of``): two Subnets of
    one network must not overlap."""
    deleting: bool = False
    """Being deleted: no new NIC is planned on it (its leases hold it until released)."""
    ready: bool = False
    """Shown usable (``Ready=True``) already: kept over a newer one of the same second."""

    @property
    def name(self) -> SubnetName:
        return self.spec.name

    @property
    def provider(self) -> str:
        return self.spec.provider

    @property
    def layouts(self) -> tuple[FamilyLayout, ...]:
        """One per family, IPv4 first (as Kube-OVN's ``cidrBlock``)."""
        return self.spec.layouts

    @property
    def families(self) -> tuple[int, ...]:
        return tuple(layout.family for layout in self.spec.layouts)

    @property
    def cidr_block(self) -> str:
        return self.spec.cidr_block

    @property
    def gateway(self) -> str:
        return ",".join(layout.gateway for layout in self.spec.layouts)


def subnet_from_object(
    name: str,
    spec: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
) -> SubnetView:
    """A Subnet object's spec -> SubnetView, or InvalidSubnet (reported on the Subnet)."""
    try:
        parsed = store_spec_of(name, spec)
    except InvalidSubnetSpec as exc:
        raise InvalidSubnet(str(exc)) from exc
    meta = meta or {}
    return SubnetView(
        parsed,
        created=str(meta.get("creationTimestamp", "")),
        network=network_of(parsed.provider, spec.get("vpc"), spec.get("vlan")),
        deleting=bool(meta.get("deletionTimestamp")),
        ready=any(
            isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
            for c in (status or {}).get("conditions") or []
        ),
    )


def network_of(provider: str, vpc: object, vlan: object) -> str:
    """Which network a Subnet's addresses live on, for the overlap rule.

    An attachment Subnet (provider ``<nad>.<ns>``) is its provider's network:
    each NAD is its own L2 segment (its own ``master``, bridge or VLAN). Kube-OVN's
    ovn-type Subnets (provider ``ovn`` or ``*.ovn``) share their VPC's routing
    domain, per ``spec.vpc`` and ``spec.vlan`` (Kube-OVN's own conflict check).
    """
    if provider == "ovn" or provider.endswith(".ovn"):
        vpc_name = vpc if isinstance(vpc, str) and vpc else "ovn-cluster"
        vlan_name = vlan if isinstance(vlan, str) else ""
        return f"vpc:{vpc_name}/{vlan_name}"
    return f"provider:{provider}"


def store_spec_of(name: str, spec: Mapping[str, Any]) -> SubnetSpec:
    """A Subnet object's spec as the store registers it (raises InvalidSubnetSpec).

    The one reading of a Subnet's fields, shared by planning, the
    controller's registration and ``nicpoolctl rebuild``. Every field is
    checked for its type here: a user's object may hold anything.
    """
    mtu = spec.get("mtu") or 0
    if not isinstance(mtu, int) or isinstance(mtu, bool):
        raise InvalidSubnetSpec(f"subnet {name}: mtu {mtu!r} is not an integer")
    excludes = spec.get("excludeIps") or []
    if not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes):
        raise InvalidSubnetSpec(f"subnet {name}: excludeIps must be a list of strings")
    texts = {key: spec.get(key) for key in ("cidrBlock", "provider", "gateway", "protocol")}
    for key, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise InvalidSubnetSpec(f"subnet {name}: {key} must be a string, got {value!r}")
    return parse_subnet_spec(
        name,
        cidr_block=(texts["cidrBlock"] or "").strip(),
        provider=(texts["provider"] or "ovn").strip(),
        gateway=texts["gateway"] or None,
        exclude_ips=excludes,
        protocol=texts["protocol"] or None,
        mtu=mtu,
    )


def choose_subnet(
    providers: Iterable[str],
    logical_switch: str | None,
    subnets: Mapping[SubnetName, SubnetView],
) -> SubnetView:
    """The Subnet for one NIC. ``providers``: the NIC's provider keys, most specific first."""
    if logical_switch:
        found = subnets.get(SubnetName(logical_switch))
        if found is None:
            raise UnknownSubnet(
                f"logical_switch names Subnet {logical_switch!r}, which does not exist "
                "or which nicpool refused (see the Subnet's events)"
            )
        return found
    tried: list[str] = []
    for provider in providers:
        tried.append(provider)
        matches = sorted(name for name, s in subnets.items() if s.provider == provider)
        if len(matches) == 1:
            return subnets[matches[0]]
        if len(matches) > 1:
            raise AmbiguousSubnet(
                f"Subnets {', '.join(matches)} all have provider {provider!r}; "
                "give each provider one Subnet or name one with logical_switch"
            )
    raise NoSubnetForProvider(
        f"no usable Subnet has spec.provider {' or '.join(repr(p) for p in tried)}; create one "
        "(or fix the one nicpool refused: see its events) or name a Subnet with the "
        "logical_switch annotation"
    )
