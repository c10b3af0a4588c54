"""Small value types of the store core: MACs, offset ranges, the key layout, records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.core.identity import AttachmentRef, PodRef, Provider
from store.core.keys import Keys
from store.core.mac import parse_mac
from store.core.ranges import Ranges
from store.core.records import RecordError, decode_attachment, decode_lease
from store.errors import InvalidMac

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [("00:00:00:53:6B:BB", "00:00:00:53:6b:bb"), ("02-AA-bb-cc-dd-ee", "02:aa:bb:cc:dd:ee")],
)
def test_user_macs_are_normalised(text: str, expected: str) -> None:
    assert parse_mac(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("00:00:00:00:00:00", "all-zero"),
        ("ff:ff:ff:ff:ff:ff", "multicast"),
        ("00:00:00:53:6B", "not a MAC"),
        ("zz:00:00:53:6B:BB", "not a MAC"),
        ("", "not a MAC"),
    ],
)
def test_bad_macs_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidMac, match=message):
        parse_mac(text)


@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 50)), max_size=20))
def test_ranges_merge_and_cover_exactly_their_members(spans: list[tuple[int, int]]) -> None:
    pairs = [(a, a + n) for a, n in spans]
    ranges = Ranges.of(pairs)
    members = {x for a, b in pairs for x in range(a, b + 1)}
    assert ranges.count() == len(members)
    assert all((x in ranges) == (x in members) for x in range(0, 560))
    assert all(b + 1 < c for (_, b), (c, _) in zip(ranges.pairs, ranges.pairs[1:], strict=False))


def test_attachment_keys_round_trip() -> None:
    keys = Keys("/nicpool/v1/")
    ref = AttachmentRef(PodRef("default", "samplepod"), Provider("attachnet.default.ovn"))
    key = keys.attachment(ref)
    assert key == "/nicpool/v1/attachments/default/samplepod/attachnet.default.ovn"
    assert keys.attachment_ref(key) == ref


def test_prefix_must_be_slash_delimited() -> None:
    with pytest.raises(ValueError, match="must start and end"):
        Keys("nicpool/v1")


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"pod": {}}'])
def test_unreadable_records_raise_record_error(raw: bytes) -> None:
    with pytest.raises(RecordError):
        decode_attachment(raw)
    with pytest.raises(RecordError):
        decode_lease(raw)
