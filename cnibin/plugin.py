#!/usr/bin/python3 -IS
"""The ``kube-ovn`` CNI plugin: asks the node agent for a pod NIC's lease.

kubelet, Multus or a main plugin such as macvlan execs this file for every
pod NIC, so its start-up time is the plugin's latency. It therefore imports
the standard library only, and only the cheap parts of it on the hot path:
no ``typing``, ``dataclasses``, ``http.client`` (pulls in ``ssl``) or
``subprocess`` (needed only when the plugin builds a veth as a main plugin).
It runs as ``python3 -I -S`` (no site-packages) when installed as a single
file into the CNI bin directory (``python -m cnibin.install``). Even ``os``,
``socket`` and ``json`` cost more to import than the rest of the plugin's
work (``json`` compiles regular expressions at import), so the hot path uses
their C cores directly: ``posix``, ``_socket`` and ``_json`` (see
:func:`loads` / :func:`dumps`). This is the one module allowed to exceed the
~400-line habit: it has to be one file.

Two roles, chosen by the network config (Kube-OVN's names):

* IPAM plugin: ``"ipam": {"type": "kube-ovn", "server_socket": ...,
  "provider": "<nad>.<ns>"}``. The result carries addresses, routes and DNS,
  no interfaces; the calling plugin (macvlan, bridge, ...) applies them.
* Main plugin: ``"type": "kube-ovn", "server_socket": ..., "provider":
  "<nad>.<ns>.ovn"``. There is no OVN datapath in nicpool: the plugin creates
  a veth pair with ``ip`` (iproute2), moves one end into ``CNI_NETNS`` as
  ``CNI_IFNAME`` with the leased IP, MAC and routes, and attaches the host end
  to the Linux bridge named by the optional ``"bridge"`` key (created when
  missing; without the key the host end is only brought up). ``"mtu"``
  overrides the subnet's MTU.

Protocol with the agent (DESIGN.md "Plugin <-> agent"): HTTP/1.1 over the
unix socket, ``POST /api/v1/add`` and ``/api/v1/del`` with Kube-OVN's JSON
field names, plus nicpool's additions that a Kube-OVN daemon would ignore:
``pod_uid`` (from K8S_POD_UID), ``wait_seconds: 0`` on CHECK,
``POST /api/v1/gc`` (CNI 1.1 GC: the runtime's valid attachments, counted by
the agent, never freed here) and ``GET /healthz`` (CNI 1.1 STATUS).

Everything the plugin reads is untrusted, and it runs as root: the network
config (a namespace user writes the NAD), the environment (Multus takes
CNI_IFNAME from the pod's networks annotation) and the agent's reply (from
whatever listens on the socket the NAD names). Every value is parsed into
its type before it is used (addresses and prefixes with ``inet_pton`` and
re-printed with ``inet_ntop``, interface names against the kernel's rules,
MACs as six octets, integers as integers in range), and only the re-printed
form reaches ``ip``, one value per argv element: there is no ``ip -batch``
text or shell to smuggle a command into. A refused value is CNI error 4
(environment), 7 (config) or 101 (agent reply), before anything on the node
changes.

The file runs on Python 3.8 and later, because it runs on the node's own
``python3`` (Ubuntu 20.04 has 3.8, Debian 11 3.9, RHEL 8 3.6 with 3.8+ as
extra packages): no annotation is evaluated at run time (``from __future__
import annotations`` costs ~0.1 ms) and nothing newer than 3.8 is used;
``python -m cnibin.install`` refuses an older interpreter.

Errors go to stdout as CNI error JSON with a non-zero exit: 1 unsupported
cniVersion, 3 pod netns gone (main plugin ADD), 4 bad environment, 6
undecodable config, 7 invalid config, 11 try again later
(agent unreachable or gone mid-request, no lease yet), 50 agent unavailable (STATUS); plugin
specific: 100 CHECK found the lease no longer matches prevResult, 101 the
agent's reply is unreadable or unusable, 102 a link could not be set up;
999 an unexpected failure (a bug; the trace goes to stderr).
"""

from __future__ import annotations

import _json
import _socket
import posix
import sys
import time  # imported by the interpreter's start-up already: free

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PLUGIN_TYPE = "kube-ovn"
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
DEFAULT_SOCKET = "/run/openvswitch/kube-ovn-daemon.sock"
ADD_TIMEOUT = 30.0
"""Seconds to wait for the agent's ADD answer; the agent itself gives up
waiting for a lease after 20 s by default and answers 504."""
QUICK_TIMEOUT = 5.0
MAX_REPLY_BYTES = 1 << 20
MAX_CONFIG_ROUTES, MAX_REPLY_ROUTES = 64, 256
"""A NAD's own routes; the reply adds the pod's routes annotation and defaults.
As a main plugin each route is one ``ip`` exec."""

