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

Errors go to stdout as CNI error JSON with a non-zero exit: 1 unsupported
cniVersion, 3 pod netns gone (main plugin ADD), 4 bad environment, 6
undecodable config, 7 invalid config, 11 try again later
(agent unreachable, no lease yet), 50 agent unavailable (STATUS); plugin
specific: 100 CHECK found the lease no longer matches prevResult, 101 the
agent's reply is unreadable, 102 a link could not be set up; 999 an
unexpected failure (a bug; the trace goes to stderr).
"""

import _json
import _socket
import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
else:
    Any = object  # annotations are evaluated at import; ``typing`` costs a few ms to import

PLUGIN_TYPE = "kube-ovn"
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
DEFAULT_SOCKET = "/run/openvswitch/kube-ovn-daemon.sock"
ADD_TIMEOUT = 30.0
"""Seconds to wait for the agent's ADD answer; the agent itself gives up
waiting for a lease after 20 s by default and answers 504."""
QUICK_TIMEOUT = 5.0

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


class NetConf:
    """What the plugin needs from the network config, validated."""

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

    def __init__(self, doc: dict[str, Any]) -> None:
        self.cni_version: str = doc.get("cniVersion", "")
        self.main: bool = doc.get("type") == PLUGIN_TYPE
        section = doc if self.main else doc.get("ipam")
        if not isinstance(section, dict) or section.get("type") != PLUGIN_TYPE:
            raise CniError(
                E_INVALID_CONFIG,
                "not a kube-ovn config",
                'need "type" or "ipam.type" set to "kube-ovn"',
            )
        self.server_socket: str = _string(section, "server_socket")
        self.provider: str = _string(section, "provider")
        self.routes: list[dict[str, str]] = _routes(section.get("routes", []))
        self.dns: dict[str, Any] = doc.get("dns") or {}
        self.bridge: str = doc.get("bridge", "") if self.main else ""
        self.mtu: int = doc.get("mtu", 0) if self.main else 0
        self.prev: dict[str, Any] | None = doc.get("prevResult")
        if not isinstance(self.bridge, str) or not isinstance(self.mtu, int):
            raise CniError(
                E_INVALID_CONFIG, "invalid config", '"bridge" must be a string and "mtu" an integer'
            )


def _string(section: dict[str, Any], key: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value:
        hint = {
            "server_socket": f"the node agent's unix socket, usually {DEFAULT_SOCKET}",
            "provider": "<nad>.<namespace> (or <nad>.<namespace>.ovn for a kube-ovn NIC)",
        }[key]
        raise CniError(E_INVALID_CONFIG, f"invalid config: {key} is required", f"set it to {hint}")
    return value


def _routes(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise CniError(E_INVALID_CONFIG, "invalid config: routes must be a list of objects")
    return [{k: str(v) for k, v in r.items() if k in ("dst", "gw")} for r in value]


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


def need_env(env: dict[str, str], command: str) -> None:
    """The variables the CNI spec requires for ``command``."""
    full = ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS")
    required = {"ADD": full, "CHECK": full, "DEL": full[:2]}
    missing = [name for name in required.get(command, ()) if not env.get(name)]
    if missing:
        raise CniError(E_INVALID_ENV, f"{', '.join(missing)} must be set for {command}")
    ifname = env.get("CNI_IFNAME", "")
    if ifname and (len(ifname) > 15 or "/" in ifname or ifname in (".", "..") or " " in ifname):
        raise CniError(E_INVALID_ENV, f"CNI_IFNAME {ifname!r} is not a valid interface name")


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
    return request


def _prefix(cidr: str) -> str:
    return cidr.rpartition("/")[2]


def canonical_cidr(cidr: str) -> str:
    """``192.168.0.101/24`` -> ``192.168.0.0/24`` (iproute2 refuses host bits).

    Done with ``inet_pton`` rather than ``ipaddress``, which is slower
    to import than the rest of the plugin's hot path.
    """
    address, _, length = cidr.partition("/")
    family = _socket.AF_INET6 if ":" in address else _socket.AF_INET
    try:
        packed = _socket.inet_pton(family, address)
        bits = int(length) if length else len(packed) * 8
    except (OSError, ValueError):
        raise CniError(E_BAD_REPLY, f"route destination {cidr!r} is not a CIDR") from None
    if not 0 <= bits <= len(packed) * 8:
        raise CniError(E_BAD_REPLY, f"route destination {cidr!r} has a bad prefix length")
    value = int.from_bytes(packed, "big") >> (len(packed) * 8 - bits) << (len(packed) * 8 - bits)
    return f"{_socket.inet_ntop(family, value.to_bytes(len(packed), 'big'))}/{bits}"


def _family_default(gw: str) -> str:
    return "::/0" if ":" in gw else "0.0.0.0/0"


def build_result(conf: NetConf, reply: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The CNI result in the caller's cniVersion from the agent's reply."""
    old = conf.cni_version < "1.0.0"
    result: dict[str, Any] = {"cniVersion": conf.cni_version}
    if conf.main:
        iface: dict[str, Any] = {"name": env["CNI_IFNAME"], "mac": reply.get("mac_address", "")}
        iface["sandbox"] = env.get("CNI_NETNS", "")
        if conf.cni_version == "1.1.0" and reply.get("mtu"):
            iface["mtu"] = int(reply["mtu"])
        result["interfaces"] = [iface]
    ips = []
    for entry in reply["ips"]:
        ip: dict[str, Any] = {"address": f"{entry['ip']}/{_prefix(entry['cidr'])}"}
        if old:
            ip["version"] = "6" if ":" in entry["ip"] else "4"
        if entry.get("gateway"):
            ip["gateway"] = entry["gateway"]
        if conf.main:
            ip["interface"] = 0
        ips.append(ip)
    result["ips"] = ips
    routes = [
        {
            "dst": canonical_cidr(r["dst"]) if r.get("dst") else _family_default(r["gw"]),
            "gw": r["gw"],
        }
        for r in reply.get("routes") or []
        if r.get("gw")
    ]
    if not routes:
        routes = [
            {"dst": _family_default(i["gateway"]), "gw": i["gateway"]}
            for i in ips
            if i.get("gateway")
        ]
    if routes:
        result["routes"] = routes
    if reply.get("dns"):
        result["dns"] = reply["dns"]
    return result


