"""MAC addresses: validating the user's, generating ours.

Generated MACs are locally administered unicast (first octet ``x2``, ``x6``,
``xA`` or ``xE``), so they never collide with a vendor's burned-in address.
Uniqueness within a subnet is not decided here: the transaction that records
a MAC also creates its index key and fails if the key exists, and a
generated MAC that loses that race is simply drawn again.

User-given MACs must be unicast and not all zero; Kube-OVN's own examples
use globally administered ones (``00:00:00:53:6B:BB``), so those are fine.
"""

from __future__ import annotations

import random
import re

from store.core.identity import Mac
from store.errors import InvalidMac

_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def parse_mac(text: str) -> Mac:
    value = text.strip() if isinstance(text, str) else ""
    if not _MAC.match(value):
        raise InvalidMac(
            f"{text!r} is not a MAC address (expected six hex octets, aa:bb:cc:dd:ee:ff)"
        )
    octets = [int(part, 16) for part in re.split(r"[:-]", value)]
    if octets[0] & 0x01:
        raise InvalidMac(f"{text!r} is a multicast MAC address; a NIC needs a unicast one")
    if not any(octets):
        raise InvalidMac(f"{text!r} is the all-zero MAC address")
    return Mac(":".join(f"{o:02x}" for o in octets))


def random_mac(rng: random.Random) -> Mac:
    # Clear the multicast bit, set the locally administered bit.
    value = (rng.getrandbits(48) & ~(0x01 << 40)) | (0x02 << 40)
    raw = f"{value:012x}"
    return Mac(":".join(raw[i : i + 2] for i in range(0, 12, 2)))