E_INCOMPATIBLE, E_UNKNOWN_CONTAINER, E_INVALID_ENV = 1, 3, 4
E_DECODE, E_INVALID_CONFIG, E_TRY_AGAIN, E_UNAVAILABLE = 6, 7, 11, 50
E_LEASE_MISMATCH, E_BAD_REPLY, E_LINK = 100, 101, 102
E_GENERIC = 999


class _ScanContext:
    """The settings ``_json.make_scanner`` reads (those of ``json.loads()``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo: dict[str, str] = {}  # noqa: RUF012  (read by the C scanner)


_SCAN = _json.make_scanner(_ScanContext)  # type: ignore[arg-type]  # duck-typed context
_ENCODE = _json.make_encoder(
    None, repr, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
)
_WHITESPACE = " \t\n\r"


def loads(text: str | bytes) -> Any:
    """``json.loads`` without importing ``json`` (same C scanner underneath)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _SCAN(text, start)
    except StopIteration as stop:
        raise ValueError(f"expecting a JSON value at char {stop.value}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except (ValueError, SystemError):
        # The C scanner builds its error from json.decoder, which it cannot
        # always import by itself; on this (error-only) path json is fine.
        import json

        json.loads(text)
        raise
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"extra data after the JSON value at char {end}")
    return value


def dumps(value: Any) -> str:
    """``json.dumps`` with its default separators, without importing ``json``."""
    return "".join(_ENCODE(value, 0))


class CniError(Exception):
    """A failure the runtime should see as CNI error JSON."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            doc["details"] = self.details
        return doc


# --- parsing: every untrusted value becomes its type before it is used --------
#
# Each parser raises ValueError; the caller turns it into the CNI error code
# of where the value came from (4 environment, 7 config, 101 agent reply).

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_DNS_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"
_HEX = "0123456789abcdefABCDEF"
_DNS_KEYS = frozenset(("nameservers", "domain", "search", "options"))


def parse_ip(value: object) -> tuple[int, bytes]:
    """An address as ``inet_pton`` reads it: (family, packed bytes)."""
    if isinstance(value, str) and value.isascii():
        family = _socket.AF_INET6 if ":" in value else _socket.AF_INET
        try:
            return family, _socket.inet_pton(family, value)
        except (OSError, ValueError):  # ValueError: an embedded NUL
            pass
    raise ValueError(f"{value!r} is not an IP address")


def ip_text(value: object) -> str:
    """The address re-printed by ``inet_ntop``: the only form that reaches ``ip``."""
    return _socket.inet_ntop(*parse_ip(value))


def parse_cidr(value: object) -> tuple[int, bytes, int]:
    """``address/length`` (a bare address is a host route): (family, packed, length)."""
    address, slash, length = value.partition("/") if isinstance(value, str) else ("", "", "")
    family, packed = parse_ip(address)
    width = len(packed) * 8
    if not slash:
        return family, packed, width
    if not (length.isascii() and length.isdigit() and len(length) <= 3 and int(length) <= width):
        raise ValueError(f"{value!r} has no prefix length in 0..{width}")
    return family, packed, int(length)


def _masked(packed: bytes, bits: int) -> bytes:
    width = len(packed) * 8
    value = int.from_bytes(packed, "big") >> (width - bits) << (width - bits)
    return value.to_bytes(len(packed), "big")


def canonical_cidr(value: object) -> str:
    """``192.168.0.101/24`` -> ``192.168.0.0/24`` (iproute2 refuses host bits).

    Done with ``inet_pton`` rather than ``ipaddress``, which is slower
    to import than the rest of the plugin's hot path.
    """
    family, packed, bits = parse_cidr(value)
    return f"{_socket.inet_ntop(family, _masked(packed, bits))}/{bits}"


def mac_text(value: object) -> str:
    """Six hex octets, colon separated, unicast and not zero (what the kernel accepts)."""
    octets = value.split(":") if isinstance(value, str) else []
    if len(octets) != 6 or not all(len(o) == 2 and not o.strip(_HEX) for o in octets):
        raise ValueError(f"{value!r} is not a MAC address")
    if int(octets[0], 16) & 1 or not any(int(o, 16) for o in octets):
        raise ValueError(f"{value!r} is not a unicast MAC address")
    return str(value).lower()


def ifname(value: object) -> str:
    """A link name by the kernel's rules (``dev_valid_name``), and libcni's.

    At most 15 bytes, not ``.`` or ``..``, no ``/``, ``:`` or whitespace;
    also no control characters, and no ``%`` (the kernel would pick the name
    itself: ``net%d`` becomes ``net0``).
    """
    if (
        not isinstance(value, str)
        or not 0 < len(value.encode("utf-8", "surrogateescape")) <= 15
        or value in (".", "..")
        or not value.isprintable()
        or any(c in value for c in " /:%")
    ):
        raise ValueError(
            f"{value!r} is not a valid interface name "
            "(1-15 bytes, no whitespace, '/', ':' or '%', not '.' or '..')"
        )
    return value


def mtu(value: object) -> int:
    """0 (not set) or an MTU the kernel takes for IPv4: an integer in 68..65535."""
    if value is None:
        return 0
    if type(value) is int and (value == 0 or 68 <= value <= 65535):  # bool is no MTU
        return value
    raise ValueError(f"{value!r} is not an MTU (an integer in 68..65535)")


def abs_path(value: object, limit: int = 4095) -> str:
    """An absolute path of printable characters, no spaces, no ``.``/``..`` part."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or len(value.encode("utf-8", "surrogateescape")) > limit
        or not value.isprintable()
        or " " in value
        or any(part in (".", "..") for part in value.split("/"))
    ):
        raise ValueError(f"{value!r} is not an absolute path of at most {limit} bytes")
    return value