def validate_reply(reply: Any) -> dict[str, Any]:
    try:
        ok = (
            isinstance(reply, dict)
            and reply["ips"]
            and all(isinstance(i["ip"], str) and isinstance(i["cidr"], str) for i in reply["ips"])
        )
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise CniError(E_BAD_REPLY, "the node agent's reply has no usable ips", repr(reply)[:300])
    return reply  # type: ignore[no-any-return]


def check_against(
    prev: dict[str, Any] | None, reply: dict[str, Any], ifname: str, *, main: bool
) -> None:
    """CHECK: the lease the agent holds now must be what the runtime recorded.

    The MAC is compared only for the main plugin's own interface: as an IPAM
    plugin the calling plugin chose the MAC (macvlan takes one from Multus's
    MAC= argument, or a random one).
    """
    if not isinstance(prev, dict):
        raise CniError(E_INVALID_CONFIG, "CHECK needs prevResult in the network config")
    recorded = {ip.get("address") for ip in prev.get("ips") or [] if isinstance(ip, dict)}
    for entry in reply["ips"]:
        address = f"{entry['ip']}/{_prefix(entry['cidr'])}"
        if address not in recorded:
            raise CniError(
                E_LEASE_MISMATCH,
                f"lease {address} is not in prevResult",
                f"prevResult has {sorted(a for a in recorded if a)}",
            )
    for iface in prev.get("interfaces") or [] if main else []:
        mac = reply.get("mac_address", "")
        if (
            iface.get("name") == ifname
            and iface.get("sandbox")
            and iface.get("mac") not in (None, "", mac)
        ):
            raise CniError(E_LEASE_MISMATCH, f"{ifname} has MAC {iface['mac']}, lease has {mac}")


# --- I/O: the agent over its unix socket ----------------------------------------


