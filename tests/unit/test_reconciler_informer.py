"""List-then-watch: events applied to the cache, and a relist after 410 Gone reports the gap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.kube.errors import Gone, from_status
from reconciler.kube.informer import Informer
from reconciler.kube.resources import PODS
from store.errors import PermanentError, TemporaryError

pytestmark = pytest.mark.unit


def pod(name: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "resourceVersion": version,
            "managedFields": [{"big": "x"}],
        }
    }


class FakeApi:
    """Answers list() from ``lists`` in turn and watch() from ``watches`` in turn."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self.lists, self.watches, self.watched_from = lists, watches, []

    def list(self, resource: object) -> tuple[list[dict[str, Any]], str]:
        items = self.lists.pop(0)
        return items, str(len(items) * 10)

    def watch(self, resource: object, version: str, *, timeout_seconds: int) -> Iterator[Any]:
        self.watched_from.append(version)
        for event in self.watches.pop(0):
            if isinstance(event, Exception):
                raise event
            yield event


def test_watch_events_then_410_relist_reports_what_was_missed() -> None:
    seen: list[tuple[str | None, str | None]] = []

    def handler(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        name = lambda o: None if o is None else o["metadata"]["name"]  # noqa: E731
        seen.append((name(old), name(new)))

    api = FakeApi(
        lists=[[pod("a", "1"), pod("b", "2")], [pod("a", "5"), pod("c", "6")]],
        watches=[[("MODIFIED", pod("a", "3")), ("BOOKMARK", pod("", "4")), Gone("expired")]],
    )
    informer = Informer(api, PODS, handler=handler)  # type: ignore[arg-type]
    version = informer.relist()
    with pytest.raises(Gone):
        informer._watch(version)
    informer.relist()
    assert api.watched_from == ["20"]
    assert seen == [(None, "a"), (None, "b"), ("a", "a"), ("a", "a"), (None, "c"), ("b", None)]
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "c"]
    assert "managedFields" not in informer.get("ns/a")["metadata"]
    assert informer.synced.is_set()


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        (404, PermanentError, "NotFound"),
        (403, PermanentError, "Forbidden"),
        (422, PermanentError, "Rejected"),
        (409, TemporaryError, "ApiConflict"),
        (410, TemporaryError, "Expired"),
        (429, TemporaryError, "ApiServerUnavailable"),
        (503, TemporaryError, "ApiServerUnavailable"),
    ],
)
def test_http_failures_translate_by_what_the_caller_should_do(
    status: int, kind: type[Exception], reason: str
) -> None:
    error = from_status(status, b'{"message": "details here"}', "PATCH /x")
    assert isinstance(error, kind) and error.reason == reason  # type: ignore[attr-defined]
    assert "details here" in str(error)