def socket_path(value: object) -> str:
    """A unix socket path: absolute, and within ``sun_path`` (107 bytes)."""
    return abs_path(value, 107)


def container_id(value: object) -> str:
    """libcni's rule: a letter or digit, then letters, digits, ``_``, ``.`` and ``-``."""
    if not isinstance(value, str) or not value[:1].isalnum() or value.strip(_ALNUM + "_.-"):
        raise ValueError(f"{value!r} is not a container ID")
    return value


def provider(value: object) -> str:
    """A DNS-1123 subdomain, as it prefixes the pod's annotation keys (``<nad>.<ns>``)."""
    labels = value.split(".") if isinstance(value, str) and len(value) <= 253 else [""]
    for label in labels:
        if not label or label[0] == "-" or label[-1] == "-" or label.strip(_DNS_CHARS):
            raise ValueError(
                f"{value!r} is not a provider: lower-case DNS labels joined by dots, "
                "<nad>.<namespace> or <nad>.<namespace>.ovn"
            )
    return str(value)


def _items(value: object, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"{str(value)[:80]!r} is not a list of at most {limit} items")
    return value


def _word(value: object) -> str:
    """A resolv.conf word: printable, no spaces, at most 253 characters."""
    if not isinstance(value, str) or len(value) > 253 or not value.isprintable() or " " in value:
        raise ValueError(f"{value!r} is not a DNS name or option")
    return value


def dns(value: object) -> dict[str, Any]:
    """CNI's DNS object: ``nameservers`` (addresses), ``domain``, ``search``, ``options``."""
    if not value:
        return {}
    if not isinstance(value, dict) or not set(value) <= _DNS_KEYS:
        raise ValueError(f"dns {str(value)[:80]!r} is not an object of nameservers, domain, ...")
    parsed: dict[str, Any] = {}
    if "nameservers" in value:
        parsed["nameservers"] = [ip_text(v) for v in _items(value["nameservers"], 32)]
    if "domain" in value:
        parsed["domain"] = _word(value["domain"])
    for key in ("search", "options"):
        if key in value:
            parsed[key] = [_word(v) for v in _items(value[key], 32)]
    return parsed


def _given(route: dict[str, Any], key: str) -> object:
    value = route.get(key)
    return None if value in (None, "") else value


def routes(value: object, limit: int) -> list[dict[str, str]]:
    """``[{"dst", "gw"}]``: ``dst`` a CIDR (host bits cleared), ``gw`` an address.

    Either may be absent (no ``dst``: the default route), not both; the two
    are of one family.
    """
    parsed = []
    for route in _items(value or [], limit):
        if not isinstance(route, dict):
            raise ValueError(f"route {route!r} is not an object")
        dst, gw = _given(route, "dst"), _given(route, "gw")
        if dst is None and gw is None:
            raise ValueError(f"route {route!r} has neither dst nor gw")
        entry = {} if dst is None else {"dst": canonical_cidr(dst)}
        if gw is not None:
            entry["gw"] = ip_text(gw)
        if len(entry) == 2 and (":" in entry["dst"]) != (":" in entry["gw"]):
            raise ValueError(f"route to {entry['dst']} via {entry['gw']} mixes address families")
        parsed.append(entry)
    return parsed


# --- the network config, the environment and the agent's reply -------------------