def http_unix(path: str, method: str, url: str, body: Any, timeout: float) -> tuple[int, Any]:
    """One HTTP/1.1 exchange; a hand-rolled client because http.client imports ssl."""
    payload = b"" if body is None else dumps(body).encode()
    head = (
        f"{method} {url} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(head.encode() + payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    finally:
        sock.close()
    raw = b"".join(chunks)
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
    except (OSError, TimeoutError) as exc:
        raise CniError(
            E_TRY_AGAIN,
            f"the node agent is unreachable at {conf.server_socket}",
            f"{exc}; is nicpool-agent running on this node with --socket {conf.server_socket}?",
        ) from None


def agent_add(conf: NetConf, request: dict[str, Any]) -> dict[str, Any]:
    status, reply = call_agent(conf, "/api/v1/add", request, ADD_TIMEOUT)
    if status == 200:
        return validate_reply(reply)
    reason = reply.get("error", "") if isinstance(reply, dict) else ""
    who = f"{request['pod_namespace']}/{request['pod_name']} provider {request['provider']}"
    code = E_INVALID_CONFIG if status == 400 else E_TRY_AGAIN
    raise CniError(code, f"the node agent has no lease for {who} (HTTP {status})", reason)


# --- I/O: the main plugin's veth -----------------------------------------------


def _run(argv: list[str], stdin: str = "") -> str:
    import subprocess

    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode:
        raise CniError(E_LINK, f"{' '.join(argv[:4])} failed", done.stderr.strip()[:500])
    return done.stdout


def host_veth(container_id: str, ifname: str) -> str:
    """A stable host-side name (<= 15 chars), so DEL finds what ADD made."""
    import zlib

    return f"np{zlib.crc32(f'{container_id}/{ifname}'.encode()):08x}"


def pod_commands(ifname: str, result: dict[str, Any], mtu: int) -> str:
    """``ip -batch`` lines that configure the pod end inside its netns."""
    lines = [f"link set dev {ifname} address {result['interfaces'][0]['mac']}"]
    if mtu:
        lines.append(f"link set dev {ifname} mtu {mtu}")
    for ip in result["ips"]:
        nodad = " nodad" if ":" in ip["address"] else ""
        lines.append(f"address replace {ip['address']} dev {ifname}{nodad}")
    lines.append(f"link set dev {ifname} up")
    lines += [
        f"route replace {r['dst']} via {r['gw']} dev {ifname}" for r in result.get("routes", [])
    ]
    return "\n".join(lines) + "\n"


def setup_veth(conf: NetConf, env: dict[str, str], result: dict[str, Any], mtu: int) -> None:
    netns, ifname = env["CNI_NETNS"], env["CNI_IFNAME"]
    if not _exists(netns):
        raise CniError(E_UNKNOWN_CONTAINER, f"network namespace {netns} does not exist")
    host = host_veth(env["CNI_CONTAINERID"], ifname)
    _run(["ip", "link", "del", host]) if _link_exists(host) else None
    _run(["ip", "link", "add", host, "type", "veth", "peer", "name", ifname, "netns", netns])
    try:
        if conf.bridge:
            if not _link_exists(conf.bridge):
                _run(["ip", "link", "add", conf.bridge, "type", "bridge"])
            _run(["ip", "link", "set", conf.bridge, "up"])
            _run(["ip", "link", "set", host, "master", conf.bridge])
        if mtu:
            _run(["ip", "link", "set", host, "mtu", str(mtu)])
        _run(["ip", "link", "set", host, "up"])
        _run(["nsenter", f"--net={netns}", "ip", "-batch", "-"], pod_commands(ifname, result, mtu))
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
            _run(["ip", "link", "del", host])
        except CniError as exc:
            print(f"kube-ovn: {exc.msg}: {exc.details}", file=sys.stderr)


# --- commands ------------------------------------------------------------------


def cmd_add(conf: NetConf, env: dict[str, str]) -> dict[str, Any]:
    reply = agent_add(conf, build_request(conf, env))
    result = build_result(conf, reply, env)
    if conf.main:
        setup_veth(conf, env, result, conf.mtu or int(reply.get("mtu") or 0))
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
        shown = _run(["nsenter", f"--net={netns}", "ip", "-j", "addr", "show", "dev", ifname])
        live = {
            f"{a['local']}/{a['prefixlen']}"
            for link in loads(shown)
            for a in link.get("addr_info", [])
        }
        for ip in conf.prev.get("ips", []) if conf.prev else []:
            if ip.get("address") not in live:
                raise CniError(E_LEASE_MISMATCH, f"{ifname} lost address {ip.get('address')}")


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
    conf = NetConf(doc)
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
