"""Planning reads snapshots nobody changes under it (issue 8, item 7), and bounded memories."""

from __future__ import annotations

import threading

import pytest

from reconciler.core.bounded import Bounded, BoundedMap
from reconciler.core.subnets import choose_subnet, subnet_from_object
from reconciler.views import Views
from store.core.identity import SubnetName

pytestmark = pytest.mark.unit


def test_a_world_taken_for_planning_never_changes_under_it() -> None:
    views = Views()
    views.set_subnet(SubnetName("a"), subnet_from_object("a", {"cidrBlock": "10.0.0.0/24"}))
    views.set_nad("ns/net", '{"type": "macvlan"}')
    taken = views.world
    views.set_subnet(SubnetName("b"), subnet_from_object("b", {"cidrBlock": "10.1.0.0/24"}))
    views.set_subnet(SubnetName("a"), None)
    views.set_nad("ns/net", None, present=False)
    assert list(taken.subnets) == ["a"] and list(taken.nads) == ["ns/net"]
    assert list(views.world.subnets) == ["b"] and dict(views.world.nads) == {}


def test_planning_while_informers_churn_never_sees_a_dict_change_size() -> None:
    """The crash the review reproduced in ``choose_subnet``, on snapshots instead."""
    views = Views()
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            name = SubnetName(f"s{n % 50}")
            views.set_subnet(name, subnet_from_object(name, {"cidrBlock": f"10.{n % 50}.0.0/24"}))
            views.set_subnet(SubnetName(f"s{(n + 25) % 50}"), None)
            n += 1

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for _ in range(2000):
            world = views.world
            try:
                choose_subnet(["absent"], None, world.subnets)
            except Exception as exc:  # NoSubnetForProvider is the expected refusal
                assert not isinstance(exc, RuntimeError), exc
    finally:
        stop.set()
        writer.join()


def test_bounded_memories_forget_the_oldest() -> None:
    seen: BoundedMap[str, int] = BoundedMap(3)
    for n in range(5):
        seen.set(f"k{n}", n)
    assert seen.keys() == ["k2", "k3", "k4"] and seen.get("k0") is None
    refused: Bounded[str] = Bounded(2)
    for key in ("a", "b", "c"):
        refused.add(key)
    assert "a" not in refused and list(refused) == ["b", "c"]
    refused.discard("b")
    assert list(refused) == ["c"]