_HINTS = {
    "server_socket": f"the node agent's unix socket, usually {DEFAULT_SOCKET}",
    "provider": "<nad>.<namespace> (or <nad>.<namespace>.ovn for a kube-ovn NIC)",
    "routes": 'a list of {"dst": "<cidr>", "gw": "<address>"}',
    "bridge": "the name of a Linux bridge on the node (created when missing)",
}


class NetConf:
    """What the plugin needs from the network config, every value parsed."""

    __slots__ = (
        "bridge",
        "cni_version",
        "dns",
        "main",
        "mtu",
        "prev",
        "provider",
        "routes",
        "server_socket",
    )

    def __init__(self, doc: dict[str, Any], command: str = "ADD") -> None:
        self.cni_version: str = doc.get("cniVersion", "")
        self.main: bool = doc.get("type") == PLUGIN_TYPE
        section = doc if self.main else doc.get("ipam")
        if not isinstance(section, dict) or section.get("type") != PLUGIN_TYPE:
            raise CniError(
                E_INVALID_CONFIG,
                "not a kube-ovn config",
                'need "type" or "ipam.type" set to "kube-ovn"',
            )
        self.server_socket: str = _setting(section, "server_socket", socket_path)
        self.provider: str = _setting(section, "provider", provider)
        # Only ADD and CHECK use these: DEL must clean up even after a NAD
        # edit made one of them invalid (the runtime retries a failed DEL).
        lease = command in ("ADD", "CHECK")
        self.routes: list[dict[str, str]] = _setting(section, "routes", _config_routes, lease)
        self.dns: dict[str, Any] = _setting(doc, "dns", dns, lease)
        self.bridge: str = _setting(doc, "bridge", _bridge, lease and self.main)
        self.mtu: int = _setting(doc, "mtu", mtu, lease and self.main)
        self.prev: Any = doc.get("prevResult")


def _config_routes(value: object) -> list[dict[str, str]]:
    return routes(value, MAX_CONFIG_ROUTES)


def _bridge(value: object) -> str:
    return ifname(value) if value else ""


def _setting(
    section: dict[str, Any], key: str, parse: Callable[[Any], Any], used: bool = True
) -> Any:
    if not used:  # e.g. "mtu" of an IPAM config belongs to the calling plugin
        return parse(None)
    value = section.get(key)
    try:
        return parse(value)
    except ValueError as exc:
        hint = f"set it to {_HINTS[key]}" if key in _HINTS else ""
        if value is None or value == "":
            raise CniError(E_INVALID_CONFIG, f"invalid config: {key} is required", hint) from None
        raise CniError(E_INVALID_CONFIG, f"invalid config: {key}: {exc}", hint) from None


def load_config(raw: bytes) -> dict[str, Any]:
    """Decode stdin; the error names the position so a person can fix it."""
    try:
        doc = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(E_DECODE, "cannot decode the network config as JSON", str(exc)) from None
    if not isinstance(doc, dict):
        raise CniError(E_DECODE, "the network config must be a JSON object")
    return doc


def check_version(version: str) -> None:
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            E_INCOMPATIBLE,
            f"unsupported cniVersion {version!r}",
            "supported: " + ", ".join(SUPPORTED_VERSIONS),
        )


def cni_args(value: str) -> dict[str, str]:
    """``K=V;K=V`` as the runtime passes it in CNI_ARGS."""
    pairs = (item.partition("=") for item in value.split(";") if item)
    return {key: val for key, _, val in pairs if key}


ENV_PARSERS = (("CNI_CONTAINERID", container_id), ("CNI_IFNAME", ifname), ("CNI_NETNS", abs_path))


def need_env(env: dict[str, str], command: str) -> None:
    """The variables the CNI spec requires for ``command``, each parsed when set."""
    full = ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS")
    required = {"ADD": full, "CHECK": full, "DEL": full[:2]}
    missing = [name for name in required.get(command, ()) if not env.get(name)]
    if missing:
        raise CniError(E_INVALID_ENV, f"{', '.join(missing)} must be set for {command}")
    for name, parse in ENV_PARSERS:
        try:
            parse(env[name]) if env.get(name) else None
        except ValueError as exc:
            raise CniError(E_INVALID_ENV, f"{name}: {exc}") from None


