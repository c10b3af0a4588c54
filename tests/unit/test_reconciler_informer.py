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


def pod(name: str, version: str, uid: str = "") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": uid or f"uid-{name}",
            "resourceVersion": version,
            "managedFields": [{"big": "x"}],
        }
    }


class FakeApi:
    """Answers list_pages() from ``lists`` in turn (one page each) and watch() from
    ``watches`` in turn."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self.lists, self.watches, self.watched_from = lists, watches, []

    def list_pages(self, resource: object) -> Iterator[tuple[list[dict[str, Any]], str]]:
        items = self.lists.pop(0)
        yield items, str(len(items) * 10)

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
    informer.version = informer.relist()
    with pytest.raises(Gone):
        informer._watch()
    informer.relist()
    assert api.watched_from == ["20"]
    assert seen == [(None, "a"), (None, "b"), ("a", "a"), ("a", "a"), (None, "c"), ("b", None)]
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "c"]
    assert "managedFields" not in informer.get("ns/a")["metadata"]
    assert informer.synced.is_set()


class PagedApi(FakeApi):
    """Each list comes in pages; the test looks at the informer between them."""

    def __init__(self, pages: list[list[dict[str, Any]]], between: Any) -> None:
        super().__init__(lists=[], watches=[])
        self.pages, self.between = pages, between

    def list_pages(self, resource: object) -> Iterator[tuple[list[dict[str, Any]], str]]:
        for number, page in enumerate(self.pages):
            if number:
                self.between(number)
            yield page, "9"


def test_a_list_page_is_cached_and_reported_before_the_next_page_is_asked_for() -> None:
    """A consumer acts on the first pods of a long list (a restarted leader's new
    pods) while the rest is still coming; the informer is synced only at the end."""
    seen: list[str] = []
    looked: list[tuple[list[str], bool]] = []
    informer: Informer

    def between(number: int) -> None:
        names = sorted(o["metadata"]["name"] for o in informer.items())
        looked.append((names, informer.synced.is_set()))

    api = PagedApi([[pod("a", "1"), pod("b", "2")], [pod("c", "3")]], between)
    informer = Informer(
        api, PODS, handler=lambda old, new: seen.append(str(new and new["metadata"]["name"]))
    )  # type: ignore[arg-type]
    assert informer.relist() == "9"
    assert looked == [(["a", "b"], False)]
    assert seen == ["a", "b", "c"]
    assert informer.synced.is_set()


def test_a_relist_reports_what_it_no_longer_shows_deleted_only_at_its_end() -> None:
    """An object on no page yet may be on a later one: it is gone only when the
    whole list has been read."""
    reports: list[tuple[str | None, str | None]] = []
    api = FakeApi(lists=[[pod("a", "1"), pod("b", "2")]], watches=[])
    informer = Informer(api, PODS)  # type: ignore[arg-type]
    informer.relist()

    def handler(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        name = lambda o: None if o is None else o["metadata"]["name"]  # noqa: E731
        reports.append((name(old), name(new)))

    informer.handler = handler
    cached_between: list[list[str]] = []
    informer.client = PagedApi(  # type: ignore[assignment]
        [[pod("a", "5")], [pod("c", "6")]],
        lambda n: cached_between.append(sorted(o["metadata"]["name"] for o in informer.items())),
    )
    informer.relist()
    assert cached_between == [["a", "b"]]
    assert reports == [("a", "a"), (None, "c"), ("b", None)]
    assert sorted(o["metadata"]["name"] for o in informer.items()) == ["a", "c"]


def _recorder() -> tuple[list[tuple[str | None, str | None]], Any]:
    seen: list[tuple[str | None, str | None]] = []

    def handler(old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        uid = lambda o: None if o is None else o["metadata"]["uid"]  # noqa: E731
        seen.append((uid(old), uid(new)))

    return seen, handler


def test_a_watch_broken_mid_stream_resumes_after_the_last_event() -> None:
    """Issue 8 item 8: resuming from the list's version replayed history."""
    api = FakeApi(
        lists=[[pod("p", "10", "u1")]],
        watches=[
            [("DELETED", pod("p", "11", "u1")), ("ADDED", pod("p", "12", "u2")), OSError("reset")],
        ],
    )
    informer = Informer(api, PODS)  # type: ignore[arg-type]
    informer.version = informer.relist()
    with pytest.raises(OSError):
        informer._watch()
    assert informer.version == "12"


def test_a_replayed_history_never_tombstones_the_live_pod() -> None:
    """The replay the review reproduced: a pod deleted and recreated under one name,
    then the watch resumed from before both. The live u2 must never look deleted."""
    seen, handler = _recorder()
    api = FakeApi(lists=[[pod("p", "12", "u2")]], watches=[])
    informer = Informer(api, PODS, handler=handler)  # type: ignore[arg-type]
    informer.relist()
    seen.clear()
    for kind, obj in [
        ("ADDED", pod("p", "10", "u1")),
        ("DELETED", pod("p", "11", "u1")),
        ("ADDED", pod("p", "12", "u2")),
    ]:
        informer.apply(kind, obj)
    assert seen == []
    assert informer.get("ns/p")["metadata"]["uid"] == "u2"  # type: ignore[index]


def test_a_delete_of_an_earlier_incarnation_reports_only_that_uid() -> None:
    seen, handler = _recorder()
    api = FakeApi(lists=[[pod("p", "10", "u1")]], watches=[])
    informer = Informer(api, PODS, handler=handler)  # type: ignore[arg-type]
    informer.relist()
    seen.clear()
    informer.apply("ADDED", pod("p", "12", "u2"))  # recreated; the delete comes late
    informer.apply("DELETED", pod("p", "13", "u1"))
    assert seen == [("u1", "u2"), ("u1", None)]
    assert informer.get("ns/p")["metadata"]["uid"] == "u2"  # type: ignore[index]


def test_the_loop_survives_an_unexpected_exception_and_relists() -> None:
    class Flaky(FakeApi):
        def watch(self, resource: object, version: str, *, timeout_seconds: int) -> Iterator[Any]:
            if len(self.watched_from) == 0:
                self.watched_from.append(version)
                raise KeyError("surprise")
            informer.stop.set()
            return iter(())

    api = Flaky(lists=[[pod("a", "1")], [pod("a", "2")]], watches=[])
    informer = Informer(api, PODS)  # type: ignore[arg-type]
    informer.run()
    assert informer.failures == 1 and informer.relists == 2


def test_health_turns_false_when_the_server_goes_quiet() -> None:
    now = [0.0]
    api = FakeApi(lists=[[pod("a", "1")]], watches=[])
    informer = Informer(api, PODS, watch_timeout=40, clock=lambda: now[0])  # type: ignore[arg-type]
    assert not informer.healthy()  # not listed yet
    informer.relist()
    assert informer.healthy()
    now[0] = 79.0
    assert informer.healthy()
    now[0] = 81.0
    assert not informer.healthy()


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
