"""Bad input never allocates and never takes an address away: an Event, a metric, nothing else.

Each case creates a pod a user could write by mistake and asserts what the
user sees: a Warning Event on the pod with the reason, no ``allocated``
annotation, no IP object, the Subnet's usage unchanged, and any pod that
already held an address still holding it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from tests.controller.conftest import leading_controller

pytestmark = pytest.mark.controller
NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(control_plane, "refusals")


@pytest.fixture
def net(
    control_plane: ControlPlane, controller: ControllerProcess, kube_namespace: str
) -> Iterator[tuple[Cluster, str, str]]:
    """A namespace with NAD ``net`` (provider ``net.<ns>``) and its Subnet; the holder pod
    ``holder`` already owns 10.70.0.20."""
    cluster = Cluster(control_plane.api_client())
    ns = kube_namespace
    provider = f"net.{ns}"
    config = {
        "cniVersion": "1.0.0",
        "type": "bridge",
        "ipam": {"type": "kube-ovn", "provider": provider},
    }
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(
        f"{ns}-net",
        provider=provider,
        cidrBlock="10.70.0.0/24",
        excludeIps=["10.70.0.100..10.70.0.110"],
    )
    cluster.create_pod(
        ns, "holder", {NETWORKS: f"{ns}/net", f"{provider}.kubernetes.io/ip_address": "10.70.0.20"}
    )
    cluster.allocated(ns, "holder", provider)
    wait_for("holder counted in the Subnet status", lambda: usage(cluster, ns) == 1)
    yield cluster, ns, provider
    assert controller.alive(), controller.log_tail()
    # Nothing lost: the holder still has its address.
    assert cluster.annotations(ns, "holder")[f"{provider}.kubernetes.io/ip_address"] == "10.70.0.20"


def refused(cluster: Cluster, ns: str, name: str, provider: str, reason: str) -> str:
    event = cluster.wait_event(ns, name, reason)
    assert event.type == "Warning"
    annotations = cluster.annotations(ns, name)
    assert not any(k.endswith("/allocated") for k in annotations), annotations
    assert cluster.ip_object(f"{name}.{ns}.{provider}") is None
    assert usage(cluster, ns) == 1  # only the holder
    return str(event.message)


def usage(cluster: Cluster, ns: str) -> int | None:
    found = cluster.subnet(f"{ns}-net").get("status", {}).get("v4usingIPs")
    return None if found is None else int(found)


@pytest.mark.parametrize(
    ("annotations", "reason", "message"),
    [
        ({NETWORKS: '[{"name": "net"'}, "InvalidNetworksAnnotation", "not valid JSON"),
        ({NETWORKS: "{ns}/missing"}, "NetworkAttachmentDefinitionNotFound", "does not exist"),
        (
            {NETWORKS: "{ns}/net", "{p}.kubernetes.io/ip_address": "10.99.0.5"},
            "AddressOutsideSubnet",
            "outside",
        ),
        (
            {NETWORKS: "{ns}/net", "{p}.kubernetes.io/ip_address": "10.70.0.105"},
            "AddressExcluded",
            "10.70.0.105",
        ),
        (
            {NETWORKS: "{ns}/net", "{p}.kubernetes.io/ip_address": "10.70.0.20"},
            "AddressInUse",
            "10.70.0.20",
        ),
        ({NETWORKS: "{ns}/net", "{p}.kubernetes.io/ip_pool": "10.70.0.20"}, "PoolExhausted", ""),
        (
            {NETWORKS: "{ns}/net", "{p}.kubernetes.io/mac_address": "01:00:5e:00:00:01"},
            "InvalidMac",
            "multicast",
        ),
        (
            {NETWORKS: "{ns}/net", "{p}.kubernetes.io/routes": '[{"dst": "x"}]'},
            "InvalidRoutes",
            "not a CIDR",
        ),
    ],
)
def test_bad_input_is_an_event_and_nothing_is_allocated(
    net: tuple[Cluster, str, str], annotations: dict[str, str], reason: str, message: str
) -> None:
    cluster, ns, provider = net
    filled = {k.replace("{p}", provider): v.replace("{ns}", ns) for k, v in annotations.items()}
    cluster.create_pod(ns, "bad", filled)
    assert message in refused(cluster, ns, "bad", provider, reason)


def test_empty_spec_nad_and_no_subnet_for_the_provider(
    net: tuple[Cluster, str, str], controller: ControllerProcess
) -> None:
    cluster, ns, provider = net
    cluster.create_nad(ns, "empty", None)
    cluster.create_pod(ns, "empty-user", {NETWORKS: f"{ns}/empty"})
    assert "empty spec" in refused(cluster, ns, "empty-user", provider, "NoProvider")
    orphan_config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": f"lonely.{ns}"}}
    cluster.create_nad(ns, "lonely", json.dumps(orphan_config))
    cluster.create_pod(ns, "lonely-user", {NETWORKS: f"{ns}/lonely"})
    refused(cluster, ns, "lonely-user", provider, "NoSubnetForProvider")
    count = wait_for(
        "metric",
        lambda: controller.metric("nicpool_allocation_errors_total", 'reason="NoProvider"'),
    )
    assert count >= 1
    assert (controller.metric("nicpool_nad_errors_total", 'reason="NoProvider"') or 0) >= 1


def test_a_refused_second_nic_rolls_back_the_first(net: tuple[Cluster, str, str]) -> None:
    cluster, ns, provider = net
    other = {"type": "bridge", "ipam": {"type": "kube-ovn", "provider": f"other.{ns}"}}
    cluster.create_nad(ns, "other", json.dumps(other))
    cluster.create_subnet(f"{ns}-other", provider=f"other.{ns}", cidrBlock="10.71.0.0/24")
    cluster.create_pod(
        ns,
        "half",
        {NETWORKS: f"{ns}/other,{ns}/net", f"{provider}.kubernetes.io/ip_address": "10.70.0.20"},
    )
    refused(cluster, ns, "half", provider, "AddressInUse")
    assert cluster.ip_object(f"half.{ns}.other.{ns}") is None
    # Eventually (status is refreshed periodically) and for good: nothing used in "other".
    wait_for(
        "other subnet empty",
        lambda: (
            cluster.subnet(f"{ns}-other").get("status", {}).get("v4availableIPs")
            and not cluster.subnet(f"{ns}-other")["status"]["v4usingIPs"]
        ),
    )


def test_fixing_the_input_lets_the_pod_through(net: tuple[Cluster, str, str]) -> None:
    cluster, ns, provider = net
    cluster.create_pod(ns, "late", {NETWORKS: f"{ns}/later"})
    cluster.wait_event(ns, "late", "NetworkAttachmentDefinitionNotFound")
    later = {"type": "bridge", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "later", json.dumps(later))
    assert cluster.allocated(ns, "late", provider, timeout=90)


def test_a_misconfigured_subnet_gets_an_event_on_the_subnet(
    net: tuple[Cluster, str, str],
) -> None:
    cluster, ns, _ = net
    name = f"{ns}-badgw"
    cluster.create_subnet(
        name, provider=f"badgw.{ns}", cidrBlock="10.72.0.0/24", gateway="10.99.0.1"
    )
    uid = cluster.subnet(name)["metadata"]["uid"]

    def event() -> object:
        found = cluster.core.list_namespaced_event(
            "default", field_selector=f"involvedObject.uid={uid}"
        ).items
        return found[0] if found else None

    got = wait_for("an Event on the Subnet", event)
    assert got.reason == "InvalidSubnetSpec" and got.involved_object.kind == "Subnet"  # type: ignore[attr-defined]
    assert "10.99.0.1" in got.message  # type: ignore[attr-defined]


def test_a_subnet_the_store_refuses_is_never_planned(net: tuple[Cluster, str, str]) -> None:
    """Issue 8 item 10: the planner read ``10.73.0.5/24`` leniently, the store refused
    it; a pod on it and a good Subnet got its good NIC committed and leaked."""
    cluster, ns, provider = net
    good = {"type": "bridge", "ipam": {"type": "kube-ovn", "provider": f"good.{ns}"}}
    hostbits = {"type": "bridge", "ipam": {"type": "kube-ovn", "provider": f"hostbits.{ns}"}}
    cluster.create_nad(ns, "good", json.dumps(good))
    cluster.create_nad(ns, "hostbits", json.dumps(hostbits))
    cluster.create_subnet(f"{ns}-good", provider=f"good.{ns}", cidrBlock="10.74.0.0/24")
    cluster.create_subnet(f"{ns}-hostbits", provider=f"hostbits.{ns}", cidrBlock="10.73.0.5/24")
    cluster.create_pod(ns, "both", {NETWORKS: f"{ns}/good,{ns}/hostbits"})
    assert "hostbits" in refused(cluster, ns, "both", provider, "NoSubnetForProvider")
    assert cluster.ip_object(f"both.{ns}.good.{ns}") is None
    wait_for(
        "the good subnet registered and empty",
        lambda: (
            cluster.subnet(f"{ns}-good").get("status", {}).get("v4availableIPs")
            and not cluster.subnet(f"{ns}-good")["status"]["v4usingIPs"]
        ),
    )