def build_request(conf: NetConf, env: dict[str, str]) -> dict[str, Any]:
    """The agent request, with Kube-OVN's field names (+ ``pod_uid``)."""
    args = cni_args(env.get("CNI_ARGS", ""))
    for key in ("K8S_POD_NAME", "K8S_POD_NAMESPACE"):
        if not args.get(key):
            raise CniError(
                E_INVALID_CONFIG,
                f"{key} is required in CNI_ARGS",
                "the runtime (kubelet/Multus) passes it; when running by hand set "
                "CNI_ARGS='K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod'",
            )
    request: dict[str, Any] = {
        "cni_type": PLUGIN_TYPE if conf.main else "ipam",
        "pod_name": args["K8S_POD_NAME"],
        "pod_namespace": args["K8S_POD_NAMESPACE"],
        "container_id": env.get("CNI_CONTAINERID", ""),
        "net_ns": env.get("CNI_NETNS", ""),
        "if_name": env.get("CNI_IFNAME", ""),
        "provider": conf.provider,
        "routes": conf.routes,
    }
    if args.get("K8S_POD_UID"):
        request["pod_uid"] = args["K8S_POD_UID"]
    if conf.dns:
        request["dns"] = conf.dns
    if conf.bridge:
        # The node's agent decides whether a NAD may join this bridge (a NAD is
        # any namespace user's; the bridge may carry another tenant's network).
        request["bridge"] = conf.bridge
    return request


def _leased(entry: object) -> dict[str, str]:
    """One leased address: a host address of its CIDR, gateway of the same family."""
    if not isinstance(entry, dict):
        raise ValueError(f"ips entry {entry!r} is not an object")
    family, packed = parse_ip(entry.get("ip"))
    net_family, net, bits = parse_cidr(entry.get("cidr"))
    network = _masked(net, bits)
    width = len(packed) * 8
    if (
        net_family != family
        or _masked(packed, bits) != network
        or (packed == network and bits < width - 1)
    ):
        raise ValueError(f"{entry.get('ip')!r} is not a host address of {entry.get('cidr')!r}")
    gateway = entry.get("gateway") or ""
    if gateway and parse_ip(gateway)[0] != family:
        raise ValueError(f"gateway {gateway!r} is not of the family of {entry.get('ip')!r}")
    return {
        "ip": _socket.inet_ntop(family, packed),
        "cidr": f"{_socket.inet_ntop(family, network)}/{bits}",
        "gateway": ip_text(gateway) if gateway else "",
    }


def parse_reply(reply: Any, *, main: bool) -> dict[str, Any]:
    """The agent's ADD answer with every value parsed (101 when one is unusable).

    MAC and MTU are read only where they are used, by the main plugin's own
    NIC: as an IPAM plugin the calling plugin owns the link.
    """
    try:
        if not isinstance(reply, dict):
            raise ValueError("it is not a JSON object")
        ips = [_leased(entry) for entry in _items(reply.get("ips"), 8)]
        if not ips:
            raise ValueError("it has no ips")
        return {
            "ips": ips,
            "mac_address": mac_text(reply.get("mac_address")) if main else "",
            "mtu": mtu(reply.get("mtu")) if main else 0,
            "routes": routes(reply.get("routes"), MAX_REPLY_ROUTES),
            "dns": dns(reply.get("dns")),
        }
    except ValueError as exc:
        raise CniError(E_BAD_REPLY, "the node agent's reply is unusable", str(exc)[:500]) from None


def _prefix(cidr: str) -> str:
    return cidr.rpartition("/")[2]


def _family_default(gw: str) -> str:
    return "::/0" if ":" in gw else "0.0.0.0/0"


