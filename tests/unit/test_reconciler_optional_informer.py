"""A resource whose CRD is not installed (KubeVirt's VirtualMachine) reads as none.

The controller leads only once every informer has synced, so an informer of
an absent resource must sync (empty), stay healthy and quiet, and pick the
resource up once its CRD is installed; one removed takes its objects with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.kube.errors import NotFound
from reconciler.kube.optional import OptionalInformer
from reconciler.kube.resources import VIRTUALMACHINES

pytestmark = pytest.mark.unit


def vm(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": name, "resourceVersion": version}}


class Api:
    """``lists`` answered in turn; an exception instead of a list is raised."""

    def __init__(self, *lists: Any) -> None:
        self.lists = list(lists)

    def list_pages(self, resource: object) -> Iterator[tuple[list[dict[str, Any]], str]]:
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        yield answer, "7"

    def watch(self, resource: object, version: str, *, timeout_seconds: int) -> Iterator[Any]:
        return iter(())


def test_an_absent_crd_syncs_empty_then_is_found_when_installed() -> None:
    seen: list[Any] = []
    api = Api(NotFound("404"), [vm("vm1", "3")])
    informer = OptionalInformer(api, VIRTUALMACHINES, handler=lambda o, n: seen.append(n))  # type: ignore[arg-type]
    informer.recheck = 0.0
    assert informer.relist() == "7"  # looked again after the 404, found it
    assert informer.synced.is_set() and not informer.absent
    assert [n["metadata"]["name"] for n in seen] == ["vm1"]


def test_while_absent_it_is_synced_healthy_and_empty() -> None:
    stop = threading.Event()
    api = Api(NotFound("404"))
    informer = OptionalInformer(api, VIRTUALMACHINES, stop=stop, watch_timeout=1)  # type: ignore[arg-type]
    informer.recheck = 3600.0
    informer.start()
    try:
        assert informer.synced.wait(10)
        informer._clock = lambda: 1e12  # long after any contact: no watch to go silent
        assert informer.healthy() and informer.absent and informer.items() == []
    finally:
        stop.set()


def test_a_removed_crd_takes_its_objects_with_it() -> None:
    gone: list[Any] = []
    api = Api([vm("vm1", "3")], NotFound("404"))
    informer = OptionalInformer(api, VIRTUALMACHINES, handler=lambda o, n: gone.append((o, n)))  # type: ignore[arg-type]
    informer.relist()
    informer.stop.set()  # do not wait for the CRD to come back
    with pytest.raises(NotFound):
        informer.relist()
    assert (
        informer.items() == [] and gone[-1][1] is None and gone[-1][0]["metadata"]["name"] == "vm1"
    )