def build_result(conf: NetConf, reply: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The CNI result in the caller's cniVersion from the parsed reply."""
    old = conf.cni_version < "1.0.0"
    result: dict[str, Any] = {"cniVersion": conf.cni_version}
    if conf.main:
        iface: dict[str, Any] = {"name": env["CNI_IFNAME"], "mac": reply["mac_address"]}
        iface["sandbox"] = env.get("CNI_NETNS", "")
        if conf.cni_version == "1.1.0" and reply["mtu"]:
            iface["mtu"] = reply["mtu"]
        result["interfaces"] = [iface]
    ips = []
    for entry in reply["ips"]:
        ip: dict[str, Any] = {"address": f"{entry['ip']}/{_prefix(entry['cidr'])}"}
        if old:
            ip["version"] = "6" if ":" in entry["ip"] else "4"
        if entry["gateway"]:
            ip["gateway"] = entry["gateway"]
        if conf.main:
            ip["interface"] = 0
        ips.append(ip)
    result["ips"] = ips
    routes = [
        {"dst": r.get("dst") or _family_default(r["gw"]), "gw": r["gw"]}
        for r in reply["routes"]
        if "gw" in r
    ]
    if not routes:
        routes = [
            {"dst": _family_default(i["gateway"]), "gw": i["gateway"]}
            for i in ips
            if i.get("gateway")
        ]
    if routes:
        result["routes"] = routes
    if reply["dns"]:
        result["dns"] = reply["dns"]
    return result


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def check_against(prev: Any, reply: dict[str, Any], ifname: str, *, main: bool) -> None:
    """CHECK: the lease the agent holds now must be what the runtime recorded.

    The MAC is compared only for the main plugin's own interface: as an IPAM
    plugin the calling plugin chose the MAC (macvlan takes one from Multus's
    MAC= argument, or a random one).
    """
    if not isinstance(prev, dict):
        raise CniError(E_INVALID_CONFIG, "CHECK needs prevResult in the network config")
    recorded = {ip.get("address") for ip in _dicts(prev.get("ips"))}
    for entry in reply["ips"]:
        address = f"{entry['ip']}/{_prefix(entry['cidr'])}"
        if address not in recorded:
            raise CniError(
                E_LEASE_MISMATCH,
                f"lease {address} is not in prevResult",
                f"prevResult has {sorted(str(a) for a in recorded if a)}",
            )
    mac = reply["mac_address"]
    for iface in _dicts(prev.get("interfaces")) if main else []:
        if (
            iface.get("name") == ifname
            and iface.get("sandbox")
            and iface.get("mac") not in (None, "", mac)
        ):
            raise CniError(E_LEASE_MISMATCH, f"{ifname} has MAC {iface['mac']}, lease has {mac}")


# --- I/O: the agent over its unix socket ----------------------------------------


def http_unix(path: str, method: str, url: str, body: Any, timeout: float) -> tuple[int, Any]:
    """One HTTP/1.1 exchange; a hand-rolled client because http.client imports ssl.

    ``timeout`` bounds the whole exchange and the reply is read up to
    MAX_REPLY_BYTES: whatever listens on the socket cannot hold the plugin
    (and the pod's sandbox) forever or make it swallow the node's memory.
    """
    payload = b"" if body is None else dumps(body).encode()
    head = (
        f"{method} {url} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(head.encode() + payload)
        raw = b""
        while len(raw) <= MAX_REPLY_BYTES:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        else:
            raise CniError(E_BAD_REPLY, f"the node agent's reply exceeds {MAX_REPLY_BYTES} bytes")
    finally:
        sock.close()
    if not raw:  # closed before a byte of reply: the agent went away (a restart)
        raise CniError(E_TRY_AGAIN, "the node agent closed the connection without replying")
    header, _, data = raw.partition(b"\r\n\r\n")
    status_line = header.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise CniError(E_BAD_REPLY, "the node agent's reply is not HTTP", repr(raw[:200]))
    try:
        return int(status_line[1]), loads(data) if data.strip() else None
    except ValueError:
        return int(status_line[1]), {"error": data.decode(errors="replace")[:300]}


def call_agent(conf: NetConf, url: str, body: Any, timeout: float) -> tuple[int, Any]:
    try:
        return http_unix(conf.server_socket, "POST", url, body, timeout)
    except OSError as exc:  # TimeoutError is one
        raise CniError(
            E_TRY_AGAIN,
            f"the node agent is unreachable at {conf.server_socket}",
            f"{exc}; is nicpool-agent running on this node with --socket {conf.server_socket}?",
        ) from None


def agent_add(conf: NetConf, request: dict[str, Any]) -> dict[str, Any]:
    """The agent's lease for this NIC, parsed (see :func:`parse_reply`)."""
    status, reply = call_agent(conf, "/api/v1/add", request, ADD_TIMEOUT)
    if status == 200:
        return parse_reply(reply, main=conf.main)
    reason = str(reply.get("error", "")) if isinstance(reply, dict) else ""
    if status == 403:  # the node refuses what the NAD asks (a bridge it may not join)
        raise CniError(E_INVALID_CONFIG, f"invalid config: {reason[:300]}", "HTTP 403")
    who = f"{request['pod_namespace']}/{request['pod_name']} provider {request['provider']}"
    code = E_INVALID_CONFIG if status == 400 else E_TRY_AGAIN
    raise CniError(code, f"the node agent has no lease for {who} (HTTP {status})", reason[:500])


# --- I/O: the main plugin's veth -----------------------------------------------


def _run(argv: list[str]) -> str:
    import subprocess

    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise CniError(E_LINK, f"{' '.join(argv)} failed", done.stderr.strip()[:500])
    return done.stdout


def run_ip(*args: str, netns: str = "") -> str:
    """``ip`` with one parsed value per argument; inside ``netns`` when given.

    Every name goes after its keyword (``dev``, ``name``), so no value can be
    read as a keyword.
    """
    return _run(["nsenter", f"--net={netns}", "ip", *args] if netns else ["ip", *args])


def host_veth(container_id: str, ifname: str) -> str:
    """A stable host-side name (<= 15 chars), so DEL finds what ADD made."""
    import zlib

    return f"np{zlib.crc32(f'{container_id}/{ifname}'.encode()):08x}"


def pod_commands(ifname: str, result: dict[str, Any], mtu: int) -> list[list[str]]:
    """The ``ip`` commands that configure the pod end inside its netns.

    ``result`` holds only re-printed values (see :func:`parse_reply`).
    """
    link = ["link", "set", "dev", ifname, "address", result["interfaces"][0]["mac"]]
    commands = [[*link, *(["mtu", str(mtu)] if mtu else []), "up"]]
    for leased in result["ips"]:
        nodad = ["nodad"] if ":" in leased["address"] else []
        commands.append(["address", "replace", leased["address"], "dev", ifname, *nodad])
    commands += [
        ["route", "replace", r["dst"], "via", r["gw"], "dev", ifname]
        for r in result.get("routes", [])
    ]
    return commands


def check_bridge(name: str) -> None:
    """An existing link named as the bridge must be one: never bring up or
    enslave to the node's uplink because a NAD named it."""
    if not _link_exists(name):
        return
    try:
        kind = loads(run_ip("-d", "-j", "link", "show", "dev", name))[0]["linkinfo"]["info_kind"]
    except (ValueError, LookupError, TypeError):
        kind = ""
    if kind != "bridge":
        raise CniError(
            E_INVALID_CONFIG,
            f"invalid config: bridge {name} exists and is not a Linux bridge",
            f"it is a {kind or 'plain'} link; {_HINTS['bridge']}",
        )


def setup_veth(conf: NetConf, env: dict[str, str], result: dict[str, Any], mtu: int) -> None:
    netns, ifname = env["CNI_NETNS"], env["CNI_IFNAME"]
    if not _exists(netns):
        raise CniError(E_UNKNOWN_CONTAINER, f"network namespace {netns} does not exist")
    if conf.bridge:
        check_bridge(conf.bridge)
    host = host_veth(env["CNI_CONTAINERID"], ifname)
    run_ip("link", "del", "dev", host) if _link_exists(host) else None
    run_ip("link", "add", "name", host, "type", "veth", "peer", "name", ifname, "netns", netns)
    try:
        if conf.bridge:
            if not _link_exists(conf.bridge):
                run_ip("link", "add", "name", conf.bridge, "type", "bridge")
            run_ip("link", "set", "dev", conf.bridge, "up")
            run_ip("link", "set", "dev", host, "master", conf.bridge)
        run_ip("link", "set", "dev", host, *(["mtu", str(mtu)] if mtu else []), "up")
        for command in pod_commands(ifname, result, mtu):
            run_ip(*command, netns=netns)
    except CniError:
        teardown_veth(env)
        raise


def _link_exists(name: str) -> bool:
    """In the plugin's own netns (works under nsenter too, unlike /sys)."""
    try:
        _socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def teardown_veth(env: dict[str, str]) -> None:
    """Idempotent: deleting the host end removes the pod end with it."""
    host = host_veth(env["CNI_CONTAINERID"], env["CNI_IFNAME"])
    if _link_exists(host):
        try:
            run_ip("link", "del", "dev", host)
        except CniError as exc:
            print(f"kube-ovn: {exc.msg}: {exc.details}", file=sys.stderr)


# --- commands ------------------------------------------------------------------


def cmd_add(conf: NetConf, env: dict[str, str]) -> dict[str, Any]:
    reply = agent_add(conf, build_request(conf, env))
    result = build_result(conf, reply, env)
    if conf.main:
        setup_veth(conf, env, result, conf.mtu or reply["mtu"])
    return result


def cmd_del(conf: NetConf, env: dict[str, str]) -> None:
    """Never fails for a gone agent or netns: the controller frees leases."""
    request = build_request(conf, env)
    try:
        status, reply = call_agent(conf, "/api/v1/del", request, QUICK_TIMEOUT)
        if status >= 300:
            print(f"kube-ovn: agent DEL answered {status}: {reply}", file=sys.stderr)
    except CniError as exc:
        print(f"kube-ovn: {exc.msg} ({exc.details}); DEL goes on", file=sys.stderr)
    if conf.main:
        teardown_veth(env)


def cmd_check(conf: NetConf, env: dict[str, str]) -> None:
    if conf.cni_version < "0.4.0":
        raise CniError(E_INCOMPATIBLE, f"cniVersion {conf.cni_version} does not allow CHECK")
    request = build_request(conf, env)
    request["wait_seconds"] = 0  # nicpool extension: CHECK never waits for a lease
    check_against(conf.prev, agent_add(conf, request), env["CNI_IFNAME"], main=conf.main)
    if conf.main:
        netns, ifname = env["CNI_NETNS"], env["CNI_IFNAME"]
        shown = run_ip("-j", "addr", "show", "dev", ifname, netns=netns)
        live = {
            f"{a['local']}/{a['prefixlen']}"
            for link in loads(shown)
            for a in link.get("addr_info", [])
        }
        for recorded in _dicts(conf.prev.get("ips")):
            if recorded.get("address") not in live:
                raise CniError(E_LEASE_MISMATCH, f"{ifname} lost address {recorded.get('address')}")


def cmd_gc(conf: NetConf, doc: dict[str, Any]) -> None:
    """CNI 1.1 GC: leases are freed by the controller on pod deletion, never here.

    The agent is told which attachments the runtime still holds so it can
    count the ones it served that the runtime forgot (a metric); an
    unreachable agent does not fail GC.
    """
    if conf.cni_version < "1.1.0":
        raise CniError(E_INCOMPATIBLE, f"cniVersion {conf.cni_version} does not allow GC")
    valid = doc.get("cni.dev/valid-attachments") or []
    try:
        call_agent(conf, "/api/v1/gc", {"valid_attachments": valid}, QUICK_TIMEOUT)
    except CniError as exc:
        print(f"kube-ovn: {exc.msg}; GC goes on", file=sys.stderr)


def cmd_status(conf: NetConf) -> None:
    if conf.cni_version < "1.1.0":
        raise CniError(E_INCOMPATIBLE, f"cniVersion {conf.cni_version} does not allow STATUS")
    try:
        status, reply = http_unix(conf.server_socket, "GET", "/healthz", None, QUICK_TIMEOUT)
    except (OSError, TimeoutError, CniError) as exc:
        raise CniError(
            E_UNAVAILABLE,
            f"the node agent is unreachable at {conf.server_socket}",
            str(getattr(exc, "msg", exc)),
        ) from None
    if status >= 500:
        raise CniError(E_UNAVAILABLE, f"the node agent is not ready (HTTP {status})", str(reply))


def version_info(raw: bytes) -> dict[str, Any]:
    try:
        asked = loads(raw).get("cniVersion", "") if raw.strip() else ""
    except (ValueError, AttributeError, UnicodeDecodeError):
        asked = ""
    version = asked if asked in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1]
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


def run(env: dict[str, str], raw: bytes) -> dict[str, Any] | None:
    """Dispatch one CNI command; returns what to print on stdout (or None)."""
    command = env.get("CNI_COMMAND", "")
    if command == "VERSION":
        return version_info(raw)
    if command not in ("ADD", "DEL", "CHECK", "GC", "STATUS"):
        raise CniError(
            E_INVALID_ENV,
            f"unknown CNI_COMMAND {command!r}",
            "one of ADD, DEL, CHECK, GC, STATUS, VERSION",
        )
    doc = load_config(raw)
    check_version(doc.get("cniVersion", ""))
    need_env(env, command)
    conf = NetConf(doc, command)
    if command == "ADD":
        return cmd_add(conf, env)
    if command == "DEL":
        cmd_del(conf, env)
    elif command == "CHECK":
        cmd_check(conf, env)
    elif command == "GC":
        cmd_gc(conf, doc)
    else:
        cmd_status(conf)
    return None


def _error_version(raw: bytes) -> str:
    try:
        version = loads(raw).get("cniVersion", "")
    except (ValueError, AttributeError, UnicodeDecodeError):
        version = ""
    return version if version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[-1]


def environment() -> dict[str, str]:
    """``os.environ`` from its C core, without importing ``os``."""
    return {
        key.decode("utf-8", "surrogateescape"): value.decode("utf-8", "surrogateescape")
        for key, value in posix.environ.items()
    }


def _exists(path: str) -> bool:
    try:
        posix.stat(path)
    except OSError:
        return False
    return True


def main() -> int:
    """Run one command; stdout is always JSON (or empty), whatever happens."""
    raw = sys.stdin.buffer.read() if sys.stdin is not None and not sys.stdin.isatty() else b""
    try:
        output = run(environment(), raw)
    except CniError as exc:
        sys.stdout.write(dumps(exc.to_json(_error_version(raw))) + "\n")
        return 1
    except Exception as exc:  # a bug: still answer in CNI's format, keep the trace on stderr
        import traceback

        traceback.print_exc()
        bug = CniError(E_GENERIC, "kube-ovn plugin failed unexpectedly", repr(exc)[:500])
        sys.stdout.write(dumps(bug.to_json(_error_version(raw))) + "\n")
        return 1
    if output is not None:
        sys.stdout.write(dumps(output) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
